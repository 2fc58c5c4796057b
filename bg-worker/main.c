/* bg-worker: takes jobs from Redis ready lists and runs them (SPEC §6). This file parses the
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
            "                 [--job-timeout SECONDS] [--shutdown-timeout SECONDS] [-v]\n"
            "                 [--log-format text|json] [-V] [-h]\n"
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
            "  -v, --verbose             log every attempt\n"
            "      --log-format F        text (default) or json\n"
            "  -V, --version             print the version\n"
            "  -h, --help                print this help\n");
}

#define bad_usage(...) bgc_usage_error("bg-worker", __VA_ARGS__)

static void on_stop(int sig) {
    (void)sig;
    bg_worker_signal(the_worker, BG_WORKER_STOP);
}

static void on_quiet(int sig) {
    bg_worker_signal(the_worker, sig == SIGTSTP ? BG_WORKER_QUIET : BG_WORKER_RESUME);
}

enum { OPT_RETRIES = 256, OPT_JOB_TIMEOUT, OPT_SHUTDOWN_TIMEOUT, OPT_LOG_FORMAT };

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

static void parse(int argc, char **argv, bg_worker_options *o, bgc_log_config *log, extras *x,
                  char ***queues, size_t *nq) {
    static const struct option longopts[] = {
        {"queue", required_argument, NULL, 'q'},
        {"concurrency", required_argument, NULL, 'c'},
        {"redis", required_argument, NULL, 'r'},
        {"namespace", required_argument, NULL, 'n'},
        {"exec", required_argument, NULL, 'e'},
        {"plugin", required_argument, NULL, 'p'},
        {"retries", required_argument, NULL, OPT_RETRIES},
        {"job-timeout", required_argument, NULL, OPT_JOB_TIMEOUT},
        {"shutdown-timeout", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
        {"verbose", no_argument, NULL, 'v'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    char err[256];
    long long n;
    double ms;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":q:c:r:n:e:p:vVh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'q':
            if (bgc_parse_queues(optarg, queues, nq, err, sizeof err) != 0)
                bad_usage("invalid queue '%s' in '%s': 1 to 128 of A-Z a-z 0-9 _ . -, "
                          "comma-separated",
                          err, optarg);
            break;
        case 'c':
            if (bgc_parse_int(optarg, 1, 1000, &n) != 0)
                bad_usage("invalid concurrency '%s': a whole number from 1 to 1000", optarg);
            o->concurrency = (int)n;
            break;
        case 'r':
            o->url = optarg;
            break;
        case 'n':
            o->ns = optarg;
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
                o->job_timeout_s = ms / 1000;
            else
                o->shutdown_timeout_s = ms / 1000;
            break;
        case 'v':
            log->level = BG_LOG_DEBUG;
            break;
        case OPT_LOG_FORMAT:
            if (bgc_parse_log_format(optarg, log) != 0)
                bad_usage("invalid --log-format '%s': text or json", optarg);
            break;
        case 'V':
            printf("bg-worker %s\n", bg_version());
            exit(0);
        case 'h':
            usage(stdout);
            exit(0);
        case ':':
            bad_usage("option %s needs a value", argv[optind - 1]);
            break;
        default:
            bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        bad_usage("unexpected argument '%s'", argv[optind]);
}

int main(int argc, char **argv) {
    bg_worker_options o;
    bgc_log_config logcfg = {0, BG_LOG_INFO};
    extras x = {0};
    char **queues = NULL;
    size_t nq = 0;
    char err[1024];

    bg_worker_options_init(&o);
    o.url = bgc_default_url();
    o.ns = bgc_default_ns();
    parse(argc, argv, &o, &logcfg, &x, &queues, &nq);
    o.queues = (const char *const *)queues;
    o.nqueues = nq;
    o.log = bgc_logger(&logcfg);

    if (bg_url_check(o.url, err, sizeof err) != BG_OK)
        bad_usage("%s", err);
    if (!bg_namespace_valid(o.ns))
        bad_usage("invalid namespace '%s': 1 to 64 of A-Z a-z 0-9 _ . -", o.ns);

    bg_worker *w;
    int rc = bg_worker_new(&w, &o, err, sizeof err);
    if (rc != BG_OK)
        bad_usage("%s", err);
    for (size_t i = 0; i < x.nplugins; i++)
        if (bg_worker_load_plugin(w, x.plugins[i], err, sizeof err) != BG_OK) {
            fprintf(stderr, "bg-worker: %s\n", err);
            bg_worker_free(w);
            bgc_free_list(queues, nq);
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

    rc = bg_worker_run(w, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "bg-worker: %s\n", err);
        return 1;
    }
    if (rc == 1) {
        /* An immediate stop leaves fibers running: end the process without tearing down what
         * they still use. */
        fflush(NULL);
        _exit(1);
    }
    bg_worker_free(w);
    bgc_free_list(queues, nq);
    free(x.execs);
    free(x.plugins);
    return 0;
}
