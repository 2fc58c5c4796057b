/* metrics_http.h: bg-watcher --metrics: a small HTTP/1.1 server on a thread of its own, with a
 * Redis connection of its own, that serves bg_metrics_text() at /metrics (docs/watcher.md). */
#ifndef BG_WATCHER_METRICS_HTTP_H
#define BG_WATCHER_METRICS_HTTP_H

#include <stddef.h>
#include <sys/socket.h>

#include "bg/bg.h"

/* Where to listen, as parsed from ADDR:PORT. */
typedef struct {
    struct sockaddr_storage addr;
    socklen_t len;
    int any; /* ":PORT": every address, IPv6 and IPv4 */
    char text[80];
} bgw_listen;

/* Parses "127.0.0.1:9187", "[::1]:9187" or ":9187" (every address). Returns 0, or -1 with a
 * message in err: no port, a port that is not 1 to 65535, an address that is not an IPv4 or
 * bracketed IPv6 address. */
int bgw_listen_parse(const char *spec, bgw_listen *out, char *err, size_t errlen);

typedef struct bgw_metrics bgw_metrics;

/* What the server reads: the watcher's URL (and its TLS options), namespace and queues (nqueues 0:
 * every known queue), all copied. */
typedef struct {
    const char *url, *ns;
    const char *const *queues;
    size_t nqueues;
    bg_logger log;
    bg_tls_options tls;
} bgw_metrics_options;

/* Binds and listens at l, then starts the server's thread. Returns the server, or NULL with a
 * message in err (the address cannot be bound: in use, not local, not allowed). */
bgw_metrics *bgw_metrics_start(const bgw_listen *l, const bgw_metrics_options *o, char *err,
                               size_t errlen);

/* Stops the thread, closes every connection and frees the server. NULL is a no-op. */
void bgw_metrics_stop(bgw_metrics *m);

#endif
