/* cmd_purge.c: `bg-cli purge -q QUEUE`: empties a queue's ready list and scheduled set and
 * deletes those jobs, after asking on a terminal. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"
#include "table.h"

typedef struct {
    char **queues;
    size_t nqueues;
    int yes, json;
} purge_opts;

static int parse(const cli_cmd *self, int argc, char **argv, purge_opts *o, int *done) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"yes", no_argument, NULL, 'y'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":q:yh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            if (cli_queue_option(self, optarg, &o->queues, &o->nqueues) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'y':
            o->yes = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            *done = 1;
            return cli_help(self);
        default:
            return cli_bad_option(self, c, argv);
        }
    }
    if (optind < argc)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (o->nqueues == 0)
        return cli_usage_error(self, "which queue? give it with -q");
    if (o->nqueues > 1)
        return cli_usage_error(self, "one queue at a time, got '%s' and '%s'", o->queues[0],
                               o->queues[1]);
    return 0;
}

/* Asks on the terminal; 1 for y or yes (any case), 0 for anything else, end of input too. */
static int confirm(const char *queue, const bg_queue_counts *n) {
    char line[64];
    fprintf(stderr, "purge %lld ready and %lld scheduled jobs of %s? [y/N] ", (long long)n->ready,
            (long long)n->scheduled, queue);
    fflush(stderr);
    if (!fgets(line, sizeof line, stdin)) {
        fputc('\n', stderr);
        return 0;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return strcasecmp(line, "y") == 0 || strcasecmp(line, "yes") == 0;
}

static int print_removed(const char *queue, const bg_queue_counts *r, int json) {
    if (json) {
        json_t *o = json_pack("{s:s, s:I, s:I}", "queue", queue, "ready", (json_int_t)r->ready,
                              "scheduled", (json_int_t)r->scheduled);
        int rc = o ? json_dumpf(o, stdout, JSON_PRESERVE_ORDER) : -1;
        json_decref(o);
        if (rc == 0)
            putchar('\n');
        return rc;
    }
    char ready[24], sched[24];
    snprintf(ready, sizeof ready, "%lld", (long long)r->ready);
    snprintf(sched, sizeof sched, "%lld", (long long)r->scheduled);
    const table_col cols[] = {{"queue", queue, TABLE_RIGHT},
                              {"ready", ready, TABLE_RIGHT},
                              {"scheduled", sched, TABLE_RIGHT}};
    table_print(stdout, cols, 3, cli_stdout_styled());
    return 0;
}

static int run(cli_ctx *ctx, const cli_cmd *self, const purge_opts *o) {
    const char *q = o->queues[0];
    bg_queue_counts n, removed = {0, 0};
    int rc = bg_purge_count(ctx->client, q, &n);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    /* It asks only on a terminal: a script or a cron job has nobody to answer. */
    if (!o->yes && isatty(STDIN_FILENO) && (n.ready || n.scheduled) && !confirm(q, &n))
        return cli_error(self, "not confirmed: nothing purged");
    /* Only the jobs counted (and asked about): jobs enqueued meanwhile stay. */
    if (n.ready || n.scheduled)
        rc = bg_purge(ctx->client, q, &n, &removed);
    if (rc != BG_OK) {
        if (removed.ready || removed.scheduled)
            fprintf(stderr,
                    "bg-cli: purge: %lld ready and %lld scheduled jobs were removed before the "
                    "error\n",
                    (long long)removed.ready, (long long)removed.scheduled);
        return cli_fail(ctx, self, rc);
    }
    return print_removed(q, &removed, o->json) == 0 ? CLI_EXIT_OK
                                                    : cli_error(self, "out of memory");
}

static int purge_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    purge_opts o = {NULL, 0, 0, 0};
    int done = 0, status = parse(self, argc, argv, &o, &done);
    if (status == 0 && !done && (status = cli_client(ctx, self)) == 0)
        status = run(ctx, self, &o);
    bgc_free_list(o.queues, o.nqueues);
    return status;
}

const cli_cmd cli_cmd_purge = {
    "purge",
    "-q QUEUE [--yes] [--json]",
    "Empties QUEUE's ready list and scheduled set (delayed jobs and jobs waiting for a retry)\n"
    "and deletes those jobs' hashes, in atomic batches; running jobs, attempts and counters\n"
    "stay. Without --yes it asks first on the terminal, and refuses (exit 2) when standard\n"
    "input is not one. Prints the queue and how many ready and scheduled jobs went.\n\n"
    "options:\n"
    "  -q, --queue QUEUE  the queue to empty\n"
    "  -y, --yes          do not ask\n"
    "      --json         one JSON object {\"queue\": ..., \"ready\": N, \"scheduled\": N}\n"
    "  -h, --help         this help\n",
    purge_exec,
};
