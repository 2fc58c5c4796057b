"""Faults of Redis itself while jobs flow through real bg-workers and a bg-watcher: the server
paused (SIGSTOP) longer than every timeout, connections killed (`CLIENT KILL TYPE normal`)
while fibers idle and while they finish, the script cache flushed mid-run, the server
restarted with and without persistence, and the server out of memory (`maxmemory`,
`noeviction`) until memory is freed.

Each case runs on a redis-server of its own. For each: no program exits, each logs one line
per outage (not one per fiber per retry), jobs complete again within seconds of Redis
returning (the figure is printed), and once the workers are stopped the no-loss invariant of
invariant.py holds."""

import os
import re
import signal
import socket
import threading
import time
import uuid

import pytest
import redis

from conftest import RedisServer, clients_named, exe, run, wait_for
from invariant import check, processing_empty
from test_watcher import schedule, watcher
from test_worker import server_ms, worker

QUEUES = ("probe", "default")
RESUME_BOUND_S = 3.0  # "within about a second", with room for a shared, busy machine
LOST = "lost the connection to Redis"
BACK = "reconnected to Redis"


@pytest.fixture
def own_server():
    """own_server(extra=()) starts a redis-server of the test's own; all are removed after."""
    made = []

    def start(extra=()):
        srv = RedisServer(extra=list(extra)).start()
        made.append(srv)
        return srv

    yield start
    for srv in made:
        srv.cleanup()


class Feeder(threading.Thread):
    """A foreign producer that keeps enqueuing a mix of jobs (each HSET and RPUSH in one MULTI,
    so a refused or failed call writes none) until stopped, riding out every Redis error.
    Jobs whose call failed with the connection may or may not exist: they are kept apart and
    counted only when their hash is there at the end."""

    MIX = [("bg.noop", "{}", {}), ("bg.noop", "{}", {}), ("bg.sleep", '{"ms":3}', {}),
           ("bg.sleep", '{"ms":15}', {}), ("bg.fail", '{"err":"Nope"}', {"rty": "0"})]

    def __init__(self, port, per_tick=4, tick=0.02, queue="default"):
        super().__init__(daemon=True)
        self.port, self.per_tick, self.tick, self.queue = port, per_tick, tick, queue
        self.ids, self.maybe = [], []
        self.refused = self.errors = 0
        self.halt = threading.Event()
        self.n = 0

    def run(self):
        c = redis.Redis(port=self.port, decode_responses=True, socket_timeout=1,
                        socket_connect_timeout=1)
        while not self.halt.is_set():
            batch = []
            p = c.pipeline(transaction=True)
            for _ in range(self.per_tick):
                cls, arg, extra = self.MIX[self.n % len(self.MIX)]
                self.n += 1
                jid = str(uuid.uuid4())
                batch.append(jid)
                p.hset(f"bg:jobs:{jid}", mapping=dict({"que": self.queue, "cls": cls, "arg": arg,
                                                        "qat": "1"}, **extra))
                p.rpush(f"bg:ready:{self.queue}", jid)
            try:
                p.execute()
                self.ids += batch
            except redis.exceptions.ResponseError:
                self.refused += 1  # EXECABORT (OOM): nothing was written
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                self.errors += 1
                self.maybe += batch
                self.halt.wait(0.05)
            self.halt.wait(self.tick)
        c.close()

    def stop(self):
        self.halt.set()
        self.join(10)

    def jobs(self, r):
        """Every job this feeder enqueued, as far as Redis knows now."""
        p = r.pipeline(transaction=False)
        for jid in self.maybe:
            p.exists(f"bg:jobs:{jid}")
        there = p.execute() if self.maybe else []
        return self.ids + [j for j, e in zip(self.maybe, there) if e]


def other_lines(log):
    """The lines of a log that are not one attempt's outcome (a failed job is logged at Info, so
    their number follows the jobs, not the faults)."""
    return [ln for ln in log.splitlines() if not re.search(r"\] (Completed|Failed) ", ln)]


class Fleet:
    """Workers (-q probe,default) and watchers on one server, and the feeder's jobs."""

    def __init__(self, spawn, srv, workers=1, c=4, watchers=1, wargs=(), vargs=()):
        self.srv = srv
        self.workers = [worker(spawn, srv, "-q", ",".join(QUEUES), "-c", str(c),
                               "-e", "nap=sleep 1.5", *wargs) for _ in range(workers)]
        self.watchers = [watcher(spawn, srv, "-i", "0.2", *vargs) for _ in range(watchers)]
        self.feeder = None
        # Each watcher is up once its command connection tracks the scheduled sets for its
        # report connection: the last step of its connect.
        r = srv.client()
        wait_for(lambda: len([c for c in clients_named(r, "bg-watcher") if "t" in c["flags"]])
                 == watchers, what="the watchers to be up")

    def programs(self):
        return self.workers + self.watchers

    def feed(self, **kw):
        self.feeder = Feeder(self.srv.port, **kw)
        self.feeder.start()
        r = self.srv.client()
        wait_for(lambda: r.zcard("bg:completed:default") >= 100, what="jobs to flow")
        return self.feeder

    def naps(self, r, n=2):
        """Starts n jobs that run 1.5 s (an exec), so the fault finds them running."""
        jids = []
        for _ in range(n):
            jid = str(uuid.uuid4())
            r.hset(f"bg:jobs:{jid}", mapping={"que": "probe", "cls": "nap", "arg": "", "qat": 1})
            r.rpush("bg:ready:probe", jid)
            jids.append(jid)
        wait_for(lambda: r.scard("bg:processing:probe") >= n, what="the naps to start")
        self.probes = getattr(self, "probes", []) + jids

    def flow_on(self, r, n=200):
        """Waits until n more jobs of the feeder completed."""
        k = r.zcard("bg:completed:default")
        wait_for(lambda: r.zcard("bg:completed:default") >= k + n, timeout=15,
                 what="jobs to flow again")

    def assert_alive(self):
        for p in self.programs():
            assert p.proc.poll() is None, f"{p.args[0]} exited {p.proc.returncode}:\n{p.log()}"

    def lines(self, what):
        return [p.log().count(what) for p in self.programs()]

    def probe(self, r, t0):
        """Enqueues a job on the high-priority probe queue (retrying while Redis refuses) and
        returns the seconds from t0 until its completion is recorded."""
        jid = str(uuid.uuid4())
        while True:
            try:
                with r.pipeline(transaction=True) as p:
                    p.hset(f"bg:jobs:{jid}", mapping={"que": "probe", "cls": "bg.noop",
                                                      "arg": "{}", "qat": "1"})
                    p.rpush("bg:ready:probe", jid)
                    p.execute()
                break
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                    redis.exceptions.ResponseError):
                assert time.monotonic() - t0 < 10, "Redis did not come back"
                time.sleep(0.01)
        self.probes = getattr(self, "probes", []) + [jid]

        def done():
            for a in r.zrange("bg:completed:probe", -5, -1):
                if r.hget(f"bg:attempts:{a}", "job") == jid:
                    return True
            return False
        wait_for(done, timeout=15, what="the probe job to complete")
        return time.monotonic() - t0

    def settle(self, r, extra=(), quiet=True):
        """Stops the feeder, lets every job run, stops the workers (each must exit 0) and
        checks the invariant. Returns the places' counts. quiet: no program warned (a warning
        would be about something that did not happen: no job was lost, none failed)."""
        if self.feeder:
            self.feeder.stop()
        self.assert_alive()
        wait_for(lambda: r.llen("bg:ready:default") == 0 and r.llen("bg:ready:probe") == 0,
                 timeout=30, what="the ready lists to drain")
        jobs = (self.feeder.jobs(r) if self.feeder else []) + getattr(self, "probes", [])
        jobs += list(extra)
        wait_for(lambda: processing_empty(r, QUEUES), timeout=15,
                 what="the last jobs to finish")
        self.assert_alive()
        for w in self.workers:
            w.signal(signal.SIGTERM)
        for w in self.workers:
            assert w.wait(30) == 0, w.log()
        counts = check(r, jobs, QUEUES, allow=("completed", "scheduled", "dead"))
        assert processing_empty(r, QUEUES)
        if os.environ.get("BG_SHOW_LOGS"):
            for p in self.programs():
                print(f"---- {p.args[0]}\n" + "\n".join(other_lines(p.log())))
        for p in self.programs():
            n = len(other_lines(p.log()))
            assert n < 200, f"{p.args[0]} wrote {n} log lines:\n{p.log()[-3000:]}"
            warned = [ln for ln in other_lines(p.log()) if re.search(r" [WE] ", ln)]
            assert not quiet or not warned, "\n".join(warned)
        return counts


def worker_timeouts(r):
    """Attempts failed as if their worker had vanished."""
    n = 0
    for q in QUEUES:
        for a in r.zrange(f"bg:failed:{q}", 0, -1):
            n += r.hget(f"bg:attempts:{a}", "err") == "Worker Timeout"
    return n


def outage_logged_once(fleet, programs=None):
    """Each program that lost its connection said so once, and said once that it was back."""
    for p in programs if programs is not None else fleet.programs():
        # A program notices at its next call to Redis (a watcher's next interval), which may
        # come after the workers are already back at work.
        wait_for(lambda: LOST in p.log(), timeout=5, what="the outage to be logged")
        wait_for(lambda: BACK in p.log(), timeout=5, what="the return to be logged")
        assert p.log().count(LOST) == 1, p.log()
        assert p.log().count(BACK) == 1, p.log()


# ---- Redis paused ----

def test_redis_paused_longer_than_every_timeout(own_server, spawn):
    """SIGSTOP of the server for 5 s: past the 3 s socket timeout of the fibers and the 3 s
    after which a silent main connection counts as hung."""
    srv = own_server()
    r = srv.client()
    fleet = Fleet(spawn, srv, c=6)
    fleet.feed()
    fleet.naps(r)
    os.kill(srv.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: all(n >= 1 for n in fleet.lines(LOST)), timeout=15,
                 what="every program to notice the hang")
        time.sleep(2.0)  # well past the timeouts: reconnections are under way and time out too
    finally:
        os.kill(srv.proc.pid, signal.SIGCONT)
    t0 = time.monotonic()
    took = fleet.probe(r, t0)
    print(f"paused: a job completed {took:.3f} s after SIGCONT")
    assert took < RESUME_BOUND_S
    fleet.assert_alive()
    outage_logged_once(fleet)
    fleet.flow_on(r)
    counts = fleet.settle(r)
    print("paused:", counts, "feeder calls cut off:", fleet.feeder.errors)
    # The fibers re-own their attempts within the grace: the watcher fails none of them.
    assert worker_timeouts(r) == 0


# ---- connections killed ----

def fiber_ids(r):
    return sorted(c["id"] for c in clients_named(r, "bg-worker-fiber:"))


def test_client_kill_while_fibers_idle(own_server, spawn):
    srv = own_server()
    r = srv.client()
    fleet = Fleet(spawn, srv, c=4)
    before = fiber_ids(r)
    assert len(before) == 4
    # Idle: no job anywhere, every fiber waits for news of one.
    killed = r.execute_command("CLIENT", "KILL", "TYPE", "normal")
    assert killed >= 5  # 4 fibers and the watcher's command connection
    t0 = time.monotonic()
    took = fleet.probe(r, t0)
    print(f"kill while idle: a job completed {took:.3f} s after the kill")
    assert took < RESUME_BOUND_S
    wait_for(lambda: len(fiber_ids(r)) == 4 and not set(fiber_ids(r)) & set(before),
             timeout=5, what="every fiber to reconnect")
    fleet.assert_alive()
    # The worker's main connection (subscribed, so not of type normal) stayed: nothing to say.
    # The watcher's command connection went: said once, and its return once.
    assert fleet.workers[0].log().count(LOST) == 0, fleet.workers[0].log()
    outage_logged_once(fleet, fleet.watchers)
    fleet.settle(r)


def test_client_kill_of_the_subscribed_connections(own_server, spawn):
    """TYPE pubsub: the worker's main connection and the watcher's report connection go. The
    worker says so once and its fibers rename themselves after the new main connection."""
    srv = own_server()
    r = srv.client()
    fleet = Fleet(spawn, srv, c=4)
    fleet.feed()
    assert r.execute_command("CLIENT", "KILL", "TYPE", "pubsub") == 2
    took = fleet.probe(r, time.monotonic())
    print(f"kill pubsub: a job completed {took:.3f} s after the kill")
    assert took < RESUME_BOUND_S

    def renamed():
        mains = clients_named(r, "bg-worker:")
        fibers = clients_named(r, "bg-worker-fiber:")
        return len(mains) == 1 and len(fibers) == 4 and \
            all(f["name"] == "bg-worker-fiber:" + mains[0]["id"] for f in fibers)
    wait_for(renamed, timeout=5, what="the fibers to rename")
    outage_logged_once(fleet)
    fleet.flow_on(r)
    fleet.settle(r)
    assert worker_timeouts(r) == 0


def test_client_kill_while_fibers_finish_many_fast_jobs(own_server, spawn):
    srv = own_server()
    r = srv.client()
    fleet = Fleet(spawn, srv, c=4)
    fleet.feed(per_tick=20, tick=0.01)
    resumes = []
    for _ in range(5):
        n = r.zcard("bg:completed:default")
        wait_for(lambda: r.zcard("bg:completed:default") > n + 50, what="jobs to flow")
        r.execute_command("CLIENT", "KILL", "TYPE", "normal")
        resumes.append(fleet.probe(r, time.monotonic()))
    print("kill while finishing: a job completed after each kill in",
          ", ".join(f"{t:.3f}" for t in resumes), "s")
    assert max(resumes) < RESUME_BOUND_S
    fleet.assert_alive()
    assert fleet.workers[0].log().count(LOST) == 0, fleet.workers[0].log()
    for p in fleet.watchers:
        assert p.log().count(LOST) <= 5, p.log()
    counts = fleet.settle(r)
    print("kill while finishing:", counts)
    # A fiber whose connection was killed re-owns its attempts within the grace: no job of a
    # live worker is failed as if the worker had vanished.
    assert worker_timeouts(r) == 0


# ---- the script cache flushed ----

def test_script_flush_mid_run_worker_reloads_without_reconnecting(own_server, spawn):
    """Every fiber's next claim and finish meets NOSCRIPT: each is loaded again and run, on the
    same connection, with no error and no loss."""
    srv = own_server()
    r = srv.client()
    fleet = Fleet(spawn, srv, c=4)
    fleet.feed(per_tick=10, tick=0.01)
    before = fiber_ids(r)
    for _ in range(10):
        n = r.zcard("bg:completed:default")
        wait_for(lambda: r.zcard("bg:completed:default") > n + 20, what="jobs to flow")
        r.script_flush()
    took = fleet.probe(r, time.monotonic())
    assert took < RESUME_BOUND_S
    # A lost script is no lost connection: the fibers kept theirs.
    assert fiber_ids(r) == before
    counts = fleet.settle(r)
    print("script flush (worker):", counts)
    for p in fleet.programs():
        # The fleet's bg.fail jobs are warnings by design (docs/operations.md#logs); anything
        # else at W or E would be the flush showing.
        trouble = [line for line in p.log().splitlines()
                   if re.search(r" [EW] ", line) and "] Failed bg.fail (job " not in line]
        assert not trouble, p.log()
        assert "NOSCRIPT" not in p.log()


def test_script_flush_watcher_moves_due_jobs_and_fails_vanished_attempts(own_server, spawn):
    """schedule.lua, finish.lua ('vanish') and trim.lua each meet NOSCRIPT in the watcher."""
    srv = own_server()
    r = srv.client()
    v = watcher(spawn, srv, "-i", "0.1", "--grace", "0.3", "--retain-completed", "0")
    # trim.lua: completed history older than the retention (0) goes.
    r.script_flush()
    aid = str(uuid.uuid4())
    r.hset(f"bg:attempts:{aid}", mapping={"job": "x", "que": "default", "sta": 1})
    r.zadd("bg:completed:default", {aid: server_ms(r) - 1000})
    r.sadd("bg:queues", "default")
    wait_for(lambda: r.zcard("bg:completed:default") == 0, timeout=5, what="the trim")
    # schedule.lua: a due job moves to ready.
    r.script_flush()
    jid = schedule(r, "bg.noop", server_ms(r) + 50)
    wait_for(lambda: r.lrange("bg:ready:default", 0, -1) == [jid], timeout=5,
             what="the due job to move")
    r.delete("bg:ready:default")
    # finish.lua: the attempt of a SIGKILLed worker fails as Worker Timeout.
    w = worker(spawn, srv, "-c", "1", "-e", "nap=sleep 60")
    nap = str(uuid.uuid4())
    r.hset(f"bg:jobs:{nap}", mapping={"que": "default", "cls": "nap", "arg": "", "qat": 1,
                                      "rty": 0})
    r.rpush("bg:ready:default", nap)
    wait_for(lambda: [a for a in r.smembers("bg:processing:default")
                      if r.hget(f"bg:attempts:{a}", "job") == nap], what="the nap to start")
    w.signal(signal.SIGKILL)
    w.wait(5)
    r.script_flush()
    wait_for(lambda: r.zscore("bg:dead:default", nap) is not None, timeout=5,
             what="the vanished attempt to fail")
    assert v.proc.poll() is None
    assert not re.search(r" [EW] ", v.log()) and "NOSCRIPT" not in v.log(), v.log()
    assert v.log().count(LOST) == 0, v.log()


class FlushingProxy(threading.Thread):
    """A TCP proxy to a server that flushes the server's script cache (SCRIPT FLUSH, from a
    connection of its own) just before it forwards the first command of a client that holds
    EVALSHA: so the client's first script call meets NOSCRIPT for sure."""

    def __init__(self, srv):
        super().__init__(daemon=True)
        self.srv = srv
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.flushes = 0

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def run(self):
        while True:
            try:
                c, _ = self.lsock.accept()
            except OSError:
                return
            s = socket.create_connection(("127.0.0.1", self.srv.port))
            threading.Thread(target=self.pump, args=(c, s, True), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, False), daemon=True).start()

    def pump(self, src, dst, upstream):
        flushed = False
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and not flushed and b"EVALSHA" in data:
                    self.srv.client().script_flush()
                    self.flushes += 1
                    flushed = True
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for x in (src, dst):
                try:
                    x.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.lsock.close()


def test_script_flush_bg_cli_reloads(own_server):
    srv = own_server()
    r = srv.client()
    proxy = FlushingProxy(srv)
    proxy.start()
    bgcli = [exe("bg-cli"), "-r", proxy.url]
    try:
        out = run(bgcli + ["enqueue", "bg.noop", "{}"])
        assert out.returncode == 0, out.stderr
        one = out.stdout.strip()
        assert r.lrange("bg:ready:default", 0, -1) == [one]
        # Pipelined: many jobs from standard input, every reply of the first batch NOSCRIPT.
        lines = "".join('{"n":%d}\n' % i for i in range(1500))
        out = run(bgcli + ["enqueue", "bg.noop", "-"], input=lines)
        assert out.returncode == 0, out.stderr
        assert len(out.stdout.split()) == 1500 and r.llen("bg:ready:default") == 1501
        assert out.stdout.split() == r.lrange("bg:ready:default", 1, -1)
        out = run(bgcli + ["dequeue", one])
        assert out.returncode == 0, out.stderr
        assert r.llen("bg:ready:default") == 1500
        dead = str(uuid.uuid4())
        r.hset(f"bg:jobs:{dead}", mapping={"que": "default", "cls": "bg.noop", "qat": 1})
        r.zadd("bg:dead:default", {dead: 1})
        out = run(bgcli + ["retry", dead])
        assert out.returncode == 0, out.stderr
        assert r.zcard("bg:dead:default") == 0 and r.lindex("bg:ready:default", -1) == dead
        assert proxy.flushes == 4
    finally:
        proxy.close()


# ---- Redis restarted ----

@pytest.mark.parametrize("persist", ["aof", "none"])
def test_redis_restart(own_server, spawn, persist):
    extra = ["--appendonly", "yes", "--appendfsync", "always"] if persist == "aof" else []
    srv = own_server(extra)
    r = srv.client()
    fleet = Fleet(spawn, srv, c=6)
    fleet.feed()
    fleet.naps(r)
    srv.stop()
    t_down = time.monotonic()
    wait_for(lambda: all(n >= 1 for n in fleet.lines(LOST)), timeout=10,
             what="every program to notice")
    srv.start(port=srv.port)
    t0 = time.monotonic()
    r = srv.client()
    took = fleet.probe(r, t0)
    print(f"restart ({persist}): down {t0 - t_down:.3f} s; a job completed {took:.3f} s after "
          f"the server was back")
    assert took < RESUME_BOUND_S
    fleet.assert_alive()
    outage_logged_once(fleet)
    if persist == "aof":
        fleet.flow_on(r)
        counts = fleet.settle(r)
        print(f"restart ({persist}):", counts)
        assert worker_timeouts(r) == 0
        return
    # The data is gone: what is left to judge is that the programs serve new jobs, and that the
    # jobs enqueued after the restart are not lost.
    fleet.feeder.stop()
    t_fresh = time.monotonic()
    fresh = Feeder(srv.port)
    fresh.start()
    wait_for(lambda: len(fresh.ids) >= 100, what="new jobs")
    fleet.feeder = fresh
    fleet.probes = [p for p in fleet.probes if r.exists(f"bg:jobs:{p}")]
    counts = fleet.settle(r, quiet=False)  # results of attempts Redis forgot are dropped
    print(f"restart ({persist}): jobs after the restart: {counts} "
          f"({time.monotonic() - t_fresh:.1f} s)")


# ---- Redis out of memory ----

def test_redis_at_maxmemory_refuses_writes_then_memory_is_freed(own_server, spawn):
    srv = own_server(["--maxmemory-policy", "noeviction"])
    r = srv.client()
    fleet = Fleet(spawn, srv, c=4)
    feeder = fleet.feed()
    # Delayed jobs that fall due while Redis refuses writes.
    delayed = [schedule(r, "bg.noop", server_ms(r) + 500) for _ in range(20)]
    used = int(r.info("memory")["used_memory"])
    r.config_set("maxmemory", str(used // 2))
    wait_for(lambda: feeder.refused >= 5, what="writes to be refused")
    # A producer is told, in one line, and nothing is written.
    out = run([exe("bg-cli"), "-r", srv.url, "enqueue", "bg.noop", "{}"])
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1, out
    assert "OOM" in out.stderr and out.stdout == ""
    # Scripts whose first write frees memory (a pop, a removal) are let through by Redis: the
    # jobs already waiting, and those falling due, still run.
    wait_for(lambda: all(r.zscore("bg:scheduled:default", j) is None for j in delayed),
             timeout=5, what="the due jobs to move")
    wait_for(lambda: r.llen("bg:ready:default") == 0, timeout=5, what="ready to drain")
    fleet.assert_alive()
    r.config_set("maxmemory", "0")
    t0 = time.monotonic()
    took = fleet.probe(r, t0)
    print(f"maxmemory: a job completed {took:.3f} s after memory was freed; "
          f"{feeder.refused} enqueues refused")
    assert took < RESUME_BOUND_S
    fleet.assert_alive()
    fleet.flow_on(r)
    counts = fleet.settle(r, delayed)
    print("maxmemory:", counts)
    assert worker_timeouts(r) == 0
    for p in fleet.programs():
        log = p.log()
        # One refusal said (per program and kind of call), not one per fiber per retry.
        assert len(re.findall(r"OOM|maxmemory", log)) <= 3, log[-3000:]
