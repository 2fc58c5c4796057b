/* cmd_ping.c: `bg-cli ping`: a health check for containers and monitors: exit 0 when Redis
 * answers and the namespace can be read, else 1 with the reason. */
#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "cli.h"
#include "table.h"

static int print_json(cli_ctx *ctx, double ms) {
    json_t *o =
        json_pack("{s:b, s:f, s:s, s:s}", "ok", 1, "time_ms", ms, "url",
                  bg_client_url_masked(ctx->client), "namespace", bg_client_namespace(ctx->client));
    int rc = o ? json_dumpf(o, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6)) : -1;
    if (rc == 0)
        putchar('\n');
    json_decref(o);
    return rc;
}

static int ping_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, c;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(self);
        if (c != 'j')
            return cli_bad_option(self, c, argv);
        json = 1;
    }
    if (optind < argc)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    int status = cli_client(ctx, self);
    if (status != 0)
        return status;
    double ms = 0;
    int rc = bg_ping(ctx->client, &ms);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    if (json) {
        if (print_json(ctx, ms) != 0)
            return cli_error(self, "out of memory");
    } else {
        char t[32];
        snprintf(t, sizeof t, "%.3f", ms);
        const table_col cols[] = {{"time", t, TABLE_RIGHT},
                                  {"url", bg_client_url_masked(ctx->client), TABLE_RIGHT},
                                  {"namespace", bg_client_namespace(ctx->client), TABLE_RIGHT}};
        table_print(stdout, cols, 3, cli_stdout_styled());
    }
    return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_ping = {
    "ping",
    "[--json]",
    "Checks that Redis answers and that the namespace can be read (PING, and TYPE of\n"
    "NS:queues, which must be a set or missing), over a connection made as every bg program\n"
    "makes it (AUTH, SELECT, client name, scripts). Prints the time it took (ms), the URL\n"
    "(password masked) and the namespace, and exits 0; else exits 1 with the reason.\n\n"
    "options:\n"
    "      --json  one JSON object {\"ok\": true, \"time_ms\": ..., ...} instead\n"
    "  -h, --help  this help\n",
    ping_exec,
};
