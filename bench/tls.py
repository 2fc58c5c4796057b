#!/usr/bin/python3
"""bench/tls.py: what rediss:// costs against redis:// (docs/operations.md#tls). One redis-server
of its own listens on a plaintext port and a TLS port at once (certificates made by openssl for
the run), so both transports meet the same server; the runs alternate, plaintext then TLS, a few
rounds, and the median of each is printed:

  enqueue      bg-cli enqueue of N bg.noop jobs from standard input (bulk, pipelined)
  worker -c 10 N waiting jobs run by bg-worker -q bench -c 10, from its start until the last
               completes: jobs/s, and CPU per job of bg-worker and of redis-server
  RSS          bg-worker's resident memory with -c 10 and -c 100 fibers connected and idle

Usage: bench/tls.py [-n N] [-r ROUNDS] [--build DIR]. Needs redis-server (built with TLS, as
Debian's is), openssl and /usr/bin/python3 with its redis module."""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROG = "bench/tls.py"
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUEUE = "bench"
STALL_SECONDS = 20

sys.path.insert(0, os.path.join(TOP, "tests", "support"))
from redis_server import RedisServer, free_port  # noqa: E402

try:
    import redis
except ImportError:
    sys.exit(f"{PROG}: needs the Python redis module: apt-get install python3-redis")


def note(msg):
    print(f"{PROG}: {msg}", file=sys.stderr, flush=True)


def openssl(d, *args):
    subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)


def make_pki(d):
    """A CA and a server certificate for 127.0.0.1, as a managed Redis would have (P-256)."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl(d, "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=bg bench ca")
    openssl(d, "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=bench")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    openssl(d, "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "san.ext")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def redis_cpu(r):
    info = r.info("cpu")
    return info["used_cpu_user"] + info["used_cpu_sys"]


class Bench:
    def __init__(self, build, tmp):
        self.bin = {p: os.path.join(build, p, p) for p in ("bg-worker", "bg-cli")}
        for p, path in self.bin.items():
            if not os.access(path, os.X_OK):
                sys.exit(f"{PROG}: {path} is not built (cmake --build {build})")
        self.tmp = tmp
        make_pki(tmp)
        self.tls_port = free_port()
        self.srv = RedisServer(extra=[
            "--tls-port", str(self.tls_port), "--tls-cert-file", f"{tmp}/server.crt",
            "--tls-key-file", f"{tmp}/server.key", "--tls-ca-cert-file", f"{tmp}/ca.crt",
            "--tls-auth-clients", "no"]).start()
        self.r = self.srv.client()
        # A TLS variable with a redis:// URL is refused: each transport gets its own.
        plain = {k: v for k, v in os.environ.items() if not k.startswith("BG_TLS_")}
        self.envs = {False: plain, True: dict(plain, BG_TLS_CA_CERT=f"{tmp}/ca.crt")}

    def url(self, tls):
        return f"rediss://127.0.0.1:{self.tls_port}/0" if tls else self.srv.url

    def enqueue(self, tls, n):
        self.r.flushall()
        t0 = time.monotonic()
        subprocess.run([self.bin["bg-cli"], "-r", self.url(tls), "enqueue", "bg.noop", "-",
                        "-q", QUEUE], input=b"{}\n" * n, check=True, env=self.envs[tls],
                       stdout=subprocess.DEVNULL)
        return time.monotonic() - t0

    def worker(self, tls, conc):
        return subprocess.Popen([self.bin["bg-worker"], "-r", self.url(tls), "-q", QUEUE, "-c",
                                 str(conc)], env=self.envs[tls], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def throughput(self, tls, n):
        """The jobs enqueue() left: seconds, redis-server CPU and bg-worker CPU (s)."""
        cpu0 = redis_cpu(self.r)
        t0 = time.monotonic()
        w = self.worker(tls, 10)
        last, last_t = 0, t0
        try:
            while True:
                done = int(self.r.hget(f"bg:stats:{QUEUE}", "completed") or 0)
                now = time.monotonic()
                if done >= n:
                    break
                if done != last:
                    last, last_t = done, now
                elif now - last_t > STALL_SECONDS or w.poll() is not None:
                    sys.exit(f"{PROG}: the worker stalled at {done} of {n} jobs")
                time.sleep(0.01)
            return now - t0, redis_cpu(self.r) - cpu0, cpu_seconds(w.pid)
        finally:
            w.terminate()
            w.wait(30)

    def idle_rss(self, tls, conc):
        """bg-worker's RSS (KiB) once its conc fibers are connected and idle."""
        self.r.flushall()
        w = self.worker(tls, conc)
        try:
            deadline = time.monotonic() + 20
            while sum(1 for c in self.r.client_list()
                      if c.get("name", "").startswith("bg-worker-fiber:")) < conc:
                if time.monotonic() > deadline or w.poll() is not None:
                    sys.exit(f"{PROG}: the worker's {conc} fibers did not connect")
                time.sleep(0.05)
            time.sleep(0.5)
            return rss_kib(w.pid)
        finally:
            w.terminate()
            w.wait(30)

    def close(self):
        self.r.close()
        self.srv.cleanup()


def main():
    p = argparse.ArgumentParser(prog=PROG, description="rediss:// against redis:// on one "
                                "redis-server: enqueue, worker throughput, CPU per job, RSS.")
    p.add_argument("-n", dest="jobs", type=int, default=50000, help="jobs a run (default 50000)")
    p.add_argument("-r", dest="rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("--build", default=os.path.join(TOP, "build"), help="bg's build directory")
    a = p.parse_args()
    if not 1000 <= a.jobs <= 10000000 or not 1 <= a.rounds <= 20:
        p.error("-n must be from 1000 to 10000000 and -r from 1 to 20")
    for tool in ("redis-server", "openssl"):
        if not shutil.which(tool):
            sys.exit(f"{PROG}: needs {tool}")
    tmp = tempfile.mkdtemp(prefix="bg-bench-tls-")
    b = Bench(a.build, tmp)
    res = {False: [], True: []}
    try:
        for i in range(a.rounds):
            for tls in (False, True):
                name = "rediss://" if tls else "redis://"
                note(f"round {i + 1}/{a.rounds}, {name}: enqueue and run {a.jobs} jobs ...")
                enq = b.enqueue(tls, a.jobs)
                secs, rcpu, wcpu = b.throughput(tls, a.jobs)
                res[tls].append((a.jobs / enq, a.jobs / secs, wcpu * 1e6 / a.jobs,
                                 rcpu * 1e6 / a.jobs))
        note("idle RSS at -c 10 and -c 100 ...")
        rss = {tls: (b.idle_rss(tls, 10), b.idle_rss(tls, 100)) for tls in (False, True)}
    finally:
        b.close()
        shutil.rmtree(tmp, ignore_errors=True)

    med = {tls: [statistics.median(r[k] for r in res[tls]) for k in range(4)]
           for tls in (False, True)}
    load = os.getloadavg()[0]
    print(f"bg bench/tls.py: {a.jobs} jobs a run, median of {a.rounds} rounds, {os.cpu_count()} "
          f"CPUs, load average {load:.2f}")
    print(f"{'':14}{'enqueue/s':>11}{'worker -c 10 jobs/s':>21}{'bg-worker us/job':>18}"
          f"{'redis us/job':>14}{'RSS -c 10':>11}{'RSS -c 100':>12}")
    for tls in (False, True):
        m = med[tls]
        print(f"{'rediss://' if tls else 'redis://':14}{m[0]:>11,.0f}{m[1]:>21,.0f}{m[2]:>18.1f}"
              f"{m[3]:>14.1f}{rss[tls][0]:>8,} KiB{rss[tls][1]:>8,} KiB")
    p, t = med[False], med[True]
    print(f"{'TLS / plain':14}{t[0] / p[0]:>11.2f}{t[1] / p[1]:>21.2f}{t[2] / p[2]:>18.2f}"
          f"{t[3] / p[3]:>14.2f}{rss[True][0] / rss[False][0]:>11.2f}"
          f"{rss[True][1] / rss[False][1]:>12.2f}")
    per_conn = (rss[True][1] - rss[True][0] - (rss[False][1] - rss[False][0])) / 90
    print(f"TLS memory per connection, beyond plaintext: {per_conn:.0f} KiB")


if __name__ == "__main__":
    main()
