/* cmd_control.c: `bg-cli pause -q QUEUE`, `resume -q QUEUE` and `cancel JOB`: an operator's
 * controls over queues and jobs (libbg's bg/control.h). */
#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"

/* Parses the options of a command that takes -q and --json, and no argument: each queue given
 * goes into *queues. Returns -1 to go on, else the exit status (after -h or a usage error). */
static int parse(const cli_cmd *self, int argc, char **argv, int want_queue, char ***queues,
                 size_t *nqueues, int *json) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, want_queue ? ":q:h" : ":h", longopts, NULL)) != -1) {
        if (c == 'h')
            return cli_help(self);
        if (c == 'q' && want_queue) {
            if (cli_queue_option(self, optarg, queues, nqueues) != 0)
                return CLI_EXIT_USAGE;
        } else if (c == 'j') {
            *json = 1;
        } else {
            return cli_bad_option(self, c, argv);
        }
    }
    if (want_queue && *nqueues == 0)
        return cli_usage_error(self, "which queue? give it with -q");
    return -1;
}

/* pause and resume: each queue in turn; one line (or JSON object) a queue. */
static int pause_or_resume(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv, int pause) {
    char **queues = NULL;
    size_t n = 0;
    int json = 0;
    int status = parse(self, argc, argv, 1, &queues, &n, &json);
    if (status < 0 && optind < argc)
        status = cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (status < 0)
        status = cli_client(ctx, self);
    for (size_t i = 0; status == 0 && i < n; i++) {
        int changed = 0;
        int rc = pause ? bg_queue_pause(ctx->client, queues[i], &changed)
                       : bg_queue_resume(ctx->client, queues[i], &changed);
        if (rc != BG_OK) {
            status = cli_fail(ctx, self, rc);
        } else if (json) {
            status = cli_print_json(self, json_pack("{s:s, s:b, s:b}", "queue", queues[i], "paused",
                                                    pause, "changed", changed));
        } else if (changed) {
            printf("%s %s\n", pause ? "paused" : "resumed", queues[i]);
        } else {
            printf("%s was %s\n", queues[i], pause ? "paused already" : "not paused");
        }
    }
    bgc_free_list(queues, n);
    return status;
}

static int pause_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    return pause_or_resume(ctx, self, argc, argv, 1);
}

static int resume_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    return pause_or_resume(ctx, self, argc, argv, 0);
}

static int cancel_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    int json = 0;
    int status = parse(self, argc, argv, 0, NULL, NULL, &json);
    if (status >= 0)
        return status;
    if (optind >= argc)
        return cli_usage_error(self, "which job? give its UUID");
    if (argc - optind > 1)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind + 1]);
    const char *job = argv[optind];
    if (!bg_job_id_valid(job))
        return cli_usage_error(self, "invalid job '%s': expected a UUID", job);
    if ((status = cli_client(ctx, self)) != 0)
        return status;
    bg_cancel_result what = BG_CANCEL_REMOVED;
    bg_uuid attempt;
    int rc = bg_job_cancel(ctx->client, job, &what, attempt);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    int stopping = what == BG_CANCEL_STOPPING;
    if (json) {
        json_t *o =
            json_pack("{s:s, s:s}", "job", job, "result", stopping ? "stopping" : "removed");
        if (o && stopping)
            json_object_set_new(o, "attempt", json_string(attempt));
        if (cli_print_json(self, o) != 0)
            return CLI_EXIT_ERR;
    } else if (stopping) {
        printf("stopping %s (attempt %s)\n", job, attempt);
    } else {
        printf("removed %s\n", job);
    }
    return CLI_EXIT_OK;
}

const cli_cmd cli_cmd_pause = {
    "pause",
    "-q QUEUE[,QUEUE...] [--json]",
    "Pauses each QUEUE: every worker's claim skips it until it is resumed, so its jobs wait in\n"
    "ready (running jobs finish). `status` shows it as paused. A queue need not exist yet.\n"
    "Prints \"paused QUEUE\" (or that it was paused already) for each.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  the queues (-q may be given more than once)\n"
    "      --json                    a JSON object a queue: queue, paused, changed\n"
    "  -h, --help                    this help\n",
    pause_exec,
};

const cli_cmd cli_cmd_resume = {
    "resume",
    "-q QUEUE[,QUEUE...] [--json]",
    "Resumes each paused QUEUE: workers waiting for work take its jobs at once. Prints\n"
    "\"resumed QUEUE\" (or that it was not paused) for each.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  the queues (-q may be given more than once)\n"
    "      --json                    a JSON object a queue: queue, paused, changed\n"
    "  -h, --help                    this help\n",
    resume_exec,
};

const cli_cmd cli_cmd_cancel = {
    "cancel",
    "JOB [--json]",
    "Cancels JOB. A job waiting in ready or scheduled (delayed, or waiting for its retry) is\n"
    "removed with its hash: prints \"removed JOB\". A running job is stopped by its worker (an\n"
    "in-process handler is asked to stop, an exec child gets TERM, KILL 5 s later) and its\n"
    "attempt ends with err Canceled, the job dead (bg-cli retry runs it again): prints\n"
    "\"stopping JOB (attempt ATTEMPT)\". Exits 1 when there is no such job, or when it is dead\n"
    "or finished.\n\n"
    "options:\n"
    "      --json  one JSON object {\"job\", \"result\": \"removed\"|\"stopping\", \"attempt\"}\n"
    "  -h, --help  this help\n",
    cancel_exec,
};
