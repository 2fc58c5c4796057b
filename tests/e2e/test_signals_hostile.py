"""What a careless operator or a closing terminal does to bg's programs: SIGHUP never stops
bg-worker or bg-watcher (docs/operations.md#logs), it is logged once and the work goes on; and
bg-cli's repeated options are taken as written (`retry --dead -q a -q b` once freed the list
it was still filling). Real redis-server, real programs, real signals."""

import signal
import time
import uuid

from conftest import cli, wait_for
from test_cli import ok
from test_watcher import watcher
from test_worker import finished, push, server_ms, worker


def hup_lines(p):
    return [ln for ln in p.log().splitlines() if "SIGHUP ignored" in ln]


def hup(p, n):
    """Sends SIGHUP and waits for the program's n-th "SIGHUP ignored" line; it must not exit."""
    p.signal(signal.SIGHUP)
    wait_for(lambda: len(hup_lines(p)) >= n or p.proc.poll() is not None,
             what=f"SIGHUP {n} to be logged")
    assert p.proc.poll() is None, f"exit {p.proc.returncode} after SIGHUP:\n{p.log()}"
    assert len(hup_lines(p)) == n, p.log()


def test_sighup_does_not_stop_the_worker_nor_its_running_job(rs, r, spawn):
    """A bg.sleep job runs while the worker gets SIGHUP: the worker logs one line, the job
    completes (it is not left to a watcher to fail as Worker Timeout), and the worker takes the
    next job."""
    w = worker(spawn, rs, "-c", "1")
    wt = watcher(spawn, rs, "-i", "0.1", "--grace", "0.3")
    jid = push(r, "bg.sleep", arg='{"ms": 1500}')
    wait_for(lambda: r.scard("bg:processing:default") == 1, what="the job to start")
    hup(w, 1)
    a = wait_for(lambda: finished(r, jid), timeout=10, what="the job to finish")
    assert "err" not in a, a
    assert r.zscore("bg:completed:default", a["id"]) is not None
    assert w.proc.poll() is None, w.log()
    hup(w, 2)
    nxt = push(r, "bg.noop")
    wait_for(lambda: finished(r, nxt), what="the next job to run")
    time.sleep(0.5)  # past the watcher's grace: nothing was taken for a vanished worker
    assert r.zcard("bg:failed:default") == 0
    assert w.proc.poll() is None and wt.proc.poll() is None
    assert len(hup_lines(w)) == 2, w.log()
    assert " I worker: SIGHUP ignored" in hup_lines(w)[0]
    assert w.stop() == 0 and wt.stop() == 0  # TERM still stops them, cleanly


def test_sighup_does_not_stop_the_watcher(rs, r, spawn):
    """The watcher logs one line a SIGHUP and goes on: a job scheduled after the signals still
    moves to ready when due."""
    wt = watcher(spawn, rs, "-i", "0.1")
    hup(wt, 1)
    hup(wt, 2)
    jid = str(uuid.uuid4())
    r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}",
                                      "qat": "0"})
    r.zadd("bg:scheduled:default", {jid: server_ms(r) + 200})
    wait_for(lambda: r.lrange("bg:ready:default", 0, -1) == [jid], what="the due job to move")
    assert wt.proc.poll() is None, wt.log()
    assert len(hup_lines(wt)) == 2
    assert " I watcher: SIGHUP ignored" in hup_lines(wt)[0]
    assert wt.stop() == 0


def bury(r, queue):
    """A dead job of queue, as a worker leaves one."""
    jid = str(uuid.uuid4())
    r.hset(f"bg:jobs:{jid}", mapping={"que": queue, "cls": "bg.noop", "arg": "{}", "qat": "0",
                                      "att": "1", "rty": "0"})
    r.zadd(f"bg:dead:{queue}", {jid: server_ms(r)})
    return jid


def test_retry_dead_takes_every_queue_of_repeated_and_listed_options(rs, r):
    for args in (["-q", "a", "-q", "b"], ["-q", "a,b"], ["-q", "a", "-q", "b,a"]):
        r.flushall()
        ja, jb, jc = bury(r, "a"), bury(r, "b"), bury(r, "c")
        assert ok(cli(rs, "retry", "--dead", *args)) == "2\n", args
        assert r.lrange("bg:ready:a", 0, -1) == [ja], args
        assert r.lrange("bg:ready:b", 0, -1) == [jb], args
        assert r.zcard("bg:dead:a") == 0 and r.zcard("bg:dead:b") == 0, args
        assert r.zrange("bg:dead:c", 0, -1) == [jc], args  # not named: left dead
