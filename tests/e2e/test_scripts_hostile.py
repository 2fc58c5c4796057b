"""Check, then write (docs/claim.md): every bg script but the claim makes all its checks before
its first write, because Redis never rolls a script back. Here another program breaks a key a
script is about to write (a string where a sorted set belongs, a counter that is no number...)
and the test proves, from Redis alone, that nothing was half done: the attempt stays in
processing until the key is repaired, then its outcome is recorded and the job is where it
belongs; bg-cli refuses with one line and changes nothing; the watcher's due-job move and trim
do all or nothing. Real redis-server, real programs."""

import os
import signal
import time
import uuid

import pytest

import invariant
from conftest import cli, wait_for
from test_watcher import watcher
from test_worker import push, server_ms, worker

Q = "q9"


def gate_worker(spawn, rs, tmp_path, *args):
    """A worker whose 'gate' jobs wait until the test writes their exit status to a file: the
    test breaks a key while the job runs, then lets it end."""
    gate = tmp_path / "gate"
    cmd = f'while [ ! -s {gate} ]; do sleep 0.01; done; exit "$(cat {gate})"'
    return worker(spawn, rs, "-q", Q, "-c", "1", "-e", f"gate={cmd}", *args), gate


def running(r, queue=Q):
    return wait_for(lambda: r.smembers(f"bg:processing:{queue}"), what="the job to start").pop()


def count(log, text):
    return sum(1 for line in log.splitlines() if text in line)


def jps_keys(r, seconds=60):
    """Every jps slot key of Q from now to seconds ahead."""
    first = server_ms(r) // 100
    return [f"bg:jps:{Q}:{s}" for s in range(first, first + seconds * 10)]


def rename_away(key):
    """Breaks key while keeping what it held: renamed aside, a string put in its place."""
    def brk(r):
        if r.exists(key):
            r.rename(key, key + ":saved")
        r.set(key, "another program's string")

    def repair(r):
        r.delete(key)
        if r.exists(key + ":saved"):
            r.rename(key + ":saved", key)
    return brk, repair


def set_jps(r):
    p = r.pipeline(transaction=False)
    for k in jps_keys(r):
        p.set(k, "not a number")
    p.execute()


def del_jps(r):
    r.delete(*[k for k in r.scan_iter(f"bg:jps:{Q}:*") if r.type(k) == "string"
               and r.get(k) == "not a number"])


# Each key finish.lua writes, broken while a job runs: (exit status of the job, its rty,
# break, repair, where the job ends, the key the worker names).
FINISH_CASES = {
    "scheduled": ("3", "5", *rename_away(f"bg:scheduled:{Q}"), "scheduled", f"bg:scheduled:{Q}"),
    "dead": ("3", "0", *rename_away(f"bg:dead:{Q}"), "dead", f"bg:dead:{Q}"),
    "failed": ("3", "5", lambda r: r.hset(f"bg:failed:{Q}", "a", "b"),
               lambda r: r.delete(f"bg:failed:{Q}"), "scheduled", f"bg:failed:{Q}"),
    "stats-failed": ("3", "5", lambda r: r.hset(f"bg:stats:{Q}", "failed", "1.5"),
                     lambda r: r.hset(f"bg:stats:{Q}", "failed", "7"), "scheduled",
                     f"bg:stats:{Q}"),
    "stats-dead": ("3", "0", lambda r: r.hset(f"bg:stats:{Q}", "dead", "007"),
                   lambda r: r.hset(f"bg:stats:{Q}", "dead", "7"), "dead", f"bg:stats:{Q}"),
    "stats-type": ("0", "5", *rename_away(f"bg:stats:{Q}"), "completed", f"bg:stats:{Q}"),
    "stats-completed": ("0", "5", lambda r: r.hset(f"bg:stats:{Q}", "completed", "abc"),
                        lambda r: r.hset(f"bg:stats:{Q}", "completed", "7"), "completed",
                        f"bg:stats:{Q}"),
    "completed": ("0", "5", lambda r: r.sadd(f"bg:completed:{Q}", "x"),
                  lambda r: r.delete(f"bg:completed:{Q}"), "completed", f"bg:completed:{Q}"),
    "jps": ("0", "5", set_jps, del_jps, "completed", f"bg:jps:{Q}:"),
    "processing": ("0", "5", *rename_away(f"bg:processing:{Q}"), "completed",
                   f"bg:processing:{Q}"),
}


@pytest.mark.parametrize("case", list(FINISH_CASES))
def test_worker_keeps_an_outcome_it_cannot_record_until_the_key_is_repaired(
        rs, r, spawn, tmp_path, case):
    status, rty, brk, repair, ends, key = FINISH_CASES[case]
    w, gate = gate_worker(spawn, rs, tmp_path)
    jid = push(r, "gate", queue=Q, rty=rty)
    aid = running(r)
    brk(r)
    stats = f"bg:stats:{Q}"
    stats0 = r.hgetall(stats) if r.type(stats) == "hash" else r.type(stats)
    gate.write_text(status)
    wait_for(lambda: count(w.log(), "cannot record its outcome"), what="the refusal in the log")
    line = [ln for ln in w.log().splitlines() if "cannot record its outcome" in ln][0]
    assert aid in line and key in line, line
    # Sent again with each round trip, refused each time, logged once; nothing touched.
    time.sleep(1.5)
    log = w.log()
    assert count(log, "cannot record its outcome") == 1, log
    assert "ERR" not in log and "WRONGTYPE" not in log, log
    proc = f"bg:processing:{Q}" + (":saved" if case == "processing" else "")
    assert r.sismember(proc, aid)
    assert not r.hexists(f"bg:attempts:{aid}", "fin")
    assert r.hget(f"bg:jobs:{jid}", "att") == "1"
    assert (r.hgetall(stats) if r.type(stats) == "hash" else r.type(stats)) == stats0
    for place in ("scheduled", "dead", "completed", "failed"):
        k = f"bg:{place}:{Q}"
        assert r.type(k) != "zset" or (r.zscore(k, jid) is None and r.zscore(k, aid) is None)
    # Repaired: the outcome is recorded once, the job is where it belongs.
    repair(r)
    wait_for(lambda: invariant.processing_empty(r, [Q]), what="the outcome to be recorded")
    counts = invariant.check(r, [jid], [Q])
    assert counts == {ends: 1}, counts
    if case == "stats-failed":
        assert r.hget(f"bg:stats:{Q}", "failed") == "8"
    if case == "stats-dead":
        assert r.hget(f"bg:stats:{Q}", "dead") == "8"
    if case == "stats-completed":
        assert r.hget(f"bg:stats:{Q}", "completed") == "8"
    # The worker goes on: the next job runs and completes.
    gate.write_text("0")
    nxt = push(r, "gate", queue=Q)
    wait_for(lambda: invariant.places(r, [nxt], [Q])[nxt] == ["completed"],
             what="the next job to complete")
    assert w.proc.poll() is None
    assert len(w.log().splitlines()) < 200


def test_item_4_a_failing_job_with_retries_left_on_a_broken_scheduled_set(rs, r, spawn, tmp_path):
    """Issue 6 item 4: SET NS:scheduled:q9 x, then a failing job with retries left on q9. The
    attempt used to leave processing with the job in no key at all."""
    w, gate = gate_worker(spawn, rs, tmp_path)
    jid = push(r, "gate", queue=Q, rty="3")
    aid = running(r)
    r.set(f"bg:scheduled:{Q}", "x")
    gate.write_text("1")
    wait_for(lambda: count(w.log(), f"bg:scheduled:{Q}"), what="the bad key in the log")
    assert r.sismember(f"bg:processing:{Q}", aid)
    assert r.zcard(f"bg:failed:{Q}") == 0 and not r.exists(f"bg:dead:{Q}")
    r.delete(f"bg:scheduled:{Q}")
    wait_for(lambda: r.zscore(f"bg:scheduled:{Q}", jid), what="the job to be scheduled")
    assert invariant.check(r, [jid], [Q]) == {"scheduled": 1}
    assert r.zrange(f"bg:failed:{Q}", 0, -1) == [aid]
    assert r.hget(f"bg:stats:{Q}", "failed") == "1"


@pytest.mark.parametrize("status, ends", [("0", "completed"), ("3", "dead")])
def test_a_job_key_overwritten_while_it_runs_ends_recorded(rs, r, spawn, tmp_path, status, ends):
    """A job key of another type is a job that cannot run: its attempt is recorded, a failed one
    buries the UUID in dead (bg's quarantine, as the claim does), the key is left as it is."""
    w, gate = gate_worker(spawn, rs, tmp_path)
    jid = push(r, "gate", queue=Q, rty="5")
    aid = running(r)
    r.delete(f"bg:jobs:{jid}")
    r.set(f"bg:jobs:{jid}", "another program's string")
    gate.write_text(status)
    wait_for(lambda: invariant.processing_empty(r, [Q]), what="the outcome to be recorded")
    assert invariant.check(r, [jid], [Q]) == {ends: 1}
    assert r.get(f"bg:jobs:{jid}") == "another program's string"
    assert r.hget(f"bg:attempts:{aid}", "fin")
    assert w.proc.poll() is None and "ERR" not in w.log()


def test_an_attempt_key_overwritten_while_it_runs_is_dropped_and_the_worker_goes_on(
        rs, r, spawn, tmp_path):
    w, gate = gate_worker(spawn, rs, tmp_path)
    push(r, "gate", queue=Q)
    aid = running(r)
    r.delete(f"bg:attempts:{aid}")
    r.set(f"bg:attempts:{aid}", "another program's string")
    gate.write_text("0")
    wait_for(lambda: invariant.processing_empty(r, [Q]), what="the junk to leave processing")
    wait_for(lambda: count(w.log(), "not an attempt any more"), what="the log line")
    nxt = push(r, "gate", queue=Q)
    wait_for(lambda: r.zcard(f"bg:completed:{Q}") == 1 and invariant.processing_empty(r, [Q]),
             what="the next job to complete")
    assert invariant.check(r, [nxt], [Q]) == {"completed": 1}
    assert r.get(f"bg:attempts:{aid}") == "another program's string"
    log = w.log()
    assert "ERR" not in log and len(log.splitlines()) < 50, log


def test_a_stopping_worker_leaves_an_unrecordable_shutdown_for_the_watcher(rs, r, spawn, tmp_path):
    """The shutdown outcome puts the job back at the head of its ready list: with that list
    broken, the attempt stays in processing when the worker exits, and a watcher fails it once
    the list is repaired."""
    w, gate = gate_worker(spawn, rs, tmp_path, "--shutdown-timeout", "0.3")
    jid = push(r, "gate", queue=Q, rty="5")
    aid = running(r)
    r.set(f"bg:ready:{Q}", "x")
    w.signal(signal.SIGTERM)
    assert w.wait(20) == 0
    assert "exiting with its outcome unrecorded" in w.log(), w.log()
    assert r.sismember(f"bg:processing:{Q}", aid)
    assert r.zcard(f"bg:failed:{Q}") == 0 and r.hget(f"bg:jobs:{jid}", "att") == "1"
    r.delete(f"bg:ready:{Q}")
    watcher(spawn, rs, "-q", Q, "-i", "0.1", "--grace", "0.2")
    wait_for(lambda: invariant.processing_empty(r, [Q]), what="the watcher to fail it")
    assert invariant.check(r, [jid], [Q]) == {"scheduled": 1}
    assert r.hget(f"bg:attempts:{aid}", "err") == "Worker Timeout"


# ---- the watcher's finish ----

WATCHER_CASES = {
    "scheduled": (lambda r: r.set(f"bg:scheduled:{Q}", "x"),
                  lambda r: r.delete(f"bg:scheduled:{Q}"), f"bg:scheduled:{Q}"),
    "failed": (lambda r: r.hset(f"bg:failed:{Q}", "a", "b"),
               lambda r: r.delete(f"bg:failed:{Q}"), f"bg:failed:{Q}"),
    "stats": (lambda r: r.hset(f"bg:stats:{Q}", "failed", "x"),
              lambda r: r.hset(f"bg:stats:{Q}", "failed", "4"), f"bg:stats:{Q}"),
}


@pytest.mark.parametrize("case", list(WATCHER_CASES))
def test_watcher_leaves_an_attempt_it_cannot_fail_until_the_key_is_repaired(rs, r, spawn, case):
    brk, repair, key = WATCHER_CASES[case]
    w = worker(spawn, rs, "-q", Q, "-c", "1")
    jid = push(r, "bg.sleep", '{"ms":60000}', queue=Q, rty="5")
    aid = running(r)
    w.proc.kill()
    w.wait()
    brk(r)
    wt = watcher(spawn, rs, "-q", Q, "-i", "0.1", "--grace", "0.2")
    # One line a minute per broken key, whichever of the watcher's steps met it first (its
    # due-job move and its trim refuse to touch it too).
    wait_for(lambda: count(wt.log(), key), what="the bad key in the log")
    time.sleep(1.0)  # some ten intervals, each trying again
    log = wt.log()
    assert count(log, key) == 1, log
    assert "Worker Timeout" not in log and "ERR" not in log, log
    assert r.sismember(f"bg:processing:{Q}", aid)
    assert not r.hexists(f"bg:attempts:{aid}", "err")
    assert not r.hexists(f"bg:jobs:{jid}", "itr")
    repair(r)
    wait_for(lambda: invariant.processing_empty(r, [Q]), what="the attempt to be failed")
    assert invariant.check(r, [jid], [Q]) == {"scheduled": 1}
    assert r.zrange(f"bg:failed:{Q}", 0, -1) == [aid]
    assert r.hget(f"bg:jobs:{jid}", "itr") == "1"
    assert count(wt.log(), "Worker Timeout") == 1
    if case == "stats":
        assert r.hget(f"bg:stats:{Q}", "failed") == "5"
    assert wt.proc.poll() is None and len(wt.log().splitlines()) < 200


# ---- bg-cli ----

def snapshot(r):
    """Every key and what it holds, to prove nothing changed."""
    out = {}
    for k in sorted(r.scan_iter("*")):
        t = r.type(k)
        out[k] = (t, r.get(k) if t == "string" else r.hgetall(k) if t == "hash"
                  else r.lrange(k, 0, -1) if t == "list" else sorted(r.smembers(k)) if t == "set"
                  else r.zrange(k, 0, -1, withscores=True))
    return out


def refused(res, key):
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and key in lines[0] and "WRONGTYPE" not in lines[0], lines
    return lines[0]


def dead_job(r, queue=Q):
    jid = push(r, "bg.fail", queue=queue, att="4", rty="3", itr="1")
    r.lrem(f"bg:ready:{queue}", 0, jid)
    r.zadd(f"bg:dead:{queue}", {jid: 1})
    return jid


def test_retry_job_with_a_broken_ready_list_changes_nothing(rs, r):
    jid = dead_job(r)
    r.set(f"bg:ready:{Q}", "x")
    before = snapshot(r)
    refused(cli(rs, "retry", jid), f"bg:ready:{Q}")
    assert snapshot(r) == before
    r.delete(f"bg:ready:{Q}")
    assert cli(rs, "retry", jid).returncode == 0
    assert r.lrange(f"bg:ready:{Q}", 0, -1) == [jid] and r.hget(f"bg:jobs:{jid}", "att") == "0"


def test_retry_job_with_a_job_key_of_another_type_changes_nothing(rs, r):
    jid = str(uuid.uuid4())
    r.set(f"bg:jobs:{jid}", "x")
    r.zadd(f"bg:dead:{Q}", {jid: 1})
    before = snapshot(r)
    refused(cli(rs, "retry", jid), f"bg:jobs:{jid}")
    assert snapshot(r) == before


def test_retry_dead_with_junk_entries_moves_the_jobs_and_keeps_the_junk(rs, r):
    jobs = [dead_job(r) for _ in range(3)]
    stringy = str(uuid.uuid4())
    r.set(f"bg:jobs:{stringy}", "x")
    r.zadd(f"bg:dead:{Q}", {stringy: 0, "not a job at all": 0, "f" * 300: 2})
    res = cli(rs, "retry", "--dead", "-q", Q)
    assert res.returncode == 1, res
    assert stringy in res.stderr and "kept" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) <= 2, res.stderr
    assert sorted(r.lrange(f"bg:ready:{Q}", 0, -1)) == sorted(jobs)
    assert r.zrange(f"bg:dead:{Q}", 0, -1) == [stringy]  # the junk without a job is dropped
    assert r.get(f"bg:jobs:{stringy}") == "x"
    assert invariant.check(r, jobs, [Q]) == {"ready": 3}


def test_retry_dead_with_a_broken_ready_list_changes_nothing(rs, r):
    for _ in range(3):
        dead_job(r)
    r.set(f"bg:ready:{Q}", "x")
    before = snapshot(r)
    refused(cli(rs, "retry", "--dead", "-q", Q), f"bg:ready:{Q}")
    assert snapshot(r) == before


@pytest.mark.parametrize("where", ["ready", "scheduled", "job"])
def test_dequeue_against_broken_keys_changes_nothing(rs, r, where):
    jid = push(r, "bg.noop", queue=Q)
    key = {"ready": f"bg:scheduled:{Q}", "scheduled": f"bg:ready:{Q}",
           "job": f"bg:jobs:{jid}"}[where]
    if where == "scheduled":  # the job waits in scheduled, its ready list is broken
        r.delete(f"bg:ready:{Q}")
        r.zadd(f"bg:scheduled:{Q}", {jid: 1})
    if where == "job":
        r.delete(key)
    r.set(key, "x")
    before = snapshot(r)
    refused(cli(rs, "dequeue", jid), key)
    assert snapshot(r) == before


@pytest.mark.parametrize("key, args", [
    (f"bg:ready:{Q}", []),
    (f"bg:scheduled:{Q}", ["--in", "60"]),
    ("bg:queues", []),
])
def test_enqueue_against_broken_keys_writes_nothing(rs, r, key, args):
    r.set(key, "x")
    before = snapshot(r)
    refused(cli(rs, "enqueue", "bg.noop", "-q", Q, *args), key)
    assert snapshot(r) == before
    res = cli(rs, "enqueue", "bg.noop", "-", "-q", Q, *args, input="{}\n{}\n{}\n")
    assert res.returncode == 1 and key in res.stderr, res
    assert snapshot(r) == before  # no job hash half-written


# ---- the watcher's due-job move and trim ----

def test_due_jobs_move_all_or_nothing_and_other_queues_proceed(rs, r, spawn):
    def due(queue, n):
        ids = [str(uuid.uuid4()) for _ in range(n)]
        for jid in ids:
            r.hset(f"bg:jobs:{jid}", mapping={"que": queue, "cls": "bg.noop", "arg": "{}",
                                              "qat": 0, "att": 1})
            r.zadd(f"bg:scheduled:{queue}", {jid: 1})
        return ids
    broken, fine = due("qa", 5), due("qb", 5)
    stringy = str(uuid.uuid4())
    r.set(f"bg:jobs:{stringy}", "x")  # a due entry whose job key is a string moves like any
    r.zadd("bg:scheduled:qb", {stringy: 1})
    r.set("bg:ready:qa", "x")
    wt = watcher(spawn, rs, "-q", "qa,qb", "-i", "0.1")
    wait_for(lambda: r.llen("bg:ready:qb") == 6, what="qb's due jobs to move")
    wait_for(lambda: count(wt.log(), "bg:ready:qa"), what="the bad key in the log")
    time.sleep(0.5)
    assert sorted(r.zrange("bg:scheduled:qa", 0, -1)) == sorted(broken)
    assert count(wt.log(), "bg:ready:qa") == 1
    r.delete("bg:ready:qa")
    wait_for(lambda: r.type("bg:ready:qa") == "list" and r.llen("bg:ready:qa") == 5,
             what="qa's due jobs to move once repaired", timeout=15)
    assert invariant.check(r, broken + fine, ["qa", "qb"]) == {"ready": 10}
    assert wt.proc.poll() is None and "ERR" not in wt.log()


def test_trim_deletes_all_of_a_batch_or_nothing(rs, r, spawn):
    """A completed entry whose attempt key is a string used to stop trim.lua after its ZREM:
    the entries gone, their attempts and jobs left behind for ever."""
    keep = {}
    for q in ("qa", "qb"):
        for _ in range(5):
            jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
            r.hset(f"bg:jobs:{jid}", mapping={"que": q, "cls": "bg.noop"})
            r.hset(f"bg:attempts:{aid}", mapping={"job": jid, "que": q, "fin": 1})
            r.zadd(f"bg:completed:{q}", {aid: 1})
            keep[aid] = jid
    junk = str(uuid.uuid4())
    r.set(f"bg:attempts:{junk}", "another program's string")
    r.zadd("bg:completed:qa", {junk: 1})
    r.set("bg:failed:qb", "x")  # qb's failed set is broken: its trim refuses, the rest goes on
    r.sadd("bg:queues", "qa", "qb")
    wt = watcher(spawn, rs, "-q", "qa,qb", "-i", "0.1", "--retain-completed", "1s")
    wait_for(lambda: not r.exists("bg:completed:qa", "bg:completed:qb"), what="the trim")
    for aid, jid in keep.items():
        assert not r.exists(f"bg:attempts:{aid}", f"bg:jobs:{jid}")
    assert not r.exists(f"bg:attempts:{junk}")
    wait_for(lambda: count(wt.log(), "bg:failed:qb"), what="the bad key in the log")
    assert r.get("bg:failed:qb") == "x"
    time.sleep(0.5)
    assert count(wt.log(), "bg:failed:qb") == 1 and "ERR" not in wt.log()
    assert wt.proc.poll() is None
