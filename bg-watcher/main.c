/* bg-watcher: moves due scheduled jobs to ready, fails the attempts of vanished workers,
 * retries or buries their jobs, and trims history (SPEC §7). This file parses the options and
 * the signals; the watcher itself is libbg's bg_watcher. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"
#include "metrics_http.h"

#define bad_usage(...) bgc_usage_error("bg-watcher", __VA_ARGS__)

static bg_watcher *the_watcher; /* for the signal handler only */
static volatile sig_atomic_t stops;

static void usage(FILE *out) {
    fprintf(out,
            "usage: bg-watcher [-q QUEUE[,QUEUE...]]... [-r URL] [-n NS] [-i SECONDS]\n"
            "                  [--grace SECONDS] [--max-interruptions N]\n"
            "                  [--retain-completed DURATION] [--retain-failed DURATION]\n"
            "                  [--retain-dead DURATION] [--metrics ADDR:PORT]\n"
            "                  [--liveness clientid|lease] [-v]\n"
            "                  [--log-format text|json] [--tls-ca-cert FILE]\n"
            "                  [--tls-cert FILE --tls-key FILE] [--tls-server-name NAME]\n"
            "                  [--min-replicas-ack N] [--min-replicas-timeout D] [-V] [-h]\n"
            "\n"
            "  -q, --queue Q[,Q...]         queues to watch (default: every known queue)\n"
            "  -r, --redis URL              Redis URL (default $BG_REDIS_URL, $REDIS_URL,\n"
            "                               redis://127.0.0.1:6379/0)\n"
            "  -n, --namespace NS           key namespace (default $BG_NAMESPACE or bg)\n"
            "  -i, --interval D             how often to look (default 1s; 0.1 allowed)\n"
            "      --grace D                how long a worker connection may be gone before\n"
            "                               its attempts fail (default 2s)\n"
            "      --max-interruptions N    a job whose worker vanished this often is dead\n"
            "                               (default 3)\n"
            "      --liveness L             how a vanished worker is told: clientid (default;\n"
            "                               its connection left CLIENT LIST) or lease (its\n"
            "                               lease key expired; no CLIENT command)\n"
            "      --retain-completed D     keep completed attempts and jobs (default 1h)\n"
            "      --retain-failed D        keep failed attempts (default 7d)\n"
            "      --retain-dead D          keep dead jobs (default 180d)\n"
            "      --metrics ADDR:PORT      serve Prometheus metrics at /metrics over HTTP:\n"
            "                               127.0.0.1:9187, [::1]:9187, :9187 (every address)\n"
            "  -v, --verbose                debug logs\n"
            "      --log-format F           text (default) or json\n");
    bgc_tls_usage(out, 31);
    fprintf(out,
            "      --min-replicas-ack N     after each pass's writes, wait for N replicas to\n"
            "                               hold them (default $BG_MIN_REPLICAS_ACK, else 0: off)\n"
            "      --min-replicas-timeout D how long to wait for them (default\n"
            "                               $BG_MIN_REPLICAS_TIMEOUT, else 1s)\n"
            "  -V, --version                print the version\n"
            "  -h, --help                   print this help\n"
            "Durations: 30, 1.5s, 250ms, 5m, 2h, 1d; 0 keeps none.\n");
}

static void on_stop(int sig) {
    (void)sig;
    if (++stops > 1)
        _exit(1);
    bg_watcher_stop(the_watcher);
}

/* A closed terminal or a careless kill -HUP must not stop the watcher (SPEC section 10). */
static void on_hangup(int sig) {
    (void)sig;
    bg_watcher_hangup(the_watcher);
}

enum { OPT_GRACE = 256, OPT_MAXITR, OPT_RC, OPT_RF, OPT_RD, OPT_METRICS };

static double duration(const char *flag, const char *s) {
    double ms;
    if (bgc_parse_duration_ms(s, &ms) != 0)
        bad_usage("invalid %s '%s': e.g. 30, 1.5s, 250ms, 5m, 2h, 1d", flag, s);
    return ms;
}

static void parse(int argc, char **argv, bg_watcher_options *o, bgc_daemon *d, bgw_listen **l) {
    static const struct option longopts[] = {
        {"interval", required_argument, NULL, 'i'},
        {"grace", required_argument, NULL, OPT_GRACE},
        {"max-interruptions", required_argument, NULL, OPT_MAXITR},
        {"retain-completed", required_argument, NULL, OPT_RC},
        {"retain-failed", required_argument, NULL, OPT_RF},
        {"retain-dead", required_argument, NULL, OPT_RD},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"liveness", required_argument, NULL, BGC_OPT_LIVENESS},
        BGC_DAEMON_LONGOPTS,
        {NULL, 0, NULL, 0}};
    long long n;
    int ch;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":i:" BGC_DAEMON_SHORTOPTS, longopts, NULL)) != -1) {
        switch (ch) {
        case 'i':
            o->interval_ms = duration("--interval", optarg);
            /* Under a millisecond the watcher would spin, not wait. */
            if (o->interval_ms < 1)
                bad_usage("invalid --interval '%s': at least 1ms", optarg);
            break;
        case OPT_GRACE:
            o->grace_ms = duration("--grace", optarg);
            break;
        case OPT_MAXITR:
            if (bgc_parse_int(optarg, 1, 1000000, &n) != 0)
                bad_usage("invalid --max-interruptions '%s': a whole number from 1", optarg);
            o->max_interruptions = (int)n;
            break;
        case BGC_OPT_LIVENESS:
            if (bgc_parse_liveness(optarg, &o->liveness) != 0)
                bad_usage("invalid --liveness '%s': clientid or lease", optarg);
            break;
        case OPT_RC:
            o->retain_completed_ms = duration("--retain-completed", optarg);
            break;
        case OPT_RF:
            o->retain_failed_ms = duration("--retain-failed", optarg);
            break;
        case OPT_RD:
            o->retain_dead_ms = duration("--retain-dead", optarg);
            break;
        case OPT_METRICS: {
            static bgw_listen listen_at;
            char err[256];
            if (bgw_listen_parse(optarg, &listen_at, err, sizeof err) != 0)
                bad_usage("invalid --metrics %s", err);
            *l = &listen_at;
            break;
        }
        default:
            bgc_daemon_option(d, ch, optarg, argv);
        }
    }
    bgc_daemon_check(d, argc, argv);
}

int main(int argc, char **argv) {
    bg_watcher_options o;
    bgc_daemon d;
    bgw_listen *listen_at = NULL;
    bgw_metrics *metrics = NULL;
    bgc_service service;
    char err[1024];

    bg_watcher_options_init(&o);
    bgc_daemon_init(&d, "bg-watcher", usage);
    parse(argc, argv, &o, &d, &listen_at);
    o.url = d.url;
    o.ns = d.ns;
    o.queues = (const char *const *)d.queues;
    o.nqueues = d.nqueues;
    o.log = bgc_logger(&d.log);
    o.events = bgc_service_events(&service);
    o.tls = d.tls.tls;
    o.replicas = d.replicas.opts;

    bg_watcher *w;
    if (bg_watcher_new(&w, &o, err, sizeof err) != BG_OK)
        bad_usage("%s", err);
    signal(SIGPIPE, SIG_IGN);
    if (listen_at) {
        bgw_metrics_options mo = {o.url, o.ns, o.queues, o.nqueues, o.log, o.tls};
        if (!(metrics = bgw_metrics_start(listen_at, &mo, err, sizeof err))) {
            fprintf(stderr, "bg-watcher: %s\n", err);
            bg_watcher_free(w);
            bgc_daemon_free(&d);
            return 1;
        }
    }
    the_watcher = w;
    bgc_on_signal(SIGTERM, on_stop);
    bgc_on_signal(SIGINT, on_stop);
    bgc_on_signal(SIGHUP, on_hangup);
    int rc = bg_watcher_run(w);
    if (rc < 0)
        fprintf(stderr, "bg-watcher: %s\n", bg_watcher_errmsg(w));
    bgw_metrics_stop(metrics);
    bg_watcher_free(w);
    bgc_daemon_free(&d);
    return rc < 0 ? 1 : 0;
}
