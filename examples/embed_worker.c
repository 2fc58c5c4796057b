/* embed_worker.c: a program that runs a bg worker inside itself, with a handler of its own for
 * the class example.hello, the way a service with its own job code would.
 *
 *     embed_worker [-h] [QUEUE...]
 *
 * It takes jobs from the queues named (default "default") in priority order, on the Redis
 * server of $BG_REDIS_URL (else redis://127.0.0.1:6379/0) in the namespace $BG_NAMESPACE
 * (else "bg"). Jobs of other classes go to bg's built-ins (bg.noop, bg.sleep, bg.fail) or fail
 * with UnknownJobClass. SIGTERM or SIGINT stops it gracefully; a second one stops it at once.
 *
 * Build it with the Makefile (pkg-config) or CMakeLists.txt (find_package(bg)) beside it. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bg/bg.h>

/* What -h prints, to standard output, as bg's programs do. */
static void usage(void) {
    printf("usage: embed_worker [-h] [QUEUE...]\n"
           "Runs a bg worker with a handler for example.hello on the queues named (default:\n"
           "default), on the Redis server of $BG_REDIS_URL (else redis://127.0.0.1:6379/0) in\n"
           "the namespace $BG_NAMESPACE (else bg).\n");
}

/* The worker the signal handler talks to; set once before the handlers are installed. */
static bg_worker *the_worker;

/* Only asks the worker to stop: bg_worker_signal() is async-signal-safe, and a second signal
 * turns the graceful stop into an immediate one. */
static void on_stop_signal(int sig) {
    (void)sig;
    bg_worker_signal(the_worker, BG_WORKER_STOP);
}

/* The library never prints: it hands its log lines to this sink, which writes them to stderr
 * so standard output holds only what the handler writes. */
static void log_line(void *userdata, bg_log_level level, const char *role, const char *msg) {
    static const char letters[] = "DIWE";
    (void)userdata;
    fprintf(stderr, "%c %s: %s\n", letters[level & 3], role, msg);
}

/* The handler for example.hello. It runs on one of the worker's threads, several at once, so it
 * touches no shared state; stdio locks the stream for each call. An arg holding "fail" makes it
 * fail with a named error, to show how a handler reports one. */
static int hello(const bg_job *job, bg_error *err, void *userdata) {
    const char *greeting = userdata;
    size_t len;
    const char *arg = bg_job_arg(job, &len);

    if (strstr(arg, "fail")) {
        bg_error_set(err, "Example::Refused", "asked to fail (attempt %d)", bg_job_attempt(job));
        return 1;
    }
    printf("%s from %s: job %s attempt %d on %s, arg %.*s\n", greeting, bg_job_class(job),
           bg_job_id(job), bg_job_attempt(job), bg_job_queue(job), (int)len, arg);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    char errbuf[512] = "";
    bg_worker_options opts;
    bg_worker *w = NULL;
    struct sigaction sa;
    static const struct option longopts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int rc, c;

    /* "-h" anywhere is help and any other option is refused, so that neither is taken for the
     * name of a queue (a queue whose name begins with "-" comes after "--"). */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        if (c != 'h') {
            fprintf(stderr, "usage: embed_worker [-h] [QUEUE...]\n"); /* after getopt's line */
            return 2;
        }
        usage();
        return 0;
    }

    bg_worker_options_init(&opts);
    opts.url = getenv("BG_REDIS_URL");
    opts.ns = getenv("BG_NAMESPACE");
    opts.queues = (const char *const *)(argv + optind);
    opts.nqueues = (size_t)(argc - optind);
    opts.concurrency = 2;
    opts.shutdown_timeout_ms = 25000; /* durations are in milliseconds; 0 job_timeout_ms: none */
    opts.log.fn = log_line;
    opts.log.level = BG_LOG_INFO;

    rc = bg_worker_new(&w, &opts, errbuf, sizeof errbuf);
    if (rc != BG_OK) {
        fprintf(stderr, "embed_worker: %s\n", errbuf[0] ? errbuf : bg_strerror(rc));
        return 1;
    }
    rc = bg_registry_add(bg_worker_registry(w), "example.hello", hello, "Hello");
    if (rc != BG_OK) {
        fprintf(stderr, "embed_worker: cannot register example.hello: %s\n", bg_strerror(rc));
        bg_worker_free(w);
        return 1;
    }

    the_worker = w;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    /* A write to a Redis connection the server closed must be an error, not the end of us. */
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    rc = bg_worker_run(w);
    if (rc < 0)
        fprintf(stderr, "embed_worker: %s\n", bg_worker_errmsg(w));
    bg_worker_free(w);
    return rc == 0 ? 0 : 1;
}
