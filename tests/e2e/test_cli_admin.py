"""bg-cli's operator commands end to end, with a real redis-server and real workers: `ping` as a
health check, `failed` and `dead` listing what failed and why (jobs failed for real by
bg-worker's bg.fail), `dead --delete`, `purge` (asking on a real terminal), and `status -v`'s
latency and its line for an empty namespace. Junk in Redis never crashes a command, and every
malformed flag is a usage error that writes nothing."""

import json
import os
import pty
import re
import select
import subprocess
import time

import pytest
import redis

from conftest import _free_port, cli, exe, run, wait_for
from test_cli import ok, one_line_error
from test_worker import push, worker

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
HEADER = "job class err msg when"


def fail_jobs(r, spawn, rs, specs, queue="default"):
    """Jobs failed for real by a worker with no retry left (dead); specs: (err, msg) pairs.
    Returns their IDs in the order they failed (one fiber)."""
    w = worker(spawn, rs, "-c", "1", "-q", queue, "--retries", "0")
    ids = []
    for err, msg in specs:
        ids.append(push(r, "bg.fail", json.dumps({"err": err, "msg": msg}), queue=queue))
        n = len(ids)
        wait_for(lambda: r.zcard(f"bg:dead:{queue}") == n, what="the job to die")
        time.sleep(0.002)  # distinct times, so newest-first is well defined
    w.stop()
    return ids


def rows(out):
    """The lines of a table after its header."""
    lines = out.splitlines()
    assert re.sub(r" +", " ", lines[0].strip()) == HEADER, lines[0]
    return lines[1:]


# ---- ping ----


def test_ping_ok_text_and_json(rs, r):
    out = ok(cli(rs, "ping"))
    head, row = out.splitlines()
    assert head.split() == ["time", "url", "namespace"]
    assert row.split()[1:] == [rs.url, "bg"]
    assert re.fullmatch(r"\d+\.\d{3}", row.split()[0])
    doc = json.loads(ok(cli(rs, "ping", "--json")))
    assert doc["ok"] is True and doc["url"] == rs.url and doc["namespace"] == "bg"
    assert isinstance(doc["time_ms"], (int, float))
    assert r.dbsize() == 0  # a health check writes nothing


def test_ping_redis_down_exits_1():
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    line = one_line_error(run([exe("bg-cli"), "-r", url, "ping"]), 1)
    assert "redis://:***@" in line and "hunter2" not in line


def test_ping_namespace_key_of_wrong_type_exits_1(rs, r):
    r.set("bg:queues", "junk")
    line = one_line_error(cli(rs, "ping"), 1)
    assert "bg:queues" in line and "not a set" in line


def test_ping_acl_without_key_access_exits_1(rs, r):
    # A user that may connect and run bg's connection set-up but not read the namespace.
    r.execute_command("ACL", "SETUSER", "blind", "on", ">pw", "+@all", "resetkeys", "~other:*")
    try:
        url = f"redis://blind:pw@127.0.0.1:{rs.port}/0"
        line = one_line_error(run([exe("bg-cli"), "-r", url, "ping"]), 1)
        assert "NOPERM" in line or "permission" in line.lower()
        assert ok(run([exe("bg-cli"), "-r", url, "-n", "other", "ping"]))
    finally:
        r.execute_command("ACL", "DELUSER", "blind")


# ---- failed and dead ----


def test_failed_and_dead_list_real_failures_newest_first(rs, r, spawn):
    ids = fail_jobs(r, spawn, rs, [("First", "one"), ("Second", "two"), ("Third", "three")])
    out = ok(cli(rs, "failed"))
    lines = rows(out)
    assert [ln.split()[0] for ln in lines] == ids[::-1]
    first = lines[-1].split()
    assert first[1:4] == ["bg.fail", "First", "one"] and ISO_RE.match(first[4])
    # Right-aligned columns, one space between, no trailing blanks.
    assert all(len(ln) == len(out.splitlines()[0]) and not ln.endswith(" ") for ln in lines)
    dead = rows(ok(cli(rs, "dead")))
    assert [ln.split()[:4] for ln in dead] == [
        [ids[2], "bg.fail", "Third", "three"],
        [ids[1], "bg.fail", "Second", "two"],
        [ids[0], "bg.fail", "First", "one"]]
    assert len(rows(ok(cli(rs, "failed", "--limit", "2")))) == 2
    assert [ln.split()[0] for ln in rows(ok(cli(rs, "dead", "--limit=1")))] == [ids[2]]


def test_failed_and_dead_json(rs, r, spawn):
    [jid] = fail_jobs(r, spawn, rs, [("Name", "text")])
    doc = json.loads(ok(cli(rs, "failed", "--json")))
    [e] = doc["failed"]
    assert e["job"] == jid and e["queue"] == "default" and e["class"] == "bg.fail"
    assert e["err"] == "Name" and e["msg"] == "text"
    assert r.zscore("bg:failed:default", e["attempt"]) == e["when_ms"]
    assert type(e["when_ms"]) is int and ISO_RE.match(e["when"])
    doc = json.loads(ok(cli(rs, "dead", "--json")))
    [d] = doc["dead"]
    assert (d["job"], d["err"], d["msg"], d["attempt"]) == (jid, "Name", "text", e["attempt"])
    assert d["when_ms"] == r.zscore("bg:dead:default", jid)


def test_lists_merge_queues_and_filter_with_q(rs, r, spawn):
    [low] = fail_jobs(r, spawn, rs, [("Low", "l")], queue="low")
    [high] = fail_jobs(r, spawn, rs, [("High", "h")], queue="high")
    assert [ln.split()[0] for ln in rows(ok(cli(rs, "failed")))] == [high, low]
    assert [ln.split()[0] for ln in rows(ok(cli(rs, "dead", "-q", "low")))] == [low]
    got = [ln.split()[0] for ln in rows(ok(cli(rs, "failed", "-q", "low", "-q", "high")))]
    assert got == [high, low]


def test_empty_lists_say_so(rs, r):
    assert ok(cli(rs, "failed")) == "no failed attempts\n"
    assert ok(cli(rs, "dead", "-q", "nothing")) == "no dead jobs\n"
    assert json.loads(ok(cli(rs, "failed", "--json"))) == {"failed": []}
    assert json.loads(ok(cli(rs, "dead", "--json"))) == {"dead": []}


def test_dead_reason_stays_once_the_attempts_are_trimmed(rs, r, spawn):
    # bg-cli dead reads the reason from the job (ler, lms), not from its attempts, so it
    # outlives --retain-failed: trim as the watcher does, the set and the attempt hashes.
    [jid] = fail_jobs(r, spawn, rs, [("Gone", "but kept")])
    lat = r.hget(f"bg:jobs:{jid}", "lat")
    for aid in r.zrange("bg:failed:default", 0, -1):
        r.delete(f"bg:attempts:{aid}")
    r.delete("bg:failed:default")
    [line] = rows(ok(cli(rs, "dead")))
    assert line.split()[:5] == [jid, "bg.fail", "Gone", "but", "kept"]
    [d] = json.loads(ok(cli(rs, "dead", "--json")))["dead"]
    assert (d["err"], d["msg"], d["attempt"]) == ("Gone", "but kept", lat)


def test_dead_job_without_ler_falls_back_to_its_latest_attempt(rs, r, spawn):
    # A job buried by an older bg or by another tool has no ler/lms: its latest attempt's err
    # and msg are shown while that attempt is kept, and nothing once it is gone.
    a, b = fail_jobs(r, spawn, rs, [("Old", "style"), ("Older", "gone")])
    for jid in (a, b):
        r.hdel(f"bg:jobs:{jid}", "ler", "lms")
    r.delete(f"bg:attempts:{r.hget(f'bg:jobs:{b}', 'lat')}")
    r.sadd("bg:queues", "other")
    r.zadd("bg:dead:other", {"no-such-job": 1, "empty-lat": 2})
    r.hset("bg:jobs:empty-lat", mapping={"que": "other", "cls": "X", "lat": ""})
    by_job = {d["job"]: d for d in json.loads(ok(cli(rs, "dead", "--json")))["dead"]}
    assert (by_job[a]["err"], by_job[a]["msg"]) == ("Old", "style")
    assert (by_job[b]["err"], by_job[b]["msg"]) == (None, None)
    assert by_job["no-such-job"]["attempt"] is None and by_job["no-such-job"]["class"] is None
    assert by_job["empty-lat"]["attempt"] is None and by_job["empty-lat"]["class"] == "X"


def test_long_msg_is_cut_and_control_characters_escaped(rs, r, spawn):
    msg = "line1\nline2\t\x1b[31mred\u202e " + "x" * 500
    [jid] = fail_jobs(r, spawn, rs, [("Esc\rape", msg)])
    out = ok(cli(rs, "failed"))
    assert "\x1b" not in out and "\r" not in out and "\u202e" not in out
    [line] = rows(out)
    assert "Esc\\rape" in line and "line1\\nline2\\t\\x1b[31mred\\xe2\\x80\\xae" in line
    assert "\u2026" in line and "x" * 100 not in line
    [e] = json.loads(ok(cli(rs, "failed", "--json")))["failed"]
    assert e["msg"] == msg[:1024]  # JSON carries it whole


def test_junk_in_redis_is_shown_as_far_as_it_can_be(rs, r, spawn):
    raw = redis.Redis(port=rs.port)
    [jid] = fail_jobs(r, spawn, rs, [("Real", "one")])
    now = r.zscore("bg:failed:default", r.zrange("bg:failed:default", 0, 0)[0])
    raw.zadd("bg:failed:default", {b"nul\x00member": now + 1, b"str-attempt": now + 2,
                                   b"\xff\xfe": now + 3, b"no-such": now + 4})
    raw.set("bg:attempts:str-attempt", "a string")
    raw.hset("bg:attempts:\xff\xfe".encode("latin-1"), mapping={
        "job": b"\x00job\xff", "err": b"E\x00rr", "msg": b"m" * (1 << 20)})
    raw.hset(b"bg:attempts:nul\x00member", mapping={"job": jid, "err": "Nul", "msg": "found"})
    raw.zadd("bg:dead:default", {b"\x01dead\xff": now + 5})
    raw.set(b"bg:jobs:\x01dead\xff", "a string")
    out = ok(cli(rs, "failed", "--limit", "10"))
    lines = rows(out)
    assert len(lines) == 5
    assert lines[0].split()[0] == "-"  # no-such: no attempt hash
    assert "\\x00job\\xff" in lines[1] and "E\\x00rr" in lines[1]
    assert lines[2].split()[0] == "-"  # str-attempt: a string
    assert lines[3].split()[:4] == [jid, "bg.fail", "Nul", "found"]
    assert "\x00" not in out
    doc = json.loads(ok(cli(rs, "failed", "--json")))
    assert {e["err"] for e in doc["failed"]} >= {"E\x00rr", "Nul", "Real", None}
    assert any(e["job"] == "\x00job\ufffd" for e in doc["failed"])
    dead = rows(ok(cli(rs, "dead")))
    assert dead[0].split()[:2] == ["\\x01dead\\xff", "-"]
    assert dead[1].split()[0] == jid
    raw.close()


def test_a_set_of_the_wrong_type_is_named_and_the_rest_shown(rs, r, spawn):
    [jid] = fail_jobs(r, spawn, rs, [("Real", "one")])
    r.sadd("bg:queues", "broken", "bad name")
    r.set("bg:failed:broken", "junk")
    r.set("bg:dead:broken", "junk")
    p = cli(rs, "failed")
    assert p.returncode == 1
    assert [ln.split()[0] for ln in rows(p.stdout)] == [jid]
    assert p.stderr == "bg-cli: failed: cannot read bg:failed:broken is not a sorted set\n"
    p = cli(rs, "dead", "--json")
    assert p.returncode == 1 and [d["job"] for d in json.loads(p.stdout)["dead"]] == [jid]
    assert "bg:dead:broken" in p.stderr and len(p.stderr.splitlines()) == 1


# ---- dead --delete ----


def test_dead_delete_one_job(rs, r, spawn):
    a, b = fail_jobs(r, spawn, rs, [("A", "a"), ("B", "b")])
    assert ok(cli(rs, "dead", "--delete", a)) == ""
    assert r.zrange("bg:dead:default", 0, -1) == [b]
    assert not r.exists(f"bg:jobs:{a}") and r.exists(f"bg:jobs:{b}")
    assert r.zcard("bg:failed:default") == 2  # attempts stay until trimmed
    assert r.hget("bg:stats:default", "dead") == "2"
    line = one_line_error(cli(rs, "dead", "--delete", a), 1)
    assert f"no job {a}" in line
    assert json.loads(ok(cli(rs, "dead", "--delete", b, "--json"))) == {"deleted": 1}


def test_dead_delete_refuses_a_job_that_is_not_dead(rs, r):
    jid = push(r, "bg.noop")
    line = one_line_error(cli(rs, "dead", "--delete", jid), 1)
    assert f"job {jid} is not dead" in line
    assert r.lrange("bg:ready:default", 0, -1) == [jid] and r.exists(f"bg:jobs:{jid}")


def test_dead_delete_finds_a_job_without_hash_in_known_queues(rs, r, spawn):
    [jid] = fail_jobs(r, spawn, rs, [("A", "a")], queue="q1")
    r.delete(f"bg:jobs:{jid}")
    ok(cli(rs, "dead", "--delete", jid))
    assert r.zcard("bg:dead:q1") == 0


def test_dead_delete_checks_every_key_before_writing(rs, r, spawn):
    [jid] = fail_jobs(r, spawn, rs, [("A", "a")])
    r.sadd("bg:queues", "broken")
    r.set("bg:dead:broken", "junk")
    line = one_line_error(cli(rs, "dead", "--delete", jid, "-q", "default,broken"), 1)
    assert "WRONGTYPE bg:dead:broken is a string, not a sorted set" in line
    assert r.zrange("bg:dead:default", 0, -1) == [jid] and r.exists(f"bg:jobs:{jid}")
    line = one_line_error(cli(rs, "dead", "--delete", "--all"), 1)
    assert "bg:dead:broken" in line
    r.set(f"bg:jobs:{jid}", "junk")
    line = one_line_error(cli(rs, "dead", "--delete", jid, "-q", "default"), 1)
    assert f"bg:jobs:{jid} is a string, not a hash" in line
    assert r.zrange("bg:dead:default", 0, -1) == [jid]


def test_dead_delete_all_in_batches(rs, r, spawn):
    fail_jobs(r, spawn, rs, [("A", "a")], queue="other")
    # More than one batch (500) of dead entries, some with hashes, one a foreign string key.
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1203)]
    r.zadd("bg:dead:default", {i: n for n, i in enumerate(ids)})
    r.sadd("bg:queues", "default")
    for i in ids[:10]:
        r.hset(f"bg:jobs:{i}", mapping={"que": "default", "cls": "X"})
    r.set(f"bg:jobs:{ids[10]}", "not ours")
    assert ok(cli(rs, "dead", "--delete", "--all", "-q", "default")) == "1203\n"
    assert r.zcard("bg:dead:default") == 0 and r.zcard("bg:dead:other") == 1
    assert not any(r.exists(f"bg:jobs:{i}") for i in ids[:10])
    assert r.get(f"bg:jobs:{ids[10]}") == "not ours"
    assert json.loads(ok(cli(rs, "dead", "--delete", "--all", "--json"))) == {"deleted": 1}
    assert r.zcard("bg:dead:other") == 0


# ---- purge ----


def fill(r, queue="q", ready=3, scheduled=2):
    jids = [push(r, "bg.noop", queue=queue) for _ in range(ready)]
    for n in range(scheduled):
        jid = f"11111111-0000-4000-8000-{n:012d}"
        r.hset(f"bg:jobs:{jid}", mapping={"que": queue, "cls": "X", "pat": 1})
        r.zadd(f"bg:scheduled:{queue}", {jid: 10**13 + n})
        jids.append(jid)
    r.sadd("bg:queues", queue)
    return jids


def test_purge_yes_removes_ready_and_scheduled_and_their_hashes(rs, r):
    jids = fill(r)
    other = push(r, "bg.noop", queue="other")
    out = ok(cli(rs, "purge", "-q", "q", "--yes"))
    assert out == "queue ready scheduled\n    q     3         2\n"
    assert not r.exists("bg:ready:q", "bg:scheduled:q")
    assert not any(r.exists(f"bg:jobs:{j}") for j in jids)
    assert r.lrange("bg:ready:other", 0, -1) == [other]
    assert json.loads(ok(cli(rs, "purge", "-q", "q", "-y", "--json"))) == {
        "queue": "q", "ready": 0, "scheduled": 0}


def test_purge_a_huge_queue_in_batches(rs, r):
    pipe = r.pipeline(transaction=False)
    ids = [f"22222222-0000-4000-8000-{i:012d}" for i in range(2500)]
    for i in ids:
        pipe.hset(f"bg:jobs:{i}", mapping={"que": "big", "cls": "X"})
    pipe.rpush("bg:ready:big", *ids[:1700])
    pipe.zadd("bg:scheduled:big", {i: 1 for i in ids[1700:]})
    pipe.execute()
    r.rpush("bg:ready:big", "not-a-uuid")
    r.set("bg:jobs:not-a-uuid", "foreign")
    [_, row] = ok(cli(rs, "purge", "-q", "big", "--yes")).splitlines()
    assert row.split() == ["big", "1701", "800"]
    assert r.dbsize() == 1 and r.get("bg:jobs:not-a-uuid") == "foreign"


def test_purge_checks_types_first(rs, r):
    jids = fill(r, scheduled=0)
    r.set("bg:scheduled:q", "junk")
    line = one_line_error(cli(rs, "purge", "-q", "q", "--yes"), 1)
    assert "bg:scheduled:q" in line
    assert r.llen("bg:ready:q") == 3 and all(r.exists(f"bg:jobs:{j}") for j in jids)


def test_purge_without_terminal_purges_without_asking(rs, r):
    """It asks only on a terminal (a script or cron job has nobody to answer)."""
    fill(r)
    p = cli(rs, "purge", "-q", "q", input="")
    assert p.returncode == 0, p.stderr
    assert "?" not in p.stderr
    assert r.llen("bg:ready:q") == 0 and r.zcard("bg:scheduled:q") == 0


def purge_on_terminal(rs, answer, queue="q"):
    """Runs purge with a pseudo-terminal as its stdin, stdout and stderr; types answer once the
    question shows. Returns (exit status, everything the terminal showed)."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(exe("bg-cli"), [exe("bg-cli"), "-r", rs.url, "purge", "-q", queue])
    seen = b""
    deadline = time.monotonic() + 10
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen:
            os.write(fd, answer)
            answered = True
    _, st = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(st), seen.decode("utf-8", "replace")


@pytest.mark.parametrize("answer", [b"n\n", b"\n", b"yess\n", b"\x04"])
def test_purge_on_a_terminal_does_nothing_unless_answered_y(rs, r, answer):
    fill(r)
    status, seen = purge_on_terminal(rs, answer)
    assert "purge 3 ready and 2 scheduled jobs of q? [y/N]" in seen
    assert status == 1 and "nothing purged" in seen
    assert r.llen("bg:ready:q") == 3 and r.zcard("bg:scheduled:q") == 2


@pytest.mark.parametrize("answer", [b"y\n", b"Y\n", b"yes\n"])
def test_purge_on_a_terminal_answered_y(rs, r, answer):
    fill(r)
    status, seen = purge_on_terminal(rs, answer)
    assert status == 0, seen
    assert "    q     3         2" in seen
    assert not r.exists("bg:ready:q", "bg:scheduled:q")


# ---- status ----


def test_status_with_no_queue_says_so(rs, r):
    assert ok(cli(rs, "status")) == "no queues yet in namespace bg\n"
    assert ok(cli(rs, "-n", "other", "status")) == "no queues yet in namespace other\n"
    assert json.loads(ok(cli(rs, "status", "--json"))) == {"queues": []}
    out = ok(cli(rs, "status", "-v"))
    assert out.startswith("no queues yet in namespace bg\n\n")
    assert out.splitlines()[2].split() == ["time", "url", "namespace", "queues"]
    # A queue named with -q is shown, zeros and all.
    assert ok(cli(rs, "status", "-q", "x")).startswith("x\nworkers ")


def test_status_verbose_latency(rs, r):
    sec, usec = r.time()
    now = sec * 1000 + usec // 1000
    r.sadd("bg:queues", "old", "empty", "junk", "nohash")
    push(r, "bg.noop", queue="old", qat=now - 5000)
    push(r, "bg.noop", queue="old", qat=now - 10)
    push(r, "bg.noop", queue="junk", qat="yesterday")
    r.rpush("bg:ready:nohash", "no-such-job")
    out = ok(cli(rs, "status", "-v"))
    blocks = {b.splitlines()[0]: b.splitlines()[1:] for b in out.split("\n\n")[:-1]}
    for q, (head, row) in blocks.items():
        assert head.split()[-1] == "latency" and len(head) == len(row)
    lat = {q: row.split()[-1] for q, (_, row) in blocks.items()}
    assert lat["empty"] == "0" and lat["junk"] == "-" and lat["nohash"] == "-"
    assert 5000 <= int(lat["old"]) < 65000
    assert "latency" not in ok(cli(rs, "status"))
    doc = json.loads(ok(cli(rs, "status", "--json")))
    js = {q["name"]: q["latency_ms"] for q in doc["queues"]}
    assert js["empty"] == 0 and js["junk"] is None and js["old"] >= 5000


# ---- usage ----

BAD = [
    (["ping", "extra"], "extra"),
    (["ping", "-q", "x"], "-q"),
    (["failed", "--limit", "abc"], "abc"),
    (["failed", "--limit", "-1"], "-1"),
    (["failed", "--limit", "0"], "'0'"),
    (["failed", "--limit", "10001"], "10001"),
    (["failed", "--limit", "1.5"], "1.5"),
    (["failed", "--limit", ""], "''"),
    (["failed", "--limit", " 5"], "' 5'"),
    (["failed", "--limit"], "--limit"),
    (["failed", "-q", "bad name"], "bad name"),
    (["failed", "-q", "a,,b"], "''"),
    (["failed", "-q", "a:b"], "a:b"),
    (["failed", "x"], "x"),
    (["failed", "--json=1"], "--json"),
    (["dead", "--limit", "abc"], "abc"),
    (["dead", "--limit", "-1"], "-1"),
    (["dead", "-q", "bad name"], "bad name"),
    (["dead", "--all"], "--all goes with --delete"),
    (["dead", "--delete"], "which job"),
    (["dead", "--delete", "a", "b"], "'b'"),
    (["dead", "--delete", "--all", "a"], "'a'"),
    (["dead", "--delete", "a", "--limit", "3"], "--limit"),
    (["dead", "some-job"], "some-job"),
    (["dead", "--delete=x"], "--delete=x"),
    (["purge"], "-q"),
    (["purge", "-q", "bad name", "--yes"], "bad name"),
    (["purge", "-q", "a,b", "--yes"], "one queue"),
    (["purge", "-q", "a", "-q", "b", "--yes"], "one queue"),
    (["purge", "-q", "", "--yes"], "''"),
    (["purge", "-q", "a", "extra", "--yes"], "extra"),
    (["purge", "-q", "a", "--yes=no"], "--yes"),
    (["status", "-v", "--latency"], "--latency"),
]


@pytest.mark.parametrize("args,needle", BAD)
def test_bad_usage_exits_2_and_writes_nothing(rs, r, args, needle):
    fill(r, ready=1, scheduled=1, queue="a")
    before = r.dbsize()
    line = one_line_error(cli(rs, *args, input=""), 2)
    assert needle.lower() in line.lower()
    assert f"bg-cli {args[0]} -h" in line
    assert r.dbsize() == before and r.llen("bg:ready:a") == 1


@pytest.mark.parametrize("name", ["ping", "failed", "dead", "purge"])
def test_help(rs, name):
    p = run([exe("bg-cli"), "-r", "http://bad", name, "-h"])
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith(f"usage: bg-cli [-r URL] [-n NS] {name}")
    assert f"  {name} " in run([exe("bg-cli"), "-h"]).stdout


@pytest.mark.parametrize("args", [["ping"], ["ping", "--json"], ["failed"], ["dead", "--json"],
                                  ["dead", "--delete", "x"], ["dead", "--delete", "--all"],
                                  ["purge", "-q", "a", "--yes"]])
def test_redis_down_exits_1(args):
    url = f"redis://:hunter2@127.0.0.1:{_free_port()}/0"
    line = one_line_error(run([exe("bg-cli"), "-r", url] + args), 1)
    assert "redis://:***@" in line and "hunter2" not in line
