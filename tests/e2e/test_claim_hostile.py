"""The claim against data a foreign tool wrote badly (docs/claim.md): a real redis-server, the real
bg-worker, and keys and fields of the wrong type or shape written with redis-py. After each case
the no-loss invariant is read from Redis alone (invariant.py)."""

import signal
import threading
import time
import uuid

import pytest

from conftest import clients_named, exe, wait_for
from invariant import check, new_jobs, processing_empty


def worker(spawn, rs, *args):
    p = spawn([exe("bg-worker"), "-r", rs.url] + list(args))
    c = int(args[args.index("-c") + 1]) if "-c" in args else 10
    r = rs.client()
    wait_for(lambda: len(clients_named(r, "bg-worker-fiber:")) >= c or p.proc.poll() is not None,
             what="fibers to connect")
    assert p.proc.poll() is None, p.log()
    return p


def attempts(r, ns="bg"):
    """Every attempt hash, by attempt UUID."""
    out = {}
    for key in r.scan_iter(f"{ns}:attempts:*"):
        out[key.split(":")[-1]] = r.hgetall(key)
    return out


def attempts_of(r, jid):
    return [dict(a, id=k) for k, a in attempts(r).items() if a.get("job") == jid]


def recorded(r, queues):
    """Attempt UUIDs in the completed and failed sets of queues."""
    s = set()
    for q in queues:
        s |= set(r.zrange(f"bg:completed:{q}", 0, -1)) | set(r.zrange(f"bg:failed:{q}", 0, -1))
    return s


def completed(r, jobs, queue="default"):
    done = {a.get("job") for k, a in attempts(r).items()
            if r.zscore(f"bg:completed:{queue}", k) is not None}
    return all(j in done for j in jobs)


def log_lines(w, word):
    return [line for line in w.log().splitlines() if word in line]


# ---- a job key of the wrong type inside a batch ----

def test_a_job_key_of_the_wrong_type_inside_a_batch_loses_no_neighbour(rs, r, spawn):
    before = new_jobs(r, 60)
    bad = str(uuid.uuid4())
    r.set(f"bg:jobs:{bad}", "x")
    r.rpush("bg:ready:default", bad)
    after = new_jobs(r, 60)
    w = worker(spawn, rs, "-c", "1")
    wait_for(lambda: r.zcard("bg:completed:default") >= 120 and r.zcard("bg:failed:default") >= 1,
             timeout=20, what="120 jobs completed and the bad one failed")
    wait_for(lambda: processing_empty(r, ["default"]), what="processing to empty")
    assert check(r, before + after, ["default"]) == {"completed": 120}
    [a] = attempts_of(r, bad)
    assert a["err"] == "InvalidJob", a
    assert a["msg"] == f"bg:jobs:{bad} is a string, not a hash", a
    assert r.zscore("bg:failed:default", a["id"]) is not None
    assert set(attempts(r)) == recorded(r, ["default"]), "orphan attempt hashes"
    assert r.get(f"bg:jobs:{bad}") == "x"  # the foreign key is left as it was
    assert r.llen("bg:ready:default") == 0
    assert w.proc.poll() is None


def test_a_wrong_type_job_claimed_behind_a_slow_job_is_failed_not_lost(rs, r, spawn):
    """A slow job sends the jobs claimed behind it back to ready; one whose key is not a hash
    cannot go back (there is no job to put back): it is failed as its turn would have."""
    before = new_jobs(r, 63)  # batches of 1, 2, 4, 8, 16, 32: the next batch starts with...
    slow = new_jobs(r, 1, cls="bg.sleep", arg='{"ms":100}')  # ...the slow job,
    bad = [str(uuid.uuid4()) for _ in range(8)]  # then these, claimed behind it
    for j in bad:
        r.set(f"bg:jobs:{j}", "x")
    r.rpush("bg:ready:default", *bad)
    after = new_jobs(r, 20)
    worker(spawn, rs, "-c", "1")
    wait_for(lambda: completed(r, before + slow + after), timeout=20, what="the jobs to complete")
    wait_for(lambda: processing_empty(r, ["default"]), what="processing to empty")
    assert check(r, before + slow + after, ["default"]) == {"completed": 84}
    for j in bad:
        [a] = attempts_of(r, j)
        assert a["err"] == "InvalidJob" and "not a hash" in a["msg"], a
        assert r.zscore("bg:failed:default", a["id"]) is not None
    assert set(attempts(r)) == recorded(r, ["default"]), "orphan attempt hashes"


def test_a_job_key_of_the_wrong_type_is_buried_dead(rs, r, spawn):
    bad = str(uuid.uuid4())
    r.set(f"bg:jobs:{bad}", "x")
    r.rpush("bg:ready:default", bad)
    worker(spawn, rs, "-c", "1")
    wait_for(lambda: r.zcard("bg:failed:default") == 1, what="the bad job to fail")
    wait_for(lambda: r.zscore("bg:dead:default", bad) is not None, timeout=2,
             what="the bad job to be buried")
    assert r.hget("bg:stats:default", "dead") == "1"


# ---- a queue key of the wrong type ----

def test_a_ready_key_of_the_wrong_type_skips_only_its_queue(rs, r, spawn):
    r.set("bg:ready:b", "x")
    a = new_jobs(r, 20, queue="a")
    c = new_jobs(r, 20, queue="c")
    w = worker(spawn, rs, "-q", "a,b,c", "-c", "2")
    wait_for(lambda: completed(r, a, "a") and completed(r, c, "c"), what="a and c to be served")
    # More jobs for several seconds: every claim meets the broken key again.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:
        a += new_jobs(r, 3, queue="a")
        c += new_jobs(r, 3, queue="c")
        time.sleep(0.05)
    wait_for(lambda: completed(r, a, "a") and completed(r, c, "c"), what="a and c to be served")
    said = log_lines(w, "bg:ready:b")
    assert 1 <= len(said) < 5, said
    assert "not a list" in said[0], said
    assert r.get("bg:ready:b") == "x"
    r.delete("bg:ready:b")
    b = new_jobs(r, 5, queue="b")
    wait_for(lambda: completed(r, b, "b"), what="b to be served once repaired")
    wait_for(lambda: processing_empty(r, ["a", "b", "c"]), what="processing to empty")
    assert check(r, a + b + c, ["a", "b", "c"]) == {"completed": len(a + b + c)}
    assert len(w.log().splitlines()) < 200
    assert w.proc.poll() is None


BROKEN = [
    # (key of queue b, how it is broken, what the log says)
    ("processing", lambda r, k: r.set(k, "x"), "is a string, not a set"),
    ("completed", lambda r, k: r.rpush(k, "x"), "is a list, not a zset"),
    ("failed", lambda r, k: r.hset(k, "x", "y"), "is a hash, not a zset"),
    ("dead", lambda r, k: r.sadd(k, "x"), "is a set, not a zset"),
    ("scheduled", lambda r, k: r.set(k, "x"), "is a string, not a zset"),
    ("stats", lambda r, k: r.sadd(k, "x"), "is a set, not a hash"),
    ("stats", lambda r, k: r.hset(k, "completed", "many"), "field 'completed' is not a whole"),
    ("stats", lambda r, k: r.hset(k, "dead", "1" * 30), "field 'dead' is not a whole"),
]


@pytest.mark.parametrize("kind,breaks,says", BROKEN,
                         ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(BROKEN)])
def test_a_broken_key_of_a_queue_skips_only_that_queue(rs, r, spawn, kind, breaks, says):
    key = f"bg:{kind}:b"
    breaks(r, key)
    a = new_jobs(r, 10, queue="a")
    b = new_jobs(r, 10, queue="b")
    c = new_jobs(r, 10, queue="c")
    w = worker(spawn, rs, "-q", "a,b,c", "-c", "2")
    wait_for(lambda: completed(r, a, "a") and completed(r, c, "c"), what="a and c to be served")
    wait_for(lambda: log_lines(w, key), what="the bad key to be logged")
    # b's jobs wait untouched, in their order, with no attempt.
    assert r.lrange("bg:ready:b", 0, -1) == b
    assert all(r.hget(f"bg:jobs:{j}", "att") is None for j in b)
    [line] = log_lines(w, key)
    assert " W " in line and says in line, line
    r.delete(key)
    wait_for(lambda: completed(r, b, "b"), timeout=10, what="b to be served once repaired")
    wait_for(lambda: processing_empty(r, ["a", "b", "c"]), what="processing to empty")
    assert check(r, a + b + c, ["a", "b", "c"]) == {"completed": 30}
    assert w.proc.poll() is None


# ---- job fields a foreign producer wrote badly ----

FIELDS = [(f, v) for f in ("rty", "att", "itr")
          for v in ("99999999999999999999", "-1", "abc", "1\x002", "1.5", " 1", "")]


def test_bad_numbers_in_job_fields_make_the_job_invalid(rs, r, spawn):
    jobs = {}
    for f, v in FIELDS:
        [j] = new_jobs(r, 1, extra={f: v})
        jobs[j] = (f, v)
    good = new_jobs(r, 5)
    w = worker(spawn, rs, "-c", "2")
    wait_for(lambda: r.zcard("bg:dead:default") == len(jobs) and completed(r, good),
             what="the bad jobs dead and the good ones done")
    wait_for(lambda: processing_empty(r, ["default"]), what="processing to empty")
    counts = check(r, list(jobs) + good, ["default"])
    assert counts == {"dead": len(jobs), "completed": 5}
    for j, (f, v) in jobs.items():
        [a] = attempts_of(r, j)
        assert a["err"] == "InvalidJob", (f, v, a)
        assert f in a["msg"], (f, v, a)
        assert r.hget(f"bg:jobs:{j}", f) == v  # left as the producer wrote it
    assert w.proc.poll() is None


def test_arg_bytes_reach_an_exec_job_unchanged(rs, spawn, tmp_path):
    out = tmp_path / "arg"
    rb = rs.client()
    rb = type(rb)(port=rs.port)  # bytes in, bytes out
    arg = b"\x00\xff\xfe{\"a\":\"\xc3\x28\"}\x00\n\x80tail"
    jid = str(uuid.uuid4())
    rb.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "Raw", "arg": arg, "qat": 0})
    rb.rpush("bg:ready:default", jid)
    worker(spawn, rs, "-c", "1", "-e", f"Raw=cat > {out}")
    r = rs.client()
    wait_for(lambda: completed(r, [jid]), what="the job to complete")
    assert out.read_bytes() == arg


# ---- ready entries that are not jobs ----

def test_a_ready_entry_of_1mb_junk_is_dropped_with_a_short_log_line(rs, r, spawn):
    r.rpush("bg:ready:default", "J" * (1 << 20))
    good = new_jobs(r, 3)
    w = worker(spawn, rs, "-c", "1")
    wait_for(lambda: completed(r, good), what="the good jobs to complete")
    [line] = log_lines(w, "dropped")
    assert "(1048576 bytes)" in line and "JJJ" in line, line[:300]
    assert len(line) < 400, len(line)
    assert r.llen("bg:ready:default") == 0
    assert w.proc.poll() is None


def test_a_flood_of_junk_is_dropped_with_a_bounded_log(rs, r, spawn):
    r.rpush("bg:ready:default", *[f"junk-{i}" for i in range(500)])
    good = new_jobs(r, 3)
    w = worker(spawn, rs, "-c", "2")
    wait_for(lambda: completed(r, good), what="the good jobs behind the junk to complete")
    assert r.llen("bg:ready:default") == 0
    assert len(log_lines(w, "dropped")) < 5, w.log()[-2000:]
    assert w.proc.poll() is None


# ---- job IDs as other languages write them ----

def test_uppercase_and_braced_uuids_are_jobs(rs, r, spawn, tmp_path):
    out = tmp_path / "ids"
    u = str(uuid.uuid4())
    ids = [u.upper(), "{" + str(uuid.uuid4()) + "}", "{" + str(uuid.uuid4()).upper() + "}"]
    for j in ids:
        r.hset(f"bg:jobs:{j}", mapping={"que": "default", "cls": "Echo", "arg": "{}", "qat": 0})
        r.rpush("bg:ready:default", j)
    flaky = "{" + str(uuid.uuid4()).upper() + "}"
    r.hset(f"bg:jobs:{flaky}", mapping={"que": "default", "cls": "bg.fail", "qat": 0,
                                        "arg": '{"err":"Boom","msg":"x"}', "rty": 0})
    r.rpush("bg:ready:default", flaky)
    w = worker(spawn, rs, "-c", "2", "-e", f'Echo=printf "%s\\n" "$BG_JOB_ID" >> {out}')
    wait_for(lambda: completed(r, ids), what="the jobs to complete")
    wait_for(lambda: r.zscore("bg:dead:default", flaky) is not None, what="the failing one dead")
    assert sorted(out.read_text().split()) == sorted(ids)
    for j in ids + [flaky]:
        [a] = attempts_of(r, j)
        assert a["job"] == j
        assert r.hget(f"bg:jobs:{j}", "att") == "1"
    assert r.hget(f"bg:jobs:{flaky}", "rty") == "0"
    assert check(r, ids + [flaky], ["default"]) == {"completed": 3, "dead": 1}
    assert not log_lines(w, "dropped")


# ---- large arguments ----

def test_large_args_are_claimed_one_at_a_time_without_blocking_redis(rs, r, spawn):
    big = "B" * (16 << 20)
    p = r.pipeline(transaction=False)
    bigs = []
    for _ in range(6):
        j = str(uuid.uuid4())
        p.hset(f"bg:jobs:{j}", mapping={"que": "default", "cls": "bg.noop", "arg": big, "qat": 0})
        p.rpush("bg:ready:default", j)
        bigs.append(j)
    p.execute()
    del big
    small = new_jobs(r, 40)
    # Another client's latency, and Redis's own account of its slowest calls, while the worker
    # takes the big jobs.
    r.slowlog_reset()
    old = r.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
    r.config_set("slowlog-log-slower-than", 50000)
    lat, stop = [], threading.Event()
    pinger = rs.client()

    def ping():
        while not stop.is_set():
            t = time.monotonic()
            pinger.ping()
            lat.append(time.monotonic() - t)
            time.sleep(0.005)

    th = threading.Thread(target=ping)
    th.start()
    try:
        w = worker(spawn, rs, "-c", "1")
        wait_for(lambda: completed(r, bigs + small), timeout=60, what="every job to complete")
    finally:
        stop.set()
        th.join()
        slow = [e["duration"] / 1e6 for e in r.slowlog_get(128)
                if e["command"].startswith(b"EVALSHA")]
        r.config_set("slowlog-log-slower-than", old)
    wait_for(lambda: processing_empty(r, ["default"]), what="processing to empty")
    assert check(r, bigs + small, ["default"]) == {"completed": 46}
    # Each big job was claimed alone: no two share a claim (the claim's TIME is their sta).
    stas = [attempts_of(r, j)[0]["sta"] for j in bigs]
    assert len(set(stas)) == len(bigs), stas
    print(f"slowest claims {sorted(slow)[-3:]} s, slowest PING {max(lat):.3f} s")
    # One 16 MB claim takes 0.2 to 0.6 s inside Redis here, but a starved redis-server on a
    # loaded machine was seen to take 3 s: the bound is loose, and the check above (one big job
    # per claim) is what holds the claim to its budget.
    assert max(slow, default=0) < 6, f"a claim ran {max(slow):.3f} s inside Redis"
    assert max(lat) < 6, f"a PING waited {max(lat):.3f} s (slowest claims {sorted(slow)[-3:]})"
    # Nothing was claimed twice: one attempt per job.
    assert len(attempts(r)) == 46
    assert w.proc.poll() is None


def test_a_stopping_fiber_hands_back_a_claim_whose_reply_was_lost(rs, r, spawn):
    # Redis runs the claim, then closes the connection rather than send a reply over 1 MB: the
    # claim's reply is lost every time, while its writes are done.
    old = r.config_get("client-output-buffer-limit")["client-output-buffer-limit"]
    r.config_set("client-output-buffer-limit", "normal 1mb 0 0")
    try:
        [jid] = new_jobs(r, 1, arg="A" * (2 << 20))
        conns = int(r.info("stats")["total_connections_received"])
        # Not worker(): the fiber's connection lives only as long as each lost claim.
        w = spawn([exe("bg-worker"), "-r", rs.url, "-c", "1", "--shutdown-timeout", "5"])
        wait_for(lambda: int(r.info("stats")["total_connections_received"]) > conns + 5,
                 what="the claim to be lost a few times")
        w.signal(signal.SIGINT)
        assert w.wait(10) == 0, w.log()
    finally:
        r.config_set("client-output-buffer-limit", old)
    assert processing_empty(r, ["default"])
    assert r.lrange("bg:ready:default", 0, -1) == [jid]
    assert not attempts(r)
    assert r.hget(f"bg:jobs:{jid}", "att") == "0"
    assert check(r, [jid], ["default"]) == {"ready": 1}
