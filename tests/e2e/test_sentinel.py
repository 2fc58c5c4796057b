"""redis-sentinel:// URLs (docs/operations.md#sentinel) against a real Sentinel set: a primary,
a replica and three sentinels of the test's own. Jobs flow through two workers and a watcher
while the primary is SIGKILLed, or handed over with SENTINEL failover; afterwards every job is
accounted for exactly once, the programs work on the new primary, and what the asynchronous
replication lost is counted and printed. Also: malformed sentinel URLs, no sentinel reachable,
an unknown master name, bg-cli through the sentinels."""

import os
import shutil
import signal
import sys
import threading
import time

import pytest

from conftest import TOP, clients_named, exe, run, wait_for
from invariant import new_jobs, places

sys.path.insert(0, os.path.join(TOP, "tests", "support"))
from sentinel import SentinelSet  # noqa: E402
from redis_server import free_port  # noqa: E402

if not shutil.which("redis-server"):
    pytest.skip("redis-server is not installed", allow_module_level=True)

# Each variant of the SIGKILL test: the workers' arguments, the replicas the set has, and
# whether what Redis acknowledged may be lost. A variant that waits for a replica's ack needs
# two: after the failover the new primary must still have one to answer its WAIT.
WORKER_ARGS = [
    pytest.param(["-c", "4"], 1, True, id="async"),
    pytest.param(["-c", "4", "--min-replicas-ack", "1"], 2, False, id="min-replicas-ack"),
]
QUEUES = ["default"]


@pytest.fixture
def make_sset():
    """make_sset(replicas) starts a Sentinel set; each is cleaned up at the end of the test."""
    made = []

    def make(replicas=1):
        made.append(SentinelSet(replicas=replicas).start())
        return made[-1]

    yield make
    for s in made:
        s.cleanup()


@pytest.fixture
def sset(make_sset):
    return make_sset(1)


class Producer(threading.Thread):
    """Enqueues small batches on whichever server the sentinels name primary now, asked before
    each batch, as a foreign producer that follows a failover does; keeps the IDs of the
    batches Redis acknowledged."""

    def __init__(self, sset, batch=10, pause=0.005, replicas_ack=0):
        super().__init__(daemon=True)
        self.sset, self.batch, self.pause = sset, batch, pause
        # With replicas_ack, a batch counts as acknowledged once WAIT says that many replicas
        # have it, as a producer that wants no loss writes.
        self.replicas_ack = replicas_ack
        self.acked = []
        self.stop = threading.Event()

    def run(self):
        c, at = None, None
        while not self.stop.is_set():
            try:
                addr = self.sset.primary_addr()
                if c is None or addr != at:
                    c, at = self.sset.client(), addr
                ids = new_jobs(c, self.batch)
                if self.replicas_ack and c.wait(self.replicas_ack, 1000) < self.replicas_ack:
                    continue
                self.acked += ids
            except Exception:  # the primary went: ask the sentinels again
                c = None
                time.sleep(0.02)
            time.sleep(self.pause)


def completed(r):
    return int(r.hget("bg:stats:default", "completed") or 0)


def flow_through_failover(sset, spawn, worker_args, failover, replicas_ack=0):
    """Runs two workers and a watcher on the sentinel URL with a producer; calls failover() once
    jobs flow; then waits for the queue to drain on the new primary and judges every acked job.
    Returns (counts, lost)."""
    url = sset.url()
    env = dict(os.environ, BG_REDIS_URL=url)
    watcher = spawn([exe("bg-watcher"), "-i", "0.2"], env=env)
    workers = [spawn([exe("bg-worker")] + worker_args, env=env) for _ in range(2)]
    prod = Producer(sset, replicas_ack=replicas_ack)
    prod.start()
    wait_for(lambda: completed(sset.client()) >= 200, 15, what="jobs to flow")
    old, new = failover()
    t0 = time.monotonic()
    before = len(prod.acked)
    # The programs follow: jobs enqueued on the new primary are taken there.
    wait_for(lambda: len(prod.acked) > before + 200, 15, what="the producer on the new primary")
    prod.stop.set()
    prod.join()
    r = new.client()
    wait_for(lambda: r.llen("bg:ready:default") == 0 and r.scard("bg:processing:default") == 0,
             30, what="the queue to drain on the new primary")
    print(f"\nfailover: the programs took jobs again {time.monotonic() - t0:.2f} s after it")
    for p in workers + [watcher]:
        assert p.proc.poll() is None, p.log()
    # Both workers' fibers talk to the new primary, none to a replica.
    wait_for(lambda: len(clients_named(r, "bg-worker-fiber:")) == 8, 10,
             what="the fibers on the new primary")
    found = places(r, prod.acked, QUEUES)
    twice = {j: p for j, p in found.items() if len(p) > 1}
    assert not twice, f"{len(twice)} jobs in two places, e.g. {list(twice.items())[:3]}"
    lost = [j for j, p in found.items() if not p]
    counts = {}
    for p in found.values():
        if p:
            counts[p[0]] = counts.get(p[0], 0) + 1
    assert set(counts) <= {"completed", "scheduled", "dead"}, counts
    print(f"failover: {len(prod.acked)} jobs acknowledged, {counts}, "
          f"lost by the asynchronous replication: {len(lost)}")
    for p in workers + [watcher]:
        assert p.stop() == 0, p.log()
    return counts, lost, workers, watcher


@pytest.mark.parametrize("worker_args,replicas,may_lose", WORKER_ARGS)
def test_sigkill_of_the_primary(make_sset, spawn, worker_args, replicas, may_lose):
    sset = make_sset(replicas)

    def failover():
        old = sset.kill_primary()
        return old, sset.wait_failover(old)

    counts, lost, workers, watcher = flow_through_failover(
        sset, spawn, worker_args, failover, replicas_ack=0 if may_lose else 1)
    if not may_lose:
        assert not lost, f"{len(lost)} jobs a replica acknowledged were lost"
    assert counts.get("completed", 0) > 200
    for p in workers + [watcher]:
        assert "lost the connection to Redis" in p.log(), p.log()


def test_manual_failover_moves_every_program(sset, spawn):
    """SENTINEL failover turns the old primary into a replica, alive: the programs move on
    +switch-master (or a READONLY reply) and never stay on it."""
    def failover():
        old = sset.primary()
        sset.sentinels[0].client().execute_command("SENTINEL", "FAILOVER", "mymaster")
        new = sset.wait_failover(old)
        return old, new

    counts, lost, workers, watcher = flow_through_failover(sset, spawn, ["-c", "4"], failover)
    assert counts.get("completed", 0) > 200
    assert any("the sentinels moved master mymaster" in p.log() for p in workers + [watcher])


def test_cli_through_the_sentinels(sset):
    url = sset.url(db=3)
    out = run([exe("bg-cli"), "-r", url, "enqueue", "bg.noop"])
    assert out.returncode == 0, out.stderr
    job = out.stdout.strip()
    r = sset.primary().client(db=3)
    assert r.hget(f"bg:jobs:{job}", "cls") == "bg.noop"
    st = run([exe("bg-cli"), "-r", url, "status", "--json"])
    assert st.returncode == 0 and '"ready": 1' in st.stdout, st
    assert run([exe("bg-cli"), "-r", url, "ping"]).returncode == 0


def test_acl_needs_role(sset):
    """The documented ACL lines of docs/operations.md, on every data node (ACLs do not
    replicate), with +role for a sentinel URL: without it the refusal names ROLE."""
    from test_acl import PASSWORD, doc_acls
    rules = doc_acls()["bg-cli"]
    for srv in sset.servers:
        c = srv.client()
        c.execute_command("ACL", "SETUSER", "bg-cli", *rules)
        c.execute_command("ACL", "SETUSER", "bg-cli-role", *rules, "+role")
    for user, ok in (("bg-cli-role", True), ("bg-cli", False)):
        url = sset.url(db=1, user=user, password=PASSWORD)
        out = run([exe("bg-cli"), "-r", url, "status"])
        if ok:
            assert out.returncode == 0, out.stderr
        else:
            assert out.returncode == 1
            assert "refused ROLE (a redis-sentinel:// URL needs +role)" in out.stderr, out.stderr
            assert PASSWORD not in out.stderr


def test_unknown_master_name(sset, spawn):
    url = sset.url(master="nosuch")
    out = run([exe("bg-cli"), "-r", url, "status"])
    assert out.returncode == 1
    assert "no sentinel knows a master named 'nosuch'" in out.stderr, out.stderr
    for prog in ("bg-worker", "bg-watcher"):
        p = spawn([exe(prog), "-r", url])
        assert p.wait(10) == 1, p.log()
        assert "no sentinel knows a master named 'nosuch'" in p.log()


def test_no_sentinel_reachable(spawn):
    ports = [free_port(), free_port()]
    url = f"redis-sentinel://:s3cret@127.0.0.1:{ports[0]},127.0.0.1:{ports[1]}/mymaster"
    out = run([exe("bg-cli"), "-r", url, "ping"])
    assert out.returncode == 1
    assert "no sentinel answered (2 tried" in out.stderr, out.stderr
    assert "s3cret" not in out.stderr and ":***@" in out.stderr
    # A worker waits for the sentinels as it waits for any server it cannot reach.
    w = spawn([exe("bg-worker"), "-r", url])
    wait_for(lambda: "no sentinel answered" in w.log(), 10, what="the worker's warning")
    assert w.proc.poll() is None and "s3cret" not in w.log()


@pytest.mark.parametrize("url,why", [
    ("redis-sentinel://127.0.0.1:0/m", "the port must be a number from 1 to 65535"),
    ("redis-sentinel://127.0.0.1:70000/m", "the port must be a number from 1 to 65535"),
    ("redis-sentinel://h:x/m", "the port must be a number from 1 to 65535"),
    ("redis-sentinel:///m", "no sentinel is given"),
    ("redis-sentinel://:pw@/m", "no sentinel is given"),
    ("redis-sentinel://a,,b/m", "a sentinel in the list is empty"),
    ("redis-sentinel://a,b", "the master's name is missing"),
    ("redis-sentinel://a/", "the master's name is missing"),
    ("redis-sentinel://a/m/x", "the database must be a whole number"),
    ("redis-sentinel://a/m/-1", "the database must be a whole number"),
    ("redis-sentinel://a/m?db=1", "take no query"),
    ("rediss-sentinel://a/m", "TLS to sentinels is not supported"),
])
def test_malformed_sentinel_urls(url, why):
    masked = url.replace(":pw@", ":***@")
    for prog in ("bg-cli", "bg-worker", "bg-watcher"):
        args = [exe(prog), "-r", url] + (["ping"] if prog == "bg-cli" else [])
        out = run(args, timeout=10)
        assert out.returncode == 2, (prog, out)
        assert why in out.stderr and masked in out.stderr, (prog, out.stderr)
        assert ":pw@" not in out.stderr
