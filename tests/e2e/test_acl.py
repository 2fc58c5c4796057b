"""Least privilege: each program under exactly the Redis user docs/operations.md gives it (the
`ACL SETUSER` lines are read from that page, so the page cannot drift from what is tested),
doing its whole job; and each user refused what lies outside its grant, so the test proves the
ACL is in force.

A command a program needs and its user lacks shows as a NOPERM in a log, an exit status, a job
that does not end where it should, or a Redis ACL LOG entry: each is checked."""

import os
import re
import signal
import time
import uuid

import pytest
import redis

from conftest import TOP, clients_named, exe, run, wait_for

PASSWORD = "s3cret"
USERS = ("bg-worker", "bg-watcher", "bg-cli", "bg-producer", "bg-worker-lease",
         "bg-watcher-lease")


def doc_acls():
    """The ACL SETUSER lines of docs/operations.md: {user: [rules...]}."""
    with open(os.path.join(TOP, "docs", "operations.md")) as f:
        text = f.read()
    found = {}
    for m in re.finditer(r"^ACL SETUSER (bg-[a-z-]+) (.*)$", text, re.M):
        found[m.group(1)] = m.group(2).split()
    assert set(found) == set(USERS), f"docs/operations.md gives users {sorted(found)}"
    # docs/watcher.md repeats the watcher's line: the same one.
    with open(os.path.join(TOP, "docs", "watcher.md")) as f:
        for m in re.finditer(r"^ACL SETUSER (bg-[a-z-]+) (.*)$", f.read(), re.M):
            assert m.group(2).split() == found[m.group(1)], "docs/watcher.md differs"
    return found


@pytest.fixture
def admin(r):
    """The default user, on database 0: ACL LOG, CLIENT KILL."""
    return r


@pytest.fixture
def users(rs, admin):
    r = admin
    acls = doc_acls()
    for name, rules in acls.items():
        assert f">{PASSWORD}" in rules and "~bg:*" in rules, (name, rules)
        r.execute_command("ACL", "SETUSER", name, *rules)
    r.execute_command("ACL", "LOG", "RESET")
    # Database 1: the URLs name it, so SELECT is part of what each user is tested for.
    yield {name: f"redis://{name}:{PASSWORD}@127.0.0.1:{rs.port}/1" for name in acls}
    for name in acls:
        r.execute_command("ACL", "DELUSER", name)


def as_user(rs, name):
    return redis.Redis(port=rs.port, db=1, username=name, password=PASSWORD,
                       decode_responses=True)


def acl_log(admin):
    """What Redis refused, as (user, context, object) triples."""
    out = []
    for e in admin.execute_command("ACL", "LOG"):
        d = dict(zip(e[::2], e[1::2])) if isinstance(e, list) else e
        d = {(k.decode() if isinstance(k, bytes) else k): v for k, v in d.items()}
        out.append((d.get("username"), d.get("context"), d.get("object")))
    return out


def assert_refused(fn, *args):
    # redis-py turns a NOPERM error into NoPermissionError, without the NOPERM prefix.
    with pytest.raises(redis.exceptions.ResponseError) as e:
        fn(*args)
    assert isinstance(e.value, redis.exceptions.NoPermissionError) or "NOPERM" in str(e.value) \
        or "no permissions" in str(e.value) \
        or "The user executing the script can't" in str(e.value), repr(e.value)


def server_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


def produce(p, cls, arg="{}", queue="default", delay_ms=None, **extra):
    """A foreign producer's enqueue (docs/schema.md#keys), as the bg-producer user."""
    jid = str(uuid.uuid4())
    now = server_ms(p)
    fields = {"que": queue, "cls": cls, "arg": arg, "qat": now, **extra}
    if delay_ms is not None:
        fields["pat"] = now + delay_ms
    p.hset(f"bg:jobs:{jid}", mapping=fields)
    if delay_ms is None:
        p.rpush(f"bg:ready:{queue}", jid)
    else:
        p.zadd(f"bg:scheduled:{queue}", {jid: now + delay_ms})
    return jid


def no_noperm(*procs):
    for p in procs:
        log = p.log()
        assert "NOPERM" not in log and "refused" not in log, log[-3000:]


def test_worker_and_watcher_do_their_whole_job_under_their_users(rs, admin, spawn, users):
    r = rs.client(db=1)
    p = as_user(rs, "bg-producer")
    noop = [produce(p, "bg.noop") for _ in range(20)]
    execs = [produce(p, "T.exec", '{"x":1}') for _ in range(3)]
    # Fails, retried once (the watcher moves it back when due), then dead.
    flaky = produce(p, "bg.fail", '{"err":"Boom","msg":"no"}', rty=1)
    # A UUID with no job hash behind it: the claim drops it (EXISTS).
    p.rpush("bg:ready:default", str(uuid.uuid4()))
    # A job in a queue only this producer wrote: the watcher finds it by SCAN.
    foreign = produce(p, "bg.noop", queue="foreign", delay_ms=-1000)
    # Old history, to be trimmed.
    now = server_ms(r)
    old = []
    for _ in range(5):
        jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
        r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "C", "qat": 1})
        r.hset(f"bg:attempts:{aid}", mapping={"job": jid, "que": "default", "sta": 1, "wrk": 1})
        r.zadd("bg:completed:default", {aid: now - 7200 * 1000})
        old += [f"bg:jobs:{jid}", f"bg:attempts:{aid}"]

    watcher = spawn([exe("bg-watcher"), "-r", users["bg-watcher"], "-i", "0.1", "--grace",
                     "0.5", "-v"])
    worker = spawn([exe("bg-worker"), "-r", users["bg-worker"], "-q", "default,foreign",
                    "-c", "2", "--shutdown-timeout", "0.5", "-v",
                    "-e", "T.exec=cat >/dev/null", "-e", "nap=sleep 60"])
    wait_for(lambda: len(clients_named(admin, "bg-worker-fiber:")) == 2 or worker.proc.poll()
             is not None, what="the fibers to connect")
    assert worker.proc.poll() is None, worker.log()

    # Claim, run, finish; trimming; SCAN discovery and a due move.
    wait_for(lambda: r.zcard("bg:completed:default") == 23 and not any(map(r.exists, old)),
             what="the jobs to complete and old ones to be trimmed")
    wait_for(lambda: r.zcard("bg:completed:foreign") == 1, what="the foreign queue's job")
    assert "foreign" in r.smembers("bg:queues")
    for jid in noop + execs + [foreign]:
        assert r.hget(f"bg:jobs:{jid}", "att") == "1"

    # Failure and retry: once failed it waits in scheduled; made due now, the watcher moves it,
    # the worker fails it again, and it is dead.
    wait_for(lambda: r.zscore("bg:scheduled:default", flaky) is not None, what="the retry")
    r.zadd("bg:scheduled:default", {flaky: 0}, xx=True)
    wait_for(lambda: r.zscore("bg:dead:default", flaky) is not None, what="the dead job")
    assert r.hget(f"bg:jobs:{flaky}", "att") == "2"
    assert r.zcard("bg:failed:default") == 2

    # Both PING every second on their wake-up connection: wait for one of each, so that a
    # refused PING is in ACL LOG by the end.
    for name in ("bg-worker:", "bg-watcher"):
        wait_for(lambda: any(c.get("cmd") == "ping" for c in clients_named(admin, name)),
                 what=f"a PING from {name}")

    # A fiber whose connection is killed re-owns its attempt (reown.lua) and finishes it.
    nap = produce(p, "nap")
    aid = wait_for(lambda: next(iter(r.smembers("bg:processing:default")), None),
                   what="the nap to start")
    wrk = r.hget(f"bg:attempts:{aid}", "wrk")
    admin.client_kill_filter(_id=wrk)
    wait_for(lambda: r.hget(f"bg:attempts:{aid}", "wrk") not in (None, wrk),
             what="the attempt to be re-owned")
    # SIGTERM while it runs: the worker hands it back (finish.lua on its main connection).
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.log()
    assert r.lrange("bg:ready:default", 0, -1) == [nap]
    assert r.scard("bg:processing:default") == 0

    # A stale attempt: a worker that vanished. The watcher fails it as Worker Timeout.
    stale = produce(p, "nap", rty=0)
    r.lrem("bg:ready:default", 0, stale)
    sid = str(uuid.uuid4())
    r.hset(f"bg:attempts:{sid}", mapping={"job": stale, "que": "default",
                                          "sta": server_ms(r), "wrk": 999999999})
    r.sadd("bg:processing:default", sid)
    wait_for(lambda: r.zscore("bg:dead:default", stale) is not None, what="the stale failure")
    assert r.hget(f"bg:attempts:{sid}", "err") == "Worker Timeout"

    assert watcher.proc.poll() is None, watcher.log()
    watcher.signal(signal.SIGTERM)
    assert watcher.wait(30) == 0
    no_noperm(worker, watcher)
    # The one refusal docs/operations.md leaves on purpose: the worker's look at
    # maxmemory-policy, once a start.
    assert acl_log(admin) == [("bg-worker", "toplevel", "config|get")], acl_log(admin)


def test_lease_worker_and_watcher_do_their_job_with_no_client_command(rs, admin, spawn, users):
    """docs/operations.md#liveness: under the -lease users, which hold no CLIENT subcommand."""
    r = rs.client(db=1)
    p = as_user(rs, "bg-producer")
    noop = [produce(p, "bg.noop") for _ in range(5)]
    flaky = produce(p, "bg.fail", '{"err":"Boom","msg":"no"}', rty=1)
    watcher = spawn([exe("bg-watcher"), "-r", users["bg-watcher-lease"], "--liveness", "lease",
                     "-i", "0.1", "--grace", "0.2"])
    worker = spawn([exe("bg-worker"), "-r", users["bg-worker-lease"], "--liveness", "lease",
                    "--lease", "500ms", "-c", "2", "-e", "nap=sleep 60"])
    wait_for(lambda: r.zcard("bg:completed:default") == 5, what="the jobs to complete")
    assert all(r.hget(f"bg:jobs:{j}", "att") == "1" for j in noop)
    # The failure is retried through the watcher, then dead.
    wait_for(lambda: r.zscore("bg:scheduled:default", flaky) is not None, what="the retry")
    r.zadd("bg:scheduled:default", {flaky: 0}, xx=True)
    wait_for(lambda: r.zscore("bg:dead:default", flaky) is not None, what="the dead job")

    # A fiber whose connection is killed re-owns its attempt (reown.lua), lease and all.
    nap = produce(p, "nap")
    aid = wait_for(lambda: next(iter(r.smembers("bg:processing:default")), None),
                   what="the nap to start")
    wrk, lse = r.hmget(f"bg:attempts:{aid}", "wrk", "lse")
    admin.client_kill_filter(_id=wrk)
    wait_for(lambda: r.hget(f"bg:attempts:{aid}", "wrk") not in (None, wrk),
             what="the attempt to be re-owned")
    assert r.hget(f"bg:attempts:{aid}", "lse") == lse and r.exists(f"bg:lease:{lse}")
    # SIGKILL: once the lease is gone the watcher fails the attempt and the job is retried.
    worker.signal(signal.SIGKILL)
    worker.wait()
    wait_for(lambda: r.hget(f"bg:attempts:{aid}", "err") == "Worker Timeout", timeout=5,
             what="the vanished worker's attempt to fail")
    assert r.zscore("bg:scheduled:default", nap) is not None
    assert watcher.proc.poll() is None, watcher.log()

    # What was refused: the optional wake-ups (CLIENT TRACKING), once a connection that asks,
    # and the worker's look at maxmemory-policy; nothing else.
    assert {o for _, _, o in acl_log(admin)} <= {"client|tracking", "config|get"}, acl_log(admin)
    for log in (worker.log(), watcher.log()):
        assert all("CLIENT TRACKING refused" in ln for ln in log.splitlines()
                   if "NOPERM" in ln), log


def test_cli_does_its_whole_job_under_its_user(rs, admin, users):
    r = rs.client(db=1)
    url = users["bg-cli"]

    def cli(*args, input=None, want=0):
        res = run([exe("bg-cli"), "-r", url] + list(args), input=input)
        assert res.returncode == want, (args, res.returncode, res.stderr)
        assert "NOPERM" not in res.stderr, res.stderr
        return res.stdout

    jid = cli("enqueue", "bg.noop", '{"a":1}').strip()
    later = cli("enqueue", "bg.noop", "-q", "low", "--in", "1h").strip()
    many = cli("enqueue", "bg.noop", "-", input="{}\n{}\n{}\n").split()
    assert r.llen("bg:ready:default") == 4 and r.zcard("bg:scheduled:low") == 1
    # A dead job, retried; a job dequeued; the status of it all.
    r.lrem("bg:ready:default", 0, many[0])
    r.zadd("bg:dead:default", {many[0]: 1})
    cli("retry", many[0])
    assert r.lrange("bg:ready:default", -1, -1) == [many[0]]
    r.lrem("bg:ready:default", 0, many[1])
    r.zadd("bg:dead:default", {many[1]: 1})
    cli("retry", "--dead", "-q", "default")
    r.lrem("bg:ready:default", 0, many[2])
    r.hset(f"bg:jobs:{many[2]}", "att", 1)
    r.zadd("bg:scheduled:default", {many[2]: 1})
    cli("retry", many[2])
    assert r.lrange("bg:ready:default", -1, -1) == [many[2]]
    cli("retry", later, want=1)
    cli("retry", str(uuid.uuid4()), want=1)
    assert r.zcard("bg:dead:default") == 0
    cli("dequeue", jid)
    cli("dequeue", later)
    assert not r.exists(f"bg:jobs:{jid}") and r.zcard("bg:scheduled:low") == 0
    out = cli("status", "-q", "default,low")
    assert "default" in out
    cli("status", "--json")
    cli("status")
    assert acl_log(admin) == [], acl_log(admin)


def test_a_libbg_producer_and_a_foreign_one_under_the_producer_user(rs, admin, users):
    r = rs.client(db=1)
    res = run([exe("bg-cli"), "-r", users["bg-producer"], "enqueue", "bg.noop", "-", "-q", "p"],
              input="{}\n" * 5)
    assert res.returncode == 0 and "NOPERM" not in res.stderr, res.stderr
    res = run([exe("bg-cli"), "-r", users["bg-producer"], "enqueue", "bg.noop", "--in", "1m"])
    assert res.returncode == 0, res.stderr
    assert r.llen("bg:ready:p") == 5 and r.zcard("bg:scheduled:default") == 1
    p = as_user(rs, "bg-producer")
    produce(p, "bg.noop", queue="p")
    produce(p, "bg.noop", queue="p", delay_ms=60000)
    assert r.llen("bg:ready:p") == 6 and r.zcard("bg:scheduled:p") == 1
    assert acl_log(admin) == [], acl_log(admin)


@pytest.mark.parametrize("user", USERS)
def test_each_user_is_refused_what_lies_outside_its_grant(rs, admin, users, user):
    r = rs.client(db=1)
    r.set("other:secret", "x")
    r.rpush("other:ready:default", "x")
    c = as_user(rs, user)
    assert_refused(c.flushall)
    assert_refused(c.keys, "*")
    assert_refused(c.execute_command, "CONFIG", "GET", "requirepass")
    assert_refused(c.execute_command, "CLIENT", "KILL", "TYPE", "normal")
    assert_refused(c.get, "other:secret")
    assert_refused(c.lpop, "other:ready:default")
    assert_refused(c.hset, "other:jobs:x", "cls", "C")
    assert_refused(c.execute_command, "EVAL", "return 1", "0")
    # Scripts run with the caller's permissions: one loaded by this user that writes another
    # namespace's key with a command it may run (HSET), or calls FLUSHALL, is refused inside.
    sha = c.script_load("return redis.call('HSET', 'other:jobs:x', 'cls', 'C')")
    assert_refused(c.evalsha, sha, 0)
    sha = c.script_load("return redis.call('FLUSHALL')")
    assert_refused(c.evalsha, sha, 0)
    assert r.get("other:secret") == "x" and r.dbsize() == 2
    if user == "bg-producer":
        # A producer adds jobs; it cannot take or delete them.
        r.rpush("bg:ready:default", "j")
        assert_refused(c.lpop, "bg:ready:default")
        assert_refused(c.delete, "bg:ready:default")
        assert_refused(c.lrem, "bg:ready:default", 0, "j")
    if user in ("bg-worker", "bg-producer", "bg-worker-lease", "bg-watcher-lease"):
        assert_refused(c.execute_command, "CLIENT", "LIST")
    if user.endswith("-lease"):
        # The lease users are those of a server without CLIENT: not one subcommand is granted.
        for cmd in (["SETNAME", "x"], ["ID"], ["TRACKING", "ON"], ["LIST"], ["INFO"]):
            assert_refused(c.execute_command, "CLIENT", *cmd)
    # Under another namespace a program gets nowhere.
    if user == "bg-cli":
        res = run([exe("bg-cli"), "-r", users[user], "-n", "other", "enqueue", "bg.noop"])
        assert res.returncode == 1 and "can't access" in res.stderr, res.stderr
        assert sorted(r.keys("other:*")) == ["other:ready:default", "other:secret"]
