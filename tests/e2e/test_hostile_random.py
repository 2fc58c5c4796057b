"""The hostile corpus, randomized (issue 6): a seeded generator interleaves hostile writes from the
catalogue of hostile.py (keys of the wrong type, jps slots bg cannot count in, job keys of the
wrong type, job fields bg never writes, junk ready entries up to 1 MB, junk in processing,
attempts another tool wrote) with real jobs (noop, failing with and without retries, delayed,
exec, UUIDs in other forms, bg-cli enqueues) for a bounded time, through two real workers and a
watcher. Then it repairs every hostile key it made (DEL) and checks, from Redis alone, that every
real job is in exactly the place its kind allows, processing is empty, no program exited and the
logs stayed bounded.

Environment:
  BG_HOSTILE_SECONDS  how long the generator runs (default 20; e.g. 300 for a long run)
  BG_HOSTILE_SEED     the seed to replay; every failure message names the seed it ran with

Only the test's own redis-server on loopback is written to. The generator makes a few Redis
calls a step and sleeps between steps, so its request rate stays bounded."""

import os
import random
import time
import uuid

import redis

from conftest import clients_named, cli, exe, wait_for
from hostile import (MB, NUMBERS, TEXTS, jps_keys, key, plant, server_ms, uuid_forms,
                     wrong_types)
from invariant import check, places, processing_empty

SECONDS = float(os.environ.get("BG_HOSTILE_SECONDS", "20"))
SEED = int(os.environ.get("BG_HOSTILE_SEED", str(random.SystemRandom().randrange(1 << 32))))
QUEUES = ("a", "b", "c", "d", "e")
NS = "hr"
QUEUE_KINDS = ("ready", "scheduled", "processing", "completed", "failed", "dead", "stats")

# Where each kind of real job may end: the first failure of a job with retries left schedules
# it 16 s or more ahead, so within a run it is scheduled, or dead after its retries (long runs).
ENDS = {
    "ok": {"completed"},
    "retry": {"scheduled", "dead"},
    "dead": {"dead"},
    "foreign": {"scheduled", "completed"},
}


class Generator:
    """One seeded run: the real jobs it made (and where each may end), the hostile keys it
    planted (to repair), and the count of hostile writes (to bound the logs by)."""

    def __init__(self, rng, r, raw, rs):
        self.rng, self.r, self.raw, self.rs = rng, r, raw, rs
        self.kind = {}  # real job UUID as written -> a key of ENDS
        self.how = {}  # real job UUID -> how the generator made it, for failure messages
        self.planted = set()  # hostile keys to DEL at the end
        self.bad_jobs = []  # UUIDs whose job key is of the wrong type: each must end dead
        self.hostile = 0
        self.failing = 0  # real jobs that fail, each worth a log line of its own
        self.live_fiber = None
        self.run_id = r.info("server")["run_id"]

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def broken(self, kind, q):
        return key(NS, kind, q) in self.planted

    def queue(self):
        return self.rng.choice(QUEUES)

    # ---- real jobs ----

    def enqueue(self, ends, q=None, jid=None, delay_ms=None, **fields):
        q = q or self.queue()
        jid = jid or self.uuid()
        f = {"que": q, "cls": "bg.noop", "arg": "{}", "qat": server_ms(self.r)}
        f.update(fields)
        if delay_ms is None and self.broken("ready", q):
            delay_ms = self.rng.randrange(0, 1500)  # a producer would delay it, or give up
        if delay_ms is not None and self.broken("scheduled", q):
            return None
        p = self.raw.pipeline(transaction=True)
        p.hset(key(NS, "jobs", ident=jid), mapping=f)
        if delay_ms is None:
            p.rpush(key(NS, "ready", q), jid)
        else:
            p.zadd(key(NS, "scheduled", q), {jid: server_ms(self.r) + delay_ms})
        p.execute()
        self.kind[jid] = ends
        self.how[jid] = f"enqueue {ends} on {q}{' in %d ms' % delay_ms if delay_ms else ''} " \
            f"{ {k: (v[:20] if isinstance(v, (str, bytes)) else v) for k, v in fields.items()} }"
        self.failing += ends != "ok"
        return jid

    def real_job(self):
        x = self.rng.random()
        if x < 0.45:
            for _ in range(self.rng.randrange(1, 6)):
                self.enqueue("ok")
        elif x < 0.55:
            self.enqueue("ok", delay_ms=self.rng.randrange(0, 1500))
        elif x < 0.63:
            self.enqueue("dead", cls="bg.fail", arg='{"err":"Boom"}', rty=0)
        elif x < 0.70:
            self.enqueue("retry", cls="bg.fail", arg='{"err":"Boom"}', rty=2)
        elif x < 0.76:
            arg = bytes(self.rng.getrandbits(8) for _ in range(self.rng.randrange(0, 300)))
            self.enqueue("ok", cls="Exec.Ok", arg=arg)
        elif x < 0.80:
            self.enqueue("dead", cls="Exec.Fail", rty=0)
        elif x < 0.88:
            form = self.rng.choice(list(uuid_forms()))
            self.enqueue("ok", jid=uuid_forms(self.uuid())[form])
        elif x < 0.94:
            # Fields bg decides nothing on, written oddly: the job runs all the same.
            field = self.rng.choice(("que", "qat", "pat"))
            value = self.rng.choice(list((TEXTS if field == "que" else NUMBERS).values()))
            self.enqueue("ok", **{field: value})
        elif x < 0.97:
            self.cli_enqueue()
        else:
            self.enqueue("ok", cls="bg.sleep", arg='{"ms":%d}' % self.rng.randrange(1, 300))

    def cli_enqueue(self):
        q = self.queue()
        p = cli(self.rs, "enqueue", "bg.noop", "-q", q, ns=NS)
        if self.broken("ready", q):
            assert p.returncode == 1, f"bg-cli enqueue into a broken {q}: {p.returncode}"
            assert len(p.stderr.strip().splitlines()) == 1, p.stderr
        elif p.returncode == 0:
            self.kind[p.stdout.strip()] = "ok"
            self.how[p.stdout.strip()] = f"bg-cli enqueue on {q}"
        else:
            assert self.broken("queues", q), f"bg-cli enqueue failed: {p.stderr}"

    # ---- hostile writes ----

    def hostile_write(self):
        self.hostile += 1
        x = self.rng.random()
        q = self.queue()
        if x < 0.30:
            kind = self.rng.choice(QUEUE_KINDS)
            k = key(NS, kind, q)
            if plant(self.r, k, self.rng.choice(wrong_types(kind))):
                self.planted.add(k)
        elif x < 0.36:
            # Stats counters that are not whole numbers.
            k = key(NS, "stats", q)
            field = self.rng.choice(("completed", "failed", "dead"))
            value = self.rng.choice(("abc", "1.5", b"\xff", "9" * 40))
            if self.r.eval("if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
                           "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1",
                           1, k, field, value):
                self.planted.add(k)
        elif x < 0.42:
            typ = self.rng.choice(wrong_types("jps") + ["string"])
            value = self.rng.choice(("hostile", "9223372036854775807"))
            for k in jps_keys(self.r, NS, q, ahead_s=2)[10:]:
                if plant(self.r, k, typ, value, ttl_ms=10000):
                    self.planted.add(k)
        elif x < 0.52:
            bad = self.uuid()
            if plant(self.r, key(NS, "jobs", ident=bad), self.rng.choice(wrong_types("jobs"))) \
                    and not self.broken("ready", q):
                self.r.rpush(key(NS, "ready", q), bad)
                self.bad_jobs.append(bad)
        elif x < 0.64:
            field = self.rng.choice(("rty", "att", "itr", "cls"))
            value = None if field == "cls" else self.rng.choice(list(NUMBERS.values()))
            fields = {"que": q, "cls": "bg.noop", "arg": "{}", "qat": 0}
            if value is None:
                del fields["cls"]
            else:
                fields[field] = value
            jid = self.uuid()
            if not self.broken("ready", q):
                self.raw.hset(key(NS, "jobs", ident=jid), mapping=fields)
                self.raw.rpush(key(NS, "ready", q), jid)
                self.kind[jid] = "dead"  # InvalidJob, buried at once
                self.how[jid] = f"invalid {field}={value[:20] if value else value!r} on {q}"
                self.failing += 1
        elif x < 0.80:
            if not self.broken("ready", q):
                junk = self.rng.choice(("not-a-uuid", "", b"\x00\xff", self.uuid(),
                                        self.uuid().upper(), "x" * 2000))
                if self.rng.random() < 0.08:
                    junk = self.rng.choice((b"\xfe", b"z")) * MB
                self.raw.rpush(key(NS, "ready", q), junk)
        elif x < 0.88:
            if not self.broken("processing", q):
                member = self.uuid()
                if self.rng.random() < 0.5:
                    plant(self.r, key(NS, "attempts", ident=member),
                          self.rng.choice(wrong_types("attempts")))
                    self.planted.add(key(NS, "attempts", ident=member))
                self.r.sadd(key(NS, "processing", q), member)
        elif x < 0.93:
            self.foreign_attempt(q)
        else:
            self.repair_one()

    def foreign_attempt(self, q):
        """An attempt another tool wrote for a real job, with an owner that is no live fiber
        written as bg never writes it: the watcher fails it (Worker Timeout) and retries it."""
        if self.broken("processing", q):
            return
        fibers = clients_named(self.r, f"{NS}-worker-fiber:")
        live = fibers[0]["id"] if fibers else "1"
        wrk = self.rng.choice(("999999", f"{live}\x00x", f"{live}x", "9" * 40, "abc", b"\xff"))
        rid = self.rng.choice((self.run_id[:12], self.run_id + "x" * 100))
        if rid != self.run_id[:12]:
            wrk = live
        jid = self.uuid()
        self.raw.hset(key(NS, "jobs", ident=jid),
                      mapping={"que": q, "cls": "bg.noop", "arg": "{}", "qat": 0, "rty": 3,
                               "att": 1})
        aid = self.uuid()
        self.raw.hset(key(NS, "attempts", ident=aid),
                      mapping={"sta": server_ms(self.r), "job": jid, "wrk": wrk, "que": q,
                               "rid": rid})
        self.r.sadd(key(NS, "processing", q), aid)
        self.kind[jid] = "foreign"
        self.how[jid] = f"foreign attempt on {q}, wrk {wrk[:20]!r}, rid {rid[:20]!r}"
        self.failing += 1

    def repair_one(self):
        if self.planted:
            k = self.rng.choice(sorted(self.planted))
            self.r.delete(k)
            self.planted.discard(k)

    def repair_all(self):
        if self.planted:
            self.r.delete(*self.planted)
        self.planted.clear()


def _start(spawn, rs, qs, c):
    prefix = f"{NS}-worker-fiber:"
    r = rs.client()
    base = len(clients_named(r, prefix))
    p = spawn([exe("bg-worker"), "-r", rs.url, "-n", NS, "-q", qs, "-c", str(c),
               "-e", "Exec.Ok=cat > /dev/null", "-e", "Exec.Fail=exit 3"])
    wait_for(lambda: len(clients_named(r, prefix)) >= base + c or p.proc.poll() is not None,
             what="fibers to connect")
    assert p.proc.poll() is None, p.log()
    return p


def test_hostile_writes_interleaved_with_real_jobs_lose_nothing(rs, spawn):
    """For BG_HOSTILE_SECONDS (default 20 s), a seeded mix of hostile writes and real jobs runs
    against two workers (-q a,b,c,d,e and -q e,d,c) and a watcher (-i 0.1 --grace 0.5). After
    every hostile key is repaired: every real job is in exactly one place, the one its kind
    allows (completed; dead; scheduled or dead for retries; scheduled or completed for a job
    whose foreign attempt the watcher failed); every job key of the wrong type is dead; no
    ready entry, no processing member and no held finish is left; no program exited; each log
    stayed within a few lines per hostile write or failing job, and no program warns once the
    data is repaired."""
    print(f"seed {SEED} (replay with BG_HOSTILE_SEED={SEED}), {SECONDS:g} s")
    rng = random.Random(SEED)
    r = rs.client(encoding_errors="replace")
    raw = redis.Redis(port=rs.port)
    gen = Generator(rng, r, raw, rs)
    try:
        _run(gen, spawn, rs, r)
    except AssertionError as e:
        raise AssertionError(f"seed {SEED} (replay with BG_HOSTILE_SEED={SEED}): {e}") from None
    finally:
        r.close()
        raw.close()


def _run(gen, spawn, rs, r):
    rng = gen.rng
    if rng.random() < 0.4:
        # NS:queues of the wrong type before anything starts: they add their queues to it.
        if plant(r, key(NS, "queues"), rng.choice(wrong_types("queues"))):
            gen.planted.add(key(NS, "queues"))
    progs = {"worker1": _start(spawn, rs, "a,b,c,d,e", 3), "worker2": _start(spawn, rs, "e,d,c", 2)}
    progs["watcher"] = spawn([exe("bg-watcher"), "-r", rs.url, "-n", NS, "-i", "0.1",
                              "--grace", "0.5"])

    deadline = time.monotonic() + SECONDS
    steps = 0
    while time.monotonic() < deadline and len(gen.kind) < 200 * SECONDS:
        if rng.random() < 0.35:
            gen.hostile_write()
        else:
            gen.real_job()
        steps += 1
        time.sleep(rng.uniform(0.002, 0.02))
        if steps % 200 == 0:
            for name, p in progs.items():
                assert p.proc.poll() is None, f"{name} exited with {p.proc.returncode}:\n" \
                    + _tail(p)

    gen.repair_all()
    real = list(gen.kind)
    print(f"{steps} steps, {len(real)} real jobs, {gen.hostile} hostile writes, "
          f"{len(gen.bad_jobs)} job keys of the wrong type")

    def settled():
        if not processing_empty(r, QUEUES, NS):
            return False
        now = server_ms(r)
        for q in QUEUES:
            if r.llen(key(NS, "ready", q)) or r.zcount(key(NS, "scheduled", q), 0, now):
                return False
        return True
    try:
        wait_for(settled, 45, interval=0.1, what="every queue to drain after the repair")
    except AssertionError as e:
        raise AssertionError(f"{e}\n{_where(r, real)}\n{_logs(progs)}") from None

    counts = check(r, real, QUEUES, NS)
    print(f"ended: {counts}")
    found = places(r, real, QUEUES, NS)
    wrong = {j: (gen.kind[j], p) for j, p in found.items() if p[0] not in ENDS[gen.kind[j]]}
    assert not wrong, f"{len(wrong)} jobs ended in the wrong place, e.g. " \
        f"{list(wrong.items())[:5]}; the first, made by {gen.how.get(list(wrong)[0])}: " \
        f"{_show(r, list(wrong)[0])}\n{_logs(progs)}"
    found = places(r, gen.bad_jobs, QUEUES, NS)
    notdead = {j: p for j, p in found.items() if p != ["dead"]}
    assert not notdead, f"job keys of the wrong type not dead: {list(notdead.items())[:5]}"

    for name, p in progs.items():
        assert p.proc.poll() is None, f"{name} exited with {p.proc.returncode}:\n{_tail(p)}"
        n = len(p.log().splitlines())
        bound = 100 + 3 * (gen.hostile + gen.failing)
        assert n <= bound, f"{name} wrote {n} log lines for {gen.hostile} hostile writes and " \
            f"{gen.failing} failing jobs (at most {bound}):\n{_tail(p)}"
    # Once repaired, quiet: no program goes on warning about data that is gone (retries that
    # come due may still fail, at info level).
    before = {name: len(p.log().splitlines()) for name, p in progs.items()}
    time.sleep(1.0)
    for name, p in progs.items():
        new = p.log().splitlines()[before[name]:]
        loud = [line for line in new if line[25:27] in ("W ", "E ")]
        assert len(loud) <= 2, f"{name} warned {len(loud)} times in the second after the " \
            f"repair:\n" + "\n".join(line[:300] for line in loud)


def _tail(p, n=20):
    return "\n".join(line[:300] for line in p.log().splitlines()[-n:])


def _logs(progs):
    return "\n".join(f"--- {name}:\n{_tail(p)}" for name, p in progs.items())


def _show(r, jid):
    """A job's hash and its attempts, cut short: what a failure message needs."""
    h = r.hgetall(key(NS, "jobs", ident=jid)) if r.type(key(NS, "jobs", ident=jid)) == "hash" \
        else r.type(key(NS, "jobs", ident=jid))
    atts = []
    for k in r.scan_iter(f"{NS}:attempts:*", count=1000):
        if r.type(k) == "hash" and r.hget(k, "job") == jid:
            atts.append(r.hgetall(k))
    cut = {k: v[:60] for k, v in h.items()} if isinstance(h, dict) else h
    return f"job {cut}, attempts {atts}"


def _where(r, real):
    found = places(r, real, QUEUES, NS)
    out = {}
    for p in found.values():
        out["+".join(p) or "nowhere"] = out.get("+".join(p) or "nowhere", 0) + 1
    return f"real jobs by place: {out}"
