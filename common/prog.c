/* prog.c: what every bg program's main does the same way: usage errors (one line on stderr,
 * exit 2) and signal handlers that only set a flag. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bg_common.h"

void bgc_usage_error(const char *prog, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see %s -h)\n", prog);
    exit(2);
}

void bgc_daemon_init(bgc_daemon *d, const char *prog, void (*usage)(FILE *f)) {
    memset(d, 0, sizeof *d);
    d->prog = prog;
    d->usage = usage;
    d->url = bgc_default_url();
    d->ns = bgc_default_ns();
    d->log.level = BG_LOG_INFO;
    bgc_tls_init(&d->tls);
    bgc_replicas_init(&d->replicas);
}

void bgc_daemon_option(bgc_daemon *d, int ch, const char *arg, char **argv) {
    char err[256];
    if (bgc_tls_option(&d->tls, ch, arg) || bgc_replicas_option(&d->replicas, ch, arg))
        return;
    switch (ch) {
    case 'q':
        if (bgc_parse_queues(arg, &d->queues, &d->nqueues, err, sizeof err) != 0)
            bgc_usage_error(d->prog,
                            "invalid queue '%s' in '%s': 1 to 128 of A-Z a-z 0-9 _ . -, "
                            "comma-separated",
                            err, arg);
        break;
    case 'r':
        d->url = arg;
        break;
    case 'n':
        d->ns = arg;
        break;
    case 'v':
        d->log.level = BG_LOG_DEBUG;
        break;
    case BGC_OPT_LOG_FORMAT:
        if (bgc_parse_log_format(arg, &d->log) != 0)
            bgc_usage_error(d->prog, "invalid --log-format '%s': text or json", arg);
        break;
    case 'V':
        printf("%s %s\n", d->prog, bg_version());
        exit(0);
    case 'h':
        d->usage(stdout);
        exit(0);
    case ':':
        bgc_usage_error(d->prog, "option %s needs a value", argv[optind - 1]);
    default:
        bgc_usage_error(d->prog, "unknown option '%s'", argv[optind - 1]);
    }
}

void bgc_daemon_check(bgc_daemon *d, int argc, char **argv) {
    char err[1024];
    if (optind < argc)
        bgc_usage_error(d->prog, "unexpected argument '%s'", argv[optind]);
    if (bg_url_check(d->url, err, sizeof err) != BG_OK)
        bgc_usage_error(d->prog, "%s", err);
    if (!bg_namespace_valid(d->ns))
        bgc_usage_error(d->prog, "invalid namespace '%s': 1 to 64 of A-Z a-z 0-9 _ . -", d->ns);
    if (bgc_tls_check(&d->tls, d->url, err, sizeof err) != 0)
        bgc_usage_error(d->prog, "%s", err);
    if (bgc_replicas_check(&d->replicas, err, sizeof err) != 0)
        bgc_usage_error(d->prog, "%s", err);
}

void bgc_daemon_free(bgc_daemon *d) {
    bgc_free_list(d->queues, d->nqueues);
    d->queues = NULL;
    d->nqueues = 0;
}

void bgc_on_signal(int sig, void (*fn)(int)) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(sig, &sa, NULL);
}
