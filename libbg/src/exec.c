/* exec.c: runs one job's command by the exec protocol of docs/worker.md. A supervisor process owns
 * the lifetime of the job's process group; the calling thread feeds stdin, collects stdout
 * and stderr, and turns the way the command ended into an outcome, err and msg. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bg_int.h"
#include "exec.h"

#define POLL_MS 50    /* how soon a cut-off or a timeout is noticed */
#define DRAIN_MS 100  /* how long output is awaited once the command's status is known */
#define LINE_BUF 4096 /* longer lines reach on_output in pieces */
#define CHUNK 16384   /* bytes read or written per call */

/* What the supervisor reports on the status pipe: the shell's wait status, or the errno of a
 * fork that failed. */
typedef struct {
    int forked;
    int value;
} sv_report;

/* Everything the forked children need, built before fork: after fork in a multithreaded
 * process only async-signal-safe calls are allowed, so nothing may be allocated there. */
typedef struct {
    pid_t worker;
    int in_r, out_w, err_w, status_w;
    char *argv[4];
    char *const *envp;
} sv_args;

/* ---- In the forked children: async-signal-safe calls only. ---- */

/* Closes every descriptor from 3 up except the (at most four) in keep: the supervisor must
 * not hold the pipes of jobs that other fibers start meanwhile, or their EOF would wait on
 * this job. */
static void close_all_but(int *keep, int n) {
    for (int i = 1; i < n; i++) /* insertion sort: n is 4 */
        for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
            int t = keep[j];
            keep[j] = keep[j - 1];
            keep[j - 1] = t;
        }
    unsigned lo = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] < (int)lo)
            continue;
        if ((unsigned)keep[i] > lo)
            close_range(lo, (unsigned)keep[i] - 1, 0);
        lo = (unsigned)keep[i] + 1;
    }
    close_range(lo, ~0U, 0);
}

/* The shell: its own process group, default signal dispositions and an empty mask (not the
 * worker's handlers or the supervisor's ignored terminal signals), the pipes on 0, 1 and 2,
 * and no other descriptor. */
static _Noreturn void shell_exec(const sv_args *a) {
    setpgid(0, 0);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; s++)
        sigaction(s, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* Lift the pipes above 2 first, so dup2 never overwrites one with another and the copies
     * on 0, 1 and 2 lose close-on-exec. */
    int in = fcntl(a->in_r, F_DUPFD, 3);
    int out = fcntl(a->out_w, F_DUPFD, 3);
    int err = fcntl(a->err_w, F_DUPFD, 3);
    if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    close_range(3, ~0U, 0);
    execve(a->argv[0], a->argv, a->envp);
    static const char m[] = "bg: cannot run /bin/sh\n";
    ssize_t w = write(2, m, sizeof m - 1);
    (void)w;
    _exit(127);
}

/* Waits for the shell and ends its group: when the shell exits (the rest of the group is
 * killed before the shell is reaped, so its group id cannot be reused meanwhile), when the
 * worker dies (PR_SET_PDEATHSIG: SIGHUP), and when the worker asks (SIGTERM: TERM to the
 * group, KILL BG__EXEC_KILL_AFTER_MS later). Reports the shell's wait status. */
static _Noreturn void sv_wait(const sv_args *a, const sigset_t *set, pid_t sh) {
    int ending = 0;
    for (;;) {
        siginfo_t si;
        if (sigwaitinfo(set, &si) < 0)
            continue;
        /* A SIGHUP with our parent unchanged is a fiber thread ending, or someone else's:
         * the worker lives on. */
        if (si.si_signo == SIGHUP && getppid() != a->worker) {
            kill(-sh, SIGKILL);
            _exit(1);
        } else if (si.si_signo == SIGTERM && !ending) {
            ending = 1;
            kill(-sh, SIGTERM);
            kill(-sh, SIGCONT); /* a stopped process acts on TERM only once continued */
            alarm((BG__EXEC_KILL_AFTER_MS + 999) / 1000);
        } else if (si.si_signo == SIGALRM) {
            kill(-sh, SIGKILL);
        } else if (si.si_signo == SIGCHLD) {
            siginfo_t ci;
            memset(&ci, 0, sizeof ci);
            if (waitid(P_PID, (id_t)sh, &ci, WEXITED | WNOHANG | WNOWAIT) < 0 || ci.si_pid != sh)
                continue;
            kill(-sh, SIGKILL);
            sv_report rep = {1, 0};
            while (waitpid(sh, &rep.value, 0) < 0 && errno == EINTR)
                ;
            ssize_t w = write(a->status_w, &rep, sizeof rep);
            (void)w;
            _exit(0);
        }
    }
}

/* The supervisor: a child of the worker that outlives neither the worker nor the shell it
 * forks into a new process group. */
static _Noreturn void supervise(const sv_args *a) {
    int keep[4] = {a->in_r, a->out_w, a->err_w, a->status_w};
    close_all_but(keep, 4);
    /* The supervisor stays in the worker's process group, so it must outlive a terminal's
     * ^C or ^Z: the worker decides what happens to its jobs. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    int ign[] = {SIGINT, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};
    for (size_t i = 0; i < sizeof ign / sizeof ign[0]; i++)
        sigaction(ign[i], &sa, NULL);
    /* SIGCHLD must not be ignored, or the shell would be reaped before we see it. */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGCHLD, &sa, NULL);
    /* These are blocked since before fork and taken with sigwaitinfo, so none is lost. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGALRM);
    prctl(PR_SET_PDEATHSIG, SIGHUP);
    if (getppid() != a->worker) /* the worker died before prctl */
        _exit(1);
    pid_t sh = fork();
    if (sh == 0)
        shell_exec(a);
    if (sh < 0) {
        sv_report rep = {0, errno};
        ssize_t w = write(a->status_w, &rep, sizeof rep);
        (void)w;
        _exit(1);
    }
    setpgid(sh, sh); /* also here, so the group exists before any kill(-sh) */
    /* Only the shell holds these now: its stdin reader gone, the worker gets EPIPE. */
    close(a->in_r);
    close(a->out_w);
    close(a->err_w);
    sv_wait(a, &set, sh);
}

/* ---- In the worker's calling thread. ---- */

typedef struct {
    int fd;
    int is_stderr;
    size_t len;
    char buf[LINE_BUF];
} stream;

typedef struct {
    const bg__exec_params *p;
    pid_t sv;
    int in_fd, status_fd;
    size_t in_off;
    int epipe;
    stream out, err;
    char tail[BG__EXEC_TAIL];
    size_t tail_len;
    int have_status;
    sv_report rep;
    size_t rep_got;
} run_state;

static void close_fd(int *fd) {
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static void emit(run_state *r, stream *s) {
    if (r->p->on_output)
        r->p->on_output(r->p->ud, s->is_stderr, s->buf, s->len);
    s->len = 0;
}

/* Splits what the child wrote into lines for on_output. */
static void stream_feed(run_state *r, stream *s, const char *p, size_t n) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        if (take > sizeof s->buf - s->len)
            take = sizeof s->buf - s->len;
        memcpy(s->buf + s->len, p, take);
        s->len += take;
        p += take;
        n -= take;
        if (p == nl) {
            emit(r, s);
            p++;
            n--;
        } else if (s->len == sizeof s->buf) {
            emit(r, s);
        }
    }
}

/* Keeps the last BG__EXEC_TAIL bytes of stderr. */
static void tail_add(run_state *r, const char *p, size_t n) {
    size_t cap = sizeof r->tail;
    if (n >= cap) {
        memcpy(r->tail, p + n - cap, cap);
        r->tail_len = cap;
        return;
    }
    size_t keep = r->tail_len + n > cap ? cap - n : r->tail_len;
    memmove(r->tail, r->tail + r->tail_len - keep, keep);
    memcpy(r->tail + keep, p, n);
    r->tail_len = keep + n;
}

static void stream_read(run_state *r, stream *s) {
    char chunk[CHUNK];
    ssize_t n = read(s->fd, chunk, sizeof chunk);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* EOF, or an error that no retry will mend */
        if (s->len > 0)
            emit(r, s);
        close_fd(&s->fd);
        return;
    }
    if (s->is_stderr)
        tail_add(r, chunk, (size_t)n);
    stream_feed(r, s, chunk, (size_t)n);
}

/* Writes what the child's stdin takes without blocking, and closes it when all is written or
 * the child will read no more (EPIPE). */
static void input_write(run_state *r) {
    size_t left = r->p->input_len - r->in_off;
    ssize_t n = left ? write(r->in_fd, r->p->input + r->in_off, left < CHUNK ? left : CHUNK) : 0;
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n < 0 && errno == EPIPE)
        r->epipe = 1;
    if (n > 0)
        r->in_off += (size_t)n;
    if (n <= 0 || r->in_off == r->p->input_len)
        close_fd(&r->in_fd);
}

static void status_read(run_state *r) {
    ssize_t n = read(r->status_fd, (char *)&r->rep + r->rep_got, sizeof r->rep - r->rep_got);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0) {
        r->rep_got += (size_t)n;
        if (r->rep_got < sizeof r->rep)
            return;
        r->have_status = 1;
    }
    close_fd(&r->status_fd);
}

/* Forks the supervisor with the four pipes in place. Returns its pid, or -1 with errno set
 * and every descriptor closed. */
static pid_t spawn(run_state *r) {
    int pp[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}}; /* in, out, err, status */
    pid_t pid = -1;
    int e = 0;
    for (int i = 0; i < 4 && !e; i++)
        if (pipe2(pp[i], O_CLOEXEC) < 0)
            e = errno;
    char sh[] = "/bin/sh", dash_c[] = "-c";
    sv_args a = {.worker = getpid(),
                 .in_r = pp[0][0],
                 .out_w = pp[1][1],
                 .err_w = pp[2][1],
                 .status_w = pp[3][1],
                 .argv = {sh, dash_c, (char *)(uintptr_t)r->p->command, NULL},
                 .envp = r->p->env};
    if (!e) {
        /* The supervisor takes these with sigwaitinfo; blocked from before fork, none that
         * the worker sends at once can kill it before it is ready. */
        sigset_t set, old;
        sigemptyset(&set);
        int sigs[] = {SIGCHLD, SIGTERM, SIGHUP, SIGALRM, SIGINT, SIGQUIT, SIGTSTP};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            sigaddset(&set, sigs[i]);
        pthread_sigmask(SIG_BLOCK, &set, &old);
        pid = fork();
        if (pid == 0)
            supervise(&a);
        e = errno;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    for (int i = 0; i < 4; i++) { /* the child's ends, and all of them on failure */
        close(pp[i][i == 0 ? 0 : 1]);
        if (pid < 0)
            close(pp[i][i == 0 ? 1 : 0]);
    }
    if (pid < 0) {
        errno = e;
        return -1;
    }
    r->in_fd = pp[0][1];
    r->out.fd = pp[1][0];
    r->err.fd = pp[2][0];
    r->status_fd = pp[3][0];
    int fds[] = {r->in_fd, r->out.fd, r->err.fd, r->status_fd};
    for (int i = 0; i < 4; i++)
        fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    if (r->p->input_len == 0)
        close_fd(&r->in_fd);
    return pid;
}

enum { END_NONE, END_TIMEOUT, END_CUTOFF, END_CANCEL };

/* Polls until the supervisor has reported and the output is drained (or DRAIN_MS have passed
 * since: a process that left the group may hold a pipe open). Returns why we ended it. */
static int pump(run_state *r) {
    const bg__exec_params *p = r->p;
    double start = bg__mono_ms(), status_at = 0;
    int why = END_NONE;
    for (;;) {
        double now = bg__mono_ms();
        if (r->status_fd < 0 && status_at == 0)
            status_at = now;
        if (status_at > 0 && ((r->out.fd < 0 && r->err.fd < 0) || now - status_at >= DRAIN_MS))
            return why;
        if (why == END_NONE && status_at == 0) {
            if (p->cutoff && atomic_load(p->cutoff))
                why = END_CUTOFF;
            else if (p->cancel && atomic_load(p->cancel))
                why = END_CANCEL;
            else if (p->timeout_ms > 0 && now - start >= p->timeout_ms)
                why = END_TIMEOUT;
            if (why != END_NONE) {
                kill(r->sv, SIGTERM); /* the supervisor ends the group */
                close_fd(&r->in_fd);
            }
        }
        struct pollfd pf[4];
        int fds[4] = {r->in_fd, r->out.fd, r->err.fd, r->status_fd};
        nfds_t n = 0;
        for (int i = 0; i < 4; i++)
            if (fds[i] >= 0)
                pf[n++] = (struct pollfd){fds[i], i == 0 ? POLLOUT : POLLIN, 0};
        if (poll(pf, n, POLL_MS) <= 0)
            continue;
        for (nfds_t i = 0; i < n; i++) {
            if (!pf[i].revents)
                continue;
            if (pf[i].fd == r->in_fd)
                input_write(r);
            else if (pf[i].fd == r->out.fd)
                stream_read(r, &r->out);
            else if (pf[i].fd == r->err.fd)
                stream_read(r, &r->err);
            else if (pf[i].fd == r->status_fd)
                status_read(r);
        }
    }
}

static void set_res(bg__exec_result *res, bg__exec_outcome o, const char *err) {
    res->outcome = o;
    bg__fmt(res->err, sizeof res->err, "%s", err);
}

/* "exit N: <stderr tail>", the tail cut at its front on a character boundary so the whole
 * msg holds at most BG__EXEC_TAIL bytes. */
static void exit_msg(const run_state *r, bg__exec_result *res, int code) {
    const char *t = r->tail;
    size_t len = r->tail_len;
    while (len > 0 && (t[len - 1] == '\n' || t[len - 1] == '\r'))
        len--;
    /* docs/worker.md writes it "exit N: <stderr tail>", with the ": " when the tail is empty. */
    bg__fmt(res->msg, sizeof res->msg, "exit %d: ", code);
    if (len == 0)
        return;
    size_t pre = strlen(res->msg), room = BG__EXEC_TAIL - pre;
    if (len > room) {
        t += len - room;
        len = room;
        while (len > 0 && ((unsigned char)*t & 0xC0) == 0x80) {
            t++;
            len--;
        }
    }
    bg__fmt(res->msg + pre, sizeof res->msg - pre, "%.*s", (int)len, t);
}

static void fill_result(const run_state *r, int why, bg__exec_result *res) {
    int st = r->rep.value;
    if (r->have_status && r->rep.forked)
        res->status = WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st);
    if (r->have_status && !r->rep.forked) {
        set_res(res, BG__EXEC_ERROR, "ExecError");
        char eb[128];
        bg__fmt(res->msg, sizeof res->msg, "fork: %s", strerror_r(r->rep.value, eb, sizeof eb));
    } else if (why == END_CUTOFF) {
        set_res(res, BG__EXEC_CUTOFF, "");
        bg__fmt(res->msg, sizeof res->msg, "cut off at the worker's shutdown");
    } else if (why == END_CANCEL) {
        set_res(res, BG__EXEC_CANCELED, "Canceled");
        bg__fmt(res->msg, sizeof res->msg, "canceled (bg-cli cancel)");
    } else if (why == END_TIMEOUT) {
        set_res(res, BG__EXEC_FAILED, "Timeout");
        bg__fmt(res->msg, sizeof res->msg, "timed out after %g s", r->p->timeout_ms / 1000);
    } else if (!r->have_status) {
        set_res(res, BG__EXEC_ERROR, "ExecError");
        bg__fmt(res->msg, sizeof res->msg, "the command's supervisor ended without a status");
    } else if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        set_res(res, BG__EXEC_OK, "");
    } else if (WIFEXITED(st)) {
        set_res(res, BG__EXEC_FAILED, "ExitStatus");
        exit_msg(r, res, WEXITSTATUS(st));
    } else {
        set_res(res, BG__EXEC_FAILED, "Signal");
        const char *abbrev = sigabbrev_np(WTERMSIG(st));
        bg__fmt(res->msg, sizeof res->msg, "killed by signal %d (SIG%s)", WTERMSIG(st),
                abbrev ? abbrev : "?");
    }
}

int bg__exec_run(const bg__exec_params *params, bg__exec_result *res) {
    if (!params || !res || !params->command || !params->env ||
        (params->input_len > 0 && !params->input))
        return -1;
    memset(res, 0, sizeof *res);
    run_state r;
    memset(&r, 0, sizeof r);
    r.p = params;
    r.err.is_stderr = 1;
    /* A write to a stdin the child closed raises SIGPIPE in this thread: keep it blocked here
     * and discard it below, so bg does not depend on the program ignoring it. */
    sigset_t pipe_set, old;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
    r.sv = spawn(&r);
    if (r.sv < 0) {
        char eb[128];
        set_res(res, BG__EXEC_ERROR, "ExecError");
        bg__fmt(res->msg, sizeof res->msg, "cannot start the command: %s",
                strerror_r(errno, eb, sizeof eb));
    } else {
        int why = pump(&r);
        close_fd(&r.in_fd);
        close_fd(&r.out.fd);
        close_fd(&r.err.fd);
        close_fd(&r.status_fd);
        /* Only our own child is reaped: other fibers wait for theirs. */
        while (waitpid(r.sv, NULL, 0) < 0 && errno == EINTR)
            ;
        fill_result(&r, why, res);
    }
    if (r.epipe && !sigismember(&old, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&pipe_set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 0;
}
