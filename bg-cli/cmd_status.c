/* cmd_status.c: `bg-cli status`: each queue's figures as the table of SPEC §8, or as JSON,
 * read in one snapshot by bg_status_read(). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"
#include "table.h"

typedef struct {
    char **queues;
    size_t nqueues;
    int json;
    int verbose;
} status_opts;

static int parse(const cli_cmd *self, int argc, char **argv, status_opts *o, int *done) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"verbose", no_argument, NULL, 'v'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, ":q:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            if (cli_queue_option(self, optarg, &o->queues, &o->nqueues) != 0)
                return CLI_EXIT_USAGE;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'v':
            o->verbose = 1;
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
    return 0;
}

/* The queue names of the snapshot, comma-joined, for the -v table. */
static char *joined_names(const bg_status *st) {
    size_t len = 1;
    for (size_t i = 0; i < bg_status_count(st); i++)
        len += strlen(bg_status_queue(st, i)->name) + 1;
    char *s = calloc(len, 1);
    for (size_t i = 0; s && i < bg_status_count(st); i++) {
        if (i)
            strcat(s, ",");
        strcat(s, bg_status_queue(st, i)->name);
    }
    return s;
}

static int print_text(cli_ctx *ctx, const bg_status *st, const status_opts *o) {
    size_t n = bg_status_count(st);
    int bold = cli_stdout_styled();
    const bg_queue_status **qs = calloc(n ? n : 1, sizeof *qs);
    if (!qs)
        return -1;
    for (size_t i = 0; i < n; i++)
        qs[i] = bg_status_queue(st, i);
    /* A namespace nothing has used yet says so, rather than printing nothing (only without -q:
     * a queue given by name is always shown). */
    if (n == 0)
        printf("no queues yet in namespace %s\n", bg_client_namespace(ctx->client));
    table_queues_v(stdout, qs, n, bold, o->verbose);
    free(qs);
    if (o->verbose) {
        char *names = joined_names(st);
        if (!names)
            return -1;
        putchar('\n');
        table_info(stdout, bg_status_time_ms(st), bg_client_url_masked(ctx->client),
                   bg_client_namespace(ctx->client), names, bold);
        free(names);
    }
    return 0;
}

/* {"queues": [{"name": ..., "workers": ..., ...}]}, figures as JSON numbers; -v adds the
 * top-level keys time_ms, url and namespace. */
static int print_json(cli_ctx *ctx, const bg_status *st, const status_opts *o) {
    json_t *list = json_array(), *root = json_pack("{s:o}", "queues", list);
    int rc = root ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < bg_status_count(st); i++) {
        const bg_queue_status *q = bg_status_queue(st, i);
        json_t *obj = json_pack(
            "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "name", q->name, "workers",
            (json_int_t)q->workers, "fibers", (json_int_t)q->fibers, "jps", (json_int_t)q->jps,
            "ready", (json_int_t)q->ready, "scheduled", (json_int_t)q->scheduled, "processing",
            (json_int_t)q->processing, "completed", (json_int_t)q->completed, "failed",
            (json_int_t)q->failed, "dead", (json_int_t)q->dead);
        /* latency_ms: the age of the oldest ready job, null when unknown. */
        if (obj)
            rc = json_object_set_new(obj, "latency_ms",
                                     q->latency_ms < 0 ? json_null()
                                                       : json_integer((json_int_t)q->latency_ms));
        if (obj && rc == 0)
            rc = json_object_set_new(obj, "paused", json_boolean(q->paused));
        rc = obj && rc == 0 ? json_array_append_new(list, obj) : -1;
    }
    if (rc == 0 && o->verbose) {
        rc |= json_object_set_new(root, "time_ms", json_real(bg_status_time_ms(st)));
        rc |= json_object_set_new(root, "url", json_string(bg_client_url_masked(ctx->client)));
        rc |= json_object_set_new(root, "namespace", json_string(bg_client_namespace(ctx->client)));
    }
    /* Six significant digits keep time_ms readable (0.642492, not 0.64249200001358986). */
    if (rc == 0)
        rc = json_dumpf(root, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (rc == 0)
        putchar('\n');
    json_decref(root);
    return rc;
}

static int status_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    status_opts o = {NULL, 0, 0, 0};
    bg_status *st = NULL;
    int done = 0, status = parse(self, argc, argv, &o, &done);
    if (status != 0 || done)
        goto out;
    if ((status = cli_client(ctx, self)) != 0)
        goto out;
    int rc = bg_status_read(ctx->client, (const char *const *)o.queues, o.nqueues, &st);
    if (rc != BG_OK) {
        status = cli_fail(ctx, self, rc);
        goto out;
    }
    if ((o.json ? print_json(ctx, st, &o) : print_text(ctx, st, &o)) != 0)
        status = cli_error(self, "out of memory");
out:
    bg_status_free(st);
    bgc_free_list(o.queues, o.nqueues);
    return status;
}

const cli_cmd cli_cmd_status = {
    "status",
    "[-q QUEUE[,QUEUE...]]... [--json] [-v]",
    "Prints each queue's name, a header and one row of figures, a blank line between queues:\n"
    "workers and fibers live now, jps (jobs completed in the last second), the sizes of\n"
    "ready, scheduled and processing, and the lifetime counts completed, failed and dead.\n"
    "With no queue in the namespace yet, prints one line saying so.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  these queues, in this order (default: every queue\n"
    "                                the namespace knows, sorted); may be repeated\n"
    "      --json                    one JSON object {\"queues\": [...]} instead\n"
    "  -v, --verbose                 add a latency column (ms since the oldest ready job\n"
    "                                was queued, - when unknown), and the query time,\n"
    "                                URL, namespace and queues\n"
    "  -h, --help                    this help\n",
    status_exec,
};
