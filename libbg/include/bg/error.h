/* bg/error.h: the error codes every libbg function returns, and how a caller learns why.
 *
 * 0 is success; every error is a negative code generated from BG_ERR_MAP, so the numbers, the
 * names and the messages can never disagree. New codes are only ever appended.
 *
 * One convention for every handle (bg_client, bg_watcher, bg_worker), after curl's per-handle
 * error buffer (docs/api.md#errors):
 *   - a function that can fail returns BG_OK or one of these codes; nothing else tells success;
 *   - a call on a handle that fails leaves a message on the handle, readable with its errmsg
 *     function (bg_client_errmsg(), bg_watcher_errmsg()) until the next call on that handle;
 *   - a constructor (bg_client_new(), bg_watcher_new(), bg_worker_new()), which has no handle
 *     yet, takes the caller's errbuf and errlen (errbuf may be NULL), and on failure writes the
 *     message there and returns no handle (*out NULL);
 *   - a function that takes no handle and can say why (bg_url_check()) takes an errbuf too;
 *   - a NULL handle is BG_EINVAL, with no message to read.
 * Results such as bg_status and bg_failures are plain data: their errors are the client's. */
#ifndef BG_ERROR_H
#define BG_ERROR_H

#include "bg/export.h"

#define BG_ERR_MAP(XX)                                                                             \
    XX(EINVAL, -1, "invalid argument")                                                             \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(EURL, -3, "malformed Redis URL")                                                            \
    XX(ECONNECT, -4, "cannot connect to Redis")                                                    \
    XX(EIO, -5, "Redis connection lost")                                                           \
    XX(EREDIS, -6, "Redis replied with an error")                                                  \
    XX(EPROTO, -7, "unexpected reply from Redis")                                                  \
    XX(ENOTFOUND, -8, "no such job or attempt")                                                    \
    XX(ESTATE, -9, "the job is not in a state that allows this")                                   \
    XX(EPLUGIN, -10, "cannot load plugin")                                                         \
    XX(EEXIST, -11, "already registered")                                                          \
    XX(ESYS, -12, "system call failed")                                                            \
    XX(EACL, -13, "Redis refused a command the program needs (ACL)")                               \
    XX(EREPLICAS, -14, "fewer replicas acknowledged the write than required")                      \
    XX(ENOMASTER, -15, "the sentinels know no master of that name")

typedef enum {
    BG_OK = 0,
#define BG__ERR_ENUM(name, code, msg) BG_##name = code,
    BG_ERR_MAP(BG__ERR_ENUM)
#undef BG__ERR_ENUM
} bg_errno;

/* A static description of code, e.g. "malformed Redis URL"; never NULL. Thread-safe. */
BG_EXPORT const char *bg_strerror(int code);

/* The code's name without the BG_ prefix, e.g. "EURL"; never NULL. Thread-safe. */
BG_EXPORT const char *bg_err_name(int code);

#endif
