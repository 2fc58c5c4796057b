/* cmd_failed.c: `bg-cli failed`: the newest failed attempts of some queues, with their job's
 * class and the error they ended with. */
#include <getopt.h>
#include <stdio.h>

#include "bg_common.h"
#include "cli.h"
#include "listing.h"

static int failed_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char **queues = NULL;
    size_t nqueues = 0;
    long long limit = LISTING_LIMIT;
    int json = 0, c, status = 0;
    bg_failures *f = NULL;
    while (status == 0 && (c = getopt_long(argc, argv, ":q:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            status = cli_queue_option(self, optarg, &queues, &nqueues);
            break;
        case 'l':
            status = listing_limit(self, optarg, &limit);
            break;
        case 'j':
            json = 1;
            break;
        case 'h':
            bgc_free_list(queues, nqueues);
            return cli_help(self);
        default:
            status = cli_bad_option(self, c, argv);
        }
    }
    if (status == 0 && optind < argc)
        status = cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (status == 0 && (status = cli_client(ctx, self)) == 0) {
        int rc =
            bg_failed_list(ctx->client, (const char *const *)queues, nqueues, (size_t)limit, &f);
        status = rc == BG_OK ? listing_print(self, f, "failed", "no failed attempts", json)
                             : cli_fail(ctx, self, rc);
    }
    bg_failures_free(f);
    bgc_free_list(queues, nqueues);
    return status;
}

const cli_cmd cli_cmd_failed = {
    "failed",
    "[-q QUEUE[,QUEUE...]]... [--limit N] [--json]",
    "Lists the newest failed attempts, newest first across the queues, one a row: the job,\n"
    "its queue and class, the attempt's err and msg (cut, control characters escaped), and\n"
    "when it failed (UTC). Prints \"no failed attempts\" when there is none.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  these queues (default: every queue the namespace\n"
    "                                knows); may be repeated\n"
    "      --limit N                 at most N rows, 1 to 10000 (default 20)\n"
    "      --json                    one JSON object {\"failed\": [...]} instead, values whole\n"
    "  -h, --help                    this help\n",
    failed_exec,
};
