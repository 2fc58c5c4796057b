"""bg-cli's controls, end to end with a real redis-server and real workers: `pause` and `resume`
of queues (NS:paused), and `cancel` of a waiting job (removed with its hash) or a running one
(its worker stops it and the attempt ends with err Canceled). Malformed input is a usage error
that writes nothing; a key of the wrong type is one clear line and nothing written."""

import json
import time

import pytest

from conftest import cli
from test_cli import ok, one_line_error
from test_worker import push


# ---- pause and resume: what they write ----


def test_pause_and_resume_write_ns_paused(rs, r):
    assert ok(cli(rs, "pause", "-q", "high,low")) == "paused high\npaused low\n"
    assert r.smembers("bg:paused") == {"high", "low"}
    assert ok(cli(rs, "pause", "-q", "high")) == "high was paused already\n"
    assert ok(cli(rs, "resume", "-q", "high")) == "resumed high\n"
    assert r.smembers("bg:paused") == {"low"}
    assert ok(cli(rs, "resume", "-q", "high")) == "high was not paused\n"


def test_pause_json(rs, r):
    doc = json.loads(ok(cli(rs, "pause", "-q", "a", "--json")))
    assert doc == {"queue": "a", "paused": True, "changed": True}
    doc = json.loads(ok(cli(rs, "resume", "-q", "a", "--json")))
    assert doc == {"queue": "a", "paused": False, "changed": True}


def test_pause_in_another_namespace(rs, r):
    ok(cli(rs, "pause", "-q", "a", ns="other"))
    assert r.smembers("other:paused") == {"a"} and not r.exists("bg:paused")


@pytest.mark.parametrize("args", [
    ["pause"], ["resume"], ["pause", "-q", ""], ["pause", "-q", "bad name"], ["pause", "-q", "a/b"],
    ["pause", "-q", "x" * 129], ["pause", "-q", "a", "extra"], ["resume", "-q", "a", "--nope"],
    ["pause", "-q"],
])
def test_pause_resume_usage_errors(rs, r, args):
    one_line_error(cli(rs, *args), 2)
    assert r.dbsize() == 0


def test_pause_wrong_type_key(rs, r):
    r.set("bg:paused", "junk")
    line = one_line_error(cli(rs, "pause", "-q", "a"), 1)
    assert "WRONGTYPE" in line or "wrong" in line.lower()
    assert r.get("bg:paused") == "junk"


# ---- cancel of jobs that do not run ----


def test_cancel_waiting_job_removes_it(rs, r):
    jid = push(r, "bg.noop")
    other = push(r, "bg.noop")
    assert ok(cli(rs, "cancel", jid)) == f"removed {jid}\n"
    assert r.lrange("bg:ready:default", 0, -1) == [other]
    assert not r.exists(f"bg:jobs:{jid}") and r.exists(f"bg:jobs:{other}")


def test_cancel_scheduled_job_removes_it(rs, r):
    jid = ok(cli(rs, "enqueue", "bg.noop", "--in", "1h")).strip()
    doc = json.loads(ok(cli(rs, "cancel", jid, "--json")))
    assert doc == {"job": jid, "result": "removed"}
    assert r.zcard("bg:scheduled:default") == 0 and not r.exists(f"bg:jobs:{jid}")


def test_cancel_unknown_job(rs, r):
    jid = "0f6a2a8e-1c2d-4b3a-9e8f-0123456789ab"
    line = one_line_error(cli(rs, "cancel", jid), 1)
    assert jid in line


def test_cancel_dead_job_is_refused(rs, r):
    jid = push(r, "bg.noop")
    r.lrem("bg:ready:default", 0, jid)
    r.zadd("bg:dead:default", {jid: 1})
    line = one_line_error(cli(rs, "cancel", jid), 1)
    assert "dead or finished" in line
    assert r.exists(f"bg:jobs:{jid}") and r.zcard("bg:dead:default") == 1


def test_cancel_accepts_job_ids_as_producers_write_them(rs, r):
    for jid in ["9F2C3B1A-0000-4000-8000-00000000000A", "{9f2c3b1a-0000-4000-8000-00000000000b}"]:
        r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}",
                                          "qat": 1})
        r.rpush("bg:ready:default", jid)
        assert ok(cli(rs, "cancel", jid)) == f"removed {jid}\n"
    assert r.dbsize() == 0


@pytest.mark.parametrize("args", [
    ["cancel"], ["cancel", "nope"], ["cancel", ""], ["cancel", "0f6a2a8e-1c2d-4b3a-9e8f-0123456789a"],
    ["cancel", "0f6a2a8e-1c2d-4b3a-9e8f-0123456789abc"], ["cancel", "{0f6a2a8e-1c2d-4b3a-9e8f-0123456789ab"],
    ["cancel", "0f6a2a8e-1c2d-4b3a-9e8f-0123456789ab", "more"], ["cancel", "--bad"],
])
def test_cancel_usage_errors(rs, r, args):
    jid = push(r, "bg.noop")
    one_line_error(cli(rs, *args), 2)
    assert r.lrange("bg:ready:default", 0, -1) == [jid]


@pytest.mark.parametrize("key,value", [("bg:ready:default", "string"),
                                       ("bg:processing:default", "string"),
                                       ("bg:scheduled:default", "list")])
def test_cancel_wrong_type_key_writes_nothing(rs, r, key, value):
    jid = "0f6a2a8e-1c2d-4b3a-9e8f-0123456789ab"
    r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}", "qat": 1})
    r.delete(key)
    if value == "string":
        r.set(key, "junk")
    else:
        r.rpush(key, "junk")
    line = one_line_error(cli(rs, "cancel", jid), 1)
    assert key in line and "nothing was written" in line
    assert r.exists(f"bg:jobs:{jid}")


def test_cancel_job_key_of_wrong_type(rs, r):
    jid = "0f6a2a8e-1c2d-4b3a-9e8f-0123456789ab"
    r.set(f"bg:jobs:{jid}", "junk")
    line = one_line_error(cli(rs, "cancel", jid), 1)
    assert f"bg:jobs:{jid}" in line
    assert r.get(f"bg:jobs:{jid}") == "junk"


# ---- status and metrics show a paused queue ----


def test_status_shows_paused_queue(rs, r):
    push(r, "bg.noop", queue="high")
    push(r, "bg.noop", queue="low")
    r.sadd("bg:queues", "high", "low")
    ok(cli(rs, "pause", "-q", "low"))
    out = ok(cli(rs, "status"))
    names = [line for line in out.splitlines() if line and not line[0].isspace()
             and not line.startswith("workers")]
    assert names == ["high", "low (paused)"]
    doc = json.loads(ok(cli(rs, "status", "--json")))
    assert {q["name"]: q["paused"] for q in doc["queues"]} == {"high": False, "low": True}
    metrics = ok(cli(rs, "metrics"))
    assert 'bg_queue_paused{queue="low"} 1' in metrics
    assert 'bg_queue_paused{queue="high"} 0' in metrics
    ok(cli(rs, "resume", "-q", "low"))
    doc = json.loads(ok(cli(rs, "status", "--json")))
    assert not any(q["paused"] for q in doc["queues"])


def test_status_with_ns_paused_of_wrong_type(rs, r):
    push(r, "bg.noop", queue="high")
    r.sadd("bg:queues", "high")
    r.set("bg:paused", "junk")
    doc = json.loads(ok(cli(rs, "status", "--json")))
    assert doc["queues"][0]["paused"] is False and doc["queues"][0]["ready"] == 1


# ---- what workers do: a paused queue is skipped, a resume wakes them, a cancel stops a job ----


def test_paused_queue_is_skipped_and_resume_wakes_workers(rs, r, spawn):
    from test_worker import worker
    from conftest import wait_for
    ok(cli(rs, "pause", "-q", "high"))
    w = worker(spawn, rs, "-q", "high,low", "-c", "2")
    highs = [push(r, "bg.noop", queue="high") for _ in range(3)]
    for _ in range(3):
        push(r, "bg.noop", queue="low")
    wait_for(lambda: r.hget("bg:stats:low", "completed") == "3", what="the low jobs")
    # high comes first in priority; had it not been skipped its jobs would have run first.
    assert r.lrange("bg:ready:high", 0, -1) == highs
    assert r.hget("bg:stats:high", "completed") is None
    t0 = time.monotonic()
    ok(cli(rs, "resume", "-q", "high"))
    wait_for(lambda: r.hget("bg:stats:high", "completed") == "3", timeout=5,
             what="the high jobs after resume")
    # woken by the report of the resume, not by a once-a-second look
    assert time.monotonic() - t0 < 0.9
    w.stop()


def test_pause_while_idle_then_a_job_waits(rs, r, spawn):
    from test_worker import worker
    from conftest import wait_for
    w = worker(spawn, rs, "-q", "solo", "-c", "1")
    push(r, "bg.noop", queue="solo")
    wait_for(lambda: r.hget("bg:stats:solo", "completed") == "1", what="a first job")
    ok(cli(rs, "pause", "-q", "solo"))
    jid = push(r, "bg.noop", queue="solo")
    time.sleep(0.5)  # a window: a paused queue's job must not be taken in it
    assert r.lrange("bg:ready:solo", 0, -1) == [jid]
    ok(cli(rs, "resume", "-q", "solo"))
    wait_for(lambda: r.hget("bg:stats:solo", "completed") == "2", timeout=5, what="the job")
    w.stop()


def running_attempt(r, jid):
    from conftest import wait_for
    wait_for(lambda: r.hget(f"bg:jobs:{jid}", "lat") and
             r.sismember("bg:processing:default", r.hget(f"bg:jobs:{jid}", "lat")),
             what="the job to run")
    return r.hget(f"bg:jobs:{jid}", "lat")


@pytest.mark.parametrize("kind", ["builtin", "exec"])
def test_cancel_running_job(rs, r, spawn, kind):
    from test_worker import worker
    from conftest import wait_for
    # A short shutdown: the other job need not be waited for when the test ends.
    args = ["-c", "2", "--shutdown-timeout", "0.2"] + (["-e", "Nap=sleep 30"]
                                                     if kind == "exec" else [])
    w = worker(spawn, rs, *args)
    cls, arg = ("Nap", "{}") if kind == "exec" else ("bg.sleep", '{"ms": 30000}')
    jid = push(r, cls, arg, rty=5)
    other = push(r, cls, arg)
    att = running_attempt(r, jid)
    running_attempt(r, other)
    t0 = time.monotonic()
    doc = json.loads(ok(cli(rs, "cancel", jid, "--json")))
    assert doc == {"job": jid, "result": "stopping", "attempt": att}
    wait_for(lambda: r.zscore("bg:dead:default", jid) is not None, timeout=8,
             what="the canceled job to be dead")
    assert time.monotonic() - t0 < 3
    a = r.hgetall(f"bg:attempts:{att}")
    assert a["err"] == "Canceled" and "fin" in a
    assert r.hget(f"bg:jobs:{jid}", "ler") == "Canceled"
    assert r.zscore("bg:failed:default", att) is not None
    assert r.zcard("bg:scheduled:default") == 0  # not retried, whatever its rty
    # the other job runs on, untouched
    assert r.sismember("bg:processing:default", r.hget(f"bg:jobs:{other}", "lat"))
    w.stop()


# ---- every command takes --json ----


def test_enqueue_dequeue_retry_take_json(rs, r):
    doc = json.loads(ok(cli(rs, "enqueue", "bg.noop", "--json")))
    jid = doc["job"]
    assert r.lrange("bg:ready:default", 0, -1) == [jid]
    docs = [json.loads(line) for line in ok(cli(rs, "enqueue", "bg.noop", "-", "--json",
                                                  input="{}\n{}\n")).splitlines()]
    assert len(docs) == 2 and r.llen("bg:ready:default") == 3
    assert [d["job"] for d in docs] == r.lrange("bg:ready:default", 1, -1)
    assert json.loads(ok(cli(rs, "dequeue", jid, "--json"))) == {"job": jid, "removed": True}
    dead = docs[0]["job"]
    r.lrem("bg:ready:default", 0, dead)
    r.zadd("bg:dead:default", {dead: 1})
    assert json.loads(ok(cli(rs, "retry", dead, "--json"))) == {"job": dead, "retried": True}
    assert json.loads(ok(cli(rs, "retry", "--dead", "--json"))) == {"moved": 0}


def test_every_command_lists_json(rs):
    from conftest import exe, run
    names = ["status", "enqueue", "dequeue", "show", "retry", "workers", "failed", "dead",
             "purge", "pause", "resume", "cancel", "ping", "metrics"]
    for name in names:
        p = run([exe("bg-cli"), name, "-h"])
        assert p.returncode == 0 and "--json" in p.stdout, name
