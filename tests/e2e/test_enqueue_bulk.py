"""bg-cli enqueue CLASS -: jobs go to Redis in enqueue.lua calls of many jobs each (one HSET a job,
the rest a call). What each job ends up as must not depend on that: its hash's fields, its place
in the ready list or the scheduled set, the order of the output, NS:queues; and a producer user
granted only what older versions needed (no EXISTS) still enqueues."""

import select
import uuid
from pathlib import Path

import pytest
import redis

from conftest import cli, cli_piped, exe, run, wait_for

Q = "bulk.q"


def lines(n):
    return "".join(f'{{"i":{i}}}\n' for i in range(n))


def printed(res):
    assert res.returncode == 0, res.stderr
    ids = res.stdout.split()
    assert all(str(uuid.UUID(i)) == i for i in ids)
    return ids


@pytest.mark.parametrize("n", [1, 511, 512, 513, 1000, 1001, 2600])
def test_every_job_whole_and_in_order(rs, r, n):
    ids = printed(cli(rs, "enqueue", "bg.noop", "-", "-q", Q, input=lines(n)))
    assert len(ids) == n == len(set(ids))
    assert r.lrange(f"bg:ready:{Q}", 0, -1) == ids
    assert r.smembers("bg:queues") == {Q}
    now_ms = int(r.time()[0]) * 1000
    for i in (0, n // 2, n - 1):
        h = r.hgetall(f"bg:jobs:{ids[i]}")
        assert set(h) == {"que", "cls", "arg", "qat"}, h
        assert (h["que"], h["cls"], h["arg"]) == (Q, "bg.noop", f'{{"i":{i}}}')
        assert abs(int(h["qat"]) - now_ms) < 60000


def test_retries_and_delay_on_every_job(rs, r):
    before = int(r.time()[0]) * 1000
    ids = printed(cli(rs, "enqueue", "bg.noop", "-", "-q", Q, "--retries", "7", "--in", "1h",
                      input=lines(700)))
    assert r.llen(f"bg:ready:{Q}") == 0
    sched = dict(r.zrange(f"bg:scheduled:{Q}", 0, -1, withscores=True))
    assert set(sched) == set(ids)
    for jid in (ids[0], ids[600]):
        h = r.hgetall(f"bg:jobs:{jid}")
        assert h["rty"] == "7"
        assert int(h["pat"]) == int(sched[jid]) == int(h["qat"]) + 3600000
        assert int(h["qat"]) >= before


def test_empty_lines_and_bytes_kept(rs, r):
    data = b"\n\xff\xfe\r\n" + b"x" * 70000 + b"\nlast"
    res = cli(rs, "enqueue", "bg.noop", "-", "-q", Q, input=data)
    assert res.returncode == 0, res.stderr
    ids = res.stdout.decode().split()
    assert len(ids) == 4
    rb = redis.Redis(port=rs.port)
    assert [rb.hget(f"bg:jobs:{i}", "arg") for i in ids] == [b"", b"\xff\xfe\r",
                                                              b"x" * 70000, b"last"]


def test_a_producer_without_exists_still_enqueues(rs, r):
    """The ACL of earlier versions gave producers TYPE but not EXISTS: enqueue.lua falls back to
    a TYPE a job, and every job is written as with EXISTS."""
    rules = ["reset", "on", ">pw", "~bg:*", "resetchannels", "+select", "+info",
             "+client|setname", "+client|id", "+script|load", "+evalsha", "+time", "+type",
             "+hset", "+rpush", "+zadd", "+sadd"]
    r.execute_command("ACL", "SETUSER", "old-producer", *rules)
    r.execute_command("ACL", "LOG", "RESET")
    try:
        url = f"redis://old-producer:pw@127.0.0.1:{rs.port}/0"
        res = run([exe("bg-cli"), "-r", url, "enqueue", "bg.noop", "-", "-q", Q],
                  input=lines(600))
        ids = printed(res)
        assert r.lrange(f"bg:ready:{Q}", 0, -1) == ids
        assert r.hget(f"bg:jobs:{ids[599]}", "arg") == '{"i":599}'
        # The fallback was taken: Redis refused the EXISTS, and nothing else.
        refused = {(e["username"], e["object"]) for e in r.acl_log()}
        assert refused == {("old-producer", "exists")}, refused
    finally:
        r.execute_command("ACL", "DELUSER", "old-producer")


def test_a_worker_without_smismember_still_finishes(rs, r, spawn):
    """finish.lua asks SMISMEMBER once a call for its 'ok' records; a worker user granted only what
    earlier versions needed records them one by one instead, with the same result."""
    rules = ["reset", "on", ">pw", "~bg:*", "resetchannels", "&__redis__:invalidate", "+ping",
             "+select", "+info", "+client|setname", "+client|id", "+client|tracking",
             "+subscribe", "+script|load", "+evalsha", "+sadd", "+time", "+type", "+exists",
             "+lrange", "+ltrim", "+lpush", "+hget", "+hmget", "+hstrlen", "+hset", "+hincrby",
             "+sismember", "+srem", "+del", "+zadd", "+incrby", "+pexpire", "+get", "+smembers"]
    r.execute_command("ACL", "SETUSER", "old-worker", *rules)
    r.execute_command("ACL", "LOG", "RESET")
    try:
        ids = printed(cli(rs, "enqueue", "bg.noop", "-", "-q", Q, input=lines(300)))
        url = f"redis://old-worker:pw@127.0.0.1:{rs.port}/0"
        w = spawn([exe("bg-worker"), "-r", url, "-q", Q, "-c", "4"])
        wait_for(lambda: r.zcard(f"bg:completed:{Q}") == 300 or w.proc.poll() is not None,
                 what="the jobs to complete")
        assert r.zcard(f"bg:completed:{Q}") == 300, w.log()
        assert r.scard(f"bg:processing:{Q}") == 0
        assert r.hget(f"bg:stats:{Q}", "completed") == "300"
        for jid in (ids[0], ids[299]):
            att = r.hget(f"bg:jobs:{jid}", "lat")
            a = r.hgetall(f"bg:attempts:{att}")
            assert a["job"] == jid and "fin" in a and "time" in a and "err" not in a
        # The fallback was taken (CONFIG GET is the documented grant's known refusal).
        refused = {(e["username"], e["object"]) for e in r.acl_log()}
        assert refused == {("old-worker", "smismember"), ("old-worker", "config|get")}, refused
    finally:
        r.execute_command("ACL", "DELUSER", "old-worker")


def test_a_chunk_behind_one_that_wrote_nothing_writes_nothing(r):
    """bg-cli keeps two enqueue.lua calls in flight; the second names a job of the first
    (after), and writes only when that job exists, so "the first jobs were enqueued" holds
    when the first call is refused (a key of the wrong type) and the second's keys are sound."""
    root = Path(__file__).resolve().parents[2] / "libbg" / "lua"
    body = (root / "lib" / "prelude.lua").read_text() + (root / "enqueue.lua").read_text()
    sha = r.script_load(body)
    prefixes = ["bg:jobs:", "bg:ready:", "bg:scheduled:", "bg:queues"]
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    def run_of(q, job):
        return ["1", q, "bg.noop", "", "", "", job, "{}"]

    # The first chunk's ready list is a string: refused, nothing written.
    r.set("bg:ready:broken", "x")
    reply = r.evalsha(sha, 0, *prefixes, "", *run_of("broken", first))
    assert isinstance(reply, list) and reply[0] == "badkey"
    reply = r.evalsha(sha, 0, *prefixes, first, *run_of("sound", second))
    assert reply == ["badarg", "after", "the chunk before this one was not written"]
    assert not r.exists(f"bg:jobs:{second}") and not r.exists("bg:ready:sound")
    # Behind a chunk that was written, it writes.
    assert r.evalsha(sha, 0, *prefixes, "", *run_of("sound", first)) == 1
    assert r.evalsha(sha, 0, *prefixes, first, *run_of("sound", second)) == 1
    assert r.lrange("bg:ready:sound", 0, -1) == [first, second]


def test_a_line_at_a_time_is_enqueued_as_it_comes(rs, r):
    # A producer that writes a line and waits (a pipe from a long-running program) gets each
    # job enqueued and its UUID printed while the input stays open, not once a batch is full.
    with cli_piped(rs, "enqueue", "bg.noop", "-", "-q", Q) as p:
        for i in range(3):
            p.stdin.write(f'{{"i":{i}}}\n')
            p.stdin.flush()
            ready, _, _ = select.select([p.stdout], [], [], 10)
            assert ready, f"no UUID for line {i} within 10 s"
            jid = p.stdout.readline().strip()
            assert r.hget(f"bg:jobs:{jid}", "arg") == f'{{"i":{i}}}'
            assert r.llen(f"bg:ready:{Q}") == i + 1
    assert p.returncode == 0
