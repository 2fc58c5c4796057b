/* main.c: bg-cli's entry point: the global options (-r, -n, -h, -V), the command table, and
 * the helpers every command uses to report errors. Each command lives in its cmd_<name>.c. */
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bg_common.h"
#include "cli.h"

static const cli_cmd *const commands[] = {
    &cli_cmd_status, &cli_cmd_enqueue, &cli_cmd_dequeue, &cli_cmd_retry,  &cli_cmd_failed,
    &cli_cmd_dead,   &cli_cmd_purge,   &cli_cmd_ping,    &cli_cmd_show,   &cli_cmd_workers,
    &cli_cmd_pause,  &cli_cmd_resume,  &cli_cmd_cancel,  &cli_cmd_metrics};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void vreport(const cli_cmd *cmd, const char *fmt, va_list ap, const char *tail)
    __attribute__((format(printf, 2, 0)));

static void vreport(const cli_cmd *cmd, const char *fmt, va_list ap, const char *tail) {
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* One line, whatever the message holds (a job ID or class typed with a newline). */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (cmd)
        fprintf(stderr, "bg-cli: %s: %s%s\n", cmd->name, msg, tail);
    else
        fprintf(stderr, "bg-cli: %s%s\n", msg, tail);
}

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...) {
    char tail[64];
    va_list ap;
    snprintf(tail, sizeof tail, " (see bg-cli %s%s-h)", cmd ? cmd->name : "", cmd ? " " : "");
    va_start(ap, fmt);
    vreport(cmd, fmt, ap, tail);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

int cli_error(const cli_cmd *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap, "");
    va_end(ap);
    return CLI_EXIT_ERR;
}

int cli_bad_option(const cli_cmd *cmd, int c, char **argv) {
    /* getopt_long has moved optind past the option it rejected. */
    const char *arg = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cli_usage_error(cmd, "option '%s' needs a value", arg);
    if (optopt && strncmp(arg, "--", 2) != 0)
        return cli_usage_error(cmd, "unknown option '-%c'", optopt);
    if (strncmp(arg, "--", 2) == 0 && strchr(arg, '='))
        return cli_usage_error(cmd, "unknown option, or one that takes no value: '%s'", arg);
    return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_print_json(const cli_cmd *cmd, json_t *o) {
    int rc = o ? json_dumpf(o, stdout, JSON_PRESERVE_ORDER) : -1;
    if (rc == 0)
        putchar('\n');
    json_decref(o);
    return rc == 0 ? 0 : cli_error(cmd, "out of memory");
}

int cli_help(const cli_cmd *cmd) {
    printf("usage: bg-cli [-r URL] [-n NS] %s %s\n\n%s", cmd->name, cmd->usage, cmd->help);
    return CLI_EXIT_OK;
}

int cli_client(cli_ctx *ctx, const cli_cmd *cmd) {
    bg_client_options o;
    bg_client_options_init(&o);
    o.url = ctx->url;
    o.ns = ctx->ns;
    o.role = "cli";
    o.tls = ctx->tls.tls;
    o.replicas = ctx->replicas;
    char err[512];
    if (bgc_tls_check(&ctx->tls, ctx->url, err, sizeof err) != 0)
        return cli_usage_error(NULL, "%s", err);
    int rc = bg_client_new(&ctx->client, &o, err, sizeof err);
    if (rc == BG_OK)
        return 0;
    /* The URL and namespace come from -r/-n or the environment, not from the command. */
    if (rc == BG_EURL || rc == BG_EINVAL)
        return cli_usage_error(NULL, "%s", err);
    return cli_error(cmd, "%s", *err ? err : bg_strerror(rc));
}

int cli_fail(cli_ctx *ctx, const cli_cmd *cmd, int rc) {
    const char *msg = ctx->client ? bg_client_errmsg(ctx->client) : "";
    if (!*msg)
        msg = bg_strerror(rc);
    if (rc == BG_EINVAL || rc == BG_EURL)
        return cli_usage_error(cmd, "%s", msg);
    return cli_error(cmd, "%s", msg);
}

int cli_queue_option(const cli_cmd *cmd, const char *arg, char ***queues, size_t *n) {
    char bad[160];
    if (bgc_parse_queues(arg, queues, n, bad, sizeof bad) == 0)
        return 0;
    bgc_free_list(*queues, *n);
    *queues = NULL;
    *n = 0;
    return cli_usage_error(cmd,
                           "invalid queue '%s' in '%s': 1 to 128 of A-Z a-z 0-9 _ . -, "
                           "comma-separated",
                           bad, arg);
}

int cli_stdout_styled(void) {
    const char *term = getenv("TERM");
    return isatty(STDOUT_FILENO) && !getenv("NO_COLOR") && term && strcmp(term, "dumb") != 0;
}

static int usage(FILE *f, int status) {
    fprintf(f, "usage: bg-cli [-r URL] [-n NS] [--tls-* ...] COMMAND [options]\n"
               "       bg-cli COMMAND -h\n\n"
               "options:\n"
               "  -r, --redis URL       Redis URL (default $BG_REDIS_URL, $REDIS_URL,\n"
               "                        " BG_DEFAULT_URL ")\n"
               "  -n, --namespace NS    key namespace (default $BG_NAMESPACE, " BG_DEFAULT_NAMESPACE
               ")\n");
    bgc_tls_usage(f, 24);
    fprintf(f, "  -h, --help            this help\n"
               "  -V, --version         the version\n\n"
               "commands:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  %s %s\n", commands[i]->name, commands[i]->usage);
    return status;
}

static const cli_cmd *find_command(const char *name) {
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0)
            return commands[i];
    return NULL;
}

/* Parses the global options, which come before COMMAND ('+': stop at the first non-option). */
static int parse_global(int argc, char **argv, cli_ctx *ctx, int *done) {
    static const struct option longopts[] = {{"redis", required_argument, NULL, 'r'},
                                             {"namespace", required_argument, NULL, 'n'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             BGC_TLS_LONGOPTS,
                                             {NULL, 0, NULL, 0}};
    int c;
    *done = 0;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:r:n:hV", longopts, NULL)) != -1) {
        if (bgc_tls_option(&ctx->tls, c, optarg))
            continue;
        switch (c) {
        case 'r':
            ctx->url = optarg;
            break;
        case 'n':
            ctx->ns = optarg;
            break;
        case 'h':
            *done = 1;
            return usage(stdout, CLI_EXIT_OK);
        case 'V':
            *done = 1;
            printf("bg-cli %s\n", bg_version());
            return CLI_EXIT_OK;
        default:
            *done = 1;
            return cli_bad_option(NULL, c, argv);
        }
    }
    return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
    cli_ctx ctx = {NULL, NULL, NULL, {{NULL, NULL, NULL, NULL}, {NULL, NULL, NULL, NULL}}, {0, 0}};
    int done;
    /* A Redis connection that drops must not kill the program while it writes to it. */
    signal(SIGPIPE, SIG_IGN);
    /* SPEC section 10: SIGHUP never stops a program; a command is short, it finishes (under
     * `watch`, in a terminal being closed). */
    signal(SIGHUP, SIG_IGN);
    bgc_tls_init(&ctx.tls);
    int status = parse_global(argc, argv, &ctx, &done);
    if (done)
        return status;
    if (optind >= argc)
        return cli_usage_error(NULL, "no command given");
    const cli_cmd *cmd = find_command(argv[optind]);
    if (!cmd)
        return cli_usage_error(NULL, "unknown command '%s'", argv[optind]);
    if (!ctx.url)
        ctx.url = bgc_default_url();
    if (!ctx.ns)
        ctx.ns = bgc_default_ns();
    int first = optind;
    /* glibc's way to start getopt afresh, for the command's own options (which, unlike the
     * global ones, may come after its arguments). */
    optind = 0;
    status = cmd->exec(&ctx, cmd, argc - first, argv + first);
    bg_client_free(ctx.client);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        perror("bg-cli: standard output");
        return CLI_EXIT_ERR;
    }
    return status;
}
