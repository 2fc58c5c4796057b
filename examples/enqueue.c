/* enqueue.c: enqueues one job with libbg and prints its UUID.
 *
 *     enqueue CLASS [ARG [QUEUE [DELAY_MS]]]
 *
 * ARG defaults to {}, QUEUE to "default"; a DELAY_MS above 0 schedules the job that many
 * milliseconds from now (on the Redis server's clock). The server is $BG_REDIS_URL (else
 * redis://127.0.0.1:6379/0), the namespace $BG_NAMESPACE (else "bg"). */
#include <stdio.h>
#include <stdlib.h>

#include <bg/bg.h>

int main(int argc, char **argv) {
    bg_client_options opts;
    bg_client *c = NULL;
    bg_job_spec spec;
    char err[512];
    bg_uuid id;
    int rc;

    if (argc < 2 || argc > 5) {
        fprintf(stderr, "usage: enqueue CLASS [ARG [QUEUE [DELAY_MS]]]\n");
        return 2;
    }
    bg_client_options_init(&opts);
    opts.url = getenv("BG_REDIS_URL");
    opts.ns = getenv("BG_NAMESPACE");
    rc = bg_client_new(&c, &opts, err, sizeof err);
    if (rc != BG_OK) {
        fprintf(stderr, "enqueue: %s\n", err);
        return 2;
    }

    bg_job_spec_init(&spec);
    spec.cls = argv[1];
    if (argc > 2)
        spec.arg = argv[2];
    if (argc > 3)
        spec.queue = argv[3];
    if (argc > 4) {
        char *end;
        spec.in_ms = strtoll(argv[4], &end, 10);
        if (end == argv[4] || *end || spec.in_ms < 0) {
            fprintf(stderr, "enqueue: DELAY_MS must be a whole number of milliseconds\n");
            bg_client_free(c);
            return 2;
        }
    }

    rc = bg_enqueue(c, &spec, id);
    if (rc != BG_OK) {
        fprintf(stderr, "enqueue: %s\n", bg_client_errmsg(c));
        bg_client_free(c);
        return 1;
    }
    printf("%s\n", id);
    bg_client_free(c);
    return 0;
}
