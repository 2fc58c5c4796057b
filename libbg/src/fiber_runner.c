/* fiber_runner.c: a fiber's runner, the thread its jobs run on (fiber_int.h). Created once per
 * fiber, handed one job at a time; it touches nothing of the fiber but its mailbox, so the
 * fiber thread stays free while a job runs, and may leave a handler that ignores the cut-off
 * running when it exits. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "fiber_int.h"

static void *runner_main(void *arg) {
    bg__runner *r = arg;
    for (;;) {
        while (sem_wait(&r->go) != 0)
            ; /* EINTR: a signal, not a job */
        if (atomic_load(&r->quit))
            return NULL;
        bg__outcome out;
        memset(&out, 0, sizeof out);
        bg__dispatch(r->w, &r->job, &r->timed_out, &r->canceled, &out);
        r->out = out;
        sem_post(&r->done);
    }
}

int bg__runner_start(bg__runner *r, const bg_worker *w) {
    r->w = w;
    r->handed = 0;
    atomic_store(&r->quit, 0);
    if (sem_init(&r->go, 0, 0) != 0)
        return BG_ESYS;
    if (sem_init(&r->done, 0, 0) != 0) {
        sem_destroy(&r->go);
        return BG_ESYS;
    }
    if (bg__thread_start(&r->thread, runner_main, r, BG__RUNNER_STACK, 0) != 0) {
        sem_destroy(&r->go);
        sem_destroy(&r->done);
        return BG_ESYS;
    }
    r->started = 1;
    return BG_OK;
}

void bg__runner_hand(bg__runner *r, const bg_job *job) {
    atomic_store(&r->cancel, 0);
    atomic_store(&r->timed_out, 0);
    atomic_store(&r->canceled, 0);
    r->job = *job;
    r->job.cancel = &r->cancel;
    r->handed = 1;
    sem_post(&r->go);
}

int bg__runner_wait(bg__runner *r, int wait_ms, bg__outcome *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)wait_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    while (sem_timedwait(&r->done, &ts) != 0)
        if (errno != EINTR)
            return 0; /* ETIMEDOUT: it runs on */
    *out = r->out;
    r->handed = 0;
    return 1;
}

int bg__runner_end(bg__runner *r) {
    if (!r->started)
        return 1;
    if (r->handed && sem_trywait(&r->done) != 0)
        return 0; /* still running: the thread and the mailbox are left to it */
    r->handed = 0;
    atomic_store(&r->quit, 1);
    sem_post(&r->go);
    pthread_join(r->thread, NULL);
    r->started = 0;
    sem_destroy(&r->go);
    sem_destroy(&r->done);
    return 1;
}
