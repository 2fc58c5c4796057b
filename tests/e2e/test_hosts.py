"""Many worker hosts on one Redis: four bg-workers, each on a "host" of its own (a network
namespace with its own address, joined to Redis by a veth pair into a bridge, and its own host
name; tests/support/hosts.py), share one queue. Jobs flow through every host, nothing is lost,
and bg-cli status and workers see four hosts. Where namespaces cannot be made here the hosts are
separate processes on loopback, and the output says so in a FALLBACK line; nothing skips."""

import json
import os
import signal
import subprocess
import sys
import warnings

import pytest

import invariant
from conftest import TOP, Proc, exe, run, wait_for
from hosts import Hosts, clean_leftovers, _our_links, _our_namespaces
from redis_server import RedisServer

QUEUE = "hosts"
JOBS = 400
HOSTS = 4
FIBERS = 2
# A job of 2 ms: slower than a millisecond, so every fiber claims one job at a time
# (docs/claim.md) and all of them share the queue rather than the first awake taking batches.
ARG = '{"ms":2}'


def say_fallback(hosts):
    """A FALLBACK line in the output: on stderr (shown with the test's output) and as a warning
    (shown in pytest's summary even when the test passes)."""
    line = hosts.fallback_line()
    if line:
        print(line, file=sys.stderr)
        warnings.warn(line)


@pytest.fixture
def cluster(request):
    """hosts, a redis-server they reach, and a start(i, *args) for a bg-worker on host i. The
    workers stop before the namespaces go, the namespaces go whatever the test did."""
    force = getattr(request, "param", None)
    hosts = Hosts(HOSTS, force_fallback=force)
    procs, srv = [], None
    try:
        hosts.start()
        say_fallback(hosts)
        srv = RedisServer(extra=hosts.redis_args()).start()

        def start(i, *args):
            p = Proc(hosts.command(i, [exe("bg-worker"), "-r", hosts.url(srv.port)] +
                                   list(args)))
            procs.append(p)
            return p
        yield hosts, srv, start
    finally:
        for p in procs:
            p.stop()
        if srv:
            srv.cleanup()
        hosts.cleanup()


def cli(srv, *args):
    res = run([exe("bg-cli"), "-r", srv.url] + list(args))
    assert res.returncode == 0, res.stderr
    return res.stdout


def worker_rows(srv):
    return json.loads(cli(srv, "workers", "--json"))["workers"]


def host_label(hosts, row):
    """Who a worker is: its host name, or, where the hosts could not be given names of their
    own, its host and pid."""
    return row["host"] if hosts.named else f"{row['host']} pid {row['pid']}"


@pytest.mark.parametrize("cluster", [None, "forced by the test, to check the loopback way"],
                         indirect=True, ids=["namespaces", "loopback"])
def test_jobs_flow_through_all_four_hosts(cluster):
    hosts, srv, start = cluster
    r = srv.client()
    workers = [start(i, "-q", QUEUE, "-c", str(FIBERS)) for i in range(HOSTS)]
    rows = wait_for(lambda: len(worker_rows(srv)) == HOSTS and worker_rows(srv), timeout=10,
                    what="four workers' heartbeats")
    assert sorted(w["pid"] for w in rows) == sorted(p.pid for p in workers)
    if hosts.named:
        assert sorted(w["host"] for w in rows) == sorted(hosts.names), rows

    # Each fiber's connection, while the workers live: the attempts' wrk is its client ID,
    # and its name carries the ID of its worker's main connection, the heartbeat's id.
    by_main = {w["id"]: w for w in rows}

    def fibers():
        fs = [c for c in r.client_list() if c.get("name", "").startswith("bg-worker-fiber:")]
        return len(fs) == HOSTS * FIBERS and fs
    fiber_host = {}
    for c in wait_for(fibers, what="every fiber's connection"):
        row = by_main[int(c["name"].split(":", 1)[1])]
        fiber_host[c["id"]] = host_label(hosts, row)
        if hosts.mode == "netns":
            # Over the bridge, from the host's own address, not over loopback.
            assert hosts.host_of_addr(c["addr"]) == row["host"], (c, row)
    mains = [c for c in r.client_list() if c.get("name") == f"bg-worker:{QUEUE}"]
    assert len(mains) == HOSTS
    if hosts.mode == "netns":
        assert sorted(c["addr"].rsplit(":", 1)[0] for c in mains) == sorted(hosts.addrs)

    # bg-cli sees four hosts: four workers of the queue, and a row each with its own host.
    (q,) = json.loads(cli(srv, "status", "-q", QUEUE, "--json"))["queues"]
    assert (q["workers"], q["fibers"]) == (HOSTS, HOSTS * FIBERS), q
    text = cli(srv, "workers").splitlines()
    assert len(text) == 1 + HOSTS, text
    if hosts.named:
        assert sorted(line.split()[1] for line in text[1:]) == sorted(hosts.names), text

    # A foreign producer on the Redis host enqueues, once every worker waits.
    jobs = invariant.new_jobs(r, JOBS, queue=QUEUE, cls="bg.sleep", arg=ARG)
    wait_for(lambda: int(r.hget(f"bg:stats:{QUEUE}", "completed") or 0) >= JOBS, timeout=15,
             what=f"{JOBS} jobs completed")
    wait_for(lambda: invariant.processing_empty(r, [QUEUE]), what="processing to empty")

    per_host = {}
    for a in r.zrange(f"bg:completed:{QUEUE}", 0, -1):
        who = fiber_host.get(r.hget(f"bg:attempts:{a}", "wrk"))
        assert who, f"attempt {a} ran on no fiber of the four hosts"
        per_host[who] = per_host.get(who, 0) + 1
    print(f"{hosts.describe()}; completed per host: {per_host}")
    assert sum(per_host.values()) == JOBS
    assert len(per_host) == HOSTS and min(per_host.values()) > 0, per_host
    assert invariant.check(r, jobs, [QUEUE], allow=("completed",)) == {"completed": JOBS}
    assert int(r.hget(f"bg:stats:{QUEUE}", "failed") or 0) == 0
    for p in workers:
        assert p.stop() == 0, p.log()
    r.close()


def test_namespaces_go_even_when_the_run_fails():
    with pytest.raises(RuntimeError, match="the run failed"):
        with Hosts(2) as hosts:
            say_fallback(hosts)
            made = list(hosts.namespaces) + list(hosts.links)
            assert (len(made) == 2 + 3) == (hosts.mode == "netns"), made
            raise RuntimeError("the run failed")
    left = set(_our_namespaces()) | set(_our_links())
    assert not left & set(made), left


def test_a_failure_while_making_them_undoes_it_and_falls_back(monkeypatch):
    import hosts as H
    real = H._ip

    def fails_at_the_bridge(*args, **kw):
        if args[:2] == ("link", "set") and "master" in args:
            raise OSError("injected: the bridge refused its port")
        return real(*args, **kw)
    monkeypatch.setattr(H, "_ip", fails_at_the_bridge)
    with Hosts(2) as hosts:
        say_fallback(hosts)
        assert hosts.mode == "loopback" and hosts.fallback_line().startswith("FALLBACK: ")
        cannot = hosts._cannot()
        assert (cannot or "injected: the bridge refused its port") in hosts.fallback
        # Nothing of the half-made hosts is left: no namespace, no veth, no bridge.
        assert not [n for n in _our_namespaces() if n.startswith(f"bgh-{os.getpid()}-")]
        assert not [n for n in _our_links() if n.startswith(f"bgh{os.getpid()}")]
        assert hosts.addrs == ["127.0.0.1"] * 2 and hosts.redis_host == "127.0.0.1"


def test_leftovers_of_a_killed_run_are_removed():
    helper = os.path.join(TOP, "tests", "support", "hosts.py")
    p = subprocess.Popen([sys.executable, helper, "make", "2"], stdout=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, text=True)
    try:
        line = p.stdout.readline().strip()
        mine = f"bgh-{p.pid}-"
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    if line.startswith("FALLBACK:"):
        # No namespaces here, so a killed run leaves none; say so rather than skip.
        print(line, file=sys.stderr)
        warnings.warn(line)
        assert clean_leftovers() == []
        return
    left = [n for n in _our_namespaces() if n.startswith(mine)]
    links = [n for n in _our_links() if n.startswith(f"bgh{p.pid}")]
    assert len(left) == 2 and len(links) == 3, (line, left, links)
    # The next run removes them before making its own; a live run's are left alone.
    with Hosts(1) as hosts:
        assert not [n for n in _our_namespaces() if n.startswith(mine)]
        assert not [n for n in _our_links() if n.startswith(f"bgh{p.pid}")]
        if hosts.mode == "netns":
            assert hosts.namespaces[0] in _our_namespaces()
            assert clean_leftovers() == []
            assert hosts.namespaces[0] in _our_namespaces()
