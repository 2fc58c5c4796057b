/* cli.h: what bg-cli's main.c and its commands share: the command table entry, the context
 * built from the global options, and the one-line error helpers. */
#ifndef BG_CLI_H
#define BG_CLI_H

#include "bg/bg.h"
#include "bg_common.h"

#include <jansson.h>

/* Exit statuses (STYLE: usage errors 2, runtime errors 1). */
#define CLI_EXIT_OK 0
#define CLI_EXIT_ERR 1
#define CLI_EXIT_USAGE 2

/* What the global options chose. The client is created by cli_client() once a command has
 * parsed its own options, so `bg-cli COMMAND -h` works whatever the URL. */
typedef struct {
    const char *url;
    const char *ns;
    bg_client *client;
    bgc_tls tls;                  /* --tls-*, else the environment's */
    bg_replicas_options replicas; /* a command's --min-replicas-*, for its client */
} cli_ctx;

/* One entry of the command table, in the manner of tmux: its name, its usage line (the part
 * after the name), the help text below it, and the function that runs it. The function gets
 * argv[0] = the command name and returns an exit status. */
typedef struct cli_cmd {
    const char *name;
    const char *usage;
    const char *help;
    int (*exec)(cli_ctx *ctx, const struct cli_cmd *self, int argc, char **argv);
} cli_cmd;

extern const cli_cmd cli_cmd_status;
extern const cli_cmd cli_cmd_enqueue;
extern const cli_cmd cli_cmd_dequeue;
extern const cli_cmd cli_cmd_retry;
extern const cli_cmd cli_cmd_failed;
extern const cli_cmd cli_cmd_dead;
extern const cli_cmd cli_cmd_purge;
extern const cli_cmd cli_cmd_ping;
extern const cli_cmd cli_cmd_pause;
extern const cli_cmd cli_cmd_resume;
extern const cli_cmd cli_cmd_cancel;
extern const cli_cmd cli_cmd_show;
extern const cli_cmd cli_cmd_workers;
extern const cli_cmd cli_cmd_metrics;

/* Prints "bg-cli: CMD: message (see bg-cli CMD -h)" on stderr; returns CLI_EXIT_USAGE. cmd may
 * be NULL for the global options. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints "bg-cli: CMD: message" on stderr; returns CLI_EXIT_ERR. */
int cli_error(const cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports a getopt_long failure (optstring starting with ':'): c is '?' or ':'. Returns
 * CLI_EXIT_USAGE. */
int cli_bad_option(const cli_cmd *cmd, int c, char **argv);

/* Adds the queues of one -q option (a comma-separated list) to *queues (*n of them): 0, or a
 * usage error naming the bad name, with the list freed and emptied. Every command's -q adds up,
 * so -q a -q b is -q a,b. */
int cli_queue_option(const cli_cmd *cmd, const char *arg, char ***queues, size_t *n);

/* Prints o as one line of JSON on stdout and frees it (o may be NULL: out of memory). Returns 0,
 * or cli_error()'s status when it could not be built or written. */
int cli_print_json(const cli_cmd *cmd, json_t *o);

/* Prints the command's usage and help to stdout; returns CLI_EXIT_OK. */
int cli_help(const cli_cmd *cmd);

/* Creates ctx->client (role "cli": client name NS-cli). A URL or namespace that does not parse
 * is a usage error; returns 0 or an exit status. */
int cli_client(cli_ctx *ctx, const cli_cmd *cmd);

/* Reports a failed libbg call on ctx->client and returns the exit status it deserves: 2 for
 * BG_EINVAL and BG_EURL (the user's input), 1 for everything else. */
int cli_fail(cli_ctx *ctx, const cli_cmd *cmd, int rc);

/* Non-zero when stdout is a terminal that may get bold text (not with $NO_COLOR or
 * TERM=dumb): under `watch`, in pipes and in files, the output stays plain. */
int cli_stdout_styled(void);

#endif
