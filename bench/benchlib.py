"""The measuring parts of bench/run: bg's programs, BullMQ's script and redis-benchmark run
against one redis-server, and what each run reads back from it. bench/run puts them in rounds
and prints the figures; see bench/README.md."""

import csv
import io
import json
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BULLMQ_DIR = os.path.join(TOP, "bench", "bullmq")
QUEUE = "bench"
NS = "bg"
# How long a worker may go without completing a job before the run gives up on it.
STALL_SECONDS = 20
# How often the throughput runs read the completed count: often enough that the poll adds
# little to the measured time, seldom enough that it adds little load to Redis. BullMQ's
# drain.js polls at the same rate.
POLL_SECONDS = 0.01

sys.path.insert(0, os.path.join(TOP, "tests", "support"))
from redis_server import RedisServer  # noqa: E402
from hosts import Hosts  # noqa: E402,F401  (bench/run's hosts scenario)
from procs import stop_proc  # noqa: E402

import redis  # noqa: E402  (bench/run checks for it first, with a message)


class SetupError(Exception):
    """A failure that is not a measurement: it ends the run with one line and exit 1."""


def queue_names(q):
    """The queues of a run over q queues; the same names as drain.js uses."""
    return [QUEUE] if q == 1 else [f"{QUEUE}{i}" for i in range(q)]


def find_tools(build):
    tools = {}
    for name in ("bg-worker", "bg-cli", "bg-watcher"):
        path = os.path.join(build, name, name)
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise SetupError(f"{path} is not built: build bg first (./dev.sh demo, or cmake -S . "
                             f"-B build && make -C build), or name the build with --build DIR")
        tools[name] = path
    for name in ("redis-server", "redis-benchmark", "redis-cli"):
        path = shutil.which(name)
        if not path:
            raise SetupError(f"{name} is not installed (apt-get install redis-server "
                             f"redis-tools)")
        tools[name] = path
    return tools


def bullmq_missing():
    """Why BullMQ cannot run here, or None when it can."""
    if not shutil.which("node"):
        return "node is not installed"
    if not os.path.isdir(os.path.join(BULLMQ_DIR, "node_modules", "bullmq")):
        return "bench/bullmq/node_modules is absent (bench/run --setup installs it with npm ci)"
    return None


def bullmq_version():
    with open(os.path.join(BULLMQ_DIR, "node_modules", "bullmq", "package.json")) as f:
        return json.load(f)["version"]


class Server(RedisServer):
    """The run's redis-server; a client that waits more than 30 s for a reply ends the run."""

    def client(self, **kw):
        return super().client(socket_timeout=30, **kw)


def last_line(text):
    return (text.strip().splitlines() or ["no message"])[-1]


# ---- reference ----


def reference(tools, port, n):
    """redis-benchmark's RPUSH rate, 10 clients, no pipelining: Redis's rate of simple list
    operations on this machine right now."""
    out = subprocess.run(
        [tools["redis-benchmark"], "-h", "127.0.0.1", "-p", str(port), "--csv", "-n", str(n),
         "-P", "1", "-c", "10", "-t", "rpush"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False)
    for row in csv.reader(io.StringIO(out.stdout)):
        if out.returncode == 0 and len(row) >= 2 and row[0] == "RPUSH":
            return float(row[1])
    raise SetupError(f"redis-benchmark failed: {last_line(out.stderr or out.stdout)}")


# ---- Redis's own counters ----


def redis_cpu(r):
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


def commandstats(r):
    """{command: (calls, usec)} from INFO commandstats."""
    out = {}
    for key, v in r.info("commandstats").items():
        out[key[len("cmdstat_"):]] = (int(v["calls"]), int(v["usec"]))
    return out


def stats_delta(before, after):
    out = {}
    for cmd, (calls, usec) in after.items():
        c0, u0 = before.get(cmd, (0, 0))
        if calls > c0:
            out[cmd] = (calls - c0, usec - u0)
    return out


def cpu_seconds(pid):
    """User plus system CPU time of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    """(VmRSS, VmHWM) of a process in KiB."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                vals[k] = int(v.split()[0])
    return vals["VmRSS"], vals["VmHWM"]


# ---- bg ----


def enqueue(tools, srv, n, queue=QUEUE, extra=()):
    """Enqueues n bg.noop jobs with one bulk bg-cli enqueue (extra: more of its options);
    returns the seconds it took, from starting the process until it exits."""
    data = b"{}\n" * n
    r = srv.client()
    before = r.llen(f"{NS}:ready:{queue}")
    t0 = time.monotonic()
    out = subprocess.run(
        [tools["bg-cli"], "-r", srv.url, "-n", NS, "enqueue", "bg.noop", "-", "-q", queue,
         *extra],
        input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    took = time.monotonic() - t0
    if out.returncode != 0:
        raise SetupError(f"bg-cli enqueue failed (exit {out.returncode}): "
                         f"{last_line(out.stderr.decode(errors='replace'))}")
    got = r.llen(f"{NS}:ready:{queue}") - before
    printed = out.stdout.count(b"\n")
    if printed != n or got != n:
        raise SetupError(f"bg-cli enqueue printed {printed} UUIDs and left {got} jobs ready; "
                         f"expected {n}")
    return took


class Worker:
    """A bg-worker, its log in the temporary directory."""

    def __init__(self, tools, srv, tmp, conc, queues=(QUEUE,), tag="", url=None, wrap=None,
                 extra=()):
        """url: the Redis URL it uses (srv.url by default); wrap(argv): the command that runs
        argv elsewhere (on one of the hosts of tests/support/hosts.py), its PID argv's; extra:
        more bg-worker options."""
        self.log = os.path.join(tmp, f"worker-c{conc}{tag}.log")
        self.conc = conc
        argv = [tools["bg-worker"], "-r", url or srv.url, "-n", NS, "-q", ",".join(queues),
                "-c", str(conc), *extra]
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(wrap(argv) if wrap else argv,
                                         stdout=subprocess.DEVNULL, stderr=logf)

    def last_log_line(self):
        try:
            with open(self.log, errors="replace") as f:
                return last_line(f.read())
        except OSError:
            return "(no log)"

    def check_alive(self):
        if self.proc.poll() is not None:
            raise SetupError(f"bg-worker -c {self.conc} exited with status "
                             f"{self.proc.returncode}: {self.last_log_line()}")

    def wait_started(self, timeout=10.0):
        """Until its log says it started: before that (a host's `ip netns exec`, the loader,
        the option parsing) a SIGTERM finds no handler and kills it, which no deployment
        would count as a failed stop. Another host may drain every job first."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            try:
                with open(self.log, errors="replace") as f:
                    if " started: " in f.read():
                        return
            except OSError:
                pass
            time.sleep(0.01)

    def stop(self):
        """SIGTERM, as a deployment stops it, once it has started; a status other than 0 ends
        the run."""
        self.wait_started()
        if not stop_proc(self.proc):
            raise SetupError(f"bg-worker -c {self.conc} did not stop within 30 s of SIGTERM")
        if self.proc.returncode != 0:
            raise SetupError(f"bg-worker -c {self.conc} exited with status "
                             f"{self.proc.returncode} on SIGTERM: {self.last_log_line()}")


def completed_count(r, queues):
    """Completed jobs over the queues, from the stats counters."""
    return completed_count_field(r, queues, "completed")


class Window:
    """Redis's counters over the steady part of a drain: from the first poll that sees a tenth
    of the jobs done to the poll that sees them all, so that a worker's start (connections,
    SCRIPT LOAD, INFO) and the first batches are not in the per-job figures."""

    def __init__(self, r, n):
        self.r, self.n, self.start, self.end = r, n, None, None

    def snap(self, done):
        return (done, commandstats(self.r), redis_cpu(self.r))

    def poll(self, done):
        """Called with each completed count read; True once all n are done."""
        if self.start is None and done >= self.n // 10:
            self.start = self.snap(done)
            self.polls = 0
        elif self.start is not None:
            self.polls += 1
        if done >= self.n:
            self.end = self.snap(done)
            return True
        return False

    def figures(self, poll_cmd, per_poll):
        """(jobs in the window, Redis CPU s, {command: (calls, usec)}), the window's own polls
        (poll_cmd, per_poll calls each) taken out of the command counts."""
        (d0, c0, u0), (d1, c1, u1) = self.start, self.end
        cmds = stats_delta(c0, c1)
        if poll_cmd in cmds:
            calls, usec = cmds[poll_cmd]
            mine = min(calls, self.polls * per_poll)
            left = calls - mine
            if left:
                cmds[poll_cmd] = (left, usec - round(usec * mine / calls))
            else:
                del cmds[poll_cmd]
        return max(1, d1 - d0), u1 - u0, cmds


def wait_completed(r, n, count, alive, what, log_line, window=None):
    """Polls count() until it reaches n; returns the time it was seen."""
    last, last_t = 0, time.monotonic()
    while True:
        done = count()
        now = time.monotonic()
        if window and window.poll(done):
            return now
        if done >= n:
            return now
        alive()
        if done != last:
            last, last_t = done, now
        elif now - last_t > STALL_SECONDS:
            raise SetupError(f"{what} completed no job for {STALL_SECONDS} s ({done} of {n}): "
                             f"{log_line()}")
        time.sleep(POLL_SECONDS)


def bg_drain(tools, srv, tmp, conc, n, procs=1, queues=(QUEUE,), extra=()):
    """Runs procs bg-workers over n ready no-op jobs; returns a dict of the figures: rate (from
    starting the workers), Redis CPU and worker CPU per job and the command counts (over the
    steady window), and the first worker's RSS at the end."""
    r = srv.client()
    win = Window(r, n)
    t0 = time.monotonic()
    ws = [Worker(tools, srv, tmp, conc, queues, tag=f"-{i}", extra=extra) for i in range(procs)]
    try:
        def alive():
            for w in ws:
                w.check_alive()
        now = wait_completed(r, n, lambda: completed_count(r, queues), alive,
                             f"bg-worker -c {conc}", ws[0].last_log_line, win)
        wcpu = sum(cpu_seconds(w.proc.pid) for w in ws)
        rss, hwm = rss_kb(ws[0].proc.pid)
    finally:
        for w in ws:
            w.stop()
    failed = completed_count_field(r, queues, "failed")
    if failed:
        raise SetupError(f"{failed} bg.noop jobs failed under bg-worker -c {conc}")
    jobs, rcpu, cmds = win.figures("hget", len(queues))
    return {"rate": n / (now - t0), "redis_us": rcpu * 1e6 / jobs, "client_us": wcpu * 1e6 / n,
            "cmds": cmds, "rss_kb": rss, "hwm_kb": hwm, "n": jobs}


class _TimedWindow(Window):
    """A Window that also keeps the wall time between its two snapshots, for how busy Redis
    was over it."""

    def poll(self, done):
        opening = self.start is None
        end = super().poll(done)
        if opening and self.start is not None:
            self.t0 = time.monotonic()
        if end:
            self.t1 = time.monotonic()
        return end


def hosts_drain(tools, srv, tmp, hosts, k, conc, n):
    """One bg-worker -c conc on each of the first k hosts (tests/support/hosts.py), over n
    ready no-op jobs; returns the rate (from starting the workers), and over the steady window
    redis-server's CPU per job and the share of one core it used (CPU s / wall s), EVALSHA's
    us a job and jobs a call (claims and finishes together) from commandstats, and the workers'
    CPU per job (their start included)."""
    r = srv.client()
    win = _TimedWindow(r, n)
    t0 = time.monotonic()
    ws = [Worker(tools, srv, tmp, conc, tag=f"-host{i + 1}-of{k}", url=hosts.url(srv.port),
                 wrap=lambda argv, i=i: hosts.command(i, argv)) for i in range(k)]
    try:
        def alive():
            for w in ws:
                w.check_alive()
        now = wait_completed(r, n, lambda: completed_count(r, [QUEUE]), alive,
                             f"{k} hosts' bg-worker -c {conc}", ws[0].last_log_line, win)
        wcpu = sum(cpu_seconds(w.proc.pid) for w in ws)
    finally:
        for w in ws:
            w.stop()
    failed = completed_count_field(r, [QUEUE], "failed")
    if failed:
        raise SetupError(f"{failed} bg.noop jobs failed on {k} hosts")
    jobs, rcpu, cmds = win.figures("hget", 1)
    wall = max(1e-9, win.t1 - win.t0)
    return {"rate": n / (now - t0), "redis_us": rcpu * 1e6 / jobs, "busy": rcpu / wall,
            "evalsha_us": cmds.get("evalsha", (0, 0))[1] / jobs,
            "per_call": jobs / max(1, cmds.get("evalsha", (0, 0))[0]),
            "client_us": wcpu * 1e6 / n}


# ---- a primary and its replica ----


class ReplicaPair:
    """The replicas scenario's own servers: a primary (at the run's settings) and one replica
    of it (--replicaof), each on a free loopback port, so that the other scenarios' server has
    no replica to feed."""

    def __init__(self, exe):
        self.primary = Server(exe=exe)
        self.replica = None
        self.exe = exe

    def start(self):
        try:
            self.primary.start()
            self.replica = Server(exe=self.exe,
                                  extra=["--replicaof", "127.0.0.1", str(self.primary.port)])
            self.replica.start()
        except RuntimeError as e:
            raise SetupError(str(e)) from None
        self.wait_synced()
        return self

    def wait_synced(self):
        """Until the replica is online and has every write the primary has made."""
        r = self.primary.client()
        deadline = time.monotonic() + STALL_SECONDS
        while time.monotonic() < deadline:
            info = r.info("replication")
            s = info.get("slave0")
            if (info.get("connected_slaves") == 1 and s and s["state"] == "online"
                    and s["offset"] == info["master_repl_offset"]):
                return
            time.sleep(POLL_SECONDS)
        raise SetupError(f"the replica on port {self.replica.port} did not get in sync with "
                         f"its primary within {STALL_SECONDS} s")

    def waits(self):
        """WAIT calls the primary has served."""
        return commandstats(self.primary.client()).get("wait", (0, 0))[0]

    def cleanup(self):
        if self.replica:
            self.replica.cleanup()
        self.primary.cleanup()


def completed_count_field(r, queues, field):
    pipe = r.pipeline(transaction=False)
    for q in queues:
        pipe.hget(f"{NS}:stats:{q}", field)
    return sum(int(x or 0) for x in pipe.execute())


# ---- BullMQ ----


def bullmq_args(srv, mode, n, conc=10, queues=1, procs=1):
    args = ["node", os.path.join(BULLMQ_DIR, "drain.js"), mode, "--port", str(srv.port),
            "-n", str(n), "--queues", str(queues)]
    if mode == "drain":
        args += ["-c", str(conc), "--procs", str(procs)]
    return args


def bullmq_result(mode, proc, stdout, stderr):
    if proc.returncode != 0:
        raise SetupError(f"BullMQ's drain.js {mode} failed (exit {proc.returncode}): "
                         f"{last_line(stderr)}")
    try:
        return json.loads(stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SetupError(f"BullMQ's drain.js {mode} printed no JSON: {stdout[:200]!r}")


def bullmq(srv, mode, n, queues=1):
    """Runs bench/bullmq/drain.js add; returns its JSON line as a dict."""
    out = subprocess.run(bullmq_args(srv, mode, n, queues=queues), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, check=False, timeout=600)
    return bullmq_result(mode, out, out.stdout, out.stderr)


def bullmq_drain(srv, conc, n, procs=1, queues=1):
    """Adds n jobs with BullMQ (untimed here) and drains them; the same figures as bg_drain.
    drain.js times the rate itself; Redis's counters are read here, over the same steady
    window as bg's, from a poll of BullMQ's completed sets."""
    bullmq(srv, "add", n, queues=queues)
    r = srv.client()
    names = queue_names(queues)
    win = Window(r, n)

    def count():
        pipe = r.pipeline(transaction=False)
        for q in names:
            pipe.zcard(f"bull:{q}:completed")
        return sum(pipe.execute())
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(bullmq_args(srv, "drain", n, conc, queues, procs), stdout=out,
                                stderr=err, text=True)
        try:
            def alive():
                if proc.poll() is not None:
                    raise SetupError(f"BullMQ's drain.js exited with status {proc.returncode}")
            wait_completed(r, n, count, alive, "BullMQ", lambda: "", win)
            proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        res = bullmq_result("drain", proc, out.read(), err.read())
    jobs, rcpu, cmds = win.figures("zcard", len(names))
    return {"rate": res["jobs_per_s"], "redis_us": rcpu * 1e6 / jobs,
            "client_us": sum(res["cpu_s"]) * 1e6 / n, "cmds": cmds,
            "rss_kb": res["rss_kb"][0], "n": jobs}


# ---- memory ----


def key_bytes(r, keys):
    """MEMORY USAGE of each key, SAMPLES 0 (every element counted), pipelined."""
    total = 0
    for i in range(0, len(keys), 1000):
        pipe = r.pipeline(transaction=False)
        for k in keys[i:i + 1000]:
            pipe.execute_command("MEMORY", "USAGE", k, "SAMPLES", "0")
        total += sum(int(x or 0) for x in pipe.execute())
    return total


def scan_keys(r, pattern):
    return list(r.scan_iter(pattern, count=5000))


def bg_memory(r, n):
    """Bytes a retained completed job leaves, by key: its job hash, its attempt hash, its share
    of the completed set and of the stats hash. Keys that expire on their own (jps) and the
    empty ready list are not retained."""
    jobs = scan_keys(r, f"{NS}:jobs:*")
    atts = scan_keys(r, f"{NS}:attempts:*")
    if len(jobs) != n or len(atts) != n:
        raise SetupError(f"{len(jobs)} job hashes and {len(atts)} attempts after {n} jobs")
    parts = {
        "job hash": key_bytes(r, jobs) / n,
        "attempt hash": key_bytes(r, atts) / n,
        "completed set": key_bytes(r, [f"{NS}:completed:{QUEUE}"]) / n,
        "stats": key_bytes(r, [f"{NS}:stats:{QUEUE}", f"{NS}:queues"]) / n,
    }
    return parts


def bullmq_memory(r, n):
    """The same for BullMQ: every key under bull:bench: (job hashes, the completed set, the
    events stream it caps, the id counter and meta), divided by the jobs."""
    keys = scan_keys(r, f"bull:{QUEUE}:*")
    jobs = [k for k in keys if k.rsplit(":", 1)[1].isdigit()]
    rest = [k for k in keys if not k.rsplit(":", 1)[1].isdigit()]
    return {"job hash": key_bytes(r, jobs) / n,
            "completed set, events, meta": key_bytes(r, rest) / n}


# ---- latency at a steady rate ----


def _listen(port, ready, conn, count):
    """In a process of its own, so that the producer's pacing never delays the reading: records
    when each attempt hash was last written (claim, then finish) until count finishes."""
    r = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    sub = r.pubsub(ignore_subscribe_messages=True)
    sub.psubscribe(f"__keyspace@0__:{NS}:attempts:*")
    ready.set()
    seen, finished = {}, 0
    deadline = time.monotonic() + STALL_SECONDS + count / 100
    while finished < count and time.monotonic() < deadline:
        m = sub.get_message(timeout=0.5)
        if not m or m["type"] != "pmessage":
            continue
        t = time.monotonic_ns()
        key = m["channel"].split(":", 1)[1]
        n = seen.get(key, (0, 0))[0] + 1
        seen[key] = (n, t)
        if n == 2:
            finished += 1
    conn.send({k.rsplit(":", 1)[1]: t for k, (_, t) in seen.items()})
    conn.close()


def latency(tools, srv, tmp, count, rate):
    """Pushes count jobs at a steady rate (jobs/s), as a producer in another language does
    (HSET and RPUSH sent together, docs/schema.md#keys), to a bg-worker -c 10; returns the
    sorted ms from sending each job to Redis's notice of its attempt's finish (the attempt
    hash's last write, by keyspace event), the first tenth not counted (a worker warming up),
    and the p50 of a PING round trip."""
    r = srv.client()
    r.config_set("notify-keyspace-events", "Kh")
    ctx = multiprocessing.get_context("fork")
    ready = ctx.Event()
    parent, child = ctx.Pipe(duplex=False)
    lis = ctx.Process(target=_listen, args=(srv.port, ready, child, count))
    lis.start()
    if not ready.wait(10):
        raise SetupError("the latency listener did not start")
    rtt = []
    for _ in range(200):
        t0 = time.perf_counter()
        r.ping()
        rtt.append((time.perf_counter() - t0) * 1000)
    rtt.sort()
    w = Worker(tools, srv, tmp, 10, tag="-latency")
    pushed = {}
    try:
        # The worker connects and loads its scripts before the clock starts.
        time.sleep(0.3)
        w.check_alive()
        pipe = r.pipeline(transaction=False)
        step = 1e9 / rate
        start = time.monotonic_ns()
        i = 0
        while i < count:
            wait = start + int(i * step) - time.monotonic_ns()
            if wait > 0:
                time.sleep(wait / 1e9)
            # Every job due by now goes in one round trip, so that a producer slowed down by a
            # busy machine keeps the rate, in small bursts, rather than falling behind.
            now = time.monotonic_ns()
            while i < count and start + int(i * step) <= now:
                jid = str(uuid.uuid4())
                pipe.hset(f"{NS}:jobs:{jid}", mapping={
                    "que": QUEUE, "cls": "bg.noop", "arg": "{}",
                    "qat": str(int(time.time() * 1000))})
                pipe.rpush(f"{NS}:ready:{QUEUE}", jid)
                pushed[jid] = (i, now)
                i += 1
            pipe.execute()
        last = max(t for _, t in pushed.values())
        achieved = (count - 1) / max(1e-9, (last - start) / 1e9)
        if not parent.poll(STALL_SECONDS + count / 100):
            raise SetupError(f"the latency listener heard no end: {w.last_log_line()}")
        fins = parent.recv()
        lis.join(5)
        wait_completed(r, count, lambda: completed_count(r, [QUEUE]), w.check_alive,
                       "bg-worker -c 10", w.last_log_line)
    finally:
        w.stop()
        if lis.is_alive():
            lis.terminate()
    r.config_set("notify-keyspace-events", "")
    pipe = r.pipeline(transaction=False)
    atts = list(fins)
    for a in atts:
        pipe.hmget(f"{NS}:attempts:{a}", "job", "fin")
    vals = []
    for a, (job, fin) in zip(atts, pipe.execute()):
        if job in pushed and fin:
            i, t = pushed[job]
            if i >= count // 10:
                vals.append((fins[a] - t) / 1e6)
    if len(vals) < count - count // 10:
        raise SetupError(f"heard the finish of {len(vals)} of {count - count // 10} jobs")
    vals.sort()
    return vals, rtt[len(rtt) // 2], achieved


# ---- delayed jobs ----


def delayed(tools, srv, tmp, count):
    """Schedules count jobs at once (as a producer in another language does: the hash with pat,
    and ZADD), due 100 ms to 1.1 s ahead, with a bg-watcher at its defaults and an idle
    bg-worker -c 10; returns the sorted ms from each job's due time (pat) to the start of its
    attempt (sta), both on the Redis clock."""
    r = srv.client()
    log = open(os.path.join(tmp, "watcher.log"), "wb")
    watcher = subprocess.Popen([tools["bg-watcher"], "-r", srv.url, "-n", NS],
                               stdout=subprocess.DEVNULL, stderr=log)
    w = Worker(tools, srv, tmp, 10, tag="-delayed")
    due = {}
    try:
        time.sleep(0.3)
        sec, usec = r.time()
        now = sec * 1000 + usec // 1000
        pipe = r.pipeline(transaction=False)
        for i in range(count):
            jid = str(uuid.uuid4())
            due[jid] = now + 100 + (i * 1000) // count
            pipe.hset(f"{NS}:jobs:{jid}", mapping={"que": QUEUE, "cls": "bg.noop", "arg": "{}",
                                                   "qat": now, "pat": due[jid]})
            pipe.zadd(f"{NS}:scheduled:{QUEUE}", {jid: due[jid]})
        pipe.execute()

        def alive():
            w.check_alive()
            if watcher.poll() is not None:
                raise SetupError(f"bg-watcher exited with status {watcher.returncode}")
        wait_completed(r, count, lambda: completed_count(r, [QUEUE]), alive,
                       "bg-worker -c 10 (delayed)", w.last_log_line)
    finally:
        w.stop()
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
        log.close()
    # Each job's attempt, read once all ran (a scan: not every bg records a job's latest
    # attempt in the job hash).
    starts = {}
    pipe = r.pipeline(transaction=False)
    keys = scan_keys(r, f"{NS}:attempts:*")
    for k in keys:
        pipe.hmget(k, "job", "sta")
    for job, sta in pipe.execute():
        starts[job] = int(sta)
    out = sorted(starts[jid] - d for jid, d in due.items())
    if out[0] < 0:
        raise SetupError(f"a delayed job started {-out[0]} ms before its time")
    return out


# ---- the watcher with a large history ----


def _fake_uuid(i, salt):
    return f"{i:08x}-{salt:04x}-4000-8000-{os.urandom(6).hex()}"


def _resp(*args):
    parts = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def load_history(tools, srv, scheduled, completed, queues, first=0):
    """Fills Redis through redis-cli --pipe (not through a worker, which would take minutes):
    `scheduled` jobs due in a day in queue bench, and `completed` completed jobs (job hash,
    attempt hash, completed set, stats) spread over `queues` queues, finished within the last
    minute so that retention keeps them all. first numbers the jobs on from an earlier load."""
    r = srv.client()
    sec, _ = r.time()
    now = sec * 1000
    proc = subprocess.Popen([tools["redis-cli"], "-p", str(srv.port), "--pipe"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = proc.stdin
    buf = []
    for i in range(scheduled):
        jid = _fake_uuid(first + i, 1)
        buf.append(_resp("HSET", f"{NS}:jobs:{jid}", "que", QUEUE, "cls", "bg.noop", "arg", "{}",
                         "qat", now, "pat", now + 86400000))
        buf.append(_resp("ZADD", f"{NS}:scheduled:{QUEUE}", now + 86400000 + i, jid))
        if len(buf) > 20000:
            out.write(b"".join(buf))
            buf = []
    names = [f"hist{q}" for q in range(queues)]
    per = completed // queues
    for q, name in enumerate(names):
        zadd = []
        for i in range(first, first + per):
            jid, att = _fake_uuid(i, 2 + q), _fake_uuid(i, 0x100 + q)
            fin = now - 60000 + ((i - first) * 60000) // per
            buf.append(_resp("HSET", f"{NS}:jobs:{jid}", "que", name, "cls", "bg.noop", "arg",
                             "{}", "qat", fin - 1, "att", 1, "lat", att, "rty", 25))
            buf.append(_resp("HSET", f"{NS}:attempts:{att}", "sta", fin - 1, "job", jid, "wrk",
                             7, "que", name, "rid", "0123456789ab", "fin", fin, "time", "0.010"))
            zadd += [fin, att]
            if len(zadd) >= 2000:
                buf.append(_resp("ZADD", f"{NS}:completed:{name}", *zadd))
                zadd = []
            if len(buf) > 20000:
                out.write(b"".join(buf))
                buf = []
        if zadd:
            buf.append(_resp("ZADD", f"{NS}:completed:{name}", *zadd))
        buf.append(_resp("HINCRBY", f"{NS}:stats:{name}", "completed", per))
        buf.append(_resp("SADD", f"{NS}:queues", name))
    buf.append(_resp("SADD", f"{NS}:queues", QUEUE))
    out.write(b"".join(buf))
    out.close()
    text = proc.stdout.read().decode(errors="replace")
    if proc.wait() != 0 or "errors: 0" not in text:
        raise SetupError(f"redis-cli --pipe failed: {last_line(text)}")
    got = sum(r.zcard(f"{NS}:completed:{n}") for n in names)
    if got != (first + per) * queues:
        raise SetupError(f"the history loader left {got} completed attempts")


def watcher_ticks(tools, srv, tmp, seconds, interval="0.1", queues=None):
    """Runs a bg-watcher at -i interval (on the given queues, else on all it finds) for a second
    to settle, then `seconds` more; returns the ticks (its MULTI snapshots) in that window, the
    CPU per tick, in us, of the watcher and of redis-server, and the three commands that took
    most of Redis's time in it (us and calls a tick)."""
    r = srv.client()
    # redis-server's own CPU with no client (its cron, a rehash after a large load), taken
    # out of the watcher's figure.
    i0 = redis_cpu(r)
    time.sleep(seconds / 2)
    idle = (redis_cpu(r) - i0) / (seconds / 2)
    log = open(os.path.join(tmp, "watcher-ticks.log"), "wb")
    args = [tools["bg-watcher"], "-r", srv.url, "-n", NS, "-i", interval]
    if queues:
        args += ["-q", ",".join(queues)]
    watcher = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log)
    try:
        time.sleep(1)
        if watcher.poll() is not None:
            raise SetupError(f"bg-watcher exited with status {watcher.returncode}")
        s0 = commandstats(r)
        c0, w0 = redis_cpu(r), cpu_seconds(watcher.pid)
        time.sleep(seconds)
        s1 = commandstats(r)
        c1, w1 = redis_cpu(r), cpu_seconds(watcher.pid)
    finally:
        if watcher.poll() is None:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(30)
        log.close()
    cmds = stats_delta(s0, s1)
    ticks = max(1, cmds.get("multi", (0, 0))[0])
    top = sorted(((u / ticks, c, cmd) for cmd, (c, u) in cmds.items()), reverse=True)[:3]
    return {"ticks": ticks, "watcher_us": (w1 - w0) * 1e6 / ticks,
            "redis_us": max(0, c1 - c0 - idle * seconds) * 1e6 / ticks,
            "idle_us": idle * seconds * 1e6 / ticks,
            "top": [(cmd, us, c / ticks) for us, c, cmd in top]}


def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list."""
    k = max(0, math.ceil(q * len(sorted_vals)) - 1)
    return sorted_vals[k]
