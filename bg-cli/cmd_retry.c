/* cmd_retry.c: `bg-cli retry JOB` and `bg-cli retry --dead [-q QUEUE]`: dead jobs, or a job
 * waiting for its retry, back to ready now. */
#include <getopt.h>
#include <stdio.h>

#include "bg_common.h"
#include "cli.h"

static int retry_dead(cli_ctx *ctx, const cli_cmd *self, char **queues, size_t nqueues, int json) {
    size_t moved = 0;
    int rc = bg_retry_dead(ctx->client, (const char *const *)queues, nqueues, &moved);
    if (rc != BG_OK) {
        /* Some may have moved before the error: say so, they are no longer dead. */
        if (moved)
            fprintf(stderr, "bg-cli: retry: %zu dead job(s) went back to ready\n", moved);
        return cli_fail(ctx, self, rc);
    }
    if (json)
        return cli_print_json(self, json_pack("{s:I}", "moved", (json_int_t)moved));
    printf("%zu\n", moved);
    return CLI_EXIT_OK;
}

static int retry_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {{"dead", no_argument, NULL, 'd'},
                                             {"queue", required_argument, NULL, 'q'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char **queues = NULL;
    size_t nqueues = 0;
    int dead = 0, json = 0, c, status;
    while ((c = getopt_long(argc, argv, ":q:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dead = 1;
            break;
        case 'j':
            json = 1;
            break;
        case 'q':
            /* Every -q adds its queues, as for the other commands: -q a -q b is -q a,b. */
            if (cli_queue_option(self, optarg, &queues, &nqueues) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'h':
            bgc_free_list(queues, nqueues);
            return cli_help(self);
        default:
            bgc_free_list(queues, nqueues);
            return cli_bad_option(self, c, argv);
        }
    }
    if (dead && optind < argc)
        status = cli_usage_error(self, "--dead takes no JOB, got '%s'", argv[optind]);
    else if (!dead && nqueues)
        status = cli_usage_error(self, "-q goes with --dead; a job's queue is in its hash");
    else if (!dead && optind >= argc)
        status = cli_usage_error(self, "which job? give its UUID, or --dead");
    else if (!dead && argc - optind > 1)
        status = cli_usage_error(self, "unexpected argument '%s'", argv[optind + 1]);
    else if ((status = cli_client(ctx, self)) == 0) {
        if (dead) {
            status = retry_dead(ctx, self, queues, nqueues, json);
        } else {
            int rc = bg_retry(ctx->client, argv[optind]);
            status = rc != BG_OK ? cli_fail(ctx, self, rc)
                     : json      ? cli_print_json(
                                       self, json_pack("{s:s, s:b}", "job", argv[optind], "retried", 1))
                            : CLI_EXIT_OK;
        }
    }
    bgc_free_list(queues, nqueues);
    return status;
}

const cli_cmd cli_cmd_retry = {
    "retry",
    "JOB | --dead [-q QUEUE[,QUEUE...]] [--json]",
    "Puts JOB back at the tail of its ready list now, with its attempt count (att) reset: a\n"
    "dead job (its interruption count, itr, reset too), or one waiting in scheduled for its\n"
    "retry (itr kept, so a job that kills its worker still ends dead).\n"
    "Prints nothing on success. Exits 1 when there is no such job, or when it is in any other\n"
    "state (ready, running, finished, or delayed and never run).\n\n"
    "With --dead, does so for every dead job of the queues (default: every known queue),\n"
    "oldest first, and prints how many went back.\n\n"
    "options:\n"
    "      --dead                    every dead job instead of one JOB\n"
    "  -q, --queue QUEUE[,QUEUE...]  with --dead: these queues only\n"
    "      --json                    print {\"job\": JOB, \"retried\": true}, or with --dead\n"
    "                                {\"moved\": N}\n"
    "  -h, --help                    this help\n",
    retry_exec,
};
