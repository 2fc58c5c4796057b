/* cmd_enqueue.c: `bg-cli enqueue`: one job from the command line, or one job a line of
 * standard input, sent in pipelined batches. */
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"
#include "cli.h"

/* Lines sent per bg_enqueue_bulk() call at the most: UUIDs are printed (and flushed) after each
 * batch, so a consumer of the output sees progress on a long input. A batch also goes out as
 * soon as the input pauses (input_pauses()), so a producer that writes a line at a time sees
 * its UUID at once rather than after 4096 lines. */
#define BATCH 4096

typedef struct {
    bg_job_spec spec; /* queue, in, at and retries; cls and arg set per job */
    const char *cls;
    const char *arg;
    int from_stdin;
    int json; /* one {"job": UUID} a line instead of the bare UUID */
    bgc_replicas replicas;
} enqueue_opts;

static void print_id(const enqueue_opts *o, const char *id) {
    if (o->json)
        printf("{\"job\": \"%s\"}\n", id); /* a UUID needs no escaping */
    else
        printf("%s\n", id);
}

static int parse_option(const cli_cmd *self, int c, enqueue_opts *o, int *have_in, int *have_at) {
    double ms;
    int64_t at;
    long long n;
    switch (c) {
    case 'q':
        if (!bg_queue_valid(optarg))
            return cli_usage_error(self, "invalid queue '%s': 1 to 128 of A-Z a-z 0-9 _ . -",
                                   optarg);
        o->spec.queue = optarg;
        return 0;
    case 'i':
        if (bgc_parse_duration_ms(optarg, &ms) != 0)
            return cli_usage_error(self,
                                   "invalid duration '%s' for --in: a number with an "
                                   "optional unit ms, s, m, h or d (30, 1.5s, 250ms, 5m)",
                                   optarg);
        o->spec.in_ms = (int64_t)(ms + 0.5);
        *have_in = 1;
        return 0;
    case 'a':
        if (bgc_parse_time_ms(optarg, &at) != 0)
            return cli_usage_error(self,
                                   "invalid time '%s' for --at: ms since the epoch, or "
                                   "YYYY-MM-DDTHH:MM:SS[.fff] with Z or +HH:MM",
                                   optarg);
        o->spec.at_ms = at;
        *have_at = 1;
        return 0;
    case 'R':
        if (bgc_parse_int(optarg, 0, INT_MAX, &n) != 0)
            return cli_usage_error(self,
                                   "invalid number '%s' for --retries: a whole number "
                                   "from 0 to %d",
                                   optarg, INT_MAX);
        o->spec.retries = (int)n;
        return 0;
    }
    return -1;
}

static int parse(const cli_cmd *self, int argc, char **argv, enqueue_opts *o, int *done) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"in", required_argument, NULL, 'i'},
                                             {"at", required_argument, NULL, 'a'},
                                             {"retries", required_argument, NULL, 'R'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             BGC_REPLICAS_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    int c, have_in = 0, have_at = 0, rc;
    char err[512];
    while ((c = getopt_long(argc, argv, ":q:h", longopts, NULL)) != -1) {
        if (bgc_replicas_option(&o->replicas, c, optarg))
            continue;
        if (c == 'h') {
            *done = 1;
            return cli_help(self);
        }
        if (c == '?' || c == ':')
            return cli_bad_option(self, c, argv);
        if (c == 'j') {
            o->json = 1;
            continue;
        }
        if ((rc = parse_option(self, c, o, &have_in, &have_at)) != 0)
            return rc;
    }
    if (have_in && have_at)
        return cli_usage_error(self, "--in and --at cannot be used together");
    if (bgc_replicas_check(&o->replicas, err, sizeof err) != 0)
        return cli_usage_error(self, "%s", err);
    if (optind >= argc)
        return cli_usage_error(self, "which class? give CLASS [ARG]");
    if (argc - optind > 2)
        return cli_usage_error(self, "unexpected argument '%s'", argv[optind + 2]);
    o->cls = argv[optind];
    if (!*o->cls)
        return cli_usage_error(self, "the class name is empty");
    o->arg = argc - optind == 2 ? argv[optind + 1] : "{}";
    o->from_stdin = strcmp(o->arg, "-") == 0;
    return 0;
}

static int enqueue_one(cli_ctx *ctx, const cli_cmd *self, enqueue_opts *o) {
    bg_uuid id;
    o->spec.cls = o->cls;
    o->spec.arg = o->arg;
    o->spec.arg_len = strlen(o->arg);
    int rc = bg_enqueue(ctx->client, &o->spec, id);
    /* Too few replicas acknowledged: the job is on the primary, so its UUID is printed, and
     * the exit status says it may not survive a failover. */
    if (rc == BG_OK || rc == BG_EREPLICAS)
        print_id(o, id);
    if (rc != BG_OK)
        return cli_fail(ctx, self, rc);
    return CLI_EXIT_OK;
}

/* Sends the batch, prints the UUIDs of what was enqueued (even when a later job failed), frees
 * the lines. Returns 0 or an exit status. */
static int flush_batch(cli_ctx *ctx, const cli_cmd *self, const enqueue_opts *o, bg_job_spec *specs,
                       char **lines, size_t n, bg_uuid *ids) {
    size_t done = 0;
    int rc = n ? bg_enqueue_bulk(ctx->client, specs, n, ids, &done) : BG_OK;
    for (size_t i = 0; i < done; i++)
        print_id(o, ids[i]);
    fflush(stdout);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    return rc == BG_OK ? 0 : cli_fail(ctx, self, rc);
}

/* 1 when reading f would block now: nothing left in its buffer and nothing readable on its
 * descriptor (an end of input is readable, so it does not count as a pause). The buffer test
 * reads glibc's FILE fields, as gnulib's freadahead() does: stdio offers no call for it. */
static int input_pauses(FILE *f) {
    if (f->_IO_read_ptr < f->_IO_read_end)
        return 0;
    struct pollfd p = {.fd = fileno(f), .events = POLLIN};
    return poll(&p, 1, 0) == 0;
}

/* One job a line of standard input; the line, without its '\n', is the ARG byte for byte (an
 * empty line is an empty ARG, so output line i always answers input line i). */
static int enqueue_stdin(cli_ctx *ctx, const cli_cmd *self, enqueue_opts *o) {
    bg_job_spec *specs = calloc(BATCH, sizeof *specs);
    char **lines = calloc(BATCH, sizeof *lines);
    bg_uuid *ids = calloc(BATCH, sizeof *ids);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    int status = 0;
    if (!specs || !lines || !ids) {
        status = cli_error(self, "out of memory");
        goto out;
    }
    while (status == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        specs[n] = o->spec;
        specs[n].cls = o->cls;
        specs[n].arg = lines[n] = line;
        /* arg_len 0 would mean strlen(): an empty line is given as a 0-length "" either way. */
        specs[n].arg_len = (size_t)len;
        line = NULL;
        cap = 0;
        if (++n == BATCH || input_pauses(stdin)) {
            status = flush_batch(ctx, self, o, specs, lines, n, ids);
            n = 0;
        }
    }
    if (status == 0 && ferror(stdin))
        status = cli_error(self, "cannot read standard input");
    if (status == 0)
        status = flush_batch(ctx, self, o, specs, lines, n, ids);
    else
        for (size_t i = 0; i < n; i++)
            free(lines[i]);
out:
    free(line);
    free(specs);
    free(lines);
    free(ids);
    return status;
}

static int enqueue_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    enqueue_opts o;
    int done = 0;
    memset(&o, 0, sizeof o);
    bg_job_spec_init(&o.spec);
    bgc_replicas_init(&o.replicas);
    int status = parse(self, argc, argv, &o, &done);
    if (status != 0 || done)
        return status;
    ctx->replicas = o.replicas.opts;
    if ((status = cli_client(ctx, self)) != 0)
        return status;
    return o.from_stdin ? enqueue_stdin(ctx, self, &o) : enqueue_one(ctx, self, &o);
}

const cli_cmd cli_cmd_enqueue = {
    "enqueue",
    "CLASS [ARG|-] [-q QUEUE] [--in DURATION | --at TIME] [--retries N] [--json]\n"
    "        [--min-replicas-ack N] [--min-replicas-timeout DURATION]",
    "Enqueues a job of class CLASS with the arguments ARG (default {}, stored byte for byte)\n"
    "and prints its UUID. With ARG '-', enqueues one job a line of standard input (the line\n"
    "is its ARG) and prints one UUID a line, in the same order.\n\n"
    "options:\n"
    "  -q, --queue QUEUE   the queue (default: default)\n"
    "      --in DURATION   run it this long from now: 30, 1.5s, 250ms, 5m, 2h, 1d\n"
    "      --at TIME       run it at TIME: ms since the epoch, or ISO 8601\n"
    "                      YYYY-MM-DDTHH:MM:SS[.fff] with Z or +HH:MM\n"
    "      --retries N     retry it at most N times (default: the worker's --retries)\n"
    "      --json          print {\"job\": UUID} (one a line) instead of the bare UUID\n"
    "      --min-replicas-ack N  after each write, wait for N replicas to hold it; fewer\n"
    "                      within the timeout: the UUIDs are printed, exit 1 (default\n"
    "                      $BG_MIN_REPLICAS_ACK, else 0: off)\n"
    "      --min-replicas-timeout D  how long to wait (default $BG_MIN_REPLICAS_TIMEOUT,\n"
    "                      else 1s)\n"
    "  -h, --help          this help\n",
    enqueue_exec,
};
