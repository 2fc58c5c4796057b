"""Chaos, extended: two bg-workers and two bg-watchers SIGKILLed and restarted at random while a
producer enqueues a mix of jobs: in-process (bg.noop, bg.sleep, bg.fail with and without
retries), exec (a command that reads its argument, one that exits 3), and delayed ones. Once the
killing stops and the watchers have settled, every job is completed, scheduled (a retry
waiting) or dead, exactly once; nothing is processing; no attempt hash is orphaned; and the
stats counters equal the records.

The run is seeded (BG_CHAOS_SEED, else drawn and printed) and lasts BG_CHAOS_SECONDS (20 by
default; set it higher for a long run)."""

import os
import random
import signal
import time

from conftest import exe, wait_for
from invariant import check, new_jobs, processing_empty
from test_watcher import schedule
from test_worker import server_ms

QUEUES = ("default", "low")


def start_worker(spawn, rs):
    return spawn([exe("bg-worker"), "-r", rs.url, "-q", ",".join(QUEUES), "-c", "4",
                  "-e", "cat=cat >/dev/null", "-e", "exit3=exit 3"])


def start_watcher(spawn, rs):
    return spawn([exe("bg-watcher"), "-r", rs.url, "-i", "0.2", "--grace", "1"])


def enqueue_some(r, rnd, dues):
    """A random handful of jobs of every kind; returns their IDs. The due times of delayed ones
    go to dues."""
    q = rnd.choice(QUEUES)
    kind = rnd.randrange(8)
    n = rnd.randint(1, 30)
    if kind == 0:
        return new_jobs(r, n, q, "bg.noop")
    if kind == 1:
        return new_jobs(r, n, q, "bg.sleep", '{"ms":%d}' % rnd.choice([0, 2, 10, 40]))
    if kind == 2:
        return new_jobs(r, n, q, "bg.fail", '{"err":"Flaky"}', extra={"rty": "1"})
    if kind == 3:
        return new_jobs(r, n, q, "bg.fail", '{"err":"Broken"}', extra={"rty": "0"})
    if kind == 4:
        return new_jobs(r, n, q, "cat", "x" * rnd.choice([1, 1000, 65536]))
    if kind == 5:
        return new_jobs(r, n, q, "exit3", "", extra={"rty": rnd.choice(["0", "1"])})
    # Delayed: due within the next 2 s (or already), moved to ready by a watcher.
    now = server_ms(r)
    ids = []
    for _ in range(n):
        due = now + rnd.randint(-100, 2000)
        dues.append(due)
        ids.append(schedule(r, rnd.choice(["bg.noop", "cat"]), due, queue=q))
    return ids


def orphan_attempts(r):
    """Attempt hashes that no processing, completed or failed set holds."""
    held = set()
    for q in QUEUES:
        held |= r.smembers(f"bg:processing:{q}")
        held |= set(r.zrange(f"bg:completed:{q}", 0, -1))
        held |= set(r.zrange(f"bg:failed:{q}", 0, -1))
    return [k for k in r.scan_iter("bg:attempts:*", count=1000) if k.split(":")[-1] not in held]


def settled(r, last_due):
    """Every delayed job is due, nothing waits, nothing runs, and no scheduled job is due: only
    retries wait."""
    now = server_ms(r)
    return now > last_due and processing_empty(r, QUEUES) and all(
        r.llen(f"bg:ready:{q}") == 0 and r.zcount(f"bg:scheduled:{q}", "-inf", now) == 0
        for q in QUEUES)


def test_workers_and_watchers_sigkilled_at_random_lose_no_job(rs, r, spawn):
    seed = int(os.environ.get("BG_CHAOS_SEED") or random.SystemRandom().randrange(1 << 32))
    seconds = float(os.environ.get("BG_CHAOS_SECONDS", "20"))
    print(f"chaos: seed {seed} (BG_CHAOS_SEED={seed} to run it again), {seconds:.0f} s")
    rnd = random.Random(seed)
    workers = [start_worker(spawn, rs) for _ in range(2)]
    watchers = [start_watcher(spawn, rs) for _ in range(2)]
    ids, dues, kills = [], [0], {"worker": 0, "watcher": 0}
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        # A bounded backlog, so the run ends in about the same time on a slow build.
        if sum(r.llen(f"bg:ready:{q}") for q in QUEUES) < 200:
            ids += enqueue_some(r, rnd, dues)
        if rnd.random() < 0.25:
            kind = rnd.choice(["worker", "watcher"])
            group = workers if kind == "worker" else watchers
            i = rnd.randrange(2)
            group[i].signal(signal.SIGKILL)
            group[i].wait(5)
            kills[kind] += 1
            if rnd.random() < 0.5:
                time.sleep(rnd.uniform(0, 0.5))  # a while without it
            group[i] = (start_worker if kind == "worker" else start_watcher)(spawn, rs)
        time.sleep(rnd.uniform(0.02, 0.2))
    print(f"chaos: {len(ids)} jobs, {kills['worker']} workers and {kills['watcher']} watchers "
          f"killed")

    # The killing stops: the watchers fail what the dead workers held, due jobs run.
    t0 = time.monotonic()
    try:
        wait_for(lambda: settled(r, max(dues)), timeout=30, interval=0.1,
                 what="the queues to settle")
    except AssertionError:
        now = server_ms(r)
        for q in QUEUES:
            print(q, "ready", r.llen(f"bg:ready:{q}"), "processing",
                  r.smembers(f"bg:processing:{q}"), "due",
                  r.zrangebyscore(f"bg:scheduled:{q}", "-inf", now, withscores=True)[:5])
        for p in watchers + workers:
            print(f"---- {p.args[0]} {p.proc.poll()}\n{p.log()[-3000:]}")
        raise
    print(f"chaos: settled {time.monotonic() - t0:.1f} s after the last kill")
    for p in workers + watchers:
        assert p.proc.poll() is None, f"{p.args[0]} exited {p.proc.returncode}:\n{p.log()}"
    # The watchers stop first, so no retry falls due and moves to ready while the workers stop
    # or the records are read; the workers run what moved meanwhile, then stop.
    for v in watchers:
        v.signal(signal.SIGTERM)
    for v in watchers:
        assert v.wait(30) == 0, v.log()
    wait_for(lambda: processing_empty(r, QUEUES) and
             all(r.llen(f"bg:ready:{q}") == 0 for q in QUEUES), timeout=30,
             what="the last moved jobs to run")
    for w in workers:
        w.signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(30) == 0, w.log()

    counts = check(r, ids, QUEUES, allow=("completed", "scheduled", "dead"))
    print("chaos:", counts)
    assert processing_empty(r, QUEUES)
    # Only retries wait in scheduled: every job there has attempts left and a failed attempt.
    for q in QUEUES:
        for jid in r.zrange(f"bg:scheduled:{q}", 0, -1):
            h = r.hgetall(f"bg:jobs:{jid}")
            assert int(h.get("att", 0)) >= 1, (jid, h)
    orphans = orphan_attempts(r)
    assert not orphans, f"{len(orphans)} attempts in no set, e.g. {orphans[:3]}"
    # The counters equal the records (the default retention keeps all of this run's history).
    for q in QUEUES:
        stats = r.hgetall(f"bg:stats:{q}")
        for field in ("completed", "failed", "dead"):
            assert int(stats.get(field, 0)) == r.zcard(f"bg:{field}:{q}"), (q, field, stats)
