/* test_exec.c: the exec protocol of docs/worker.md as bg__exec_run implements it: stdin, env,
 * output, exit statuses and signals, timeouts and the cut-off, and that nothing of a job's
 * process group outlives its worker. No Redis. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "bg_int.h"
#include "exec.h"

#define MB10 (10u * 1024 * 1024)

static char g_dir[] = "/tmp/bg-test-exec-XXXXXX";
static char env_path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
static char env_job[] = "BG_JOB_ID=job-1";
static char *g_env[] = {env_path, env_job, NULL};

typedef struct {
    char out[8192]; /* the first stdout lines, each followed by '\n' */
    size_t out_len;
    size_t out_bytes; /* all stdout bytes seen, newlines excluded */
    int err_lines;
} capture;

static void on_output(void *ud, int is_stderr, const char *line, size_t len) {
    capture *c = ud;
    if (is_stderr) {
        c->err_lines++;
        return;
    }
    c->out_bytes += len;
    if (c->out_len + len + 1 < sizeof c->out) {
        memcpy(c->out + c->out_len, line, len);
        c->out_len += len;
        c->out[c->out_len++] = '\n';
        c->out[c->out_len] = '\0';
    }
}

/* Runs cmd and returns the milliseconds it took. */
static double run(const char *cmd, const char *in, size_t in_len, double timeout_ms,
                  const atomic_int *cutoff, capture *cap, bg__exec_result *res) {
    bg__exec_params p = {cmd, in, in_len, g_env, timeout_ms, cutoff, NULL, on_output, cap};
    double t0 = bg__mono_ms();
    assert_int_equal(bg__exec_run(&p, res), 0);
    return bg__mono_ms() - t0;
}

static void path(char *buf, size_t len, const char *name) {
    snprintf(buf, len, "%s/%s", g_dir, name);
}

/* 1 when pid names a process that has not ended (a zombie has ended). */
static int alive(pid_t pid) {
    char p[64], buf[512];
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(p, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *rp = strrchr(buf, ')');
    return rp && rp[1] && rp[2] != 'Z' && rp[2] != 'X';
}

/* How many live processes are in process group pgid. */
static int group_alive(pid_t pgid) {
    DIR *d = opendir("/proc");
    int count = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(p, sizeof p, "/proc/%s/stat", e->d_name);
        FILE *f = fopen(p, "r");
        if (!f)
            continue;
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp && sscanf(rp + 1, " %c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            count++;
    }
    if (d)
        closedir(d);
    return count;
}

static int wait_dead(pid_t pid, double ms) {
    for (double end = bg__mono_ms() + ms; alive(pid) && bg__mono_ms() < end;)
        bg__sleep_ms(10);
    return !alive(pid);
}

/* Reads up to want pids, one a line, from file; waits up to ms for all of them. */
static int read_pids(const char *file, pid_t *pids, int want, double ms) {
    int got = 0;
    for (double end = bg__mono_ms() + ms; bg__mono_ms() < end; bg__sleep_ms(10)) {
        FILE *f = fopen(file, "r");
        int v;
        got = 0;
        while (f && got < want && fscanf(f, "%d", &v) == 1)
            pids[got++] = v;
        if (f)
            fclose(f);
        if (got == want)
            break;
    }
    return got;
}

static void test_bad_args(void **state) {
    (void)state;
    bg__exec_result res;
    bg__exec_params p = {NULL, NULL, 0, g_env, 0, NULL, NULL, NULL, NULL};
    assert_int_equal(bg__exec_run(NULL, &res), -1);
    assert_int_equal(bg__exec_run(&p, &res), -1);
    p.command = "true";
    assert_int_equal(bg__exec_run(&p, NULL), -1);
    p.input_len = 3;
    assert_int_equal(bg__exec_run(&p, &res), -1);
}

static void test_stdin_bytes(void **state) {
    (void)state;
    size_t n = 300000;
    char *in = malloc(n), *back = malloc(n + 1);
    assert_non_null(in);
    assert_non_null(back);
    for (size_t i = 0; i < n; i++) /* every byte value: NULs, invalid UTF-8, newlines */
        in[i] = (char)(unsigned char)((i * 7 + i / 256) & 0xFF);
    char file[128], cmd[256];
    path(file, sizeof file, "stdin.bin");
    snprintf(cmd, sizeof cmd, "cat > %s", file);
    capture cap = {0};
    bg__exec_result res;
    run(cmd, in, n, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_string_equal(res.err, "");
    FILE *f = fopen(file, "rb");
    assert_non_null(f);
    assert_int_equal(fread(back, 1, n + 1, f), n);
    fclose(f);
    assert_memory_equal(in, back, n);
    free(in);
    free(back);
}

static void test_env(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    /* HOME is set in this process (see main): the child sees params->env only. */
    run("echo \"$BG_JOB_ID\"; echo \"${HOME-unset}\"", NULL, 0, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_string_equal(cap.out, "job-1\nunset\n");
}

static void test_exit_status(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    run("echo out; echo first >&2; echo oops >&2; exit 3", NULL, 0, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_FAILED);
    assert_string_equal(res.err, "ExitStatus");
    assert_int_equal(res.status, 3);
    assert_string_equal(res.msg, "exit 3: first\noops");
    assert_string_equal(cap.out, "out\n");
    assert_int_equal(cap.err_lines, 2);

    run("exit 4", NULL, 0, 0, NULL, &cap, &res);
    assert_string_equal(res.msg, "exit 4: ");
}

static void test_stderr_tail(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    run("i=0; while [ $i -lt 300 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1", NULL, 0, 0,
        NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_FAILED);
    assert_int_equal(cap.err_lines, 300);
    size_t len = strlen(res.msg);
    assert_true(len <= BG__EXEC_TAIL);
    assert_true(len > BG__EXEC_TAIL - 20);
    assert_memory_equal(res.msg, "exit 1: ", 8);
    assert_string_equal(res.msg + len - 9, "\nline 299");
    assert_null(strstr(res.msg, "line 0\n"));
}

static void test_utf8_tail(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    /* 1000 three-byte characters: a cut at a byte count that is not a multiple of 3 from
     * the end would split one. */
    run("yes '\342\202\254' | head -n 1000 | tr -d '\\n' >&2; exit 1", NULL, 0, 0, NULL, &cap,
        &res);
    assert_int_equal(res.outcome, BG__EXEC_FAILED);
    size_t len = strlen(res.msg);
    assert_true(len <= BG__EXEC_TAIL);
    assert_memory_equal(res.msg, "exit 1: ", 8);
    const char *t = res.msg + 8;
    size_t tl = len - 8;
    assert_true(tl > BG__EXEC_TAIL - 20);
    assert_int_equal(tl % 3, 0);
    for (size_t i = 0; i < tl; i += 3)
        assert_memory_equal(t + i, "\342\202\254", 3);
}

static void test_signal(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    run("kill -9 $$", NULL, 0, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_FAILED);
    assert_string_equal(res.err, "Signal");
    assert_int_equal(res.status, SIGKILL);
    assert_string_equal(res.msg, "killed by signal 9 (SIGKILL)");
}

static void test_timeout(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    double ms = run("sleep 30", NULL, 0, 200, NULL, &cap, &res);
    assert_true(ms >= 190 && ms < 1000);
    assert_int_equal(res.outcome, BG__EXEC_FAILED);
    assert_string_equal(res.err, "Timeout");
    assert_string_equal(res.msg, "timed out after 0.2 s");
    assert_int_equal(res.status, SIGTERM);
}

static void test_timeout_kill_after(void **state) {
    (void)state;
    capture cap = {0};
    bg__exec_result res;
    /* An ignored TERM stays ignored in sleep too: only the KILL ends the group. */
    double ms = run("trap '' TERM; sleep 30", NULL, 0, 200, NULL, &cap, &res);
    assert_true(ms >= 200 + BG__EXEC_KILL_AFTER_MS - 100);
    assert_true(ms < 200 + BG__EXEC_KILL_AFTER_MS + 1500);
    assert_string_equal(res.err, "Timeout");
    assert_int_equal(res.status, SIGKILL);
}

static void *cut_later(void *arg) {
    bg__sleep_ms(200);
    atomic_store((atomic_int *)arg, 1);
    return NULL;
}

static void test_cutoff(void **state) {
    (void)state;
    atomic_int cutoff = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cut_later, &cutoff), 0);
    capture cap = {0};
    bg__exec_result res;
    double ms = run("sleep 30", NULL, 0, 0, &cutoff, &cap, &res);
    pthread_join(t, NULL);
    assert_true(ms >= 190 && ms < 1000);
    assert_int_equal(res.outcome, BG__EXEC_CUTOFF);
    assert_int_equal(res.status, SIGTERM);
}

static void test_cancel(void **state) {
    (void)state;
    atomic_int cancel = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, cut_later, &cancel), 0);
    capture cap = {0};
    bg__exec_result res;
    bg__exec_params p = {"sleep 30", NULL, 0, g_env, 0, NULL, &cancel, on_output, &cap};
    double t0 = bg__mono_ms();
    assert_int_equal(bg__exec_run(&p, &res), 0);
    double ms = bg__mono_ms() - t0;
    pthread_join(t, NULL);
    assert_true(ms >= 190 && ms < 1000);
    assert_int_equal(res.outcome, BG__EXEC_CANCELED);
    assert_string_equal(res.err, "Canceled");
    assert_int_equal(res.status, SIGTERM);
}

static void test_grandchild_killed(void **state) {
    (void)state;
    char file[128], cmd[256];
    path(file, sizeof file, "gc.pid");
    snprintf(cmd, sizeof cmd, "sleep 300 & echo $! > %s; exit 0", file);
    capture cap = {0};
    bg__exec_result res;
    double ms = run(cmd, NULL, 0, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_true(ms < 1000);
    pid_t pid;
    assert_int_equal(read_pids(file, &pid, 1, 1000), 1);
    int dead = wait_dead(pid, 2000);
    if (!dead)
        kill(pid, SIGKILL);
    assert_true(dead);
}

static void test_escaped_grandchild(void **state) {
    (void)state;
    char file[128], cmd[256];
    path(file, sizeof file, "esc.pid");
    /* setsid leaves the group but keeps stdout and stderr open: the wait must be bounded. */
    snprintf(cmd, sizeof cmd, "setsid sleep 300 & echo $! > %s; exit 0", file);
    capture cap = {0};
    bg__exec_result res;
    double ms = run(cmd, NULL, 0, 0, NULL, &cap, &res);
    pid_t pid = 0;
    int got = read_pids(file, &pid, 1, 1000);
    if (got == 1)
        kill(pid, SIGKILL);
    assert_int_equal(got, 1);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_true(ms < 1000);
}

static void test_no_deadlock(void **state) {
    (void)state;
    char *in = calloc(MB10, 1);
    assert_non_null(in);
    capture cap = {0};
    bg__exec_result res;
    /* Never reads its stdin, and writes more than any pipe holds. */
    double ms = run("head -c 10485760 /dev/zero", in, MB10, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_int_equal(cap.out_bytes, MB10);
    assert_true(ms < 10000);

    /* Reads all of it while writing it back. */
    for (size_t i = 99; i < MB10; i += 100)
        in[i] = '\n';
    memset(&cap, 0, sizeof cap);
    run("cat", in, MB10, 0, NULL, &cap, &res);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_int_equal(cap.out_bytes, MB10 - MB10 / 100);
    free(in);
}

static void test_no_fd_inherited(void **state) {
    (void)state;
    int fd = open("/dev/null", O_RDONLY); /* no O_CLOEXEC, on purpose */
    assert_true(fd > 2);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "[ -e /proc/$$/fd/%d ] && echo leaked; ls /proc/$$/fd; exit 0", fd);
    capture cap = {0};
    bg__exec_result res;
    run(cmd, NULL, 0, 0, NULL, &cap, &res);
    close(fd);
    assert_int_equal(res.outcome, BG__EXEC_OK);
    assert_string_equal(cap.out, "0\n1\n2\n");
}

/* Jobs of several threads at once: each gets its own result and its own output. */
static void *run_many(void *arg) {
    intptr_t k = (intptr_t)arg;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "read x; echo \"$x $BG_JOB_ID\"; exit %d", (int)k);
    for (int i = 0; i < 5; i++) {
        capture cap = {0};
        bg__exec_result res;
        char in[32], want[64];
        snprintf(in, sizeof in, "%d-%d\n", (int)k, i);
        snprintf(want, sizeof want, "%d-%d job-1\n", (int)k, i);
        bg__exec_params p = {cmd, in, strlen(in), g_env, 5000, NULL, NULL, on_output, &cap};
        if (bg__exec_run(&p, &res) != 0 || res.outcome != BG__EXEC_FAILED || res.status != k ||
            strcmp(cap.out, want) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_concurrent(void **state) {
    (void)state;
    pthread_t t[4];
    for (intptr_t i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, run_many, (void *)(i + 1)), 0);
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        assert_null(r);
    }
}

/* Forks a process that runs fn and returns its exit status (or 128 + signal). */
static int in_child(int (*fn)(void)) {
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fn());
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* With SIGPIPE at its default, a child that closes its stdin early must not kill us, and
 * leaves no SIGPIPE pending. */
static int sigpipe_child(void) {
    signal(SIGPIPE, SIG_DFL);
    size_t n = 1024 * 1024;
    char *in = calloc(n, 1);
    bg__exec_params p = {"exec 0<&-; sleep 0.1", in, n, g_env, 0, NULL, NULL, NULL, NULL};
    bg__exec_result res;
    if (!in || bg__exec_run(&p, &res) != 0 || res.outcome != BG__EXEC_OK)
        return 1;
    sigset_t pend;
    sigpending(&pend);
    return sigismember(&pend, SIGPIPE) ? 2 : 0;
}

static void test_sigpipe(void **state) {
    (void)state;
    assert_int_equal(in_child(sigpipe_child), 0);
}

/* With no descriptor left for the pipes, the outcome is an ExecError. */
static int no_fds_child(void) {
    int first = dup(0);
    close(first);
    struct rlimit rl = {(rlim_t)first + 1, (rlim_t)first + 1};
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 3;
    bg__exec_params p = {"true", NULL, 0, g_env, 0, NULL, NULL, NULL, NULL};
    bg__exec_result res;
    if (bg__exec_run(&p, &res) != 0 || res.outcome != BG__EXEC_ERROR)
        return 1;
    return strcmp(res.err, "ExecError") == 0 ? 0 : 2;
}

static void test_exec_error(void **state) {
    (void)state;
    assert_int_equal(in_child(no_fds_child), 0);
}

static char g_sk_file[128];

static int sigkill_worker(void) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "echo $$ > %s; sleep 300 & echo $! >> %s; sleep 300", g_sk_file,
             g_sk_file);
    bg__exec_params p = {cmd, NULL, 0, g_env, 0, NULL, NULL, NULL, NULL};
    bg__exec_result res;
    bg__exec_run(&p, &res);
    return 0;
}

/* The worker is SIGKILLed while its job runs: the job's whole group must end. */
static void test_worker_sigkilled(void **state) {
    (void)state;
    path(g_sk_file, sizeof g_sk_file, "sk.pids");
    pid_t worker = fork();
    assert_true(worker >= 0);
    if (worker == 0)
        _exit(sigkill_worker());
    pid_t pids[2] = {0, 0};
    int got = read_pids(g_sk_file, pids, 2, 3000);
    pid_t pgid = pids[0];
    int before = got == 2 ? group_alive(pgid) : 0;
    kill(worker, SIGKILL);
    waitpid(worker, NULL, 0);
    int after = -1;
    for (double end = bg__mono_ms() + 3000; bg__mono_ms() < end; bg__sleep_ms(10))
        if ((after = group_alive(pgid)) == 0)
            break;
    if (after != 0 && pgid > 0) /* leave nothing behind for the next test */
        kill(-pgid, SIGKILL);
    assert_int_equal(got, 2);
    assert_true(before >= 2);
    assert_int_equal(after, 0);
    assert_false(alive(pids[0]));
    assert_false(alive(pids[1]));
}

static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        char p[512];
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(g_dir);
    return 0;
}

int main(void) {
    /* As bg's programs do. */
    signal(SIGPIPE, SIG_IGN);
    setenv("HOME", "/nonexistent-home", 1);
    if (!mkdtemp(g_dir)) {
        perror("mkdtemp");
        return 1;
    }
    /* A deadlock fails the run instead of hanging it. */
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_args),
        cmocka_unit_test(test_stdin_bytes),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_exit_status),
        cmocka_unit_test(test_stderr_tail),
        cmocka_unit_test(test_utf8_tail),
        cmocka_unit_test(test_signal),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_timeout_kill_after),
        cmocka_unit_test(test_cutoff),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_grandchild_killed),
        cmocka_unit_test(test_escaped_grandchild),
        cmocka_unit_test(test_no_deadlock),
        cmocka_unit_test(test_no_fd_inherited),
        cmocka_unit_test(test_concurrent),
        cmocka_unit_test(test_sigpipe),
        cmocka_unit_test(test_exec_error),
        cmocka_unit_test(test_worker_sigkilled),
    };
    return cmocka_run_group_tests(tests, NULL, teardown);
}
