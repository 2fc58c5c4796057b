"""valgrind memcheck over a short, complete run of each program (`./dev.sh test`'s valgrind
stage; selected by BG_VALGRIND=1, so a plain `pytest tests/e2e` does not take two minutes more).

Each program runs under
    valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite
and must exit as it would without valgrind, with "ERROR SUMMARY: 0 errors" in its log.

What counts as an error: every memcheck error (an invalid read or write, a use of an
uninitialised value in a branch or a system call, a bad or double free, overlapping memcpy) and
a *definite* leak, i.e. a block no pointer reaches any more when the program exits (the blocks
it alone reaches, "indirectly lost", go with it). Not counted: "possibly lost" and "still
reachable" blocks, which are what a program holds at exit on purpose: a thread's stack and TLS,
hiredis' and libc's buffers, an in-process handler abandoned at the shutdown cut-off. The
worker's exec supervisor (a forked copy of the worker, bg's code) is checked for every error
but leaks, which mean nothing in a copy that _exits; the commands it execs (/bin/sh and what it
runs) are not traced: they are not bg's code.

The runs: bg-worker running a few hundred jobs of each built-in kind (noop, fail, sleep) and of
an exec class, then SIGTERM while some still run (the hand-back path); bg-watcher moving due
jobs, failing stale attempts (one retried, one buried) and trimming, then SIGTERM; bg-cli
status (text and JSON), enqueue (one, --in, and many from stdin), retry (one job and --dead),
dequeue."""

import glob
import os
import shutil
import signal
import uuid

import pytest

from conftest import clients_named, exe, run, wait_for

pytestmark = pytest.mark.skipif(os.environ.get("BG_VALGRIND", "") in ("", "0"),
                                reason="valgrind runs only with BG_VALGRIND=1 (./dev.sh test)")

VG_ERROR = 99
SLOW = 60  # valgrind runs a program 10 to 50 times slower: timeouts to match


def vg(tmp_path, name, *args):
    """The command line running bg program `name` under memcheck, its log in tmp_path."""
    assert shutil.which("valgrind"), "valgrind is not installed"
    return ["valgrind", "-q", f"--error-exitcode={VG_ERROR}", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--show-leak-kinds=definite",
            "--trace-children=no", "--child-silent-after-fork=no", "--num-callers=30",
            f"--log-file={tmp_path}/vg-{name}.%p.log", exe(name)] + list(args)


def vg_logs(tmp_path, name):
    return {p: open(p).read() for p in sorted(glob.glob(f"{tmp_path}/vg-{name}.*.log"))}


def findings(text, forked):
    """The memcheck reports in a log (-q leaves a log empty unless memcheck found something).
    In a forked child (the worker's exec supervisor, which _exits without freeing the heap it
    copied from the worker, and whose copy has lost the other threads' stacks as roots), leak
    records are not findings; every other error is."""
    blocks, cur = [], []
    for line in text.splitlines():
        body = line.split("== ", 1)[1] if line.startswith("==") and "== " in line else line
        if body.strip():
            cur.append(line)
        elif cur:
            blocks.append(cur)
            cur = []
    if cur:
        blocks.append(cur)
    if forked:
        blocks = [b for b in blocks if " lost in loss record " not in b[0]]
    return "\n".join("\n".join(b) for b in blocks)


def assert_clean(tmp_path, name, rc, want_rc=0, pid=None):
    logs = vg_logs(tmp_path, name)
    assert logs, f"no valgrind log for {name}"
    bad = {}
    for path, text in logs.items():
        forked = pid is not None and not path.endswith(f".{pid}.log")
        found = findings(text, forked)
        if found:
            bad[path] = found
    assert not bad and rc == want_rc, (
        f"{name} exited {rc} (want {want_rc}; {VG_ERROR} = memcheck errors):\n"
        + "\n".join(f"--- {p}\n{t[-6000:]}" for p, t in bad.items()))


def server_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


def push(r, n, cls, arg="{}", queue="default", **extra):
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with r.pipeline(transaction=False) as p:
        for jid in ids:
            p.hset(f"bg:jobs:{jid}", mapping={"que": queue, "cls": cls, "arg": arg, "qat": 1,
                                              **extra})
            p.rpush(f"bg:ready:{queue}", jid)
        p.execute()
    return ids


def test_worker_under_memcheck(rs, r, spawn, tmp_path):
    push(r, 300, "bg.noop")
    push(r, 200, "bg.fail", '{"err":"Boom","msg":"on purpose"}', rty=1)
    push(r, 200, "bg.sleep", '{"ms":2}')
    push(r, 100, "T.exec", '{"x":1}')
    push(r, 50, "T.exec.fail")
    push(r, 20, "Nobody::Knows")
    w = spawn(vg(tmp_path, "bg-worker", "-r", rs.url, "-c", "4", "--shutdown-timeout", "1",
                 "-e", "T.exec=cat >/dev/null", "-e", "T.exec.fail=echo no >&2; exit 3",
                 "-e", "T.slow=sleep 60"))
    total = 870
    wait_for(lambda: (int(r.hget("bg:stats:default", "completed") or 0)
                      + int(r.hget("bg:stats:default", "failed") or 0)) >= total
             or w.proc.poll() is not None, timeout=3 * SLOW, interval=0.1,
             what="the worker to run every job")
    assert w.proc.poll() is None, w.log()
    st = r.hgetall("bg:stats:default")
    assert st["completed"] == "600" and st["failed"] == "270", st
    # Now jobs that are still running at SIGTERM: the in-process one is cancelled, the exec one
    # outlives the 1 s shutdown timeout and is stopped; both are handed back.
    running = push(r, 2, "bg.sleep", '{"ms":60000}') + push(r, 1, "T.slow")
    wait_for(lambda: r.scard("bg:processing:default") == 3, timeout=SLOW, interval=0.1,
             what="the long jobs to start")
    w.signal(signal.SIGTERM)
    assert_clean(tmp_path, "bg-worker", w.wait(SLOW), pid=w.pid)
    assert r.scard("bg:processing:default") == 0
    assert sorted(r.lrange("bg:ready:default", 0, -1)) == sorted(running)


def test_watcher_under_memcheck(rs, r, spawn, tmp_path):
    now = server_ms(r)
    # Due jobs, some already due, some a little later.
    due = []
    with r.pipeline(transaction=False) as p:
        for i in range(100):
            jid = str(uuid.uuid4())
            at = now - 1000 if i < 50 else now + 500
            p.hset(f"bg:jobs:{jid}", mapping={"que": "q", "cls": "C", "arg": "{}", "qat": 1,
                                              "pat": at})
            p.zadd("bg:scheduled:q", {jid: at})
            due.append(jid)
        p.execute()
    # Stale attempts: their worker (client 999999999) is not connected. One job has a retry
    # left, one has none.
    stale = {}
    for rty in (1, 0):
        jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
        r.hset(f"bg:jobs:{jid}", mapping={"que": "s", "cls": "C", "arg": "{}", "qat": 1,
                                          "rty": rty, "att": 1})
        r.hset(f"bg:attempts:{aid}", mapping={"job": jid, "que": "s", "sta": now - 10000,
                                              "wrk": 999999999})
        r.sadd("bg:processing:s", aid)
        stale[rty] = jid
    # Old history to trim.
    with r.pipeline(transaction=False) as p:
        for zset, age in (("completed", 7200 * 1000), ("failed", 8 * 86400 * 1000)):
            for _ in range(50):
                jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
                p.hset(f"bg:jobs:{jid}", mapping={"que": "t", "cls": "C", "qat": 1})
                p.hset(f"bg:attempts:{aid}", mapping={"job": jid, "que": "t", "sta": 1, "wrk": 1})
                p.zadd(f"bg:{zset}:t", {aid: now - age})
        p.execute()
    w = spawn(vg(tmp_path, "bg-watcher", "-r", rs.url, "-i", "0.2", "--grace", "0.5", "-v"))
    wait_for(lambda: r.llen("bg:ready:q") == 100, timeout=SLOW, interval=0.1,
             what="the due jobs to move")
    wait_for(lambda: r.zcard("bg:failed:s") == 2, timeout=SLOW, interval=0.1,
             what="the stale attempts to fail")
    wait_for(lambda: r.zcard("bg:completed:t") == 0 and r.zcard("bg:failed:t") == 0,
             timeout=SLOW, interval=0.1, what="the old history to be trimmed")
    assert r.zscore("bg:scheduled:s", stale[1]) is not None
    assert r.zscore("bg:dead:s", stale[0]) is not None
    assert sorted(r.lrange("bg:ready:q", 0, -1)) == sorted(due)
    assert clients_named(r, "bg-watcher")
    w.signal(signal.SIGTERM)
    assert_clean(tmp_path, "bg-watcher", w.wait(SLOW))


def test_cli_under_memcheck(rs, r, tmp_path):
    def cli(*args, input=None, want=0):
        p = run(vg(tmp_path, "bg-cli", "-r", rs.url) + list(args), input=input, timeout=SLOW)
        assert_clean(tmp_path, "bg-cli", p.returncode, want)
        assert p.returncode == want, (args, p.stderr)
        return p.stdout

    one = cli("enqueue", "bg.noop", '{"a":1}', "-q", "a").strip()
    cli("enqueue", "bg.noop", "-q", "b", "--in", "1h", "--retries", "3")
    many = cli("enqueue", "bg.noop", "-", "-q", "b", input="".join(f"{{\"i\":{i}}}\n"
                                                                  for i in range(300))).split()
    assert len(many) == 300
    # Dead jobs in two queues, for retry --dead over several queues.
    for q in ("a", "b"):
        for jid in push(r, 3, "C", queue=q):
            r.lrem(f"bg:ready:{q}", 0, jid)
            r.zadd(f"bg:dead:{q}", {jid: 1})
    dead_a = r.zrange("bg:dead:a", 0, -1)
    cli("retry", dead_a[0])
    cli("retry", "--dead", "-q", "a", "-q", "b")
    assert r.zcard("bg:dead:a") == 0 and r.zcard("bg:dead:b") == 0
    cli("dequeue", one)
    cli("dequeue", str(uuid.uuid4()), want=1)
    out = cli("status", "-q", "a,b")
    assert "a" in out and "b" in out
    cli("status", "--json")
    cli("status", "-q", "no-such-queue")
    cli("enqueue", "bad class with spaces?", "-q", "bad queue!", want=2)
