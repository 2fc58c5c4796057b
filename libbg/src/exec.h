/* exec.h: running one job as an external command with the exec protocol of docs/worker.md. */
#ifndef BG_EXEC_H
#define BG_EXEC_H

#include <stdatomic.h>
#include <stddef.h>

#define BG__EXEC_TAIL 1024          /* bytes of stderr kept for the attempt's msg */
#define BG__EXEC_KILL_AFTER_MS 5000 /* TERM, then KILL this long after */

typedef struct {
    const char *command; /* run as /bin/sh -c command; never holds job data */
    const char *input;   /* the job's arg, written to the child's stdin */
    size_t input_len;
    char *const *env;         /* the child's whole environment, NULL-terminated */
    double timeout_ms;        /* > 0: past this, TERM then KILL; the outcome is a Timeout */
    const atomic_int *cutoff; /* when it turns non-zero: TERM then KILL; outcome CUTOFF */
    const atomic_int *cancel; /* the same for bg-cli cancel (may be NULL); outcome CANCELED */
    /* Called with each line the child writes (without its newline; long lines in pieces),
     * from the calling thread, for the worker's debug log. May be NULL. */
    void (*on_output)(void *ud, int is_stderr, const char *line, size_t len);
    void *ud;
} bg__exec_params;

typedef enum {
    BG__EXEC_OK,       /* exit 0 */
    BG__EXEC_FAILED,   /* err and msg say why: ExitStatus, Signal, Timeout */
    BG__EXEC_CUTOFF,   /* ended because *cutoff turned non-zero */
    BG__EXEC_CANCELED, /* ended because *cancel turned non-zero */
    BG__EXEC_ERROR     /* could not run it (fork, pipe failed): err "ExecError" */
} bg__exec_outcome;

typedef struct {
    bg__exec_outcome outcome;
    int status;                   /* exit status, or the signal number */
    char err[32];                 /* "", "ExitStatus", "Signal", "Timeout", "ExecError" */
    char msg[BG__EXEC_TAIL + 64]; /* "exit 3: <stderr tail>", "killed by signal 9 (SIGKILL)" */
} bg__exec_result;

/* Runs params->command in its own process group under a small supervisor, so nothing of the
 * group outlives the calling thread's process (even one killed with SIGKILL), feeding it
 * input on stdin and collecting its output, until it ends, times out or is cut off. The child
 * inherits no descriptor but 0, 1 and 2. Blocks the calling thread; returns 0 with *res filled
 * (even when the command failed), -1 only on bad arguments. */
int bg__exec_run(const bg__exec_params *params, bg__exec_result *res);

#endif
