/* cmd_metrics.c: `bg-cli metrics`: the figures of status and workers in the Prometheus text
 * exposition format, the same text bg-watcher --metrics serves (bg_metrics_text()). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"

/* Reads the label set of a sample line, {a="x",b="y"}, starting after its '{', into labels;
 * returns the position after the '}', or NULL. The values are escaped as the format says (\\,
 * \" and \n), nothing else. */
static const char *json_labels(const char *p, json_t *labels) {
    while (*p && *p != '}') {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return NULL;
        char *name = strndup(p, (size_t)(eq - p)), *val = malloc(strlen(eq)), *v = val;
        for (p = eq + 2; name && val && *p && *p != '"'; p++)
            *v++ = *p == '\\' && p[1] ? (*++p == 'n' ? '\n' : *p) : *p;
        int ok = name && val && *p == '"';
        if (ok) {
            *v = '\0';
            ok = json_object_set_new(labels, name, json_string(val)) == 0;
        }
        free(name);
        free(val);
        if (!ok)
            return NULL;
        p++; /* past the closing quote */
        if (*p == ',')
            p++;
    }
    return *p == '}' ? p + 1 : NULL;
}

/* One sample line "name{labels} value" of the family fam. */
static int json_sample(const char *line, json_t *fam) {
    json_t *s = json_object(), *labels = json_object();
    const char *p = line + strcspn(line, "{ ");
    int rc = s && labels ? 0 : -1;
    if (rc == 0 && *p == '{')
        rc = (p = json_labels(p + 1, labels)) ? 0 : -1;
    if (rc == 0 && *p == ' ') {
        double v = strtod(p + 1, NULL);
        json_t *num = v == (double)(json_int_t)v ? json_integer((json_int_t)v) : json_real(v);
        rc |= json_object_set_new(s, "labels", labels);
        labels = NULL;
        rc |= json_object_set_new(s, "value", num);
        rc |= json_array_append(json_object_get(fam, "samples"), s);
    } else {
        rc = -1;
    }
    json_decref(labels);
    json_decref(s);
    return rc;
}

/* The text of bg_metrics_text() as {"metrics": [{"name", "type", "help", "samples": [...]}]}:
 * bg writes each family as "# HELP", "# TYPE" and its samples, one a line. */
static int print_json(char *text) {
    json_t *list = json_array(), *root = json_object(), *fam = NULL;
    int rc = list && root ? json_object_set(root, "metrics", list) : -1;
    for (char *line = strtok(text, "\n"); rc == 0 && line; line = strtok(NULL, "\n")) {
        if (strncmp(line, "# HELP ", 7) == 0) {
            char *sp = strchr(line + 7, ' ');
            fam = json_object();
            rc = fam && sp ? 0 : -1;
            if (rc == 0) {
                *sp = '\0';
                rc |= json_object_set_new(fam, "name", json_string(line + 7));
                rc |= json_object_set_new(fam, "type", json_string("untyped"));
                rc |= json_object_set_new(fam, "help", json_string(sp + 1));
                rc |= json_object_set_new(fam, "samples", json_array());
                rc |= json_array_append_new(list, fam);
            }
        } else if (strncmp(line, "# TYPE ", 7) == 0 && fam) {
            const char *sp = strchr(line + 7, ' ');
            rc = sp ? json_object_set_new(fam, "type", json_string(sp + 1)) : -1;
        } else if (fam) {
            rc = json_sample(line, fam);
        }
    }
    if (rc == 0)
        rc = json_dumpf(root, stdout, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (rc == 0)
        putchar('\n');
    json_decref(list);
    json_decref(root);
    return rc;
}

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
    if (status == 0 && (status = cli_client(ctx, self)) == 0) {
        int rc = bg_metrics_text(ctx->client, (const char *const *)queues, nqueues, &text, &len);
        if (rc != BG_OK)
            status = cli_fail(ctx, self, rc);
        else if (!json)
            fwrite(text, 1, len, stdout);
        else if (print_json(text) != 0)
            status = cli_error(self, "out of memory");
    }
    free(text);
    bgc_free_list(queues, nqueues);
    return status;
}

const cli_cmd cli_cmd_metrics = {
    "metrics",
    "[-q QUEUE[,QUEUE...]]... [--json]",
    "Prints the figures of status and workers in the Prometheus text exposition format\n"
    "0.0.4: counters bg_jobs_completed_total, bg_jobs_failed_total and bg_jobs_dead_total\n"
    "and gauges bg_queue_* labelled by queue, bg_workers, and bg_worker_* labelled by host\n"
    "and pid. bg-watcher --metrics serves the same text over HTTP.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  these queues (default: every queue the namespace\n"
    "                                knows); may be repeated\n"
    "      --json                    the same families as one JSON object {\"metrics\": [...]}\n"
    "  -h, --help                    this help\n",
    metrics_exec,
};
