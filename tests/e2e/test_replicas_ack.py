"""--min-replicas-ack N (docs/operations.md#replicas-and-failover): bg-worker, bg-watcher and
bg-cli enqueue follow their writes with WAIT N timeout, against a real primary and a real
replica (redis-server --replicaof) on free loopback ports. With the replica stopped (SIGSTOP)
nothing is let go: the worker keeps its outcomes and holds its claims, and once the replica is
back (SIGCONT) everything is acknowledged and nothing is lost."""

import os
import signal
import time
import uuid

import pytest

from conftest import RedisServer, exe, run, wait_for


def push(r, cls, arg="{}", queue="default", ns="bg"):
    jid = str(uuid.uuid4())
    r.hset(f"{ns}:jobs:{jid}", mapping={"que": queue, "cls": cls, "arg": arg, "qat": 1})
    r.rpush(f"{ns}:ready:{queue}", jid)
    return jid


class Pair:
    """A primary and one replica of it."""

    def __init__(self):
        self.primary = RedisServer().start()
        self.replica = RedisServer(extra=["--replicaof", "127.0.0.1", "0"]).start()
        self.p = self.primary.client()
        self.r = self.replica.client()
        self.r.replicaof("127.0.0.1", self.primary.port)
        self.stopped = False
        self.wait_synced()

    def wait_synced(self):
        def synced():
            info = self.p.info("replication")
            slave = info.get("slave0")
            return (info.get("connected_slaves") == 1 and slave and slave["state"] == "online"
                    and slave["offset"] == info["master_repl_offset"])
        wait_for(synced, timeout=20, what="the replica in sync")

    def stop_replica(self):
        os.kill(self.replica.proc.pid, signal.SIGSTOP)
        self.stopped = True

    def cont_replica(self):
        os.kill(self.replica.proc.pid, signal.SIGCONT)
        self.stopped = False

    def close(self):
        if self.stopped:
            self.cont_replica()
        self.p.close()
        self.r.close()
        self.replica.cleanup()
        self.primary.cleanup()


@pytest.fixture(scope="module")
def pair_session():
    pair = Pair()
    yield pair
    pair.close()


@pytest.fixture
def pair(pair_session):
    if pair_session.stopped:
        pair_session.cont_replica()
    pair_session.p.flushall()
    pair_session.wait_synced()
    return pair_session


def cli(pair, *args, env=None):
    return run([exe("bg-cli"), "-r", pair.primary.url] + list(args), env=env)


def worker_args(pair, *extra):
    return [exe("bg-worker"), "-r", pair.primary.url, "-c", "2", "-v"] + list(extra)


def counts(r):
    return int(r.hget("bg:stats:default", "completed") or 0)


# ---- bg-cli enqueue ----

def test_enqueue_acknowledged(pair):
    out = cli(pair, "enqueue", "bg.noop", "--min-replicas-ack", "1")
    assert out.returncode == 0, out.stderr
    jid = out.stdout.strip()
    # WAIT returned 1: the replica holds the job already, no polling needed.
    assert pair.r.hget(f"bg:jobs:{jid}", "cls") == "bg.noop"


def test_enqueue_stdin_acknowledged(pair):
    lines = "".join(f'{{"n":{i}}}\n' for i in range(1500))
    out = run([exe("bg-cli"), "-r", pair.primary.url, "enqueue", "bg.noop", "-",
               "--min-replicas-ack", "1"], input=lines)
    assert out.returncode == 0, out.stderr
    ids = out.stdout.split()
    assert len(ids) == 1500
    assert pair.r.llen("bg:ready:default") == 1500


def test_enqueue_unacknowledged_says_so(pair):
    pair.stop_replica()
    t0 = time.monotonic()
    out = cli(pair, "enqueue", "bg.noop", "--min-replicas-ack", "1",
              "--min-replicas-timeout", "300ms")
    took = time.monotonic() - t0
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert "0 of 1 replicas acknowledged within 300 ms" in out.stderr, out.stderr
    assert "failover" in out.stderr
    # The job is on the primary and its UUID printed: nothing was lost, nothing to enqueue twice.
    jid = out.stdout.strip()
    assert pair.p.hget(f"bg:jobs:{jid}", "cls") == "bg.noop"
    assert pair.p.lrange("bg:ready:default", 0, -1) == [jid]
    assert took >= 0.3
    pair.cont_replica()
    wait_for(lambda: pair.r.hget(f"bg:jobs:{jid}", "cls"), what="the job on the replica")


def test_enqueue_more_replicas_than_there_are(pair):
    out = cli(pair, "enqueue", "bg.noop", "--min-replicas-ack", "2",
              "--min-replicas-timeout", "100ms")
    assert out.returncode == 1
    assert "1 of 2 replicas acknowledged" in out.stderr, out.stderr


def test_enqueue_env_vars(pair):
    env = dict(os.environ, BG_MIN_REPLICAS_ACK="2", BG_MIN_REPLICAS_TIMEOUT="50ms")
    out = cli(pair, "enqueue", "bg.noop", env=env)
    assert out.returncode == 1 and "1 of 2 replicas acknowledged within 50 ms" in out.stderr
    # The option wins over the variable.
    out = cli(pair, "enqueue", "bg.noop", "--min-replicas-ack", "0", env=env)
    assert out.returncode == 0, out.stderr


def test_zero_means_off(pair):
    pair.stop_replica()
    t0 = time.monotonic()
    out = cli(pair, "enqueue", "bg.noop", "--min-replicas-ack", "0",
              "--min-replicas-timeout", "5s")
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 < 3  # no WAIT was sent


# ---- malformed values: a usage error (exit 2) that names the flag and the value ----

BAD_ACK = ["-1", "abc", "", "1.5", "101", "99999999999999999999", " 1", "+1", "0x1", "1e2"]
BAD_TIMEOUT = ["0", "0ms", "-1s", "abc", "", "5x", "61s", "2m", "1e3", "inf", "nan", "1 s"]

PROGS = {
    "bg-cli": lambda url: [exe("bg-cli"), "-r", url, "enqueue", "bg.noop"],
    "bg-worker": lambda url: [exe("bg-worker"), "-r", url],
    "bg-watcher": lambda url: [exe("bg-watcher"), "-r", url],
}


@pytest.mark.parametrize("prog", sorted(PROGS))
@pytest.mark.parametrize("value", BAD_ACK)
def test_bad_ack(rs, r, prog, value):
    out = run(PROGS[prog](rs.url) + ["--min-replicas-ack", value], timeout=10)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert f"invalid number '{value}' for --min-replicas-ack" in out.stderr, out.stderr
    assert r.dbsize() == 0


@pytest.mark.parametrize("prog", sorted(PROGS))
@pytest.mark.parametrize("value", BAD_TIMEOUT)
def test_bad_timeout(rs, r, prog, value):
    out = run(PROGS[prog](rs.url) + ["--min-replicas-ack", "1", "--min-replicas-timeout", value],
              timeout=10)
    assert out.returncode == 2, (out.returncode, out.stderr)
    assert f"invalid duration '{value}' for --min-replicas-timeout" in out.stderr, out.stderr
    assert r.dbsize() == 0


@pytest.mark.parametrize("prog", sorted(PROGS))
def test_bad_env(rs, r, prog):
    env = dict(os.environ, BG_MIN_REPLICAS_ACK="lots")
    out = run(PROGS[prog](rs.url), env=env, timeout=10)
    assert out.returncode == 2 and "'lots' for BG_MIN_REPLICAS_ACK" in out.stderr, out.stderr
    env = dict(os.environ, BG_MIN_REPLICAS_TIMEOUT="soon")
    out = run(PROGS[prog](rs.url), env=env, timeout=10)
    assert out.returncode == 2 and "'soon' for BG_MIN_REPLICAS_TIMEOUT" in out.stderr, out.stderr


# ---- bg-worker ----

def test_worker_jobs_flow(pair, spawn):
    ids = [push(pair.p, "bg.noop") for _ in range(300)]
    w = spawn(worker_args(pair, "--min-replicas-ack", "1"))
    wait_for(lambda: counts(pair.p) == 300, timeout=30, what="300 jobs completed")
    # Every outcome was acknowledged: the replica holds them all.
    wait_for(lambda: counts(pair.r) == 300, what="the replica's count")
    assert pair.r.scard("bg:processing:default") == 0
    assert "replicas acknowledged within" not in w.log(), w.log()
    assert len(ids) == 300


def test_worker_holds_claim_until_acknowledged(pair, spawn):
    w = spawn(worker_args(pair, "--min-replicas-ack", "1", "--min-replicas-timeout", "200ms"))
    wait_for(lambda: "connected as client" in w.log(), what="the worker up")
    pair.stop_replica()
    ids = [push(pair.p, "bg.noop") for _ in range(5)]
    wait_for(lambda: "the jobs just claimed wait for them" in w.log(), what="the held claim said")
    assert "0 of 1 replicas acknowledged within 200 ms" in w.log()
    # Each of the 2 fibers claimed one job (a first claim takes one) and holds it; a fiber
    # that holds a claim claims no more.
    wait_for(lambda: pair.p.llen("bg:ready:default") == 3, what="a job claimed by each fiber")
    time.sleep(0.5)  # several WAITs time out meanwhile: still nothing may start
    assert "Started" not in w.log(), w.log()
    assert counts(pair.p) == 0
    pair.cont_replica()
    wait_for(lambda: counts(pair.p) == 5, what="the held jobs run once acknowledged")
    wait_for(lambda: counts(pair.r) == 5, what="the replica's count")
    assert "acknowledged again" in w.log()
    assert len(ids) == 5


def test_worker_keeps_outcomes_until_acknowledged(pair, spawn):
    w = spawn(worker_args(pair, "--min-replicas-ack", "1", "--min-replicas-timeout", "200ms"))
    jids = [push(pair.p, "bg.sleep", '{"ms":700}') for _ in range(2)]
    wait_for(lambda: w.log().count("Started") == 2, what="both jobs started")
    pair.stop_replica()
    wait_for(lambda: "recorded outcomes are kept" in w.log(), what="the kept outcomes said")
    # Recorded on the primary, kept by the worker: the replica has not seen them yet.
    wait_for(lambda: counts(pair.p) == 2, what="both recorded on the primary")
    # The fiber's connection drops meanwhile: it reconnects, finds its outcomes on this server,
    # and keeps them still; nothing is dropped as failed by a watcher.
    for c in pair.p.client_list():
        if c["name"].startswith("bg-worker-fiber:"):
            pair.p.client_kill_filter(_id=c["id"])
    wait_for(lambda: w.log().count("connected as client") >= 4, what="the fibers reconnected")
    pair.cont_replica()
    wait_for(lambda: "acknowledged again" in w.log(), what="acknowledged once the replica is back")
    wait_for(lambda: counts(pair.r) == 2, what="the replica holds both outcomes")
    assert pair.r.scard("bg:processing:default") == 0
    assert "dropping its result" not in w.log() and "dropped" not in w.log(), w.log()
    assert len(jids) == 2


def test_worker_zero_is_off(pair, spawn):
    pair.stop_replica()
    w = spawn(worker_args(pair, "--min-replicas-ack", "0"))
    for _ in range(20):
        push(pair.p, "bg.noop")
    wait_for(lambda: counts(pair.p) == 20, what="jobs run without waiting for replicas")
    assert "replicas" not in w.log()


# ---- bg-watcher ----

def test_watcher_says_and_goes_on(pair, spawn):
    w = spawn([exe("bg-watcher"), "-r", pair.primary.url, "-i", "0.2", "--min-replicas-ack",
               "1", "--min-replicas-timeout", "100ms"])
    wait_for(lambda: "started" in w.log(), what="the watcher up")
    pair.stop_replica()
    jid = str(uuid.uuid4())
    pair.p.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}",
                                            "qat": 1, "pat": 1})
    pair.p.zadd("bg:scheduled:default", {jid: 1})
    wait_for(lambda: pair.p.lrange("bg:ready:default", 0, -1) == [jid], what="the job moved")
    wait_for(lambda: "0 of 1 replicas acknowledged" in w.log(), what="the shortfall said")
    pair.cont_replica()
    wait_for(lambda: "acknowledge the watcher's writes again" in w.log(), what="the recovery")
    wait_for(lambda: pair.r.lrange("bg:ready:default", 0, -1) == [jid], what="on the replica")
