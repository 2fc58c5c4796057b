"""bg-cli workers: one row per live worker process, from the heartbeat hashes the workers keep
fresh (NS:worker:<id> with a TTL, its ID in NS:workers), gone within seconds of a worker's
death, with the worker's state (running, quiet, stopping)."""

import json
import os
import signal
import socket

from conftest import cli, clients_named, exe, wait_for


def start_worker(spawn, rs, *args):
    return spawn([exe("bg-worker"), "-r", rs.url] + list(args))


def workers(rs, ns=None):
    res = cli(rs, "workers", "--json", ns=ns)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["workers"]


def row_of(rs, pid, ns=None):
    return next((w for w in workers(rs, ns) if w["pid"] == pid), None)


def main_id(r, queues):
    """The client ID of the worker's main connection, from CLIENT LIST."""
    c = clients_named(r, f"bg-worker:{queues}")
    return int(c[0]["id"]) if len(c) == 1 else None


def test_workers_lists_each_worker_with_its_fields(rs, r, spawn):
    a = start_worker(spawn, rs, "-q", "high,low", "-c", "3")
    b = start_worker(spawn, rs, "-c", "2")
    wait_for(lambda: row_of(rs, a.pid) and row_of(rs, b.pid), what="both workers' rows")
    now_ms = int(r.time()[0]) * 1000
    ra, rb = row_of(rs, a.pid), row_of(rs, b.pid)
    assert ra["id"] == wait_for(lambda: main_id(r, "high,low"), what="a's main connection")
    assert ra["host"] == socket.gethostname()
    assert (ra["queues"], ra["fibers"], ra["busy"], ra["state"]) == ("high,low", 3, 0, "running")
    assert (rb["queues"], rb["fibers"], rb["state"]) == ("default", 2, "running")
    for w in (ra, rb):
        assert abs(w["started_ms"] - now_ms) < 10000, w
        assert 0 <= w["age_ms"] < 10000, w
    # The hash itself, as docs/schema.md describes it.
    h = r.hgetall(f"bg:worker:{ra['id']}")
    assert set(h) == {"host", "pid", "queues", "fibers", "busy", "started", "state"}, h
    assert 0 < r.pttl(f"bg:worker:{ra['id']}") <= 5000
    assert str(ra["id"]) in r.smembers("bg:workers")

    text = cli(rs, "workers")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].split() == ["id", "host", "pid", "queues", "fibers", "busy", "age", "state"]
    assert len(lines) == 3
    assert any(ln.split()[2] == str(a.pid) and ln.split()[-1] == "running" for ln in lines[1:])


def test_busy_counts_fibers_running_a_job(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "3", "--shutdown-timeout", "0.2")
    for _ in range(2):
        cli(rs, "enqueue", "bg.sleep", '{"ms":20000}')
    wait_for(lambda: (row_of(rs, w.pid) or {}).get("busy") == 2, what="busy 2")


def test_no_workers_says_so(rs, r):
    res = cli(rs, "workers")
    assert (res.returncode, res.stdout) == (0, "no live workers\n"), res.stderr
    assert workers(rs) == []


def test_sigkill_is_gone_within_the_ttl_and_its_id_is_dropped(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "1")
    row = wait_for(lambda: row_of(rs, w.pid), what="the worker's row")
    os.kill(w.pid, signal.SIGKILL)
    w.wait(10)
    wait_for(lambda: row_of(rs, w.pid) is None, timeout=6, interval=0.1, what="the row to go")
    # The reader removed the expired ID from the set.
    assert str(row["id"]) not in r.smembers("bg:workers")


def test_clean_exit_deletes_its_heartbeat_at_once(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "1")
    row = wait_for(lambda: row_of(rs, w.pid), what="the worker's row")
    w.signal(signal.SIGTERM)
    assert w.wait(30) == 0, w.log()
    assert not r.exists(f"bg:worker:{row['id']}")
    assert str(row["id"]) not in r.smembers("bg:workers")


def test_quiet_after_sigtstp_and_running_after_sigcont(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "1")
    wait_for(lambda: row_of(rs, w.pid), what="the worker's row")
    w.signal(signal.SIGTSTP)
    wait_for(lambda: row_of(rs, w.pid)["state"] == "quiet", what="quiet")
    w.signal(signal.SIGCONT)
    wait_for(lambda: row_of(rs, w.pid)["state"] == "running", what="running again")


def test_stopping_during_a_slow_shutdown(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "1", "--shutdown-timeout", "30")
    cli(rs, "enqueue", "bg.sleep", '{"ms":4000}')
    wait_for(lambda: (row_of(rs, w.pid) or {}).get("busy") == 1, what="the job to run")
    w.signal(signal.SIGTERM)
    row = wait_for(lambda: (row_of(rs, w.pid) or {}).get("state") == "stopping"
                   and row_of(rs, w.pid), what="stopping")
    assert row["busy"] == 1
    assert w.wait(30) == 0, w.log()
    assert row_of(rs, w.pid) is None


def test_namespace_keeps_workers_apart(rs, r, spawn):
    w = spawn([exe("bg-worker"), "-r", rs.url, "-n", "other", "-c", "1"])
    wait_for(lambda: row_of(rs, w.pid, ns="other"), what="the row in namespace other")
    assert workers(rs) == []


def test_wrong_type_workers_set_is_logged_and_the_worker_carries_on(rs, r, spawn):
    r.set("bg:workers", "junk")
    w = start_worker(spawn, rs, "-c", "1")
    wait_for(lambda: "bg:workers" in w.log() and "WRONGTYPE" in w.log(), what="the log line")
    jid = cli(rs, "enqueue", "bg.noop").stdout.strip()
    wait_for(lambda: r.zcard("bg:completed:default") == 1, what="the job to complete")
    assert r.hget(f"bg:jobs:{jid}", "att") == "1"
    # Said once, however many beats meet it.
    wait_for(lambda: r.zcard("bg:completed:default") == 1)
    assert w.log().count("bg:workers: WRONGTYPE") == 1, w.log()
    assert r.get("bg:workers") == "junk"
    res = cli(rs, "workers")
    assert res.returncode == 1 and "bg:workers" in res.stderr, (res.stdout, res.stderr)
    assert w.proc.poll() is None


def test_wrong_type_worker_hash_is_logged_and_left_out(rs, r, spawn):
    w = start_worker(spawn, rs, "-c", "1")
    row = wait_for(lambda: row_of(rs, w.pid), what="the worker's row")
    key = f"bg:worker:{row['id']}"
    # Another program's junk where the hash should be: the worker logs it, keeps working, and
    # writes its hash again once the junk has gone (the heartbeat gave it the TTL).
    r.delete(key)
    r.rpush(key, "junk")
    wait_for(lambda: f"{key}: WRONGTYPE" in w.log(), what="the log line")
    res = cli(rs, "workers", "--json")
    assert res.returncode in (0, 1), res.stderr
    if res.returncode == 1:
        assert key in res.stderr
    cli(rs, "enqueue", "bg.noop")
    wait_for(lambda: r.zcard("bg:completed:default") == 1, what="the job to complete")
    def back():
        res = cli(rs, "workers", "--json")
        return res.returncode == 0 and [x for x in json.loads(res.stdout)["workers"]
                                        if x["pid"] == w.pid]
    wait_for(back, timeout=10, interval=0.1, what="the hash to come back")
    # A foreign program's member that is no client ID is left alone, and shown nowhere.
    r.sadd("bg:workers", "not-an-id")
    assert [x["pid"] for x in workers(rs)] == [w.pid]
    assert "not-an-id" in r.smembers("bg:workers")


def test_workers_usage_errors(rs):
    res = cli(rs, "workers", "extra")
    assert res.returncode == 2 and "unexpected argument" in res.stderr
    res = cli(rs, "workers", "--bogus")
    assert res.returncode == 2
    res = cli(rs, "workers", "-h")
    assert res.returncode == 0 and "usage: bg-cli" in res.stdout
