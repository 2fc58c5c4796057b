/* listing.c: the options and the output of `bg-cli failed` and `bg-cli dead` (listing.h):
 * every value from Redis escaped and cut for the table, made valid UTF-8 for JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bg_common.h"
#include "listing.h"
#include "table.h"
#include "text.h"

/* How many characters of a value the table shows: a UUID whole, the rest cut with "…". */
#define W_JOB 36
#define W_CLASS 32
#define W_ERR 24
#define W_MSG 48

int listing_limit(const cli_cmd *self, const char *arg, long long *limit) {
    if (bgc_parse_int(arg, 1, LISTING_LIMIT_MAX, limit) != 0)
        return cli_usage_error(self, "invalid --limit '%s': a whole number from 1 to %d", arg,
                               LISTING_LIMIT_MAX);
    return 0;
}

/* The columns of docs/cli.md, in its order; the queue is in --json. */
enum { C_JOB, C_CLASS, C_ERR, C_MSG, C_WHEN, NCOLS };

static int print_table(const bg_failures *f, const char *empty_line) {
    static const char *const headers[NCOLS] = {"job", "class", "err", "msg", "when"};
    size_t n = bg_failures_count(f);
    if (n == 0) {
        printf("%s\n", empty_line);
        return 0;
    }
    char **cells = calloc(n * NCOLS, sizeof *cells);
    int rc = cells ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const bg_failure *e = bg_failures_get(f, i);
        char when[40], **row = cells + i * NCOLS;
        text_iso_ms(e->at_ms, when, sizeof when);
        row[C_JOB] = text_escape(e->job.s, e->job.len, W_JOB);
        row[C_CLASS] = text_escape(e->cls.s, e->cls.len, W_CLASS);
        row[C_ERR] = text_escape(e->err.s, e->err.len, W_ERR);
        row[C_MSG] = text_escape(e->msg.s, e->msg.len, W_MSG);
        row[C_WHEN] = strdup(when);
        for (int k = 0; k < NCOLS; k++)
            if (!row[k])
                rc = -1;
    }
    if (rc == 0)
        table_rows(stdout, headers, NCOLS, (const char *const *)cells, n, cli_stdout_styled());
    for (size_t i = 0; cells && i < n * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

/* One entry as a JSON object; every value from Redis a string or null. */
static json_t *entry_json(const bg_failure *e, int dead) {
    char when[40];
    text_iso_ms(e->at_ms, when, sizeof when);
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = 0;
    if (!dead)
        rc |= json_object_set_new(o, "attempt", text_json(e->attempt.s, e->attempt.len));
    rc |= json_object_set_new(o, "job", text_json(e->job.s, e->job.len));
    rc |= json_object_set_new(o, "queue", json_string(e->queue));
    rc |= json_object_set_new(o, "class", text_json(e->cls.s, e->cls.len));
    rc |= json_object_set_new(o, "err", text_json(e->err.s, e->err.len));
    rc |= json_object_set_new(o, "msg", text_json(e->msg.s, e->msg.len));
    if (dead)
        rc |= json_object_set_new(o, "attempt", text_json(e->attempt.s, e->attempt.len));
    rc |= json_object_set_new(o, "when", json_string(when));
    rc |= json_object_set_new(o, "when_ms", json_integer((json_int_t)e->at_ms));
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* {"<key>": [...]}, or NULL when out of memory. */
static json_t *list_json(const bg_failures *f, const char *key) {
    json_t *list = json_array();
    int dead = strcmp(key, "dead") == 0;
    for (size_t i = 0; list && i < bg_failures_count(f); i++) {
        json_t *o = entry_json(bg_failures_get(f, i), dead);
        if (!o || json_array_append_new(list, o) != 0) {
            json_decref(list);
            list = NULL;
        }
    }
    return list ? json_pack("{s:o}", key, list) : NULL;
}

int listing_print(const cli_cmd *self, const bg_failures *f, const char *key,
                  const char *empty_line, int json) {
    if (json) {
        int status = cli_print_json(self, list_json(f, key));
        if (status != 0)
            return status;
    } else if (print_table(f, empty_line) != 0) {
        return cli_error(self, "out of memory");
    }
    const char *warning = bg_failures_warning(f);
    if (warning) {
        fflush(stdout);
        return cli_error(self, "cannot read %s", warning);
    }
    return CLI_EXIT_OK;
}
