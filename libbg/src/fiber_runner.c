/* fiber_runner.c: a fiber's runner, the thread its jobs run on (fiber_int.h). Created once per
 * fiber, handed one job at a time; it touches nothing of the fiber but its mailbox, so the
 * fiber thread stays free while a job runs, and may leave a handler that ignores the cut-off
 * running when it exits. */
#include <string.h>
#include <time.h>

#include "fiber_int.h"

/* The hand-offs both ways wake the other side after the mutex is released: woken while it is
 * still held, the other thread would run only to sleep again on the mutex, two more context
 * switches a job (a no-op job is little else). The state is read under the mutex, so a wake
 * that comes late, or early, is only a spurious one. */
static void *runner_main(void *arg) {
    bg__runner *r = arg;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        while (r->state == BG__RUNNER_IDLE || r->state == BG__RUNNER_DONE)
            pthread_cond_wait(&r->cv, &r->mu);
        if (r->state == BG__RUNNER_QUIT) {
            pthread_mutex_unlock(&r->mu);
            return NULL;
        }
        bg_job job = r->job;
        pthread_mutex_unlock(&r->mu);
        bg__outcome out;
        memset(&out, 0, sizeof out);
        bg__dispatch(r->w, &job, &r->timed_out, &r->canceled, &out);
        pthread_mutex_lock(&r->mu);
        r->out = out;
        r->state = BG__RUNNER_DONE;
        pthread_mutex_unlock(&r->mu);
        pthread_cond_broadcast(&r->cv);
    }
}

int bg__runner_start(bg__runner *r, const bg_worker *w) {
    pthread_attr_t attr;
    r->w = w;
    r->state = BG__RUNNER_IDLE;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    if (pthread_attr_init(&attr) != 0)
        return BG_ESYS;
    pthread_attr_setstacksize(&attr, BG__RUNNER_STACK);
    int rc = pthread_create(&r->thread, &attr, runner_main, r);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return BG_ESYS;
    r->started = 1;
    return BG_OK;
}

void bg__runner_hand(bg__runner *r, const bg_job *job) {
    pthread_mutex_lock(&r->mu);
    atomic_store(&r->cancel, 0);
    atomic_store(&r->timed_out, 0);
    atomic_store(&r->canceled, 0);
    r->job = *job;
    r->job.cancel = &r->cancel;
    r->state = BG__RUNNER_BUSY;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_broadcast(&r->cv);
}

int bg__runner_wait(bg__runner *r, int wait_ms, bg__outcome *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += (long)wait_ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_mutex_lock(&r->mu);
    while (r->state == BG__RUNNER_BUSY)
        if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) != 0)
            break;
    int done = r->state == BG__RUNNER_DONE;
    if (done) {
        *out = r->out;
        r->state = BG__RUNNER_IDLE;
    }
    pthread_mutex_unlock(&r->mu);
    return done;
}

int bg__runner_end(bg__runner *r) {
    if (!r->started)
        return 1;
    pthread_mutex_lock(&r->mu);
    int idle = r->state != BG__RUNNER_BUSY;
    if (idle) {
        r->state = BG__RUNNER_QUIT;
        pthread_cond_broadcast(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
    if (!idle)
        return 0;
    pthread_join(r->thread, NULL);
    r->started = 0;
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    return 1;
}
