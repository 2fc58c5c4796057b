/* bg-worker: takes jobs from Redis ready lists and runs them (docs/worker.md). This file parses the
 * options and the signals; the worker itself is libbg's bg_worker. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bg_common.h"

static bg_worker *the_worker; /* for the signal handlers only */

static void usage(FILE *out) {
    fprintf(out,
            "usage: bg-worker [-q QUEUE[,QUEUE...]]... [-c N] [-r URL] [-n NS]\n"
            "                 [-e CLASS=COMMAND]... [-p FILE.so]... [--retries N]\n"
            "                 [--job-timeout SECONDS] [--shutdown-timeout SECONDS]\n"
            "                 [--liveness clientid|lease] [--lease DURATION] [-v]\n"
            "                 [--log-format text|json] [--tls-ca-cert FILE]\n"
            "                 [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
            "                 [--min-replicas-ack N] [--min-replicas-timeout D] [-V] [-h]\n"
            "\n"
            "  -q, --queue Q[,Q...]      queues in priority order (default: default)\n"
            "  -c, --concurrency N       fibers, each with its own connection (default 10)\n"
            "  -r, --redis URL           Redis URL (default $BG_REDIS_URL, $REDIS_URL,\n"
            "                            redis://127.0.0.1:6379/0)\n"
            "  -n, --namespace NS        key namespace (default $BG_NAMESPACE or bg)\n"
            "  -e, --exec CLASS=COMMAND  run CLASS with COMMAND under /bin/sh -c; CLASS * for\n"
            "                            every class nothing else handles\n"
            "  -p, --plugin FILE.so      load handlers from a plugin\n"
            "      --retries N           retries for jobs that set none (default 25)\n"
            "      --job-timeout D       end a job after D (default: never)\n"
            "      --shutdown-timeout D  on TERM, wait D for running jobs (default 25s)\n"
            "      --liveness L          how watchers tell this worker is alive: clientid\n"
            "                            (default; CLIENT LIST) or lease (a lease key kept\n"
            "                            fresh; no CLIENT command)\n"
            "      --lease D             with --liveness lease: the lease TTL, refreshed\n"
            "                            every third of it (default 5s; 100ms to 1h)\n"
            "  -v, --verbose             log every attempt\n"
            "      --log-format F        text (default) or json\n");
    bgc_tls_usage(out, 28);
    fprintf(out,
            "      --min-replicas-ack N  after each claim and batch of outcomes, wait for N\n"
            "                            replicas to hold them (default $BG_MIN_REPLICAS_ACK,\n"
            "                            else 0: off)\n"
            "      --min-replicas-timeout D  how long to wait for them (default\n"
            "                            $BG_MIN_REPLICAS_TIMEOUT, else 1s)\n"
            "  -V, --version             print the version\n"
            "  -h, --help                print this help\n");
}

#define bad_usage(...) bgc_usage_error("bg-worker", __VA_ARGS__)

static void on_stop(int sig) {
    (void)sig;
    bg_worker_signal(the_worker, BG_WORKER_STOP);
}

/* A closed terminal or a careless kill -HUP must not stop the worker (docs/operations.md#logs). */
static void on_hangup(int sig) {
    (void)sig;
    bg_worker_signal(the_worker, BG_WORKER_HANGUP);
}

static void on_quiet(int sig) {
    bg_worker_signal(the_worker, sig == SIGTSTP ? BG_WORKER_QUIET : BG_WORKER_RESUME);
}

enum { OPT_RETRIES = 256, OPT_JOB_TIMEOUT, OPT_SHUTDOWN_TIMEOUT };

typedef struct {
    char **execs;
    size_t nexecs;
    char **plugins;
    size_t nplugins;
} extras;

static void push(char ***list, size_t *n, char *s) {
    char **l = realloc(*list, (*n + 1) * sizeof *l);
    if (!l) {
        fprintf(stderr, "bg-worker: out of memory\n");
        exit(1);
    }
    l[(*n)++] = s;
    *list = l;
}

static void parse(int argc, char **argv, bg_worker_options *o, bgc_daemon *d, extras *x) {
    static const struct option longopts[] = {
        {"concurrency", required_argument, NULL, 'c'},
        {"exec", required_argument, NULL, 'e'},
        {"plugin", required_argument, NULL, 'p'},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"job-timeout", required_argument, NULL, OPT_JOB_TIMEOUT},
        {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
        {"liveness", required_argument, NULL, BGC_OPT_LIVENESS},
        {"lease", required_argument, NULL, BGC_OPT_LEASE},
        BGC_DAEMON_LONGOPTS,
        {NULL, 0, NULL, 0}};
    long long n;
    double ms;
    int lease_given = 0;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":c:e:p:" BGC_DAEMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'c':
            if (bgc_parse_int(optarg, 1, 1000, &n) != 0)
                bad_usage("invalid concurrency '%s': a whole number from 1 to 1000", optarg);
            o->concurrency = (int)n;
            break;
        case 'e':
            if (!strchr(optarg, '=') || optarg[0] == '=' || !strchr(optarg, '=')[1])
                bad_usage("invalid --exec '%s': expected CLASS=COMMAND", optarg);
            push(&x->execs, &x->nexecs, optarg);
            break;
        case 'p':
            push(&x->plugins, &x->nplugins, optarg);
            break;
        case OPT_RETRIES:
            if (bgc_parse_int(optarg, 0, 1000000, &n) != 0)
                bad_usage("invalid --retries '%s': a whole number from 0", optarg);
            o->retries = (int)n;
            break;
        case OPT_JOB_TIMEOUT:
        case OPT_SHUTDOWN_TIMEOUT:
            if (bgc_parse_duration_ms(optarg, &ms) != 0)
                bad_usage("invalid duration '%s': e.g. 30, 1.5s, 250ms, 5m, 2h, 1d", optarg);
            if (ch == OPT_JOB_TIMEOUT)
                o->job_timeout_ms = ms;
            else
                o->shutdown_timeout_ms = ms;
            break;
        case BGC_OPT_LIVENESS:
            if (bgc_parse_liveness(optarg, &o->liveness) != 0)
                bad_usage("invalid --liveness '%s': clientid or lease", optarg);
            break;
        case BGC_OPT_LEASE:
            if (bgc_parse_duration_ms(optarg, &ms) != 0)
                bad_usage("invalid --lease '%s': e.g. 5, 1.5s, 500ms", optarg);
            if (ms < BG_LEASE_MIN_MS || ms > BG_LEASE_MAX_MS)
                bad_usage("invalid --lease '%s': from 100ms to 1h", optarg);
            o->lease_ms = ms;
            lease_given = 1;
            break;
        default:
            bgc_daemon_option(d, ch, optarg, argv);
        }
    }
    if (lease_given && o->liveness != BG_LIVENESS_LEASE)
        bad_usage("--lease needs --liveness lease");
    bgc_daemon_check(d, argc, argv);
}

int main(int argc, char **argv) {
    bg_worker_options o;
    bgc_daemon d;
    extras x = {0};
    bgc_service service;
    char err[1024];

    bg_worker_options_init(&o);
    bgc_daemon_init(&d, "bg-worker", usage);
    parse(argc, argv, &o, &d, &x);
    o.url = d.url;
    o.ns = d.ns;
    o.queues = (const char *const *)d.queues;
    o.nqueues = d.nqueues;
    o.log = bgc_logger(&d.log);
    o.events = bgc_service_events(&service);
    o.tls = d.tls.tls;
    o.replicas = d.replicas.opts;

    bg_worker *w;
    int rc = bg_worker_new(&w, &o, err, sizeof err);
    if (rc != BG_OK)
        bad_usage("%s", err);
    for (size_t i = 0; i < x.nplugins; i++)
        if (bg_worker_load_plugin(w, x.plugins[i]) != BG_OK) {
            fprintf(stderr, "bg-worker: %s\n", bg_worker_errmsg(w));
            bg_worker_free(w);
            bgc_daemon_free(&d);
            free(x.execs);
            free(x.plugins);
            return 1;
        }
    for (size_t i = 0; i < x.nexecs; i++) {
        char *eq = strchr(x.execs[i], '=');
        *eq = '\0';
        rc = bg_worker_add_exec(w, x.execs[i], eq + 1);
        if (rc == BG_EEXIST)
            bad_usage("--exec: class '%s' is mapped twice", x.execs[i]);
    }

    signal(SIGPIPE, SIG_IGN);
    the_worker = w;
    bgc_on_signal(SIGTERM, on_stop);
    bgc_on_signal(SIGINT, on_stop);
    bgc_on_signal(SIGTSTP, on_quiet);
    bgc_on_signal(SIGCONT, on_quiet);
    bgc_on_signal(SIGHUP, on_hangup);

    rc = bg_worker_run(w);
    if (rc < 0) {
        fprintf(stderr, "bg-worker: %s\n", bg_worker_errmsg(w));
        return 1;
    }
    if (rc == 1) {
        /* An immediate stop leaves fibers running: end the process without tearing down what
         * they still use. */
        fflush(NULL);
        _exit(1);
    }
    bg_worker_free(w);
    bgc_daemon_free(&d);
    free(x.execs);
    free(x.plugins);
    return 0;
}
