"""bg-watcher against data another program wrote into its keys: attempts whose owner (`wrk`,
`rid`) is longer than bg writes, not a number, empty, NUL-bearing, or a live client that is not
a fiber; attempt keys, processing sets, scheduled sets and `NS:queues` of the wrong type; junk in
the history sets. Each attempt is judged like any other (its owner is not a live fiber: failed
once as `Worker Timeout`), junk leaves processing, the watcher never exits, its log stays
bounded, and real jobs on the same and other queues are served. Real redis-server, real
programs."""

import time
import uuid

from conftest import clients_named, wait_for
from invariant import check, new_jobs, processing_empty
from test_watcher import watcher
from test_worker import server_ms, worker

FAST = ("-i", "0.1", "--grace", "0.3")


def forge_attempt(r, queue, fields, job_fields=None):
    """A job and an attempt of it in processing, as another tool might write them; returns
    (job, attempt)."""
    jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
    job = {"que": queue, "cls": "bg.noop", "arg": "{}", "qat": "0", "att": "1", "rty": "0"}
    job.update(job_fields or {})
    r.hset(f"bg:jobs:{jid}", mapping=job)
    r.hset(f"bg:attempts:{aid}", mapping=dict({"job": jid, "que": queue, "sta": "0"}, **fields))
    r.sadd(f"bg:processing:{queue}", aid)
    return jid, aid


def fiber_ids(r):
    return [int(c["id"]) for c in clients_named(r, "bg-worker-fiber:")]


def assert_alive(*procs):
    for p in procs:
        assert p.proc.poll() is None, f"{p.args[0]} exited {p.proc.returncode}:\n{p.log()}"


def lines(p):
    return p.log().splitlines()


def stops_clean(*procs):
    """Each program exits 0 on TERM, with no sanitizer report (the ASan suite runs these)."""
    for p in procs:
        rc = p.stop()
        assert rc == 0 and "Sanitizer" not in p.log(), f"exit {rc}:\n{p.log()[-4000:]}"


def test_attempts_with_any_owner_fail_once_as_worker_timeout(rs, r, spawn):
    """Owners bg never writes: each attempt is failed exactly once (the finish guard must be
    the whole value, not a copy cut to a buffer), its job buried (rty 0), and nothing is judged
    again. Real jobs keep flowing through a live worker meanwhile."""
    w = worker(spawn, rs, "-c", "2", "-q", "h,other")
    [fiber] = fiber_ids(r)[:1]
    run_id = r.info("server")["run_id"]
    me = r.client_id()  # a live connection, but not a fiber
    owners = {
        "long number": {"wrk": "9" * 100},
        "long text": {"wrk": "x" * 200},
        "1 MiB": {"wrk": "w" * (1 << 20)},
        "not a number": {"wrk": "abc"},
        "empty": {"wrk": ""},
        "absent": {},
        "NUL-bearing": {"wrk": f"{fiber}\x00junk"},
        "leading zero": {"wrk": f"0{fiber}"},
        "live non-fiber client": {"wrk": str(me)},
        "huge rid, live fiber": {"wrk": str(fiber), "rid": "r" * 100000},
        "run_id and more": {"wrk": str(fiber), "rid": run_id + "x" * 50},
    }
    forged = {name: forge_attempt(r, "h", f) for name, f in owners.items()}
    # One attempt a live fiber owns (as claim.lua writes it): never judged stale.
    _, kept = forge_attempt(r, "h", {"wrk": str(fiber), "rid": run_id[:12]})
    real = new_jobs(r, 50, queue="h") + new_jobs(r, 50, queue="other")
    wt = watcher(spawn, rs, *FAST, "--max-interruptions", "1")

    aids = {aid for _, aid in forged.values()}
    wait_for(lambda: aids <= set(r.zrange("bg:failed:h", 0, -1)), timeout=10,
             what="every forged attempt to fail")
    wait_for(lambda: r.zcard("bg:completed:h") + r.zcard("bg:completed:other") == 100,
             what="the real jobs to complete")
    time.sleep(1)  # ten more intervals: nothing may be judged twice
    for name, (jid, aid) in forged.items():
        a = r.hgetall(f"bg:attempts:{aid}")
        assert a["err"] == "Worker Timeout", (name, a)
        assert not r.sismember("bg:processing:h", aid), name
        assert r.zscore("bg:dead:h", jid) is not None, name
        assert r.hget(f"bg:jobs:{jid}", "itr") == "1", name  # once, not once an interval
    assert r.smembers("bg:processing:h") == {kept}
    assert r.hget("bg:stats:h", "failed") == str(len(forged))
    assert r.hget("bg:stats:h", "dead") == str(len(forged))
    timeouts = [ln for ln in lines(wt) if "Worker Timeout" in ln]
    assert len(timeouts) == len(forged), "\n".join(timeouts)
    assert check(r, real, ["h", "other"]) == {"completed": 100}
    assert_alive(w, wt)
    assert len(lines(wt)) < 50, wt.log()
    stops_clean(wt, w)


def test_attempt_key_of_the_wrong_type_leaves_processing(rs, r, spawn):
    """Members of a processing set whose attempt key is a string, list, set or zset: no worker
    owns them and none can finish them. They leave processing at the next look, one log line
    per processing set, and the queue's real jobs are served."""
    w = worker(spawn, rs, "-c", "2", "-q", "j")
    junk = []
    for i in range(30):
        aid = str(uuid.uuid4())
        key = f"bg:attempts:{aid}"
        [lambda: r.set(key, "x"), lambda: r.rpush(key, "x"), lambda: r.sadd(key, "x"),
         lambda: r.zadd(key, {"x": 1})][i % 4]()
        junk.append(aid)
    r.sadd("bg:processing:j", *junk)
    _, live = forge_attempt(r, "j", {"wrk": str(fiber_ids(r)[0])})
    real = new_jobs(r, 40, queue="j")
    wt = watcher(spawn, rs, *FAST)
    wait_for(lambda: r.smembers("bg:processing:j") == {live}, timeout=10,
             what="the junk members to leave processing")
    wait_for(lambda: r.zcard("bg:completed:j") == 40, what="the real jobs to complete")
    time.sleep(0.5)
    for aid in junk:  # the other program's keys are its own: left as they are
        assert r.exists(f"bg:attempts:{aid}")
        assert r.zscore("bg:failed:j", aid) is None
    said = [ln for ln in lines(wt) if "not a hash" in ln]
    assert len(said) == 1, wt.log()
    assert "dropping its attempt from processing" in said[0]
    assert check(r, real, ["j"]) == {"completed": 40}
    assert_alive(w, wt)
    assert len(lines(wt)) < 50, wt.log()
    stops_clean(wt, w)


def test_broken_keys_of_one_queue_leave_the_others_served(rs, r, spawn):
    """A processing set that is a string on one queue and a list on another, a scheduled set
    that is a hash on a third: each is reported once a minute at most (here: once), and the
    watcher goes on serving the healthy queue: due jobs move, a vanished worker's attempt
    fails."""
    r.set("bg:processing:p1", "x")
    r.rpush("bg:processing:p2", "x")
    r.hset("bg:scheduled:s1", "x", "1")
    r.sadd("bg:queues", "p1", "p2", "s1", "ok")
    jid, aid = forge_attempt(r, "ok", {"wrk": "123456789"})  # no such connection
    due = str(uuid.uuid4())
    r.hset(f"bg:jobs:{due}", mapping={"que": "ok", "cls": "bg.noop", "arg": "{}", "qat": "0"})
    r.zadd("bg:scheduled:ok", {due: server_ms(r) - 1000})
    wt = watcher(spawn, rs, *FAST)
    wait_for(lambda: r.zscore("bg:failed:ok", aid) is not None, what="the stale attempt to fail")
    wait_for(lambda: due in r.lrange("bg:ready:ok", 0, -1), what="the due job to move")
    time.sleep(1.5)  # fifteen intervals
    log = wt.log()
    assert "bg:processing:p1 is a string, not a set" in log
    for needle in ("bg:processing:p1", "bg:processing:p2", "due jobs of s1"):
        said = [ln for ln in lines(wt) if needle in ln]
        assert len(said) == 1, (needle, log)
    assert "bg:processing:p2 is a list, not a set" in log
    assert_alive(wt)
    assert len(lines(wt)) < 30, log
    stops_clean(wt)


def test_queues_set_of_the_wrong_type_falls_back_to_scan(rs, r, spawn):
    """NS:queues is a string: the watcher says so once, finds the queues by their keys, and
    serves them (a due job moves, a vanished worker's attempt fails)."""
    r.set("bg:queues", "not a set")
    jid, aid = forge_attempt(r, "found", {"wrk": "abc"})
    due = str(uuid.uuid4())
    r.hset(f"bg:jobs:{due}", mapping={"que": "found", "cls": "bg.noop", "arg": "{}", "qat": "0"})
    r.zadd("bg:scheduled:found", {due: server_ms(r) - 1000})
    wt = watcher(spawn, rs, *FAST)
    wait_for(lambda: r.zscore("bg:failed:found", aid) is not None,
             what="the stale attempt to fail")
    wait_for(lambda: r.lrange("bg:ready:found", 0, -1) == [due], what="the due job to move")
    time.sleep(1)
    said = [ln for ln in lines(wt) if "bg:queues" in ln]
    assert len(said) == 1 and "bg:queues is a string, not a set" in said[0], wt.log()
    assert r.get("bg:queues") == "not a set"  # another program's key: left as it is
    assert_alive(wt)
    assert len(lines(wt)) < 20, wt.log()
    stops_clean(wt)


def test_junk_in_history_and_scheduled_sets(rs, r, spawn):
    """Members no bg program wrote in scheduled, completed, failed and dead (not UUIDs, 64 KiB
    blobs, attempt keys of the wrong type), with retention 0 so the watcher trims them: it
    never exits, logs a bounded number of lines, and real jobs flow on this queue and another
    one."""
    blob = "b" * 65536
    for kind in ("completed", "failed", "dead"):
        r.zadd(f"bg:{kind}:z", {"junk": 1, blob: 2, "12": 3})
    r.set("bg:attempts:junk", "x")  # completed/failed members name attempts
    r.zadd("bg:scheduled:z", {"junk": 1, blob: 2})
    w = worker(spawn, rs, "-c", "2", "-q", "z,other")
    wt = watcher(spawn, rs, *FAST, "--retain-completed", "0", "--retain-failed", "0",
                 "--retain-dead", "0")
    new_jobs(r, 30, queue="z")
    new_jobs(r, 30, queue="other")
    wait_for(lambda: r.zcard("bg:scheduled:z") == 0, what="the junk to be due and moved")
    wait_for(lambda: processing_empty(r, ["z", "other"]) and
             not r.llen("bg:ready:z") and not r.llen("bg:ready:other"),
             what="the real jobs to run")
    time.sleep(1)
    # Completed history is trimmed at retention 0: the real jobs' records may be gone, so
    # count from the lifetime counters.
    done = int(r.hget("bg:stats:z", "completed") or 0) + \
        int(r.hget("bg:stats:other", "completed") or 0)
    assert done == 60
    assert_alive(w, wt)
    assert len(lines(wt)) < 30, wt.log()
    assert len(lines(w)) < 30, w.log()
    stops_clean(wt, w)
