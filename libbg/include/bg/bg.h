/* bg/bg.h: everything libbg offers. Include this one header; docs/api.md is the guide to the
 * API, and the errors, threads and ownership rules every call follows are in bg/error.h and
 * beside each declaration. */
#ifndef BG_BG_H
#define BG_BG_H

#include "bg/export.h"
#include "bg/error.h"
#include "bg/client.h"
#include "bg/job.h"
#include "bg/status.h"
#include "bg/admin.h"
#include "bg/control.h"
#include "bg/handler.h"
#include "bg/worker.h"
#include "bg/watcher.h"

#define BG_VERSION "0.1.0"

/* The library's version string, e.g. "0.1.0"; static, never NULL. Thread-safe. */
BG_EXPORT const char *bg_version(void);

#endif
