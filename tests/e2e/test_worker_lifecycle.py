"""bg-worker under signals, lost connections and SIGKILL: nothing is lost, nothing outlives it."""

import os
import random
import re
import signal
import time

from conftest import cli, clients_named, exe, wait_for
from test_worker import PLUGIN, attempts_of, finished, push, server_ms, wait_done, worker


def running(r, jid):
    """The job's attempt while it is in processing."""
    for a in attempts_of(r, jid):
        if r.sismember(f"bg:processing:{a['que']}", a["id"]):
            return a
    return None


def started(w, r, jid):
    """The job's attempt once its worker (run with -v) says it started: a job only claimed may
    still be handed back unstarted by a stop, so processing alone does not tell."""
    a = running(r, jid)
    return a if a and f"[{a['id']}] Started " in w.log() else None


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ")[1][0] != "Z"


# ---- signals ----

def test_term_waits_for_running_jobs_then_exits_0(rs, r, spawn):
    w = worker(spawn, rs, "-c", "2", "-v")
    jid = push(r, "bg.sleep", '{"ms":400}')
    wait_for(lambda: started(w, r, jid), what="the job to start")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    a = finished(r, jid)
    assert a and "err" not in a
    later = push(r, "bg.noop")
    assert r.lrange("bg:ready:default", 0, -1) == [later]


def test_shutdown_cutoff_fails_attempt_and_requeues_at_head_without_using_a_retry(rs, r, spawn):
    w = worker(spawn, rs, "-c", "2", "--shutdown-timeout", "0.3", "-p", PLUGIN,
               "-e", "hang=sleep 60", "-v")
    j_sleep = push(r, "bg.sleep", '{"ms":60000}')
    j_exec = push(r, "hang")
    wait_for(lambda: started(w, r, j_sleep) and started(w, r, j_exec), what="both jobs to start")
    waiting = push(r, "bg.noop", queue="other")
    w.signal(signal.SIGTERM)
    t0 = time.monotonic()
    assert w.wait(15) == 0
    assert time.monotonic() - t0 < 5
    for j in (j_sleep, j_exec):
        a = finished(r, j)
        assert a["err"] == "Worker Shutdown", a
        assert r.zscore("bg:failed:default", a["id"]) is not None
        assert r.hget(f"bg:jobs:{j}", "att") == "0"
        assert r.zscore("bg:scheduled:default", j) is None
    assert set(r.lrange("bg:ready:default", 0, 1)) == {j_sleep, j_exec}
    assert r.scard("bg:processing:default") == 0
    assert r.lrange("bg:ready:other", 0, -1) == [waiting]


def test_handler_that_ignores_cancellation_is_abandoned_and_requeued(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "--shutdown-timeout", "0", "-p", PLUGIN, "-v")
    jid = push(r, "test.stubborn")
    wait_for(lambda: started(w, r, jid), what="the job to start")
    w.signal(signal.SIGTERM)
    assert w.wait(20) == 0
    a = finished(r, jid)
    assert a["err"] == "Worker Shutdown"
    assert r.lrange("bg:ready:default", 0, -1) == [jid]


def test_term_with_redis_unreachable_and_nothing_running_exits_at_once(spawn):
    from conftest import _free_port
    w = spawn([exe("bg-worker"), "-r", f"redis://127.0.0.1:{_free_port()}/0", "-c", "2",
               "--shutdown-timeout", "60"])
    wait_for(lambda: "retrying" in w.log(), what="the worker to try to connect")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0  # not the 60 s shutdown timeout: nothing was running


def test_second_term_exits_at_once_with_1(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "-e", "hang=sleep 60", "-v")
    jid = push(r, "hang")
    wait_for(lambda: started(w, r, jid), what="the job to start")
    w.signal(signal.SIGTERM)
    time.sleep(0.1)
    w.signal(signal.SIGINT)
    assert w.wait(3) == 1


def test_tstp_quiets_even_blocked_fibers_and_cont_resumes(rs, r, spawn):
    w = worker(spawn, rs, "-c", "3")
    w.signal(signal.SIGTSTP)
    wait_for(lambda: "quiet" in w.log(), what="quiet")
    jid = push(r, "bg.noop")
    time.sleep(1.5)  # longer than a fiber's longest wait: a fiber that ignored quiet would run it
    assert r.lrange("bg:ready:default", 0, -1) == [jid]
    w.signal(signal.SIGCONT)
    assert "err" not in wait_done(r, jid)


def test_quiet_hands_back_prefetched_jobs(rs, r, spawn):
    ids = [push(r, "bg.noop") for _ in range(3000)]
    w = worker(spawn, rs, "-c", "2")
    wait_for(lambda: r.zcard("bg:completed:default") > 200, what="some jobs to run")
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    done = r.zcard("bg:completed:default")
    ready = r.lrange("bg:ready:default", 0, -1)
    assert done + len(ready) == len(ids)
    assert r.scard("bg:processing:default") == 0
    # Each fiber hands its unstarted jobs back in their order; two fibers' hand-backs may land
    # either way round, so the list is at most three increasing runs (two batches, the rest).
    pos = [ids.index(j) for j in ready]
    assert sum(1 for a, b in zip(pos, pos[1:]) if b < a) <= 2, pos[:80]
    assert all(r.hget(f"bg:jobs:{j}", "att") in (None, "0") for j in ready[:50])
    assert len(r.keys("bg:attempts:*")) == done


def batch_with_a_slow_job(r, spawn, rs, push_after=None):
    """A quiet worker -c 1, then 50 no-ops, a job of 3 s and 40 no-ops (or the jobs push_after()
    makes ready): batches grow 1, 2, 4, 8, 16 while jobs are fast, then a batch of 32 holds 19
    no-ops, the slow job and 12 more."""
    w = worker(spawn, rs, "-c", "1", "--shutdown-timeout", "10")
    w.signal(signal.SIGTSTP)
    wait_for(lambda: "quiet" in w.log(), what="quiet")
    before = [push(r, "bg.noop") for _ in range(50)]
    slow = push(r, "bg.sleep", '{"ms":3000}')
    after = push_after() if push_after else [push(r, "bg.noop") for _ in range(40)]
    w.signal(signal.SIGCONT)
    wait_for(lambda: running(r, slow), what="the slow job to start")
    return w, before, slow, after


def test_no_job_waits_behind_a_slow_one_in_its_batch(rs, r, spawn):
    w, before, slow, after = batch_with_a_slow_job(r, spawn, rs)
    # Everything that ran before it, in its batch too, is recorded, not held until it ends.
    wait_for(lambda: r.zcard("bg:completed:default") == len(before), timeout=1,
             what="the jobs run before it to be recorded")
    assert running(r, slow)
    t0 = server_ms(r)
    wait_for(lambda: r.zcard("bg:completed:default") == len(before) + 1 + len(after), timeout=10,
             what="every job to run")
    a = finished(r, slow)
    # Its fin is when it ended, not when a batch behind it ended.
    assert int(a["fin"]) - int(a["sta"]) < 3000 + 500, a
    assert t0 - int(a["sta"]) < 3000


def test_term_hands_back_jobs_claimed_behind_a_running_one_at_once(rs, r, spawn):
    w, before, slow, after = batch_with_a_slow_job(r, spawn, rs)
    behind = r.scard("bg:processing:default") - 1
    w.signal(signal.SIGTERM)
    # The ones claimed behind the running job are back in ready long before it ends.
    wait_for(lambda: r.scard("bg:processing:default") == 1, timeout=1.5,
             what="the jobs behind the running one to be handed back")
    assert behind > 0 and r.llen("bg:ready:default") >= behind
    assert w.wait(15) == 0
    assert "err" not in finished(r, slow)


def test_jobs_handed_back_unstarted_get_back_the_lat_they_had(rs, r, spawn):
    # Jobs with an attempt behind them: each failed once and waits for its retry.
    w0 = worker(spawn, rs, "-c", "1")
    retried = [push(r, "bg.fail", '{"err":"Boom"}', rty=1) for _ in range(20)]
    wait_for(lambda: r.zcard("bg:scheduled:default") == len(retried),
             what="the retries to be scheduled")
    assert w0.stop() == 0
    lat = {j: r.hget(f"bg:jobs:{j}", "lat") for j in retried}
    assert all(lat.values()), lat

    def fresh_and_retried():
        # By turns a job never run and one of those brought back, so a batch holds both kinds.
        out = []
        for j in retried:
            out.append(push(r, "bg.noop"))
            assert cli(rs, "retry", j).returncode == 0
            out.append(j)
        return out

    w, before, slow, after = batch_with_a_slow_job(r, spawn, rs, fresh_and_retried)
    # The jobs claimed behind the running one: the claim made each one's lat its new attempt.
    claimed = {}
    for aid in r.smembers("bg:processing:default"):
        j = r.hget(f"bg:attempts:{aid}", "job")
        if j in after:
            claimed[j] = aid
    assert claimed.keys() & set(retried) and claimed.keys() - set(retried), claimed
    assert all(r.hget(f"bg:jobs:{j}", "lat") == aid for j, aid in claimed.items())
    w.signal(signal.SIGTERM)
    assert w.wait(15) == 0
    ready = set(r.lrange("bg:ready:default", 0, -1))
    for j, aid in claimed.items():
        assert j in ready and not r.exists(f"bg:attempts:{aid}"), j
        # The attempt before, or none (empty) for a job never run: never the deleted one.
        assert (r.hget(f"bg:jobs:{j}", "lat") or "") == (lat.get(j) or ""), j


# ---- nothing outlives the worker ----

def test_exec_process_group_dies_with_a_sigkilled_worker(rs, r, spawn, tmp_path):
    pids = tmp_path / "pids"
    w = worker(spawn, rs, "-c", "1", "-e",
               f"tree=sleep 300 & echo $! >> {pids}; (sleep 301 & echo $! >> {pids}; wait) & "
               f"echo $$ >> {pids}; wait")
    push(r, "tree")
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 3, what="the job's pids")
    procs = [int(p) for p in pids.read_text().split()]
    assert all(alive(p) for p in procs)
    w.signal(signal.SIGKILL)
    w.wait(5)
    wait_for(lambda: not any(alive(p) for p in procs), timeout=5, what="the job's processes to die")


def test_exec_child_holds_no_redis_socket(rs, r, spawn, tmp_path):
    out = tmp_path / "fds"
    worker(spawn, rs, "-c", "2", "-e", f"fds=ls /proc/self/fd > {out}")
    wait_done(r, push(r, "fds"))
    fds = sorted(int(x) for x in out.read_text().split())
    assert fds == [0, 1, 2, 3]  # 3 is ls's own directory handle


# ---- lost connections ----

def test_main_connection_killed_fibers_rename(rs, r, spawn):
    w = worker(spawn, rs, "-c", "3")
    old = clients_named(r, "bg-worker:")[0]["id"]
    r.client_kill_filter(_id=old)
    def renamed():
        mains = clients_named(r, "bg-worker:")
        if len(mains) != 1 or mains[0]["id"] == old:
            return False
        fibers = clients_named(r, "bg-worker-fiber:")
        return len(fibers) == 3 and all(f["name"] == "bg-worker-fiber:" + mains[0]["id"]
                                        for f in fibers)
    wait_for(renamed, what="fibers to rename after the main connection's new ID")
    assert "err" not in wait_done(r, push(r, "bg.noop"))
    assert w.log().count("lost the connection") == 1


def test_fiber_connection_killed_mid_job_reowns_its_attempt(rs, r, spawn):
    worker(spawn, rs, "-c", "1", "-e", "nap=sleep 1")
    jid = push(r, "nap")
    a0 = wait_for(lambda: running(r, jid), what="the job to start")
    r.client_kill_filter(_id=a0["wrk"])
    a1 = wait_for(lambda: (lambda a: a if a and a["wrk"] != a0["wrk"] else None)(running(r, jid)),
                  timeout=3, what="the attempt to be re-owned")
    assert a1["id"] == a0["id"]
    assert a1["wrk"] in {c["id"] for c in clients_named(r, "bg-worker-fiber:")}
    a = wait_done(r, jid)
    assert "err" not in a and a["id"] == a0["id"]
    assert len(attempts_of(r, jid)) == 1


def test_redis_restart_worker_reconnects_and_goes_on(rs, r, spawn):
    w = worker(spawn, rs, "-c", "2")
    wait_done(r, push(r, "bg.noop"))
    rs.restart()
    r2 = rs.client()
    wait_for(lambda: len(clients_named(r2, "bg-worker-fiber:")) == 2, what="fibers to come back")
    assert "err" not in wait_done(r2, push(r2, "bg.noop"))  # scripts re-loaded after NOSCRIPT
    assert w.log().count("lost the connection") == 1
    assert "reconnected" in w.log()
    assert w.proc.poll() is None


def test_redis_hang_is_noticed(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    os.kill(rs.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: "stopped answering" in w.log(), timeout=10, what="the hang to be noticed")
    finally:
        os.kill(rs.proc.pid, signal.SIGCONT)
    assert "err" not in wait_done(r, push(r, "bg.noop"), timeout=15)
    wait_for(lambda: "reconnected" in w.log(), what="the reconnection to be logged")
    # Lost and restored, each said once, at Info (docs/operations.md#logs).
    assert w.log().count("lost the connection") == 1, w.log()
    assert re.search(r" I worker: lost the connection to Redis at .*stopped answering", w.log())


# ---- no loss ----

def test_sigkill_in_a_loop_loses_no_job(rs, r, spawn):
    """A first chaos test: workers are SIGKILLed at random while jobs flow. Without a watcher a
    dead worker's attempts stay in processing, so every job must be either completed, still
    ready, or held by exactly one attempt in processing: never nowhere, never run twice."""
    rnd = random.Random(1234)
    ids = [push(r, "bg.sleep", '{"ms":%d}' % rnd.choice([0, 1, 5])) for _ in range(1500)]
    for _ in range(12):
        w = spawn([exe("bg-worker"), "-r", rs.url, "-c", "4"])
        time.sleep(rnd.uniform(0.05, 0.3))
        w.signal(signal.SIGKILL)
        w.wait(5)
    spawn([exe("bg-worker"), "-r", rs.url, "-c", "4"])
    wait_for(lambda: r.llen("bg:ready:default") == 0, timeout=60, what="the queue to drain")
    done = set()
    for aid in r.zrange("bg:completed:default", 0, -1):
        done.add(r.hget(f"bg:attempts:{aid}", "job"))
    held = [r.hget(f"bg:attempts:{aid}", "job") for aid in r.smembers("bg:processing:default")]
    assert len(held) == len(set(held))
    wait_for(lambda: len(done) + len(held) >= len(ids) or
             len(set(r.hget(f"bg:attempts:{a}", "job") for a in
                     r.zrange("bg:completed:default", 0, -1))) + len(held) >= len(ids),
             timeout=30, what="the last jobs to finish")
    done = set(r.hget(f"bg:attempts:{a}", "job") for a in r.zrange("bg:completed:default", 0, -1))
    held = set(r.hget(f"bg:attempts:{a}", "job") for a in r.smembers("bg:processing:default"))
    print("chaos: completed", len(done), "held by dead workers", len(held))
    assert not (done & held)
    assert done | held == set(ids)
    assert r.zcard("bg:completed:default") == len(done)  # no job completed twice
    assert int(r.hget("bg:stats:default", "completed")) == len(done)


def test_reconnected_fiber_does_not_revive_an_attempt_deleted_meanwhile(rs, r, spawn):
    """The attempt hash of a running job is deleted by another program, then the fiber's
    connection is killed: on reconnecting the fiber must not re-own it (that would write a stub
    attempt holding only wrk and rid, later recorded as completed without its job, queue or
    start): it says so and drops the result when the job ends."""
    w = worker(spawn, rs, "-c", "1", "-e", "nap=sleep 0.5")
    jid = push(r, "nap")
    a0 = wait_for(lambda: running(r, jid), what="the job to start")
    r.delete(f"bg:attempts:{a0['id']}")
    r.client_kill_filter(_id=a0["wrk"])
    wait_for(lambda: f"[{a0['id']}]" in w.log() and "dropped" in w.log(), timeout=5,
             what="the fiber to drop the job's result")
    assert not r.exists(f"bg:attempts:{a0['id']}"), r.hgetall(f"bg:attempts:{a0['id']}")
    # Past the job's end, with another job through the same fiber: nothing was recorded.
    later = push(r, "bg.noop")
    wait_done(r, later)
    assert not r.exists(f"bg:attempts:{a0['id']}"), r.hgetall(f"bg:attempts:{a0['id']}")
    assert [r.hget(f"bg:attempts:{a}", "job") for a in r.zrange("bg:completed:default", 0, -1)] \
        == [later]
