"""Soak: many no-op jobs through one bg-worker (-c 10), its resident memory sampled over the run.

The long variant runs 1,000,000 jobs; it is behind BG_LONG=1 (`./dev.sh test --long`). Without
it the same test runs 100,000 jobs, so the code path is checked on every CI run; under a
sanitizer build it runs 20,000, long variant or not. BG_SOAK_JOBS=N overrides the count.

Realistic retention: a producer (bg-cli enqueue, pipelined) keeps a bounded backlog in the ready
list, and a bg-watcher with a short --retain-completed trims completed jobs as production would,
so Redis holds a bounded amount whatever the length of the run.

The criterion for "flat after warm-up": let R20 be the worker's VmRSS when 20% of the jobs are
completed. Every sample taken after that, to the end of the run, must be at most
R20 + max(2 MiB, 5% of R20). The first 20% lets malloc's per-thread arenas, hiredis' reader
buffers and the batch arrays reach their working size; after that a worker that holds nothing
per job must not grow. The margin is what arena fragmentation moves by; a leak of 64 bytes a
job would exceed it after 32,768 jobs, so the short variant (80,000 jobs after warm-up) catches
a leak of half that size and the long one (800,000) catches one of 3 bytes a job.

Under a sanitizer build the RSS criterion is not checked (AddressSanitizer's quarantine holds up
to 256 MB of freed memory on purpose), but the jobs must still all complete."""

import os
import subprocess
import threading
import time

from conftest import BUILD, exe, wait_for
from test_worker import worker

MiB = 1024 * 1024


def _sanitizer():
    try:
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            for line in f:
                if line.startswith("BG_SANITIZE:"):
                    return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return ""


def _rss(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def _jobs():
    if os.environ.get("BG_SOAK_JOBS"):
        return int(os.environ["BG_SOAK_JOBS"])
    if _sanitizer():
        return 20_000  # the code path only: no RSS figure means anything there
    if os.environ.get("BG_LONG", "") not in ("", "0"):
        return 1_000_000
    return 100_000


def test_soak_worker_rss_is_flat_after_warm_up(rs, r, spawn):
    n = _jobs()
    chunk = 10_000
    backlog = 40_000
    sanitized = _sanitizer()

    watcher = spawn([exe("bg-watcher"), "-r", rs.url, "-i", "0.2", "--retain-completed", "1s"])
    w = worker(spawn, rs, "-c", "10")
    rss_start = _rss(w.pid)

    samples = []  # (jobs completed, RSS bytes, seconds since start)
    max_completed_kept = 0
    max_redis_mem = 0
    produced = []  # the producer's failure, if any

    def produce():
        # A separate thread, so that sampling goes on while bg-cli sends a chunk.
        pr = rs.client()
        enqueued = 0
        while enqueued < n and not stop.is_set():
            if pr.llen("bg:ready:default") >= backlog:
                time.sleep(0.01)
                continue
            k = min(chunk, n - enqueued)
            p = subprocess.run([exe("bg-cli"), "-r", rs.url, "enqueue", "bg.noop", "-"],
                               input=b"{}\n" * k, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, timeout=60)
            if p.returncode != 0:
                produced.append(p.stderr.decode())
                return
            enqueued += k
        pr.close()

    stop = threading.Event()
    producer = threading.Thread(target=produce, daemon=True)
    t0 = time.monotonic()
    deadline = t0 + max(120, n / 1000)  # 1,000 jobs/s at the very least
    producer.start()
    done = 0
    try:
        while done < n:
            now = time.monotonic()
            assert now < deadline, f"only {done} of {n} jobs completed in {now - t0:.0f} s"
            assert not produced, f"bg-cli enqueue failed: {produced[0]}"
            assert w.proc.poll() is None, f"bg-worker exited:\n{w.log()[-3000:]}"
            assert watcher.proc.poll() is None, f"bg-watcher exited:\n{watcher.log()[-3000:]}"
            done = int(r.hget("bg:stats:default", "completed") or 0)
            samples.append((done, _rss(w.pid), now - t0))
            max_completed_kept = max(max_completed_kept, r.zcard("bg:completed:default"))
            max_redis_mem = max(max_redis_mem, int(r.info("memory")["used_memory"]))
            if done < n:
                time.sleep(0.05)
    finally:
        stop.set()
        producer.join(70)
    took = time.monotonic() - t0

    wait_for(lambda: r.scard("bg:processing:default") == 0, what="processing to empty")
    assert int(r.hget("bg:stats:default", "failed") or 0) == 0
    assert r.llen("bg:ready:default") == 0
    assert w.proc.poll() is None and watcher.proc.poll() is None

    # The RSS when 20%, 40%, ... of the jobs were done (the first sample at or past each mark).
    def at(frac):
        return next(s for s in samples if s[0] >= frac * n)

    r20 = at(0.2)[1]
    after = [s for s in samples if s[0] >= 0.2 * n]
    peak = max(after, key=lambda s: s[1])
    margin = max(2 * MiB, r20 // 20)
    marks = "  ".join(f"{int(f * 100)}%: {at(f)[1] / MiB:.1f}" for f in (0.2, 0.4, 0.6, 0.8, 1.0))
    series = "  ".join(f"{at(f / 10)[2]:.0f}s {at(f / 10)[1] / MiB:.2f}" for f in range(1, 11))
    print(f"\nsoak: {n} jobs in {took:.1f} s = {n / took:,.0f} jobs/s (bg-worker -c 10,"
          f" enqueued by bg-cli alongside){' under ' + sanitized if sanitized else ''}")
    print(f"soak: bg-worker RSS MiB: start {rss_start / MiB:.1f}  {marks}  max after 20%:"
          f" {peak[1] / MiB:.1f} (at {peak[0]} jobs); allowed {(r20 + margin) / MiB:.1f}")
    print(f"soak: RSS MiB at each 10% of the jobs: {series}")
    print(f"soak: growth after 20%: {(samples[-1][1] - r20) / (0.8 * n):+.2f} bytes a job;"
          f" {len(samples)} samples; at most {max_completed_kept} completed kept,"
          f" Redis used_memory at most {max_redis_mem / MiB:.0f} MiB")

    # Retention held Redis to a bounded size: the watcher kept up with trimming.
    assert max_completed_kept < max(200_000, n // 5), max_completed_kept
    if not sanitized:
        assert peak[1] <= r20 + margin, (
            f"bg-worker's RSS grew after warm-up: {r20} bytes at 20%, {peak[1]} at {peak[0]} jobs")
