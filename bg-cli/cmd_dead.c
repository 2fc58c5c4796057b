/* cmd_dead.c: `bg-cli dead`: the newest dead jobs of some queues and why they died, and
 * `dead --delete JOB|--all`: deleting them. */
#include <getopt.h>
#include <stdio.h>

#include <jansson.h>

#include "bg_common.h"
#include "cli.h"
#include "listing.h"

typedef struct {
    char **queues;
    size_t nqueues;
    long long limit;
    int json, del, all, limit_given;
} dead_opts;

static int parse(const cli_cmd *self, int argc, char **argv, dead_opts *o, int *done) {
    static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
                                             {"limit", required_argument, NULL, 'l'},
                                             {"delete", no_argument, NULL, 'd'},
                                             {"all", no_argument, NULL, 'a'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    int c, status = 0;
    while (status == 0 && (c = getopt_long(argc, argv, ":q:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'q':
            status = cli_queue_option(self, optarg, &o->queues, &o->nqueues);
            break;
        case 'l':
            status = listing_limit(self, optarg, &o->limit);
            o->limit_given = 1;
            break;
        case 'd':
            o->del = 1;
            break;
        case 'a':
            o->all = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'h':
            *done = 1;
            return cli_help(self);
        default:
            status = cli_bad_option(self, c, argv);
        }
    }
    if (status != 0)
        return status;
    int nargs = argc - optind;
    if (o->all && !o->del)
        return cli_usage_error(self, "--all goes with --delete");
    if (o->del && o->limit_given)
        return cli_usage_error(self, "--limit goes with listing, not with --delete");
    if (o->del && o->all && nargs > 0)
        return cli_usage_error(self, "--delete --all takes no JOB, got '%s'", argv[optind]);
    if (o->del && !o->all && nargs == 0)
        return cli_usage_error(self, "which job? give its UUID after --delete, or --all");
    if (nargs > (o->del && !o->all ? 1 : 0))
        return cli_usage_error(self, "unexpected argument '%s'",
                               argv[optind + (o->del && !o->all ? 1 : 0)]);
    return 0;
}

/* Prints what --delete did: nothing for one job (as dequeue), the count for --all; with
 * --json, {"deleted": N}. */
static int print_deleted(const cli_cmd *self, size_t n, int all, int json) {
    if (json) {
        json_t *o = json_pack("{s:I}", "deleted", (json_int_t)n);
        int rc = o ? json_dumpf(o, stdout, 0) : -1;
        json_decref(o);
        if (rc != 0)
            return cli_error(self, "out of memory");
        putchar('\n');
    } else if (all) {
        printf("%zu\n", n);
    }
    return CLI_EXIT_OK;
}

static int run(cli_ctx *ctx, const cli_cmd *self, const dead_opts *o, const char *job) {
    const char *const *qs = (const char *const *)o->queues;
    if (!o->del) {
        bg_failures *f = NULL;
        int rc = bg_dead_list(ctx->client, qs, o->nqueues, (size_t)o->limit, &f);
        int status = rc == BG_OK ? listing_print(self, f, "dead", "no dead jobs", o->json)
                                 : cli_fail(ctx, self, rc);
        bg_failures_free(f);
        return status;
    }
    if (!o->all) {
        int rc = bg_dead_delete(ctx->client, job, qs, o->nqueues);
        return rc == BG_OK ? print_deleted(self, 1, 0, o->json) : cli_fail(ctx, self, rc);
    }
    size_t n = 0;
    int rc = bg_dead_delete_all(ctx->client, qs, o->nqueues, &n);
    if (rc != BG_OK) {
        /* Some may be gone before the error: say so. */
        if (n)
            fprintf(stderr, "bg-cli: dead: %zu dead job(s) were deleted before the error\n", n);
        return cli_fail(ctx, self, rc);
    }
    return print_deleted(self, n, 1, o->json);
}

static int dead_exec(cli_ctx *ctx, const cli_cmd *self, int argc, char **argv) {
    dead_opts o = {NULL, 0, LISTING_LIMIT, 0, 0, 0, 0};
    int done = 0, status = parse(self, argc, argv, &o, &done);
    if (status == 0 && !done && (status = cli_client(ctx, self)) == 0)
        status = run(ctx, self, &o, optind < argc ? argv[optind] : NULL);
    bgc_free_list(o.queues, o.nqueues);
    return status;
}

const cli_cmd cli_cmd_dead = {
    "dead",
    "[-q QUEUE[,QUEUE...]]... [--limit N] [--json] | --delete JOB|--all [-q QUEUE...]",
    "Lists the newest dead jobs (failed with no retry left), newest first across the queues,\n"
    "one a row: the job, its queue and class, why it died (the err and msg of its last failure,\n"
    "kept on the job: cut, control characters escaped), and when it died (UTC). Prints\n"
    "\"no dead jobs\" when there is none.\n\n"
    "--delete JOB deletes one dead job and its hash (its attempts stay until trimmed); prints\n"
    "nothing, exits 1 when JOB is not dead. --delete --all deletes every dead job of the\n"
    "queues and prints how many.\n\n"
    "options:\n"
    "  -q, --queue QUEUE[,QUEUE...]  these queues (default: every queue the namespace\n"
    "                                knows); may be repeated\n"
    "      --limit N                 at most N rows, 1 to 10000 (default 20)\n"
    "      --delete JOB              delete this dead job\n"
    "      --delete --all            delete every dead job of the queues\n"
    "      --json                    JSON instead: {\"dead\": [...]}, or {\"deleted\": N}\n"
    "  -h, --help                    this help\n",
    dead_exec,
};
