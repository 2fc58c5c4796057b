/* fiber.c: a fiber's lifecycle and loop (fiber_int.h has the design): claim jobs (several at
 * once when many wait), hand them one at a time to the fiber's runner and watch over each
 * while it runs, record their outcomes, and on quiet, stop or cut-off hand back what has not
 * run (docs/claim.md, docs/worker.md). The main thread sees a fiber through the calls of
 * worker_int.h only. */
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fiber_int.h"

/* ---- news from the main thread ---- */

void bg__fibers_wake(bg_worker *w) {
    pthread_mutex_lock(&w->mu);
    w->gen++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* One idle fiber a report, not all of them: a job pushed wakes one claim, not concurrency of
 * them racing for it (all but one claim nothing, and each empty claim costs Redis a script
 * call). A claim that takes jobs trims the list, and that report wakes the next idle fiber, so
 * a long list still fans out. Tickets beyond the fibers would only wake fibers for nothing. */
void bg__fibers_wake_some(bg_worker *w, int reports) {
    pthread_mutex_lock(&w->mu);
    w->tickets += reports;
    if (w->tickets > w->concurrency)
        w->tickets = w->concurrency;
    for (int i = 0; i < reports && i < w->concurrency; i++)
        pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static unsigned long long current_gen(bg_worker *w) {
    pthread_mutex_lock(&w->mu);
    unsigned long long g = w->gen;
    pthread_mutex_unlock(&w->mu);
    return g;
}

/* Waits for news of ready jobs (a ticket, taken), a change of state (generation gen0 passed),
 * or a second. */
static void wait_for_work(bg_worker *w, unsigned long long gen0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 1;
    pthread_mutex_lock(&w->mu);
    while (w->gen == gen0 && !w->tickets && !bg__fiber_want_exit(w))
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
            break;
    if (w->gen == gen0 && w->tickets)
        w->tickets--;
    pthread_mutex_unlock(&w->mu);
}

/* ---- while a job runs ---- */

/* While the runner runs a job the fiber's connection sits idle: readable with nothing
 * outstanding means Redis closed it (CLIENT KILL, a restart). Reconnect at once and re-own
 * the running attempt before a watcher's grace runs out, rename after the main connection's
 * ID changed, and tend the rest of the batch. */
static void tend_conn(bg__fiber *f, double running_ms) {
    double now = bg__mono_ms();
    if (bg__conn_ok(&f->conn)) {
        struct pollfd p = {f->conn.rc->fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            bg__conn_close(&f->conn);
    }
    if (!bg__conn_ok(&f->conn)) {
        if (now < f->redial_at_ms || atomic_load(&f->w->main_id) <= 0)
            return;
        if (bg__fiber_reconnect(f) != BG_OK) {
            f->redial_wait_ms = bg__backoff(f->redial_wait_ms);
            f->redial_at_ms = now + f->redial_wait_ms;
            return;
        }
    }
    f->redial_wait_ms = BG__REDIAL_MS;
    bg__fiber_rename(f);
    bg__fiber_lease_tend(f);
    bg__fiber_tend_batch(f, running_ms);
}

/* At the very end of a shutdown: the running attempt, whose handler ignored its cancel flag,
 * is recorded as cut off as it stands (its time what it ran until now, its job back to
 * ready), and the handler is left to run, its result never recorded. */
static void abandon_job(bg__fiber *f, const bg__claimed *c, double running_ms) {
    bg__outcome *p = &f->pending[f->npending++];
    memset(p, 0, sizeof *p);
    bg__fmt(p->attempt, sizeof p->attempt, "%s", c->attempt);
    bg__fmt(p->queue, sizeof p->queue, "%s", c->queue);
    bg__outcome_set(p, BG__OUTCOME_SHUTDOWN, "Worker Shutdown", "abandoned at the worker's exit");
    bg__fmt(p->time, sizeof p->time, "%.3f", running_ms);
    bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE, "[%s] abandoned: its handler ignored the cut-off",
            c->attempt);
}

/* Hands c to the runner and watches over it until it ends: --job-timeout and the cut-off (the
 * cancel flag; exec children see to their own), the connection, the batch. Returns 1 with *out
 * filled, or 0 when the fiber must exit with the job still running (a halt, or the end of a
 * shutdown, when its outcome is queued here). */
static int watch_job(bg__fiber *f, const bg__claimed *c, bg__outcome *out) {
    bg_worker *w = f->w;
    bg__runner *r = &f->run;
    double t0 = bg__mono_ms();
    bg_job job = {c->job, c->attempt, c->cls, c->queue, c->arg, c->arg_len, c->att, NULL};
    bg_log_fields lf = {c->job, c->attempt, c->cls, c->queue, NULL, -1};
    /* From here on the job runs: a stop no longer hands it back unstarted. */
    bg__log_job(&w->log, BG_LOG_DEBUG, BG__ROLE, &lf, "[%s] Started %s (job %s)", c->attempt,
                c->cls, c->job);
    bg__runner_hand(r, &job);
    atomic_store(&f->busy, 1);
    f->redial_at_ms = 0;
    f->redial_wait_ms = BG__REDIAL_MS;
    while (!bg__runner_wait(r, BG__FIBER_TICK_MS, out)) {
        double ran = bg__mono_ms() - t0;
        if (atomic_load(&w->req_halt))
            return 0;
        if (atomic_load(&w->abandon)) {
            abandon_job(f, c, ran);
            return 0;
        }
        if (w->job_timeout_ms > 0 && ran > w->job_timeout_ms && !atomic_load(&r->timed_out)) {
            atomic_store(&r->timed_out, 1);
            atomic_store(&r->cancel, 1);
        }
        if (atomic_load(&w->cutoff))
            atomic_store(&r->cancel, 1);
        unsigned g = atomic_load(&w->cancels.gen);
        if (g != f->cancel_seen) {
            f->cancel_seen = g;
            if (bg__cancels_has(&w->cancels, c->attempt)) {
                atomic_store(&r->canceled, 1);
                atomic_store(&r->cancel, 1);
            }
        }
        tend_conn(f, ran);
    }
    atomic_store(&f->busy, 0);
    return 1;
}

/* Queues the outcome of c, which ran, and logs it. */
static void queue_outcome(bg__fiber *f, const bg__claimed *c, const bg__outcome *out) {
    bg__outcome *p = &f->pending[f->npending++];
    *p = *out;
    bg__fmt(p->attempt, sizeof p->attempt, "%s", c->attempt);
    bg__fmt(p->queue, sizeof p->queue, "%s", c->queue);
    p->rnd = (int)(rand_r(&f->seed) % BG__RND_SPAN);
    /* The log shows two decimals, as docs/operations.md#logs shows; the attempt keeps three.
     * JSON lines get the job's fields apart; a failure is a warning that names the job. */
    double ms = strtod(out->time, NULL);
    int ok = out->kind == BG__OUTCOME_OK;
    bg_log_fields lf = {c->job, c->attempt, c->cls, c->queue, ok ? NULL : out->err, ms};
    /* A job cut off by the shutdown goes back to ready unharmed: not a failure to look at. */
    bg_log_level level = out->kind == BG__OUTCOME_SHUTDOWN ? BG_LOG_INFO : BG_LOG_WARN;
    if (ok)
        bg__log_job(&f->w->log, BG_LOG_DEBUG, BG__ROLE, &lf, "[%s] Completed %s in %.2f ms",
                    c->attempt, c->cls, ms);
    else
        bg__log_job(&f->w->log, level, BG__ROLE, &lf, "[%s] Failed %s (job %s) in %.2f ms: %s: %s",
                    c->attempt, c->cls ? c->cls : "(invalid job)", c->job, ms, out->err, out->msg);
}

/* Runs batch[pos] and queues its outcome. Returns the time it took, or -1 when the fiber must
 * exit with it still running. */
static double run_one(bg__fiber *f) {
    bg__claimed *c = &f->batch[f->pos];
    bg__outcome out;
    double t0 = bg__mono_ms();
    memset(&out, 0, sizeof out);
    if (c->lost) {
        /* re-owned too late: a watcher failed it while the connection was down */
    } else if (c->invalid) {
        bg__outcome_set(&out, BG__OUTCOME_DEAD, "InvalidJob", c->invalid);
        bg__fmt(out.time, sizeof out.time, "0.000");
    } else if (atomic_load(&f->w->cancels.gen) != f->claim_gen &&
               bg__cancels_has(&f->w->cancels, c->attempt)) {
        /* Canceled while it waited behind another job of its batch: it never starts. (Every
         * fiber asks for every job, so the lock is taken only once some cancel came since the
         * claim.) */
        bg__outcome_set(&out, BG__OUTCOME_DEAD, "Canceled", "canceled (bg-cli cancel)");
        bg__fmt(out.time, sizeof out.time, "0.000");
    } else if (!watch_job(f, c, &out)) {
        f->pos++; /* its strings stay: the runner may still read them */
        return -1;
    }
    double took = bg__mono_ms() - t0;
    /* A reconnect while it ran may have found it lost. */
    if (c->lost)
        bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                "[%s] attempt was failed by a watcher meanwhile; its result is dropped",
                c->attempt);
    else
        queue_outcome(f, c, &out);
    bg__fiber_free_claimed(c);
    f->pos++;
    return took;
}

/* ---- the loop ---- */

/* Hands back every claimed job that has not started. */
static void unclaim(bg__fiber *f) {
    bg__fiber_unclaim_from(f, f->pos);
    f->pos = f->nbatch = 0;
}

/* Flushes outcomes, and hands back a lost claim's jobs, until done or the worker gives up on
 * Redis (a second signal, or the shutdown timeout). Outcomes Redis refuses (a key of the wrong
 * type) are tried again, ever less often, until the shutdown cut-off when the worker stops, and
 * left for the next round trip otherwise (a quiet fiber). */
static void flush(bg__fiber *f) {
    double delay = BG__RETRY_MS;
    f->claim_held = 0; /* nothing is left to start */
    while ((f->npending || f->nlimbo || f->nunacked) && !atomic_load(&f->w->req_halt)) {
        int before = f->npending + f->nlimbo + f->nunacked;
        int rc = bg__fiber_round_trip(f, 0);
        if (rc >= 0 && f->npending + f->nlimbo + f->nunacked < before)
            continue;
        if (rc >= 0 && !f->nlimbo && !bg__fiber_fresh_pending(f)) {
            /* Only refused outcomes, or ones too few replicas hold, are left. */
            if (!bg__fiber_want_exit(f->w))
                return;
            if (atomic_load(&f->w->cutoff)) {
                for (int i = 0; i < f->npending; i++)
                    bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                            "[%s] exiting with its outcome unrecorded (a key of the wrong type): "
                            "the attempt stays processing, for a watcher to fail",
                            f->pending[i].attempt);
                if (f->nunacked)
                    bg__log(&f->w->log, BG_LOG_WARN, BG__ROLE,
                            "fiber %d: exiting with %d recorded outcomes too few replicas "
                            "acknowledged: a failover now would have them run again",
                            f->index, f->nunacked);
                return;
            }
        } else if (atomic_load(&f->w->cutoff)) {
            break;
        }
        bg__sleep_ms(delay);
        delay = bg__backoff(delay);
    }
}

/* Claims the next batch, as large as the fiber's prefetch and the room for outcomes allow, and
 * waits for news when there was nothing to claim. slow: a job of the last batch took over a
 * millisecond. Returns the delay before the next claim after a failed one, or 0. */
static double claim_next(bg__fiber *f, int slow, double backoff) {
    bg_worker *w = f->w;
    unsigned long long gen0 = current_gen(w);
    if (slow)
        f->prefetch = 1;
    int want = f->prefetch;
    /* Outcomes Redis refused take room: claim no more than the fiber can hold outcomes for. */
    int room = BG__PREFETCH_MAX;
    for (int i = 0; i < f->npending; i++)
        room -= f->pending[i].refused;
    /* So do outcomes too few replicas acknowledged: the round trip's WAIT is their news. */
    if (f->unacked && BG__UNACKED_MAX - f->nunacked - f->npending < room)
        room = BG__UNACKED_MAX - f->nunacked - f->npending;
    if (room <= 0 && f->nunacked) {
        if (bg__fiber_round_trip(f, 0) < 0)
            bg__sleep_ms(BG__FULL_WAIT_MS);
        return 0;
    }
    if (room <= 0) {
        bg__fiber_round_trip(f, 0);
        bg__sleep_ms(BG__FULL_WAIT_MS);
        return 0;
    }
    want = want > room ? room : want;
    f->pos = f->nbatch = 0;
    int got = bg__fiber_read_paused(f) == BG_OK ? 0 : -1;
    if (got == 0 && f->nskip == (int)w->nqueues) {
        /* Every queue is paused: record what is pending, and wait for a resume. */
        if (f->npending)
            bg__fiber_round_trip(f, 0);
        wait_for_work(w, gen0);
        return 0;
    }
    if (got == 0)
        got = bg__fiber_round_trip(f, want);
    if (got < 0) {
        /* After a failed claim (an error, a lost reply) the next asks for one job. A claim that
         * fails every time (a reply Redis will not send, a script error) must not turn into a
         * busy loop of connections: at most one a second. */
        f->prefetch = 1;
        bg__sleep_ms(backoff);
        return bg__backoff(backoff);
    }
    if (!slow && f->nbatch == want && want < BG__PREFETCH_MAX)
        f->prefetch = want * 2 > BG__PREFETCH_MAX ? BG__PREFETCH_MAX : want * 2;
    if (got == 0)
        wait_for_work(w, gen0);
    return 0;
}

static void *fiber_main(void *arg) {
    bg__fiber *f = arg;
    bg_worker *w = f->w;
    int slow = 0;
    double backoff = BG__RETRY_MS; /* after a failed claim; doubles while claims keep failing */
    while (!atomic_load(&w->req_halt)) {
        if (bg__fiber_want_exit(w) || bg__fiber_paused(w)) {
            unclaim(f);
            flush(f);
            if (bg__fiber_want_exit(w))
                break;
            wait_for_work(w, current_gen(w));
            continue;
        }
        if (f->pos < f->nbatch && f->claim_held) {
            /* The claim is on the primary only: its jobs start once replicas hold it, or, when
             * the connection goes meanwhile, as re-owning finds them. */
            if (bg__fiber_round_trip(f, 0) < 0)
                bg__sleep_ms(BG__RETRY_MS);
            continue;
        }
        f->claim_held = 0;
        if (f->pos < f->nbatch) {
            /* Prefetch grows only while jobs take under a millisecond. After a slow job the
             * rest of its batch goes back to its lists, so jobs do not wait behind one another,
             * and the slow job's outcome is recorded at once, with the next claim. */
            double took = run_one(f);
            if (took < 0)
                break;
            if (took > 1.0)
                slow = 1;
            if (took >= BG__SLOW_JOB_MS)
                unclaim(f);
            continue;
        }
        double again = claim_next(f, slow, backoff);
        if (again > 0) {
            backoff = again;
            continue;
        }
        backoff = BG__RETRY_MS;
        slow = 0;
    }
    unclaim(f);
    flush(f);
    bg__conn_close(&f->conn);
    f->runner_left = !bg__runner_end(&f->run);
    atomic_store(&f->exited, 1);
    return NULL;
}

/* ---- as the main thread sees a fiber ---- */

int bg__fiber_start(bg_worker *w, int index, bg__fiber **out) {
    bg__fiber *f = calloc(1, sizeof *f);
    *out = NULL;
    if (!f)
        return BG_ENOMEM;
    f->w = w;
    f->index = index;
    f->conn.id = -1;
    f->prefetch = 1;
    bg__fiber_lease_init(f);
    f->seed = (unsigned)(getpid() ^ (index * 7919) ^ (unsigned)bg__wall_ms());
    if (!(f->skip = calloc(w->nqueues, 1))) {
        free(f);
        return BG_ENOMEM;
    }
    if (w->replicas.min_ack > 0 &&
        !(f->unacked = calloc(BG__UNACKED_MAX + BG__PENDING_MAX, sizeof *f->unacked))) {
        free(f->skip);
        free(f);
        return BG_ENOMEM;
    }
    if (bg__runner_start(&f->run, w) != BG_OK) {
        free(f->unacked);
        free(f->skip);
        free(f);
        return BG_ESYS;
    }
    /* Detached: a fiber is never waited for but through its exited flag, the last thing its
     * thread writes, so one left running after a halt leaves nothing to join at exit. */
    if (bg__thread_start(&f->thread, fiber_main, f, 0, 1) != 0) {
        bg__runner_end(&f->run);
        free(f->unacked);
        free(f->skip);
        free(f);
        return BG_ESYS;
    }
    *out = f;
    return BG_OK;
}

int bg__fiber_exited(bg__fiber *f) {
    return atomic_load(&f->exited);
}

int bg__fiber_busy(bg__fiber *f) {
    return atomic_load(&f->busy);
}

int bg__fiber_free(bg__fiber *f) {
    if (f->runner_left)
        return 0;
    for (int i = 0; i < BG__PREFETCH_MAX; i++)
        bg__fiber_free_claimed(&f->batch[i]);
    free(f->unacked);
    free(f->skip);
    free(f);
    return 1;
}
