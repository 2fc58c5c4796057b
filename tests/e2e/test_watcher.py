"""bg-watcher end to end (docs/watcher.md): due jobs move once and on time, however many watchers
run; the attempts of workers that died fail with `Worker Timeout` within grace + interval and are
retried or buried; a fiber that merely lost its connection keeps its attempt; a Redis restart
cannot hide a dead worker behind a recycled client ID; retention trims what it should and
nothing else; a job that kills its worker ends dead. Everything with real programs, killed with
real signals, against a real redis-server."""

import os
import random
import re
import signal
import time
import uuid

import pytest
import redis

from conftest import RedisServer, clients_named, exe, run, wait_for
from test_worker import attempts_of, push, server_ms, wait_done, worker

DAY = 86400 * 1000


def watcher(spawn, rs, *args, ns=None, url=None):
    """Starts a bg-watcher and waits until its connection is up."""
    p = spawn([exe("bg-watcher"), "-r", url or rs.url] + (["-n", ns] if ns else []) + list(args))
    r = rs.client()
    wait_for(lambda: clients_named(r, (ns or "bg") + "-watcher") or p.proc.poll() is not None,
             what="the watcher to connect")
    assert p.proc.poll() is None, p.log()
    return p


def schedule(r, cls, due_ms, queue="default", arg="{}", **extra):
    """A delayed job, written as a foreign producer does (docs/schema.md#keys)."""
    jid = str(uuid.uuid4())
    fields = {"que": queue, "cls": cls, "arg": arg, "qat": server_ms(r), "pat": due_ms}
    fields.update(extra)
    with r.pipeline() as p:
        p.hset(f"bg:jobs:{jid}", mapping=fields)
        p.zadd(f"bg:scheduled:{queue}", {jid: due_ms})
        p.execute()
    return jid


def running(r, jid):
    for a in attempts_of(r, jid):
        if r.sismember(f"bg:processing:{a['que']}", a["id"]):
            return a
    return None


def failed_attempts(r, queue="default"):
    return [dict(r.hgetall(f"bg:attempts:{a}"), id=a, at=int(s))
            for a, s in r.zrange(f"bg:failed:{queue}", 0, -1, withscores=True)]


def retries_due_now(r, queue="default"):
    """Makes every scheduled job due now, as if its backoff had passed; returns how many."""
    ids = r.zrange(f"bg:scheduled:{queue}", 0, -1)
    if ids:
        r.zadd(f"bg:scheduled:{queue}", {j: 0 for j in ids}, xx=True)
    return len(ids)


def parent_pid_cmd():
    """A shell snippet printing the PID of the bg-worker that runs the job: the command's shell
    is a child of the worker's supervisor process, itself a child of the worker."""
    return "awk '{print $4}' /proc/$PPID/stat"


# ---- due scheduled jobs ----

def test_delayed_jobs_start_after_their_time_without_waiting_an_interval(rs, r, spawn):
    """With -i 5 a watcher that only looked once an interval would start these up to 5 s late:
    it must sleep until the earliest due time instead, and be woken when a producer schedules
    an earlier job."""
    worker(spawn, rs, "-c", "4")
    watcher(spawn, rs, "-i", "5")
    rnd = random.Random(7)
    ids = []
    for _ in range(40):
        ids.append(schedule(r, "bg.noop", server_ms(r) + rnd.randint(50, 400)))
        time.sleep(rnd.uniform(0, 0.03))
    late = []
    for jid in ids:
        a = wait_done(r, jid, timeout=10)
        pat = int(r.hget(f"bg:jobs:{jid}", "pat"))
        assert int(a["sta"]) >= pat, "a job started before its time"
        late.append(int(a["sta"]) - pat)
    late.sort()
    print("start delay after pat, ms: p50", late[len(late) // 2], "max", late[-1])
    assert late[-1] < 1000, late


def test_a_job_due_in_a_queue_only_a_foreign_producer_wrote_is_found(rs, r, spawn):
    jid = schedule(r, "bg.noop", server_ms(r) - 1000, queue="foreign")
    assert not r.exists("bg:queues")
    watcher(spawn, rs, "-i", "0.1")
    wait_for(lambda: r.lrange("bg:ready:foreign", 0, -1) == [jid], what="the SCAN to find it")
    assert "foreign" in r.smembers("bg:queues")
    # A queue that appears in NS:queues later is watched from the next interval on.
    r.sadd("bg:queues", "later")
    j2 = schedule(r, "bg.noop", server_ms(r) - 1, queue="later")
    wait_for(lambda: r.lrange("bg:ready:later", 0, -1) == [j2], timeout=3,
             what="the new queue to be watched")
    # A delayed job in a queue nobody has heard of is heard of at once (a tracking report),
    # not at the next SCAN, a minute later.
    j3 = schedule(r, "bg.noop", server_ms(r) + 200, queue="newer")
    wait_for(lambda: r.lrange("bg:ready:newer", 0, -1) == [j3], timeout=5,
             what="the job in a new queue to move")
    assert "newer" in r.smembers("bg:queues")


@pytest.mark.parametrize("nwatchers", [2, 3])
def test_a_thousand_due_at_once_move_exactly_once(rs, r, spawn, nwatchers):
    for _ in range(nwatchers):
        watcher(spawn, rs, "-i", "0.05")
    due = server_ms(r) + 500
    with r.pipeline(transaction=False) as p:
        ids = []
        for _ in range(1000):
            jid = str(uuid.uuid4())
            ids.append(jid)
            p.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}",
                                              "qat": due - 500, "pat": due})
            p.zadd("bg:scheduled:default", {jid: due})
        p.execute()
    wait_for(lambda: r.zcard("bg:scheduled:default") == 0, timeout=10, what="all to move")
    ready = r.lrange("bg:ready:default", 0, -1)
    assert len(ready) == 1000 and set(ready) == set(ids)
    worker(spawn, rs, "-c", "8")
    wait_for(lambda: r.zcard("bg:completed:default") == 1000, timeout=30, what="all to run")
    assert r.hget("bg:stats:default", "completed") == "1000"
    jobs = [r.hget(f"bg:attempts:{a}", "job") for a in r.zrange("bg:completed:default", 0, -1)]
    assert sorted(jobs) == sorted(ids)
    assert r.llen("bg:ready:default") == 0 and r.scard("bg:processing:default") == 0


# ---- workers that vanished ----

def test_sigkilled_worker_attempts_fail_within_grace_plus_interval(rs, r, spawn):
    watcher(spawn, rs)  # the defaults: -i 1, --grace 2
    w = worker(spawn, rs, "-c", "2", "-e", "nap=sleep 60")
    once = push(r, "nap", rty=1)
    never = push(r, "nap", rty=0)
    a_once = wait_for(lambda: running(r, once), what="the jobs to start")
    a_never = wait_for(lambda: running(r, never), what="the jobs to start")
    killed = server_ms(r)
    w.signal(signal.SIGKILL)
    w.wait(5)
    wait_for(lambda: r.zcard("bg:failed:default") == 2, timeout=10, what="Worker Timeout")
    for f in failed_attempts(r):
        assert f["id"] in (a_once["id"], a_never["id"])
        assert f["err"] == "Worker Timeout"
        assert "fin" not in f and "time" not in f
        assert 2000 <= f["at"] - killed <= 3000 + 500, f["at"] - killed
    assert r.scard("bg:processing:default") == 0
    # rty 0: dead at once. rty 1: retried with backoff(1) = 1 + 15 + rand(0..9) * 2 seconds.
    assert r.zscore("bg:dead:default", never) is not None
    failed_at = r.zscore("bg:failed:default", a_once["id"])
    due = r.zscore("bg:scheduled:default", once)
    assert due is not None and 16000 <= due - failed_at <= 34000, due - failed_at
    assert r.hget(f"bg:jobs:{once}", "itr") == "1"
    stats = r.hgetall("bg:stats:default")
    assert stats["failed"] == "2" and stats["dead"] == "1"


def test_three_watchers_fail_each_vanished_attempt_exactly_once(rs, r, spawn):
    for _ in range(3):
        watcher(spawn, rs, "-i", "0.02", "--grace", "0.1")
    w = worker(spawn, rs, "-c", "40", "-e", "nap=sleep 60")
    ids = [push(r, "nap", rty=5) for _ in range(40)]
    wait_for(lambda: r.scard("bg:processing:default") == 40, what="every job to start")
    w.signal(signal.SIGKILL)
    w.wait(5)
    wait_for(lambda: r.zcard("bg:scheduled:default") == 40, timeout=10, what="the retries")
    time.sleep(0.5)  # room for a second, wrong, finalization by another watcher to show
    assert r.zcard("bg:failed:default") == 40
    assert r.hget("bg:stats:default", "failed") == "40"
    assert all(r.hget(f"bg:jobs:{j}", "itr") == "1" for j in ids)
    assert r.llen("bg:ready:default") == 0 and r.zcard("bg:dead:default") == 0


def test_a_fiber_whose_connection_is_killed_keeps_its_attempt(rs, r, spawn, tmp_path):
    runs = tmp_path / "runs"
    watcher(spawn, rs, "-i", "0.1")
    worker(spawn, rs, "-c", "1", "-e", f"nap=echo $BG_ATTEMPT_ID >> {runs}; sleep 1.5")
    jid = push(r, "nap")
    a0 = wait_for(lambda: running(r, jid), what="the job to start")
    r.client_kill_filter(_id=a0["wrk"])
    a = wait_done(r, jid, timeout=10)
    assert "err" not in a and a["id"] == a0["id"] and a["wrk"] != a0["wrk"]
    assert len(attempts_of(r, jid)) == 1
    assert r.zcard("bg:failed:default") == 0
    assert runs.read_text() == a0["id"] + "\n"


def test_no_false_positive_under_load(rs, r, spawn):
    """A fast watcher beside busy workers never fails an attempt whose worker is alive."""
    watcher(spawn, rs, "-i", "0.01")
    n = 20000
    with r.pipeline(transaction=False) as p:
        for i in range(n):
            jid = str(uuid.uuid4())
            p.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.sleep" if i % 4 == 0
                                              else "bg.noop", "arg": '{"ms":1}', "qat": 1})
            p.rpush("bg:ready:default", jid)
        p.execute()
    for _ in range(4):
        spawn([exe("bg-worker"), "-r", rs.url, "-c", "4"])
    wait_for(lambda: r.zcard("bg:completed:default") == n, timeout=120, interval=0.2,
             what="every job to complete")
    assert r.zcard("bg:failed:default") == 0
    assert r.hget("bg:stats:default", "failed") is None


def test_redis_restart_cannot_hide_a_dead_worker_behind_a_recycled_client_id(spawn, tmp_path):
    srv = RedisServer(extra=["--appendonly", "yes", "--appendfsync", "always"]).start()
    try:
        r = srv.client()
        for _ in range(30):  # so that the fibers' IDs are ahead of what the test uses later
            c = redis.Redis(port=srv.port, single_connection_client=True)
            c.client_id()
            c.close()
        w = worker(spawn, srv, "-c", "3", "-e", "nap=sleep 60")
        ids = [push(r, "nap", rty=1) for _ in range(3)]
        attempts = [wait_for(lambda j=j: running(r, j), what="the jobs to start") for j in ids]
        w.signal(signal.SIGKILL)
        w.wait(5)
        srv.restart()
        r = srv.client()
        assert {a["id"] for a in attempts} == r.smembers("bg:processing:default")
        # Connections on the new server get the dead fibers' IDs, named as fibers are.
        impostors = []
        for a in sorted(attempts, key=lambda a: int(a["wrk"])):
            while True:
                c = redis.Redis(port=srv.port, single_connection_client=True)
                cid = c.client_id()
                if cid > int(a["wrk"]):
                    pytest.fail(f"client ID {a['wrk']} was handed out already")
                impostors.append(c)
                if cid == int(a["wrk"]):
                    c.client_setname("bg-worker-fiber:1")
                    break
        watcher(spawn, srv, "-i", "0.2", "--grace", "0.5")
        wait_for(lambda: r.zcard("bg:failed:default") == 3, timeout=10,
                 what="the pre-restart attempts to fail")
        assert all(f["err"] == "Worker Timeout" for f in failed_attempts(r))
        assert r.scard("bg:processing:default") == 0
        assert all(r.zscore("bg:scheduled:default", j) is not None for j in ids)  # retried
        for c in impostors:
            c.close()
        # Nothing is lost: run the retries now, with a live worker.
        for j in ids:
            r.hset(f"bg:jobs:{j}", "cls", "bg.noop")
            assert run([exe("bg-cli"), "-r", srv.url, "retry", j]).returncode == 0
        worker(spawn, srv, "-c", "2")
        wait_for(lambda: r.zcard("bg:completed:default") == 3, what="the retries to complete")
        done = [r.hget(f"bg:attempts:{a}", "job") for a in r.zrange("bg:completed:default", 0, -1)]
        assert sorted(done) == sorted(ids)
    finally:
        srv.cleanup()


def test_watcher_rides_out_a_redis_restart(rs, r, spawn):
    w = watcher(spawn, rs, "-i", "0.1")
    rs.restart()
    r = rs.client()
    wait_for(lambda: clients_named(r, "bg-watcher"), timeout=10, what="the watcher to reconnect")
    jid = schedule(r, "bg.noop", server_ms(r) + 100)
    wait_for(lambda: r.lrange("bg:ready:default", 0, -1) == [jid], timeout=5,
             what="a job scheduled after the restart to move")
    assert w.proc.poll() is None
    wait_for(lambda: "reconnected to Redis" in w.log(), what="the reconnection to be logged")
    # Lost and restored, each said once, at Info (docs/operations.md#logs).
    assert w.log().count(" I watcher: lost the connection to Redis") == 1, w.log()


def stale_attempt(r, jid, queue="default"):
    """An attempt in processing whose worker is long gone, as a crash leaves it."""
    aid = str(uuid.uuid4())
    r.hset(f"bg:attempts:{aid}", mapping={"sta": 1, "job": jid, "wrk": 999999, "que": queue})
    r.sadd(f"bg:processing:{queue}", aid)
    r.sadd("bg:queues", queue)
    return aid


@pytest.mark.parametrize("fields, ends", [
    ({"rty": "10", "att": "1", "itr": "abc"}, "scheduled"),   # itr taken as 0, then 1
    ({"rty": "zz", "att": "1"}, "dead"),                       # no whole rty: cannot retry
    ({"rty": "inf", "att": "1"}, "dead"),
    ({"rty": "10", "att": "0x1"}, "dead"),
    ({"rty": "10", "att": "99999999999999999999"}, "dead"),
])
def test_malformed_job_fields_never_lose_the_job(rs, r, spawn, fields, ends):
    jid = str(uuid.uuid4())
    r.hset(f"bg:jobs:{jid}", mapping=dict({"que": "default", "cls": "C", "arg": "{}"}, **fields))
    aid = stale_attempt(r, jid)
    w = watcher(spawn, rs, "-i", "0.05", "--grace", "0.05")
    wait_for(lambda: r.zscore("bg:failed:default", aid) is not None, what="the attempt to fail")
    where = "scheduled" if r.zscore("bg:scheduled:default", jid) is not None else \
        "dead" if r.zscore("bg:dead:default", jid) is not None else "nowhere"
    assert where == ends, (where, w.log())
    assert r.scard("bg:processing:default") == 0 and "ERR" not in w.log()


def test_junk_in_a_processing_set_is_dropped_without_inventing_attempts(rs, r, spawn):
    long = "0123456789abcdef0123456789abcdef0123456789-long"
    hashless = str(uuid.uuid4())
    r.sadd("bg:processing:default", long, "not-a-uuid", hashless)
    jid = str(uuid.uuid4())
    r.set(f"bg:jobs:{jid}", "a string, not a hash")
    aid = stale_attempt(r, jid)
    w = watcher(spawn, rs, "-i", "0.05", "--grace", "0.05")
    wait_for(lambda: r.scard("bg:processing:default") == 0, what="processing to be emptied")
    assert not r.exists(f"bg:attempts:{hashless}", "bg:attempts:not-a-uuid")
    assert r.zscore("bg:failed:default", aid) is not None  # the real attempt is recorded
    assert r.get(f"bg:jobs:{jid}") == "a string, not a hash"
    assert "ERR" not in w.log() and "WRONGTYPE" not in w.log()


def test_poison_pill_ends_dead_after_max_interruptions(rs, r, spawn, tmp_path):
    """A job that kills its worker every time: the watcher counts the interruptions and buries
    it at --max-interruptions, however many retries it has left. Workers are restarted as a
    service manager would; the test skips each retry's backoff by making it due now."""
    watcher(spawn, rs, "-i", "0.1", "--grace", "0.2", "--max-interruptions", "3")
    cmd = f"kill -9 $({parent_pid_cmd()})"
    jid = push(r, "poison", rty=25)
    deadline = time.monotonic() + 60
    while r.zscore("bg:dead:default", jid) is None:
        assert time.monotonic() < deadline, "the poison pill never died"
        w = spawn([exe("bg-worker"), "-r", rs.url, "-c", "1", "-e", f"poison={cmd}"])
        try:
            w.wait(3)
        except Exception:
            pass
        wait_for(lambda: r.zscore("bg:dead:default", jid) is not None or
                 r.zscore("bg:scheduled:default", jid) is not None, timeout=10,
                 what="the interrupted attempt to be failed")
        if r.zscore("bg:scheduled:default", jid) is not None:
            retries_due_now(r)
        w.stop()
    fails = failed_attempts(r)
    assert len(fails) == 3 and all(f["err"] == "Worker Timeout" for f in fails)
    h = r.hgetall(f"bg:jobs:{jid}")
    assert h["itr"] == "3" and h["att"] == "3"
    assert r.llen("bg:ready:default") == 0 and r.zcard("bg:scheduled:default") == 0


# ---- retention ----

def test_retention_trims_what_it_should_and_nothing_else(rs, r, spawn):
    now = server_ms(r)
    keep, drop = set(), set()

    def attempt(zset, age_ms, job_too):
        jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
        r.hset(f"bg:jobs:{jid}", mapping={"que": "q", "cls": "C", "arg": "{}", "qat": 1})
        r.hset(f"bg:attempts:{aid}", mapping={"job": jid, "que": "q", "sta": 1, "wrk": 1})
        r.zadd(f"bg:{zset}:q", {aid: now - age_ms})
        return jid, aid

    for age, goes in ((2 * 3600 * 1000, True), (30 * 60 * 1000, False)):
        jid, aid = attempt("completed", age, True)
        (drop if goes else keep).update({f"bg:jobs:{jid}", f"bg:attempts:{aid}"})
    for age, goes in ((8 * DAY, True), (6 * DAY, False)):
        jid, aid = attempt("failed", age, False)
        (drop if goes else keep).add(f"bg:attempts:{aid}")
        keep.add(f"bg:jobs:{jid}")  # a failed attempt's job may still be waiting for a retry
    for age, goes in ((181 * DAY, True), (179 * DAY, False)):
        jid = push(r, "C", queue="q")
        r.delete("bg:ready:q")
        r.zadd("bg:dead:q", {jid: now - age})
        (drop if goes else keep).add(f"bg:jobs:{jid}")
    r.hset("bg:stats:q", mapping={"completed": 7, "failed": 5, "dead": 3})
    r.sadd("bg:queues", "q")
    watcher(spawn, rs, "-i", "0.1")
    wait_for(lambda: not any(r.exists(k) for k in drop), timeout=5, what="the old to go")
    assert all(r.exists(k) for k in keep), [k for k in keep if not r.exists(k)]
    assert r.zcard("bg:completed:q") == 1 and r.zcard("bg:failed:q") == 1
    assert r.zcard("bg:dead:q") == 1
    assert r.hgetall("bg:stats:q") == {"completed": "7", "failed": "5", "dead": "3"}


def test_retention_caps_and_zero(rs, r, spawn):
    now = server_ms(r)
    with r.pipeline(transaction=False) as p:
        dead = []
        for i in range(10005):
            jid = str(uuid.uuid4())
            dead.append(jid)
            p.hset(f"bg:jobs:{jid}", mapping={"que": "q", "cls": "C", "qat": 1})
            p.zadd("bg:dead:q", {jid: now - 10005 + i})
        for i in range(10):
            aid = str(uuid.uuid4())
            p.hset(f"bg:attempts:{aid}", mapping={"job": "x", "que": "q"})
            p.zadd("bg:completed:q", {aid: now})
        p.sadd("bg:queues", "q")
        p.execute()
    watcher(spawn, rs, "-i", "0.1", "--retain-completed", "0")
    wait_for(lambda: r.zcard("bg:dead:q") == 10000 and r.zcard("bg:completed:q") == 0,
             timeout=10, what="the caps to apply")
    assert all(not r.exists(f"bg:jobs:{j}") for j in dead[:5])  # the oldest go first
    assert all(r.exists(f"bg:jobs:{j}") for j in dead[5:20])
    assert not r.keys("bg:attempts:*")


def test_memory_stays_flat_under_sustained_load_with_the_defaults(rs, r, spawn):
    """With the default retention (an hour, at most 100,000 completed attempts a queue) a queue
    that keeps completing jobs as fast as a worker goes stops growing near the cap: the watcher
    trims between intervals too while it is behind."""
    watcher(spawn, rs)
    worker(spawn, rs, "-c", "10")
    total, samples = 0, []
    for _ in range(6):  # producers keep pushing while the worker runs
        with r.pipeline(transaction=False) as p:
            for _ in range(50000):
                jid = str(uuid.uuid4())
                p.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "qat": 1})
                p.rpush("bg:ready:default", jid)
            p.execute()
        total += 50000
        samples.append((r.zcard("bg:completed:default"), r.info("memory")["used_memory"]))
    wait_for(lambda: int(r.hget("bg:stats:default", "completed") or 0) == total, timeout=180,
             interval=0.1, what="the jobs to complete")
    wait_for(lambda: r.zcard("bg:completed:default") <= 100000, timeout=10,
             what="the cap to be applied")
    print("completed attempts kept, and bytes, after each 50,000 pushed:", samples)
    # Past the cap, at most about one interval's completions wait for the next trim.
    assert max(n for n, _ in samples) <= 170000, samples
    assert r.dbsize() <= 2 * 100000 + 100  # each attempt kept holds its job: 2 keys, and a few
    assert r.hget("bg:stats:default", "completed") == str(total)


# ---- chaos ----

def test_chaos_sigkill_workers_for_30s_with_a_watcher(rs, r, spawn, tmp_path):
    """Workers are SIGKILLed at random for 30 s while jobs flow; the watcher fails their
    attempts and the jobs are retried (the test makes each retry due at once instead of waiting
    for its backoff). At the end every job completed exactly once as recorded, none is lost, and
    a job ran again only when the worker running it had died."""
    rnd = random.Random(2026)
    runs = tmp_path / "runs"
    watcher(spawn, rs, "-i", "0.1", "--grace", "0.3", "--max-interruptions", "1000")
    cmd = f"echo $BG_JOB_ID $BG_ATTEMPT_ID >> {runs}; sleep 0.01"
    args = ["-c", "4", "-e", f"chaos={cmd}"]
    ids = []

    def produce(n):
        ids.extend(push(r, "chaos", rty=1000) for _ in range(n))
        ids.extend(push(r, "bg.sleep", '{"ms":%d}' % rnd.choice([0, 2, 10]), rty=1000)
                   for _ in range(n))

    produce(300)
    workers = [spawn([exe("bg-worker"), "-r", rs.url] + args) for _ in range(3)]
    killed = 0
    end = time.monotonic() + 30
    while time.monotonic() < end:
        produce(40)  # jobs keep coming for the whole run
        time.sleep(rnd.uniform(0.2, 1.0))
        i = rnd.randrange(len(workers))
        workers[i].signal(signal.SIGKILL)
        workers[i].wait(5)
        killed += 1
        workers[i] = spawn([exe("bg-worker"), "-r", rs.url] + args)
        retries_due_now(r)

    def drained():
        if retries_due_now(r):
            return False
        return r.zcard("bg:completed:default") >= len(ids) and \
            r.scard("bg:processing:default") == 0 and r.llen("bg:ready:default") == 0
    wait_for(drained, timeout=120, interval=0.2, what="every job to complete")

    completed = [r.hget(f"bg:attempts:{a}", "job") for a in r.zrange("bg:completed:default", 0, -1)]
    assert sorted(completed) == sorted(ids), "a job completed twice, or never"
    fails = failed_attempts(r)
    assert all(f["err"] == "Worker Timeout" for f in fails), {f["err"] for f in fails}
    assert r.zcard("bg:dead:default") == 0
    stats = r.hgetall("bg:stats:default")
    assert int(stats["completed"]) == len(ids) and int(stats.get("failed", 0)) == len(fails)
    # An exec job that ran more than once ran again only after an attempt of it was interrupted.
    interrupted = {}
    for f in fails:
        interrupted[f["job"]] = interrupted.get(f["job"], 0) + 1
    ran = {}
    for line in runs.read_text().splitlines():
        jid, aid = line.split()
        ran.setdefault(jid, set()).add(aid)
    for jid, aids in ran.items():
        assert len(aids) <= 1 + interrupted.get(jid, 0), jid
    print(f"chaos: {len(ids)} jobs, {killed} workers killed, {len(fails)} attempts interrupted")
    assert killed >= 15 and fails


# ---- start-up errors ----

@pytest.mark.parametrize("args, says", [
    (["-i", "0"], "--interval"),
    (["-i", "-1"], "--interval"),
    (["-i", "soon"], "--interval 'soon'"),
    (["-i", "1x"], "--interval '1x'"),
    (["--grace", "2 s"], "--grace"),
    (["--grace", ""], "--grace"),
    (["--max-interruptions", "0"], "--max-interruptions '0'"),
    (["--max-interruptions", "three"], "--max-interruptions"),
    (["--max-interruptions", "99999999999999999999"], "--max-interruptions"),
    (["--retain-completed", "1w"], "--retain-completed '1w'"),
    (["--retain-failed", "-1d"], "--retain-failed"),
    (["--retain-dead", "forever"], "--retain-dead"),
    (["--log-format", "xml"], "--log-format 'xml'"),
    (["-q", "bad queue"], "invalid queue"),
    (["-q", "a,,b"], "invalid queue '' in 'a,,b'"),
    (["-i", "0.5ms"], "at least 1ms"),
    (["-n", "bad ns"], "namespace"),
    (["-r", "http://127.0.0.1:1"], "http"),
    (["-r", "redis://:hunter2@127.0.0.1:99999/0"], "redis://:***@"),
    (["-i"], "needs a value"),
    (["--bogus"], "--bogus"),
    (["extra"], "'extra'"),
])
def test_bad_flags_exit_2_with_one_line(rs, r, args, says):
    p = run([exe("bg-watcher"), "-r", rs.url] + args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bg-watcher: "), p.stderr
    assert says in lines[0], lines[0]
    assert "hunter2" not in p.stderr
    assert r.dbsize() == 0


@pytest.mark.parametrize("rule, says", [
    ("-client|list", "refused CLIENT LIST"),
    ("-client", "refused CLIENT SETNAME"),
    ("-@scripting", "refused SCRIPT LOAD"),
])
def test_acl_that_forbids_what_it_needs_is_a_clear_error_at_start(rs, r, rule, says):
    r.execute_command("ACL", "SETUSER", "limited", "reset", "on", ">pw", "~*", "&*", "+@all", rule)
    try:
        url = f"redis://limited:pw@127.0.0.1:{rs.port}/0"
        p = run([exe("bg-watcher"), "-r", url], timeout=20)
        assert p.returncode == 1, (p.returncode, p.stderr)
        last = p.stderr.strip().splitlines()[-1]
        assert last.startswith("bg-watcher: ") and says in last and "NOPERM" in last, p.stderr
        assert ":pw@" not in p.stderr
    finally:
        r.execute_command("ACL", "DELUSER", "limited")


def test_an_owner_it_cannot_read_is_never_taken_for_a_vanished_one(rs, r, spawn):
    worker(spawn, rs, "-c", "1", "--shutdown-timeout", "0.1", "-e", "nap=sleep 60")
    jid = push(r, "nap")
    a = wait_for(lambda: running(r, jid), what="the job to start")
    r.execute_command("ACL", "SETUSER", "nohmget", "reset", "on", ">pw", "~*", "&*", "+@all",
                      "-hmget")
    try:
        w = watcher(spawn, rs, "-i", "0.05", "--grace", "0.1",
                    url=f"redis://nohmget:pw@127.0.0.1:{rs.port}/0")
        wait_for(lambda: "cannot read attempt" in w.log(), what="the refusal to be logged")
        time.sleep(0.5)  # ten intervals, five graces: time enough to fail it, were it judged
        assert r.sismember("bg:processing:default", a["id"])
        assert r.zcard("bg:failed:default") == 0 and "Worker Timeout" not in w.log()
        assert w.log().count("cannot read attempt") == 1  # said once, not every interval
    finally:
        r.execute_command("ACL", "DELUSER", "nohmget")


def test_term_stops_the_watcher_with_0(rs, r, spawn):
    w = watcher(spawn, rs)
    w.signal(signal.SIGTERM)
    assert w.wait(10) == 0
    assert not clients_named(r, "bg-watcher")
