/* cmd_workers.c: `bg-cli workers`: one row per live worker process, from the heartbeat hashes
 * the workers keep fresh (bg_workers_list()), as a table or as JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"
#include "table.h"
#include "text.h"

#define NCOLS 8

/* An age as an operator reads it: 42s, 3m05s, 2h07m, 4d03h; "-" when unknown. */
static void age_text(int64_t ms, char *out, size_t len) {
    long long s = ms / 1000;
    if (ms < 0)
        snprintf(out, len, "-");
    else if (s < 60)
        snprintf(out, len, "%llds", s);
    else if (s < 3600)
        snprintf(out, len, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        snprintf(out, len, "%lldh%02lldm", s / 3600, s % 3600 / 60);
    else
        snprintf(out, len, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

static void number_text(int64_t v, char *out, size_t len) {
    if (v < 0)
        snprintf(out, len, "-");
    else
        snprintf(out, len, "%lld", (long long)v);
}

static int print_table(const bg_workers *l) {
    static const char *const headers[NCOLS] = {"id",     "host", "pid", "queues",
                                               "fibers", "busy", "age", "state"};
    size_t n = bg_workers_count(l);
    if (n == 0) {
        printf("no live workers\n");
        return 0;
    }
    char(*num)[5][32] = calloc(n, sizeof *num);
    char **owned = calloc(n * 3, sizeof *owned);
    const char **cells = calloc(n * NCOLS, sizeof *cells);
    int rc = num && owned && cells ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const bg_worker_info *w = bg_workers_get(l, i);
        const char **row = cells + i * NCOLS;
        snprintf(num[i][0], sizeof num[i][0], "%lld", w->id);
        number_text(w->pid, num[i][1], sizeof num[i][1]);
        number_text(w->fibers, num[i][2], sizeof num[i][2]);
        number_text(w->busy, num[i][3], sizeof num[i][3]);
        age_text(w->age_ms, num[i][4], sizeof num[i][4]);
        /* What came from Redis is escaped: a hash anyone may have written. */
        owned[i * 3] = text_escape(w->host.s, w->host.len, 64);
        owned[i * 3 + 1] = text_escape(w->queues.s, w->queues.len, 80);
        owned[i * 3 + 2] = text_escape(w->state.s, w->state.len, 16);
        if (!owned[i * 3] || !owned[i * 3 + 1] || !owned[i * 3 + 2])
            rc = -1;
        const char *vals[NCOLS] = {num[i][0], owned[i * 3], num[i][1], owned[i * 3 + 1],
                                   num[i][2], num[i][3],    num[i][4], owned[i * 3 + 2]};
        memcpy(row, vals, sizeof vals);
    }
    if (rc == 0)
        table_rows(stdout, headers, NCOLS, cells, n, cli_stdout_styled());
    for (size_t i = 0; owned && i < n * 3; i++)
        free(owned[i]);
    free(owned);
    free(cells);
    free(num);
    return rc;
}

static json_t *json_number(int64_t v) {
    return v < 0 ? json_null() : json_integer((json_int_t)v);
}

static json_t *worker_json(const bg_worker_info *w) {
    json_t *o = json_object();
    int rc = o ? 0 : -1;
    if (rc == 0) {
        rc |= json_object_set_new(o, "id", json_integer((json_int_t)w->id));
        rc |= json_object_set_new(o, "host", text_json(w->host.s, w->host.len));
        rc |= json_object_set_new(o, "pid", json_number(w->pid));
        rc |= json_object_set_new(o, "queues", text_json(w->queues.s, w->queues.len));
        rc |= json_object_set_new(o, "fibers", json_number(w->fibers));
        rc |= json_object_set_new(o, "busy", json_number(w->busy));
        rc |= json_object_set_new(o, "started_ms", json_number(w->started_ms));
        rc |= json_object_set_new(o, "age_ms", json_number(w->age_ms));
        rc |= json_object_set_new(o, "state", text_json(w->state.s, w->state.len));
    }
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"workers": [{"id": ..., "host": ..., ...}]}: numbers as JSON numbers (null when the hash
 * holds none), text as strings. NULL when out of memory. */
static json_t *workers_json(const bg_workers *l) {
    json_t *list = json_array();
    for (size_t i = 0; list && i < bg_workers_count(l); i++) {
        json_t *o = worker_json(bg_workers_get(l, i));
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list ? json_pack("{s:o}", "workers", list) : NULL;
}

static int workers_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int c, json = 0, status = 0;
    bg_workers *l = NULL;
    while (status == 0 && (c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'j')
            json = 1;
        else if (c == 'h')
            return cli_help(self);
        else
            status = cli_bad_option(self, c, argv);
    }
    if (status == 0 && optind < argc)
        status = cli_usage_error(self, "unexpected argument '%s'", argv[optind]);
    if (status == 0 && (status = cli_client(ctx, self)) == 0) {
        int rc = bg_workers_list(ctx->client, &l);
        if (rc != BG_OK)
            status = cli_fail(ctx, self, rc);
        else if (json)
            status = cli_print_json(self, workers_json(l));
        else if (print_table(l) != 0)
            status = cli_error(self, "out of memory");
        if (status == 0 && bg_workers_warning(l)) {
            fflush(stdout);
            status = cli_error(self, "cannot read %s", bg_workers_warning(l));
        }
    }
    bg_workers_free(l);
    return status;
}

const cli_cmd cli_cmd_workers = {
    "workers",
    "[--json]",
    "Lists the live worker processes, one a row: the client ID of the worker's main\n"
    "connection, its host and pid, its queues, its fibers, how many of them run a job now\n"
    "(busy), how long ago it started (age), and its state: running, quiet (after SIGTSTP)\n"
    "or stopping (shutting down). Each worker refreshes its row every second; a worker\n"
    "that died is gone within five seconds. Prints \"no live workers\" when there is none.\n\n"
    "options:\n"
    "      --json    one JSON object {\"workers\": [...]} instead (age_ms and started_ms\n"
    "                in ms)\n"
    "  -h, --help    this help\n",
    workers_exec,
};
