/* cmd_dequeue.c: `bg-cli dequeue JOB`: removes a job that still waits, and its hash. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"

static int dequeue_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c, json = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(self);
        if (c != 'j')
            return cli_bad_option(self, c, argv);
        json = 1;
    }
    if (optind >= argc)
        return cli_usage_error(self, "which job? give its UUID");
    if (argc - optind > 1)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind + 1]);
    int status = cli_client(ctx, self);
    if (status != 0)
        return status;
    int rc = bg_dequeue(ctx->client, argv[optind]);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    if (json)
        return cli_print_json(self, json_pack("{s:s, s:b}", "job", argv[optind], "removed", 1));
    return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_dequeue = {
    "dequeue",
    "JOB [--json]",
    "Removes JOB, a job waiting in its ready list or its scheduled set (a delayed job, or one\n"
    "waiting for its retry), and its hash. Prints nothing on success. Exits 1 when there is\n"
    "no such job, or when it is not waiting (running, dead or finished).\n\n"
    "options:\n"
    "      --json  print {\"job\": JOB, \"removed\": true} on success\n"
    "  -h, --help  this help\n",
    dequeue_exec,
};
