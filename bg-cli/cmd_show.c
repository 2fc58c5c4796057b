/* cmd_show.c: `bg-cli show JOB|ATTEMPT`: a job's fields, its state and its attempts newest
 * first, or one attempt's fields and its job (docs/cli.md#show). Every value from Redis is
 * escaped for the terminal, made valid UTF-8 for JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"
#include "table.h"
#include "text.h"

/* How much of an attempt's err and msg the table shows; `show ATTEMPT` shows them whole. */
#define W_ERR 24
#define W_MSG 48

/* The fields that hold times (ms since the epoch), shown in UTC too. */
static int is_time(const char *name) {
    return !strcmp(name, "qat") || !strcmp(name, "pat") || !strcmp(name, "sta") ||
           !strcmp(name, "fin");
}

/* The fields that hold figures, JSON numbers in --json when they read as one. */
static int is_figure(const char *name) {
    return is_time(name) || !strcmp(name, "att") || !strcmp(name, "rty") || !strcmp(name, "itr") ||
           !strcmp(name, "wrk") || !strcmp(name, "time");
}

/* v as a whole number of ms (0 or more); -1 when it is not one. */
static long long ms_of(const bg_bytes *v) {
    long long n;
    if (!v || strlen(v->s) != v->len || bgc_parse_int(v->s, 0, 253402300799999LL, &n) != 0)
        return -1;
    return n;
}

/* Prints "name  value" lines, names padded to width; a time as UTC ISO 8601 and its ms. */
static int print_fields(const bg_field *f, size_t n, int width) {
    for (size_t i = 0; i < n; i++) {
        char *name = text_escape(f[i].name.s, f[i].name.len, 0);
        char *value = text_escape(f[i].value.s, f[i].value.len, 0);
        long long ms = is_time(f[i].name.s) ? ms_of(&f[i].value) : -1;
        if (!name || !value) {
            free(name);
            free(value);
            return -1;
        }
        char iso[40];
        if (ms >= 0) {
            text_iso_ms(ms, iso, sizeof iso);
            printf("%-*s %s (%lld ms)\n", width, name, iso, ms);
        } else {
            printf("%-*s %s\n", width, name, value);
        }
        free(name);
        free(value);
    }
    return 0;
}

/* The attempts as a table, newest first: attempt, outcome, worker, started, duration, err, msg. */
enum { C_ATT, C_OUTCOME, C_WRK, C_STA, C_TIME, C_ERR, C_MSG, NCOLS };

static char *cell(const bg_show_attempt *a, const char *field, size_t width) {
    const bg_bytes *v = bg_show_field(a->fields, a->nfields, field);
    return text_escape(v ? v->s : NULL, v ? v->len : 0, width);
}

static int print_attempts(const bg_show *s) {
    static const char *const headers[NCOLS] = {"attempt",  "outcome", "worker", "started",
                                               "duration", "err",     "msg"};
    char **cells = calloc(s->nattempts * NCOLS + 1, sizeof *cells);
    int rc = cells ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < s->nattempts; i++) {
        const bg_show_attempt *a = &s->attempts[i];
        char **row = cells + i * NCOLS, when[40] = "-", took[48] = "-";
        long long sta = ms_of(bg_show_field(a->fields, a->nfields, "sta"));
        const bg_bytes *tm = bg_show_field(a->fields, a->nfields, "time");
        if (sta >= 0)
            text_iso_ms(sta, when, sizeof when);
        char *t = tm ? text_escape(tm->s, tm->len, 24) : NULL;
        if (t)
            snprintf(took, sizeof took, "%s ms", t);
        free(t);
        row[C_ATT] = text_escape(a->id.s, a->id.len, 0);
        row[C_OUTCOME] = strdup(a->outcome);
        row[C_WRK] = cell(a, "wrk", 24);
        row[C_STA] = strdup(when);
        row[C_TIME] = strdup(took);
        row[C_ERR] = cell(a, "err", W_ERR);
        row[C_MSG] = cell(a, "msg", W_MSG);
        for (int k = 0; k < NCOLS; k++)
            if (!row[k])
                rc = -1;
    }
    if (rc == 0)
        table_rows(stdout, headers, NCOLS, (const char *const *)cells, s->nattempts,
                   cli_stdout_styled());
    for (size_t i = 0; cells && i < s->nattempts * NCOLS; i++)
        free(cells[i]);
    free(cells);
    return rc;
}

static int print_text(const bg_show *s) {
    char *job = text_escape(s->job_id.s, s->job_id.len, 0);
    int rc = job ? 0 : -1;
    if (rc == 0 && s->is_attempt) {
        const bg_show_attempt *a = &s->attempts[0];
        printf("attempt  %s\njob      %s\noutcome  %s\n\n", a->id.s, job, a->outcome);
        rc = print_fields(a->fields, a->nfields, 8);
    } else if (rc == 0) {
        char *q = text_escape(s->queue.s, s->queue.len, 0);
        printf("job    %s\nstate  %s\nqueue  %s\n\n", job, s->state, q ? q : "-");
        free(q);
        rc = print_fields(s->fields, s->nfields, 6);
        printf("\n");
        if (rc == 0 && s->nattempts == 0)
            printf("no attempts recorded\n");
        else if (rc == 0)
            rc = print_attempts(s);
        if (rc == 0 && (s->more || s->trimmed))
            printf("(older attempts %s)\n", s->more ? "not shown" : "trimmed");
    }
    free(job);
    return rc;
}

/* A field's value for --json: a figure as a number when it reads as one, else a string. */
static json_t *value_json(const bg_field *f) {
    if (is_figure(f->name.s) && strlen(f->value.s) == f->value.len && f->value.len > 0) {
        char *end;
        double d = strtod(f->value.s, &end);
        long long n;
        if (bgc_parse_int(f->value.s, -9007199254740991LL, 9007199254740991LL, &n) == 0)
            return json_integer((json_int_t)n);
        if (*end == '\0' && strcmp(f->name.s, "time") == 0 && d == d && d >= 0 && d < 1e15)
            return json_real(d);
    }
    return text_json(f->value.s, f->value.len);
}

/* {"fields": {...}, "times": {...}} members of o for the fields of a hash. */
static int fields_json(json_t *o, const bg_field *f, size_t n) {
    json_t *fields = json_object(), *times = json_object();
    int rc = fields && times ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        /* JSON keys are text: a name that is not valid UTF-8 shows with U+FFFD. */
        json_t *k = text_json(f[i].name.s, f[i].name.len);
        long long ms = is_time(f[i].name.s) ? ms_of(&f[i].value) : -1;
        rc = k ? json_object_set_new(fields, json_string_value(k), value_json(&f[i])) : -1;
        if (rc == 0 && ms >= 0) {
            char iso[40];
            text_iso_ms(ms, iso, sizeof iso);
            rc = json_object_set_new(times, json_string_value(k), json_string(iso));
        }
        json_decref(k);
    }
    if (rc == 0)
        rc = json_object_set(o, "fields", fields) | json_object_set(o, "times", times);
    json_decref(fields);
    json_decref(times);
    return rc;
}

static json_t *attempt_json(const bg_show_attempt *a) {
    json_t *o = json_object();
    if (!o || json_object_set_new(o, "attempt", text_json(a->id.s, a->id.len)) ||
        json_object_set_new(o, "outcome", json_string(a->outcome)) ||
        fields_json(o, a->fields, a->nfields)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int print_json(const bg_show *s) {
    json_t *root = s->is_attempt ? attempt_json(&s->attempts[0]) : json_object();
    int rc = root ? 0 : -1;
    if (rc == 0)
        rc = json_object_set_new(root, "job", text_json(s->job_id.s, s->job_id.len));
    if (rc == 0 && !s->is_attempt) {
        json_t *list = json_array();
        rc = list ? 0 : -1;
        for (size_t i = 0; rc == 0 && i < s->nattempts; i++) {
            json_t *a = attempt_json(&s->attempts[i]);
            rc = a ? json_array_append_new(list, a) : -1;
        }
        rc |= json_object_set_new(root, "state", json_string(s->state)) |
              json_object_set_new(root, "queue", text_json(s->queue.s, s->queue.len)) |
              fields_json(root, s->fields, s->nfields) |
              json_object_set_new(root, "attempts", list) |
              json_object_set_new(root, "more", json_boolean(s->more)) |
              json_object_set_new(root, "trimmed", json_boolean(s->trimmed));
    }
    if (rc == 0 &&
        (rc = json_dumpf(root, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15))) == 0)
        putchar('\n');
    json_decref(root);
    return rc;
}

static int show_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, c, status;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            return cli_help(self);
        default:
            return cli_bad_option(self, c, argv);
        }
    }
    if (optind >= argc)
        return cli_usage_error(self, "which job or attempt? give its UUID");
    if (argc - optind > 1)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind + 1]);
    if ((status = cli_client(ctx, self)) != 0)
        return status;
    bg_show *s = NULL;
    int rc = bg_show_read(ctx->client, argv[optind], &s);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    status = (json ? print_json(s) : print_text(s)) == 0 ? CLI_EXIT_OK
                                                         : cli_error(self, "out of memory");
    bg_show_free(s);
    return status;
}

const cli_cmd cli_cmd_show = {
    "show",
    "JOB|ATTEMPT [--json]",
    "Shows a job: its state (waiting, scheduled, running, completed, retrying, dead), its\n"
    "fields (times in UTC and in ms) and its attempts newest first (at most 100), each with\n"
    "its outcome, worker, start, duration, err and msg. Given an attempt's UUID, shows that\n"
    "attempt's fields and its job. An unknown UUID exits 1, one that is no UUID 2.\n\n"
    "options:\n"
    "      --json    one JSON object instead, figures as numbers\n"
    "  -h, --help    this help\n",
    show_exec,
};
