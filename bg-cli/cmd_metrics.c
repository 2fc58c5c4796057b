/* cmd_metrics.c: `bg-cli metrics`: the figures of status and workers in the Prometheus text
 * exposition format, the same text bg-watcher --metrics serves (bg_metrics_text()). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "bg_common.h"
#include "cli.h"

static int metrics_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    char **queues = NULL, *text = NULL;
    size_t nqueues = 0, len = 0;
    int c, json = 0, status = 0;
    while (status == 0 && (c = getopt_long(argc, argv, ":q:h", longopts, NULL)) != -1) {
        if (c == 'q')
            status = cli_queue_option(self, optarg, &queues, &nqueues);
        else if (c == 'j')
            json = 1;
        else if (c == 'h') {
            bgc_free_list(queues, nqueues);
            return cli_help(self);
        } else
            status = cli_bad_option(self, c, argv);
    }
    if (status == 0 && optind < argc)
        status = cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (status == 0 && json)
        status = cli_usage_error(self, "the metrics are text; use status --json or "
                                       "workers --json for JSON");
    if (status == 0 && (status = cli_client(ctx, self)) == 0) {
        int rc = bg_metrics_text(ctx->client, (const char *const *)queues, nqueues, &text, &len);
        if (rc != BG_OK)
            status = cli_fail(ctx, self, rc);
        else
            fwrite(text, 1, len, stdout);
    }
    free(text);
    bgc_free_list(queues, nqueues);
    return status;
}

const cli_cmd cli_cmd_metrics = {
    "metrics",
    "[-q QUEUE[,QUEUE...]]...",
    "Prints the figures of status and workers in the Prometheus text exposition format\n"
    "0.0.4: counters bg_jobs_completed_total, bg_jobs_failed_total and bg_jobs_dead_total\n"
    "and gauges bg_queue_* labelled by queue, bg_workers, and bg_worker_* labelled by host\n"
    "and pid. bg-watcher --metrics serves the same text over HTTP.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  these queues (default: every queue the namespace\n"
    "                                knows); may be repeated\n"
    "  -h, --help                    this help\n",
    metrics_exec,
};
