"""bg-worker end to end: a foreign producer (redis-py) writes jobs exactly as docs/schema.md says,
the real bg-worker runs them, and the tests read what it recorded."""

import os
import re
import signal
import tempfile
import time
import uuid

import pytest

from conftest import BUILD, clients_named, cli, exe, run, wait_for

PLUGIN = os.path.join(BUILD, "tests", "plugin_test.so")


def push(r, cls, arg="{}", queue="default", ns="bg", delay_ms=None, **extra):
    """Enqueues a job the way any producer in any language does (docs/schema.md#keys)."""
    jid = str(uuid.uuid4())
    now = int(r.time()[0] * 1000 + r.time()[1] // 1000)
    fields = {"que": queue, "cls": cls, "arg": arg, "qat": now}
    fields.update(extra)
    r.hset(f"{ns}:jobs:{jid}", mapping=fields)
    r.rpush(f"{ns}:ready:{queue}", jid)
    return jid


def attempts_of(r, jid, ns="bg"):
    """Every attempt hash whose job is jid, found through the queue sets."""
    out = []
    for key in r.scan_iter(f"{ns}:attempts:*"):
        h = r.hgetall(key)
        if h.get("job") == jid:
            h["id"] = key.split(":")[-1]
            out.append(h)
    return out


def finished(r, jid, ns="bg", queue="default"):
    """The job's attempt once it is completed or failed, else None."""
    for a in attempts_of(r, jid, ns):
        if r.zscore(f"{ns}:completed:{queue}", a["id"]) is not None or \
                r.zscore(f"{ns}:failed:{queue}", a["id"]) is not None:
            # Read again: the hash may have been read just before the outcome was recorded.
            return dict(r.hgetall(f"{ns}:attempts:{a['id']}"), id=a["id"])
    return None


def wait_done(r, jid, ns="bg", queue="default", timeout=10):
    return wait_for(lambda: finished(r, jid, ns, queue), timeout, what=f"job {jid} to finish")


def worker(spawn, rs, *args, ns=None, env=None):
    cmd = [exe("bg-worker"), "-r", rs.url] + (["-n", ns] if ns else []) + list(args)
    p = spawn(cmd, env=env)
    prefix = (ns or "bg") + "-worker-fiber:"
    c = int(args[args.index("-c") + 1]) if "-c" in args else 10
    r = rs.client()
    wait_for(lambda: len(clients_named(r, prefix)) >= c or p.proc.poll() is not None,
             what="fibers to connect")
    assert p.proc.poll() is None, p.log()
    return p


def server_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


# ---- the exec protocol ----

def test_exec_gets_arg_on_stdin_and_the_environment(rs, r, spawn, tmp_path):
    out = tmp_path / "out"
    cmd = f'cat > {out}.stdin; env | grep ^BG_ | sort > {out}.env'
    worker(spawn, rs, "-c", "2", "-e", f"Mail::Send={cmd}")
    arg = '{"to":"a@b.c","note":"é $(rm -rf /) `x` \'q\' \\"dq\\""}'
    jid = push(r, "Mail::Send", arg)
    a = wait_done(r, jid)
    assert (tmp_path / "out.stdin").read_text() == arg
    env = dict(line.split("=", 1) for line in (tmp_path / "out.env").read_text().splitlines())
    env.pop("BG_BUILD_DIR", None)  # the test runner's own
    assert env == {"BG_JOB_ID": jid, "BG_ATTEMPT_ID": a["id"], "BG_CLASS": "Mail::Send",
                   "BG_QUEUE": "default", "BG_ATTEMPT": "1", "BG_NAMESPACE": "bg",
                   "BG_REDIS_URL": rs.url}


def test_exec_gets_binary_and_large_args_byte_for_byte(rs, r, spawn, tmp_path):
    out = tmp_path / "out"
    worker(spawn, rs, "-c", "2", "-e", f'bin=cat > {out}."$BG_JOB_ID"')
    rb = rs.client(decode_responses=False) if False else None  # noqa: F841
    import redis as redis_mod
    raw = redis_mod.Redis(port=rs.port)
    blobs = [bytes(range(256)) * 4, b"\xff\xfe\x00not text\x80", os.urandom(5 * 1024 * 1024)]
    ids = []
    for blob in blobs:
        jid = str(uuid.uuid4())
        raw.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bin", "arg": blob,
                                             "qat": server_ms(r)})
        raw.rpush("bg:ready:default", jid)
        ids.append(jid)
    for jid, blob in zip(ids, blobs):
        a = wait_done(r, jid, timeout=30)
        assert r.zscore("bg:completed:default", a["id"]) is not None
        assert (tmp_path / f"out.{jid}").read_bytes() == blob


def test_every_attempt_field(rs, r, spawn):
    w = worker(spawn, rs, "-c", "3", "-q", "high,default")
    before = server_ms(r)
    jid = push(r, "bg.noop")
    a = wait_done(r, jid)
    after = server_ms(r)
    assert set(a) >= {"sta", "job", "wrk", "que", "fin", "time", "rid"}
    assert "err" not in a and "msg" not in a
    assert before <= int(a["sta"]) <= int(a["fin"]) <= after
    assert re.fullmatch(r"\d+\.\d{3}", a["time"])
    assert a["job"] == jid and a["que"] == "default"
    fibers = {c["id"]: c for c in clients_named(r, "bg-worker-fiber:")}
    assert a["wrk"] in fibers
    main = clients_named(r, "bg-worker:")
    assert [c["name"] for c in main] == ["bg-worker:high,default"]
    assert all(c["name"] == "bg-worker-fiber:" + main[0]["id"] for c in fibers.values())
    assert len(fibers) == 3
    assert r.info("server")["run_id"].startswith(a["rid"])
    assert int(r.zscore("bg:completed:default", a["id"])) == int(a["fin"])
    assert r.hget(f"bg:jobs:{jid}", "att") == "1"
    assert r.hget(f"bg:jobs:{jid}", "rty") == "25"
    assert r.hget("bg:stats:default", "completed") == "1"
    assert r.scard("bg:processing:default") == 0
    assert r.smembers("bg:queues") >= {"high", "default"}
    assert w.proc.poll() is None


def test_exit_status_signal_and_timeout(rs, r, spawn):
    worker(spawn, rs, "-c", "3", "--job-timeout", "300ms",
           "-e", "exit3=echo partial >&2; printf 'the tail' >&2; exit 3",
           "-e", "sig=kill -9 $$", "-e", "slow=sleep 30")
    j1, j2, j3 = push(r, "exit3"), push(r, "sig"), push(r, "slow")
    a1, a2, a3 = wait_done(r, j1), wait_done(r, j2), wait_done(r, j3)
    assert a1["err"] == "ExitStatus" and a1["msg"] == "exit 3: partial\nthe tail"
    assert a2["err"] == "Signal" and "9" in a2["msg"] and "KILL" in a2["msg"]
    assert a3["err"] == "Timeout"
    assert 300 <= float(a3["time"]) < 5000
    for a in (a1, a2, a3):
        assert "fin" in a and "time" in a
        assert r.zscore("bg:failed:default", a["id"]) is not None
    assert r.hget("bg:stats:default", "failed") == "3"


def test_log_is_one_line_an_event_whatever_the_messages_hold(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "-v", "-e", "multi=echo one >&2; echo two >&2; exit 7",
               "-e", "quiet=exit 3")
    a = wait_done(r, push(r, "multi"))
    assert a["msg"] == "exit 7: one\ntwo"
    # docs/worker.md: exit N: <stderr tail>
    assert wait_done(r, push(r, "quiet"))["msg"] == "exit 3: "
    wait_done(r, push(r, "Evil\nSecond line"))
    stamp = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [DIWE] worker: ")
    lines = w.log().splitlines()
    assert lines and all(stamp.match(line) for line in lines), [l for l in lines
                                                                 if not stamp.match(l)]
    assert any("exit 7: one\\ntwo" in line for line in lines)


def test_stderr_tail_is_one_kib_cut_on_utf8(rs, r, spawn):
    worker(spawn, rs, "-c", "1", "-e",
           "noisy=i=0; while [ $i -lt 600 ]; do printf 'é' >&2; i=$((i+1)); done; exit 1")
    a = wait_done(r, push(r, "noisy"))
    msg = a["msg"].encode()
    assert len(msg) <= 1024
    assert a["msg"].startswith("exit 1: ")
    assert a["msg"].endswith("é")
    msg.decode("utf-8")  # never split inside a character


def test_retry_with_backoff_then_dead(rs, r, spawn):
    worker(spawn, rs, "-c", "1")
    j_retry = push(r, "bg.fail", '{"err":"Boom","msg":"no"}', rty="1")
    j_dead = push(r, "bg.fail", '{"err":"Boom"}', rty="0")
    a = wait_done(r, j_retry)
    now = server_ms(r)
    due = r.zscore("bg:scheduled:default", j_retry)
    # backoff(1) = 1^4 + 15 + rand(0..9) * 2 seconds
    assert due is not None and int(a["fin"]) + 16000 <= due <= int(a["fin"]) + 34000 + 1
    assert due > now
    assert a["err"] == "Boom" and a["msg"] == "no"
    a = wait_done(r, j_dead)
    assert r.zscore("bg:dead:default", j_dead) is not None
    assert r.zscore("bg:scheduled:default", j_dead) is None
    assert r.hget("bg:stats:default", "dead") == "1"
    assert r.hget("bg:stats:default", "failed") == "2"


def test_retries_flag_is_written_into_jobs_without_rty(rs, r, spawn):
    worker(spawn, rs, "-c", "1", "--retries", "0")
    jid = push(r, "bg.fail")
    wait_done(r, jid)
    assert r.hget(f"bg:jobs:{jid}", "rty") == "0"
    assert r.zscore("bg:dead:default", jid) is not None


# ---- dispatch ----

def test_builtins_and_unknown_class(rs, r, spawn):
    worker(spawn, rs, "-c", "4")
    noop = push(r, "bg.noop")
    nap = push(r, "bg.sleep", '{"ms":150}')
    boom = push(r, "bg.fail", '{"err":"Name","msg":"text"}')
    bad = push(r, "bg.sleep", "not json")
    unknown = push(r, "No::Such")
    assert "err" not in wait_done(r, noop)
    a = wait_done(r, nap)
    assert "err" not in a and float(a["time"]) >= 150
    a = wait_done(r, boom)
    assert (a["err"], a["msg"]) == ("Name", "text")
    assert wait_done(r, bad)["err"] == "ArgumentError"
    a = wait_done(r, unknown)
    assert a["err"] == "UnknownJobClass" and "No::Such" in a["msg"]


def test_dispatch_order_plugin_exec_builtin_catchall(rs, r, spawn, tmp_path):
    out = tmp_path / "plugin.out"
    env = dict(os.environ, BG_TEST_OUT=str(out))
    worker(spawn, rs, "-c", "2", "-p", PLUGIN,
           "-e", f"test.echo=echo exec > {tmp_path}/wrong",
           "-e", f"exact=echo exact > {tmp_path}/exact",
           "-e", f"*=echo \"$BG_CLASS\" >> {tmp_path}/star",
           "-e", f"bg.noop=echo mapped > {tmp_path}/noop", env=env)
    j1 = push(r, "test.echo", '{"x":1}', queue="default")
    j2 = push(r, "exact")
    j3 = push(r, "bg.noop")
    j4 = push(r, "Anything::Else")
    j5 = push(r, "test.fail")
    for j in (j1, j2, j3, j4):
        assert "err" not in wait_done(r, j)
    a = wait_done(r, j5)
    assert (a["err"], a["msg"]) == ("Plugin::Error", "failed on attempt 1")
    line = out.read_text().strip()
    assert line.startswith(j1) and line.endswith('from-plugin {"x":1}')
    assert not (tmp_path / "wrong").exists()
    assert (tmp_path / "exact").read_text() == "exact\n"
    assert (tmp_path / "noop").read_text() == "mapped\n"   # an exact exec mapping beats a built-in
    assert (tmp_path / "star").read_text() == "Anything::Else\n"


def test_plugin_that_does_not_load_is_an_error(rs, tmp_path):
    bad = tmp_path / "nope.so"
    bad.write_text("not an ELF")
    p = run([exe("bg-worker"), "-r", rs.url, "-p", str(bad)])
    assert p.returncode == 1
    assert "nope.so" in p.stderr and len(p.stderr.strip().splitlines()) == 1


def test_job_timeout_cancels_in_process_handlers(rs, r, spawn):
    worker(spawn, rs, "-c", "1", "-p", PLUGIN, "--job-timeout", "0.2")
    a = wait_done(r, push(r, "test.wait"))
    assert a["err"] == "Timeout"
    a = wait_done(r, push(r, "bg.sleep", '{"ms":60000}'))
    assert a["err"] == "Timeout" and float(a["time"]) < 5000


# ---- queues, priority, wake-up ----

def test_strict_priority_across_queues(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "-q", "high,mid", "-q", "low")
    w.signal(signal.SIGTSTP)
    wait_for(lambda: "quiet" in w.log(), what="quiet")
    low = [push(r, "bg.noop", queue="low") for _ in range(5)]
    mid = [push(r, "bg.noop", queue="mid") for _ in range(5)]
    high = [push(r, "bg.noop", queue="high") for _ in range(5)]
    w.signal(signal.SIGCONT)
    order = []
    for q, ids in (("high", high), ("mid", mid), ("low", low)):
        for j in ids:
            order.append((int(wait_done(r, j, queue=q)["sta"]), q))
    seq = [q for _, q in sorted(order, key=lambda x: x[0])]
    assert seq == ["high"] * 5 + ["mid"] * 5 + ["low"] * 5


def test_idle_worker_wakes_on_any_queue_without_polling(rs, r, spawn):
    worker(spawn, rs, "-c", "2", "-q", "a,b,c")
    lat = []
    for q in ("c", "b", "a", "c"):
        time.sleep(0.3)  # let every fiber go idle, blocked in Redis
        jid = push(r, "bg.noop", queue=q)
        a = wait_done(r, jid, queue=q)
        lat.append(int(a["sta"]) - int(r.hget(f"bg:jobs:{jid}", "qat")))
    # A poller would need up to its interval (the fallback is 1 s); a blocked fiber is woken
    # by Redis at once.
    assert max(lat) < 250, lat


# ---- bad data never stops a worker ----

def test_malformed_jobs_are_dropped_or_failed_and_the_worker_goes_on(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    ghost = str(uuid.uuid4())
    r.rpush("bg:ready:default", "not-a-uuid", ghost, ghost.upper())
    no_cls = str(uuid.uuid4())
    r.hset(f"bg:jobs:{no_cls}", mapping={"que": "default", "arg": "{}", "qat": 1})
    r.rpush("bg:ready:default", no_cls)
    bad_rty = push(r, "bg.noop", rty="many")
    bad_att = push(r, "bg.noop", att="x")
    good = push(r, "bg.noop")
    assert "err" not in wait_done(r, good)
    for j in (no_cls, bad_rty, bad_att):
        a = wait_done(r, j)
        assert a["err"] == "InvalidJob", a
        assert r.zscore("bg:dead:default", j) is not None
    log = w.log()
    assert "not-a-uuid" in log and ghost in log and "no job hash" in log
    assert r.llen("bg:ready:default") == 0
    assert w.proc.poll() is None


# ---- namespaces ----

def test_onyx_namespace_keys_and_client_names(rs, r, spawn):
    ns = "onyx-background"
    worker(spawn, rs, "-c", "2", ns=ns)
    jid = push(r, "bg.noop", ns=ns)
    a = wait_done(r, jid, ns=ns)
    assert r.exists(f"{ns}:attempts:{a['id']}")
    assert r.zscore(f"{ns}:completed:default", a["id"]) is not None
    main = clients_named(r, f"{ns}-worker:")
    assert [c["name"] for c in main] == [f"{ns}-worker:default"]
    assert len(clients_named(r, f"{ns}-worker-fiber:{main[0]['id']}")) == 2
    assert not [k for k in r.keys("*") if not k.startswith(ns + ":")]


# ---- flags ----

@pytest.mark.parametrize("args,needle", [
    (["-c", "0"], "concurrency"), (["-c", "ten"], "concurrency"), (["-c", "5x"], "concurrency"),
    (["--retries", "-1"], "retries"), (["--retries", "2.5"], "retries"),
    (["--job-timeout", "soon"], "soon"), (["--shutdown-timeout", "-3s"], "-3s"),
    (["--job-timeout", "5 m"], "5 m"), (["-q", "bad queue"], "bad queue"), (["-q", "a,,b"], ""),
    (["-q", "x" * 129], "x" * 129), (["-n", "bad ns"], "bad ns"), (["-n", "n" * 65], ""),
    (["-r", "http://localhost"], "http://localhost"), (["-r", "redis://h:0"], "redis://h:0"),
    (["-r", "redis://:s3cret@h:99999/0"], "***"), (["-e", "noequals"], "noequals"),
    (["-e", "=cmd"], "=cmd"), (["--log-format", "xml"], "xml"), (["--bogus"], "--bogus"),
    (["-c"], "-c"), (["extra-arg"], "extra-arg"),
])
def test_bad_flags_are_usage_errors(rs, r, args, needle):
    p = run([exe("bg-worker"), "-r", rs.url] + args)
    assert p.returncode == 2, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert needle in p.stderr
    assert "s3cret" not in p.stderr
    assert r.dbsize() == 0


def test_help_and_version(rs):
    p = run([exe("bg-worker"), "-h"])
    assert p.returncode == 0 and "--shutdown-timeout" in p.stdout
    p = run([exe("bg-worker"), "-V"])
    assert p.returncode == 0 and re.match(r"bg-worker \d+\.\d+\.\d+", p.stdout)


def test_wrong_password_is_a_clear_error(rs, r):
    r.config_set("requirepass", "right")
    try:
        p = run([exe("bg-worker"), "-r", f"redis://:wrong@127.0.0.1:{rs.port}/0"], timeout=20)
    finally:
        r.execute_command("AUTH", "right")
        r.config_set("requirepass", "")
    assert p.returncode == 1
    assert "wrong" not in p.stderr and "***" in p.stderr


def test_auth_with_acl_user_and_percent_escapes(rs, r, spawn):
    r.execute_command("ACL", "SETUSER", "job@s", "on", ">p@ss:w/rd", "~*", "&*", "+@all")
    try:
        p = spawn([exe("bg-worker"), "-c", "1", "-r",
                   f"redis://job%40s:p%40ss%3aw%2Frd@127.0.0.1:{rs.port}/0"])
        wait_done(r, push(r, "bg.noop"))
        assert [c["user"] for c in clients_named(r, "bg-worker")] == ["job@s", "job@s"]
        p.stop()
    finally:
        r.execute_command("ACL", "DELUSER", "job@s")


def test_select_database_from_url(rs, r, spawn):
    spawn([exe("bg-worker"), "-c", "1", "-r", f"redis://127.0.0.1:{rs.port}/3"])
    r3 = rs.client(db=3)
    jid = push(r3, "bg.noop")
    wait_done(r3, jid)
    assert r.dbsize() == 0


def test_env_url_and_namespace(rs, r, spawn):
    env = dict(os.environ, BG_REDIS_URL=rs.url, BG_NAMESPACE="envns", REDIS_URL="redis://nowhere:1")
    spawn([exe("bg-worker"), "-c", "1"], env=env)
    wait_done(r, push(r, "bg.noop", ns="envns"), ns="envns")


def test_warns_when_redis_may_evict(rs, r, spawn):
    r.config_set("maxmemory-policy", "allkeys-lru")
    try:
        w = spawn([exe("bg-worker"), "-c", "1", "-r", rs.url])
        wait_for(lambda: "maxmemory-policy" in w.log(), what="the eviction warning")
        assert "allkeys-lru" in w.log()
    finally:
        r.config_set("maxmemory-policy", "noeviction")
