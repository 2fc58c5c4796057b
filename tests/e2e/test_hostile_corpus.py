"""The hostile corpus (issue 6): every key bg reads or writes given the wrong type in turn, job and
attempt fields bg never writes, job IDs as other languages write them, and ready entries that are
not jobs, each while real jobs flow through a running bg-worker and bg-watcher on the same queue
and on others. After each case the no-loss invariant is read from Redis alone (invariant.py):
every real job completed, waiting, scheduled or dead exactly once, processing empty, no program
exited, each program's log bounded.

The hostile data aims at queue b of a worker serving -q a,b,c (so a broken queue sits between
two that must go on being served); queue d is for cases with a second worker. Every case has a
namespace of its own, so its programs, keys and rate-limited log lines are its own. The expected
behaviours are those of the issue's design (docs/claim.md): a queue with a broken key is skipped
until an operator repairs it (DEL), then drains; a job key of the wrong type is failed with
InvalidJob and buried in dead; a finish whose keys are broken is held, not half-written."""

import itertools
import os
import signal
import time
import uuid

import pytest
import redis

from conftest import clients_named, cli, exe, wait_for
from hostile import (MB, NUMBERS, TEXTS, dump_all, jps_keys, junk_entries, key, plant, server_ms,
                     uuid_forms, wrong_types)
from invariant import check, new_jobs, places, processing_empty

QUEUES = ("a", "b", "c", "d")
LOG_LINES = 200  # the most lines a program may write in one case, whatever the hostile data
_ns = itertools.count()


class Case:
    """One hostile case: its namespace, its programs, its real jobs, and the checks every case
    ends with."""

    def __init__(self, rs, spawn, tmp_path):
        self.rs, self.spawn, self.dir = rs, spawn, tmp_path
        self.ns = f"hc{os.getpid()}-{next(_ns)}"
        # Hostile bytes may be anywhere a reader looks: decode what is text, replace the rest.
        self.r = rs.client(encoding_errors="replace")
        self.raw = redis.Redis(port=rs.port)
        self.progs = {}  # name -> Proc, each of which must still run when the case ends
        self.real = []  # the UUIDs of every real job, as written

    # ---- the programs ----

    def worker(self, queues="a,b,c", c=2, name="worker", extra=()):
        prefix = f"{self.ns}-worker-fiber:"
        base = len(clients_named(self.r, prefix))
        cmd = [exe("bg-worker"), "-r", self.rs.url, "-n", self.ns, "-q", queues, "-c", str(c),
               "--shutdown-timeout", "1",
               "-e", f'Echo=cat > "{self.dir}/$BG_JOB_ID"',
               "-e", "Slow.Fail=sleep 0.3; echo slow failure >&2; exit 3"] + list(extra)
        p = self.spawn(cmd)
        wait_for(lambda: len(clients_named(self.r, prefix)) >= base + c or
                 p.proc.poll() is not None, what=f"{name}'s fibers to connect")
        assert p.proc.poll() is None, p.log()
        self.progs[name] = p
        return p

    def watcher(self, extra=()):
        cmd = [exe("bg-watcher"), "-r", self.rs.url, "-n", self.ns, "-i", "0.05",
               "--grace", "0.2"] + list(extra)
        p = self.spawn(cmd)
        wait_for(lambda: clients_named(self.r, f"{self.ns}-watcher") or p.proc.poll() is not None,
                 what="the watcher to connect")
        assert p.proc.poll() is None, p.log()
        self.progs["watcher"] = p
        return p

    def start(self, c=2, watcher_extra=()):
        self.w = self.worker(c=c)
        self.wt = self.watcher(watcher_extra)

    # ---- real jobs ----

    def jobs(self, n, queue, cls="bg.noop", arg="{}", **extra):
        ids = new_jobs(self.r, n, queue, cls, arg, self.ns, extra or None)
        self.real += ids
        return ids

    def delayed(self, n, queue, due_ms, cls="bg.noop", arg="{}"):
        ids = [str(uuid.uuid4()) for _ in range(n)]
        p = self.r.pipeline(transaction=False)
        for jid in ids:
            p.hset(key(self.ns, "jobs", ident=jid),
                   mapping={"que": queue, "cls": cls, "arg": arg, "qat": 0, "pat": due_ms})
            p.zadd(key(self.ns, "scheduled", queue), {jid: due_ms})
        p.execute()
        self.real += ids
        return ids

    def job_as_written(self, jid, queue, **fields):
        """A real job whose UUID is written as given (another language's form)."""
        f = {"que": queue, "cls": "bg.noop", "arg": "{}", "qat": 0}
        f.update(fields)
        self.raw.hset(key(self.ns, "jobs", ident=jid), mapping=f)
        self.raw.rpush(key(self.ns, "ready", queue), jid)
        self.real.append(jid)
        return jid

    # ---- reading Redis ----

    def places(self, ids=None):
        return places(self.r, self.real if ids is None else ids, QUEUES, self.ns)

    def wait_in(self, ids, place, timeout=15):
        """Waits until every job of ids is in place, and only there; fails at once when one
        has come to rest elsewhere (completed and dead are final)."""
        def at_rest_elsewhere(found):
            return {j: p for j, p in found.items()
                    if p != [place] and any(x in ("completed", "dead") for x in p)}

        def ok():
            found = self.places(ids)
            wrong = at_rest_elsewhere(found)
            if wrong:
                # places() reads key after key, not in one snapshot: a job that moved from
                # processing to dead between two reads shows in both. Completed and dead are
                # final, so a job really at rest elsewhere is still there when read again.
                found = self.places(ids)
                wrong = at_rest_elsewhere(found)
            assert not wrong, f"{len(wrong)} of {len(ids)} jobs came to rest elsewhere than " \
                f"{place}, e.g. {list(wrong.items())[:3]}\n{self.logs()}"
            return all(p == [place] for p in found.values())
        try:
            wait_for(ok, timeout, what=f"{len(ids)} jobs to be {place}")
        except AssertionError as e:
            if not str(e).startswith("timed out"):
                raise
            found = self.places(ids)
            bad = {j: p for j, p in found.items() if p != [place]}
            raise AssertionError(f"{len(bad)} of {len(ids)} jobs are not (only) {place}, e.g. "
                                 f"{list(bad.items())[:3]}\n{self.logs()}") from None

    def hold(self, cond, seconds, what):
        """Asserts cond() stays true for seconds (a state that must not change, watched)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert cond(), f"{what} stopped holding\n{self.logs()}"
            time.sleep(0.02)

    def wait_log(self, name, text, timeout=5):
        """Waits until program name has logged a line containing text."""
        try:
            wait_for(lambda: self.mentions(name, text), timeout, what=f"{name} to report {text}")
        except AssertionError as e:
            where = {j: p for j, p in self.places().items() if p != ["completed"]}
            raise AssertionError(f"{e}; real jobs not completed: {list(where.items())[:5]}\n"
                                 f"{self.logs()}") from None

    def attempts_of(self, jid):
        out = []
        for k in self.r.scan_iter(f"{self.ns}:attempts:*", count=1000):
            if self.r.type(k) == "hash":
                h = self.r.hgetall(k)
                if h.get("job") == jid:
                    out.append(dict(h, id=k.rsplit(":", 1)[1]))
        return out

    def stats(self, queue):
        return {k: int(v) for k, v in self.r.hgetall(key(self.ns, "stats", queue)).items()}

    def fiber_id(self):
        return clients_named(self.r, f"{self.ns}-worker-fiber:")[0]["id"]

    def run_id(self):
        return self.r.info("server")["run_id"]

    # ---- logs ----

    def lines(self, name):
        return self.progs[name].log().splitlines()

    def mentions(self, name, text):
        return sum(1 for line in self.lines(name) if text in line)

    def logs(self):
        out = []
        for name, p in self.progs.items():
            ls = p.log().splitlines()
            out.append(f"--- {name} ({len(ls)} lines), last 15:")
            out += [l[:300] for l in ls[-15:]]
        return "\n".join(out)

    # ---- the end of every case ----

    def done(self, allow=("completed", "ready", "scheduled", "dead")):
        """The invariant of the brief: every real job in exactly one allowed place, processing
        empty, every program alive, every log bounded. Returns the count per place."""
        wait_for(lambda: processing_empty(self.r, QUEUES, self.ns), 10,
                 what="processing to be empty")
        counts = check(self.r, self.real, QUEUES, self.ns, allow)
        for name, p in self.progs.items():
            assert p.proc.poll() is None, f"{name} exited with {p.proc.returncode}\n{self.logs()}"
        for name in self.progs:
            n = len(self.lines(name))
            assert n < LOG_LINES, f"{name} wrote {n} log lines\n{self.logs()}"
        return counts


@pytest.fixture
def case(rs, spawn, tmp_path):
    c = Case(rs, spawn, tmp_path)
    yield c
    c.r.close()
    c.raw.close()


def ids_of(params):
    return [p if isinstance(p, str) else "-".join(map(str, p)) for p in params]


# ---- keys of the wrong type: the queue is skipped until repaired ----

SKIP = [(k, t) for k in ("ready", "scheduled", "processing", "completed", "failed", "dead",
                         "stats") for t in wrong_types(k)]


@pytest.mark.parametrize("kind,typ", SKIP, ids=ids_of(SKIP))
def test_a_queue_key_of_the_wrong_type_skips_the_queue_until_repaired(case, kind, typ):
    """A key of queue b that the claim or the finish would write, of the wrong type: the claim
    skips b (its jobs stay waiting, untouched, in order; for a broken ready list they stay
    scheduled), serves a and c before and after it, writes nothing into the bad key, and the
    worker reports the key exactly once. DEL of the key repairs it: b drains (a new job's push
    wakes the idle fibers; the jps cases show a drain without new traffic)."""
    c = case
    c.start()
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    k = key(c.ns, kind, "b")
    assert plant(c.r, k, typ)
    before = c.raw.dump(k)
    if kind == "ready":
        b, place = c.delayed(20, "b", server_ms(c.r)), "scheduled"
    else:
        b, place = c.jobs(20, "b"), "ready"
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    c.wait_log("worker", k)

    def untouched():
        if kind != "ready" and c.r.lrange(key(c.ns, "ready", "b"), 0, -1) != b:
            return False
        return all(p == [place] for p in c.places(b).values())
    c.hold(untouched, 0.2, f"b's jobs waiting untouched in {place}")
    assert all(c.r.hget(key(c.ns, "jobs", ident=j), "att") is None for j in b)
    assert c.raw.dump(k) == before, f"{k} was written to"
    assert c.mentions("worker", k) == 1, "\n".join(c.lines("worker"))
    assert c.mentions("watcher", k) <= 1, "\n".join(c.lines("watcher"))
    check(c.r, c.real, QUEUES, c.ns)

    c.r.delete(k)
    b += c.jobs(1, "b")  # new traffic: its push wakes the idle fibers at once
    c.wait_in(b, "completed")
    assert c.done(allow=("completed",)) == {"completed": 61}
    assert c.stats("b") == {"completed": 21}


STATS = [("completed", "abc", "skip"), ("failed", "1.5", "skip"), ("dead", b"1\x002", "skip"),
         ("completed", b"\xff\xfe", "skip"), ("completed", "", "skip"),
         ("failed", "9" * 40, "skip"), ("completed", "9223372036854775807", "hold"),
         ("completed", "-5", "serve"), ("failed", "007", "skip"), ("dead", "-0", "skip")]


@pytest.mark.parametrize("field,value,expect", STATS,
                         ids=["completed-abc", "failed-decimal", "dead-nul", "completed-nonutf8",
                              "completed-empty", "failed-huge", "completed-int64max",
                              "completed-negative", "failed-leading-zero", "dead-minus-zero"])
def test_stats_counters_that_are_not_whole_numbers(case, field, value, expect):
    """NS:stats:b with a counter bg cannot add to: the claim skips b (skip) until DEL repairs
    it. A counter at the top of the 64-bit range is a whole number the next increment would
    overflow: b's jobs are held (waiting or processing, never half-recorded) until repaired
    (hold). A negative counter is a whole number: b is served and counts on from it (serve)."""
    c = case
    c.start()
    k = key(c.ns, "stats", "b")
    c.raw.hset(k, field, value)
    before = c.raw.dump(k)
    b = c.jobs(20, "b")
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    if expect == "serve":
        c.wait_in(b, "completed")
        c.done(allow=("completed",))
        assert c.stats("b") == {"completed": 15}
        return
    c.wait_log("worker", k)
    held = ("ready",) if expect == "skip" else ("ready", "processing")
    c.hold(lambda: all(len(p) == 1 and p[0] in held for p in c.places(b).values()), 0.3,
           f"b's jobs held in {held}")
    assert c.raw.dump(k) == before, f"{k} was written to"
    assert c.mentions("worker", k) == 1, "\n".join(c.lines("worker"))
    c.r.delete(k)
    b += c.jobs(1, "b")  # new traffic: its push wakes the idle fibers at once
    c.wait_in(b, "completed")
    c.done(allow=("completed",))
    assert c.stats("b") == {"completed": 21}


@pytest.mark.parametrize("typ", wrong_types("queues"))
def test_a_queues_key_of_the_wrong_type_stops_nothing(case, typ):
    """NS:queues of the wrong type before the worker and the watcher start (they add their
    queues to it) and while they run: both start and stay up, every queue is served, delayed
    jobs on b are moved when due (the watcher finds b without NS:queues), nothing is written
    into the key, and each program reports it at most once."""
    c = case
    k = key(c.ns, "queues")
    assert plant(c.r, k, typ)
    before = c.raw.dump(k)
    c.start()
    jobs = c.jobs(10, "a") + c.jobs(10, "b") + c.jobs(10, "c")
    later = c.delayed(5, "b", server_ms(c.r) + 300)
    c.wait_in(jobs + later, "completed")
    assert c.raw.dump(k) == before, f"{k} was written to"
    for name in c.progs:
        assert c.mentions(name, k) <= 1, "\n".join(c.lines(name))
    c.r.delete(k)
    c.wait_in(c.jobs(10, "b") + c.delayed(5, "c", server_ms(c.r) + 200), "completed")
    c.done(allow=("completed",))


JPS = [(t, "hostile") for t in wrong_types("jps")] + \
    [("string", "abc"), ("string", "9223372036854775807"), ("string", b"1\x002")]


@pytest.mark.parametrize("typ,value", JPS, ids=["list", "set", "zset", "hash", "string-abc",
                                                "string-int64max", "string-nul"])
def test_a_jps_slot_bg_cannot_count_in_holds_the_finish_until_repaired(case, typ, value):
    """The jps slots of queue b (NS:jps:b:<slot>, the counters a finish adds its completions to)
    of the wrong type or holding no number bg can add to, for the whole case: b's jobs are
    claimed and run, but their finish is not recorded (the attempts stay in processing, without
    fin) while a and c are served; once the slots are deleted, b drains with no new traffic
    (the held results go with the idle fibers' next look at their queues)."""
    c = case
    c.start()
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    slots = jps_keys(c.r, c.ns, "b", ahead_s=40)
    for k in slots:
        assert plant(c.r, k, typ, value, ttl_ms=60000)
    b = c.jobs(5, "b")
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    wait_for(lambda: any(p == ["processing"] for p in c.places(b).values()), 5,
             what="a job of b to be claimed")
    c.hold(lambda: all(p in (["ready"], ["processing"]) for p in c.places(b).values()), 0.3,
           "b's jobs held in ready or processing")
    for j in b:
        for a in c.attempts_of(j):
            assert "fin" not in a, f"a held finish wrote its attempt: {a}"
    assert any(f"{c.ns}:jps:b:" in line for line in c.lines("worker")), c.logs()
    c.r.delete(*slots)
    c.wait_in(b, "completed")
    c.done(allow=("completed",))
    assert c.stats("b") == {"completed": 5}


# ---- a job key of the wrong type, inside a batch ----

@pytest.mark.parametrize("typ", wrong_types("jobs"))
def test_a_job_key_of_the_wrong_type_is_buried_and_its_neighbours_run(case, typ):
    """A UUID whose NS:jobs:<uuid> is not a hash, between 60 and 60 real jobs of b (-c 1, so it
    sits inside a claim batch): it gets one attempt, failed with err InvalidJob and a msg naming
    the key, and its UUID is buried in NS:dead:b with the failed and dead counters counting it;
    every real job completes once; the bad key is left as it was."""
    c = case
    c.start(c=1)
    bad = str(uuid.uuid4())
    k = key(c.ns, "jobs", ident=bad)
    assert plant(c.r, k, typ)
    before = c.raw.dump(k)
    b = c.jobs(60, "b")
    c.r.rpush(key(c.ns, "ready", "b"), bad)
    b += c.jobs(60, "b")
    c.wait_in(b + c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    wait_for(lambda: c.r.zscore(key(c.ns, "dead", "b"), bad) is not None, 5,
             what="the bad job to be dead")
    atts = c.attempts_of(bad)
    assert len(atts) == 1, atts
    a = atts[0]
    assert c.r.zscore(key(c.ns, "failed", "b"), a["id"]) is not None, a
    assert a["err"] == "InvalidJob", a
    if typ == "string":
        assert a["msg"] == f"{k} is a string, not a hash", a
    else:
        assert a["msg"].startswith(f"{k} is a") and a["msg"].endswith("not a hash"), a
    assert c.stats("b") == {"completed": 120, "failed": 1, "dead": 1}
    assert c.raw.dump(k) == before
    c.done(allow=("completed",))


# ---- junk in processing ----

JUNK_ATTEMPTS = [f"wrongtype-{t}" for t in wrong_types("attempts")] + \
    ["no-hash", "not-a-uuid", "megabyte"]


@pytest.mark.parametrize("form", JUNK_ATTEMPTS)
def test_junk_in_processing_is_dropped_and_jobs_flow(case, form):
    """A member of NS:processing:b that is not an attempt (its key of the wrong type, missing,
    or the member not a UUID at all, up to 1 MB): it is removed from processing and logged (cut
    short), nothing is invented for it, and real jobs of a, b and c run meanwhile."""
    c = case
    c.start()
    member = {"not-a-uuid": "not-a-uuid", "megabyte": "m" * MB}.get(form, str(uuid.uuid4()))
    if form.startswith("wrongtype-"):
        assert plant(c.r, key(c.ns, "attempts", ident=member), form.split("-", 1)[1])
    before = c.raw.dump(key(c.ns, "attempts", ident=member))
    c.r.sadd(key(c.ns, "processing", "b"), member)
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "b") + c.jobs(10, "c"), "completed")
    wait_for(lambda: not c.r.sismember(key(c.ns, "processing", "b"), member), 5,
             what="the junk member to leave processing")
    assert c.raw.dump(key(c.ns, "attempts", ident=member)) == before
    for name in c.progs:
        assert max(map(len, c.lines(name))) < 2000, f"{name} logged a junk member whole"
    c.r.delete(key(c.ns, "attempts", ident=member))
    c.done(allow=("completed",))


# ---- attempt fields bg never writes ----

def _attempt_fields():
    cases = []
    for name, v in NUMBERS.items():
        cases.append(("sta", name, v))
    for name in ("huge", "megabyte", "negative", "nonnumeric", "empty", "nonutf8"):
        cases.append(("wrk", name, NUMBERS[name]))
    cases += [("wrk", "live-nul", "LIVE\x00x"), ("wrk", "live-suffix", "LIVEx")]
    cases += [("rid", "long", "RUNIDx" + "x" * 1000), ("rid", "nul", "RID12\x00x"),
              ("rid", "nonutf8", b"\xff\xfe"), ("rid", "negative", "-5"),
              ("rid", "megabyte", "a" * MB)]
    cases += [("que", "huge", "q" * MB), ("que", "nul", b"b\x00x"), ("que", "nonutf8", b"\xff"),
              ("que", "empty", ""), ("que", "invalid", "bad/name")]
    cases += [("job", "huge", "j" * MB), ("job", "nul", b"JOB\x00"), ("job", "nonutf8", b"\xff"),
              ("job", "empty", ""), ("job", "no-hash", str(uuid.uuid4())),
              ("job", "upper-alias", "JOBUPPER")]
    return cases


ATTEMPT_FIELDS = _attempt_fields()


@pytest.mark.parametrize("field,name,value", ATTEMPT_FIELDS,
                         ids=[f"{f}-{n}" for f, n, _ in ATTEMPT_FIELDS])
def test_a_foreign_attempt_with_odd_fields_is_judged_like_any_other(case, field, name, value):
    """An attempt another tool wrote into NS:processing:b, for a real job of b (rty 3, att 1),
    with one field holding what bg never writes. Its owner is no live fiber (wrk and rid compared
    whole, byte for byte: a wrk of a live fiber's ID followed by a NUL or junk, or a rid of the
    server's run_id followed by more, is not that owner), so the watcher fails it once with
    Worker Timeout (no fin, no time), and the job is retried: itr 1, scheduled on b. When the
    job field itself is junk there is no job to retry: the attempt only leaves processing, and
    no job hash is invented for the junk."""
    c = case
    c.start()
    jid = str(uuid.uuid4())
    c.raw.hset(key(c.ns, "jobs", ident=jid),
               mapping={"que": "b", "cls": "bg.noop", "arg": "{}", "qat": 0, "rty": 3, "att": 1})
    live, runid = c.fiber_id(), c.run_id()
    fields = {"sta": server_ms(c.r), "job": jid, "wrk": "999999", "que": "b", "rid": runid[:12]}
    if field == "rid":
        fields["wrk"] = live  # so that the rid alone says the owner is gone
    if isinstance(value, str):
        value = value.replace("LIVE", str(live)).replace("RUNID", runid) \
            .replace("RID12", runid[:12]).replace("JOBUPPER", jid.upper()).replace("JOB", jid)
    elif field == "job" and value == b"JOB\x00":
        value = jid.encode() + b"\x00"
    fields[field] = value
    aid = str(uuid.uuid4())
    c.raw.hset(key(c.ns, "attempts", ident=aid), mapping=fields)
    c.r.sadd(key(c.ns, "processing", "b"), aid)
    if field != "job":
        c.real.append(jid)
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "b") + c.jobs(10, "c"), "completed")
    wait_for(lambda: not c.r.sismember(key(c.ns, "processing", "b"), aid), 5,
             what="the foreign attempt to leave processing")
    a = c.r.hgetall(key(c.ns, "attempts", ident=aid))
    if field != "job":
        assert c.r.zscore(key(c.ns, "failed", "b"), aid) is not None, (a, c.logs())
        assert a.get("err") == "Worker Timeout" and "fin" not in a and "time" not in a, a
        assert c.r.hget(key(c.ns, "jobs", ident=jid), "itr") == "1"
        c.wait_in([jid], "scheduled", timeout=2)
    else:
        junk = value if isinstance(value, bytes) else value.encode()
        assert not c.raw.exists(f"{c.ns}:jobs:".encode() + junk), \
            "a job hash was invented for a junk job field"
    for name_ in c.progs:
        assert max(map(len, c.lines(name_))) < 4000, f"{name_} logged a field whole"
    c.done()


# ---- job fields a foreign producer wrote badly ----

def _job_fields():
    cases = []
    for n, v in TEXTS.items():
        cases.append(("que", n, v, "completed"))
    for f in ("qat", "pat"):  # they decide nothing: a few odd values are enough
        for n in ("megabyte", "negative", "nonnumeric", "nul", "nonutf8"):
            cases.append((f, n, NUMBERS[n], "completed"))
    for n, v in TEXTS.items():
        cases.append(("arg", n, v, "echo"))
    cases.append(("arg", "twomegabytes", bytes(range(256)) * (8 * 1024), "echo"))
    for n, v in TEXTS.items():
        cases.append(("cls", n, v, "InvalidJob" if v == "" else "UnknownJobClass"))
    cases.append(("cls", "missing", None, "InvalidJob"))
    for f in ("rty", "att", "itr"):
        for n, v in NUMBERS.items():
            cases.append((f, n, v, "InvalidJob"))
    return cases


JOB_FIELDS = _job_fields()


@pytest.mark.parametrize("field,name,value,expect", JOB_FIELDS,
                         ids=[f"{f}-{n}" for f, n, _, _ in JOB_FIELDS])
def test_a_job_field_bg_never_writes(case, field, name, value, expect):
    """One real job of b, between real neighbours on a, b and c, with one field as a foreign
    producer might write it. que, qat and pat decide nothing: the job completes (completed).
    arg is handed over byte for byte, NULs, non-UTF-8 and megabytes alike (echo: an exec job
    writes its stdin to a file the test compares). A cls that names no handler fails with
    UnknownJobClass (dead, since its rty is 0); an empty or missing cls, and an rty, att or itr
    that is huge, negative, not a whole number, NUL-bearing or not text, fail with InvalidJob
    and the job is buried in dead at once (InvalidJob)."""
    c = case
    c.start()
    jid = str(uuid.uuid4())
    fields = {"que": "b", "cls": "Echo" if expect == "echo" else "bg.noop", "arg": "{}",
              "qat": 0}
    if expect == "UnknownJobClass":
        fields["rty"] = 0
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    neighbours = c.jobs(5, "b")
    c.raw.hset(key(c.ns, "jobs", ident=jid), mapping=fields)
    c.r.rpush(key(c.ns, "ready", "b"), jid)
    c.real.append(jid)
    neighbours += c.jobs(5, "b") + c.jobs(5, "a") + c.jobs(5, "c")
    c.wait_in(neighbours, "completed")
    if expect in ("completed", "echo"):
        c.wait_in([jid], "completed")
        if expect == "echo":
            with open(c.dir / jid, "rb") as f:
                got = f.read()
            want = value if isinstance(value, bytes) else value.encode()
            assert got == want, f"arg changed: {len(got)} bytes, want {len(want)}"
    else:
        c.wait_in([jid], "dead")
        atts = c.attempts_of(jid)
        # A cls with a NUL names no handler, whatever its first bytes: the brief leaves open
        # whether that is UnknownJobClass or InvalidJob, but it must never run as "bg.noop".
        errs = ("UnknownJobClass", "InvalidJob") if name == "nul" else (expect,)
        assert len(atts) == 1 and atts[0]["err"] in errs, (atts, c.logs())
        assert c.stats("b").get("dead") == 1
    for name_ in c.progs:
        assert max(map(len, c.lines(name_))) < 4000, f"{name_} logged a field whole"
    c.done()


BEHIND = [("att", b"\xff\xfe1"), ("att", "abc"), ("att", "-5"), ("rty", "abc"), ("itr", "abc"),
          ("cls", None)]


@pytest.mark.parametrize("field,value", BEHIND,
                         ids=["att-nonutf8", "att-abc", "att-negative", "rty-abc", "itr-abc",
                              "cls-missing"])
def test_an_invalid_job_claimed_behind_a_slow_one_stays_invalid(case, field, value):
    """Invalid jobs (a field as in the case above) claimed in one batch behind a slow job
    (-c 1; 60 fast jobs grow the batch first): however the worker deals with the jobs behind a
    slow one (run them, or hand them back to ready), each invalid job fails with InvalidJob and
    is dead, its bad field as the producer wrote it; it never runs."""
    c = case
    c.start(c=1)
    jobs = c.jobs(60, "b") + c.jobs(1, "b", cls="bg.sleep", arg='{"ms":200}')
    fields = {"que": "b", "cls": "bg.noop", "arg": "{}", "qat": 0}
    if value is None:
        del fields[field]
    else:
        fields[field] = value
    bad = [str(uuid.uuid4()) for _ in range(3)]  # three, so that the batch surely holds one
    for jid in bad:
        c.raw.hset(key(c.ns, "jobs", ident=jid), mapping=fields)
        c.r.rpush(key(c.ns, "ready", "b"), jid)
    c.real += bad
    c.wait_in(jobs + c.jobs(60, "b"), "completed")
    c.wait_in(bad, "dead")
    for jid in bad:
        atts = [a for a in c.attempts_of(jid) if "err" in a]
        assert len(atts) == 1 and atts[0]["err"] == "InvalidJob", (c.attempts_of(jid), c.logs())
        if value is not None:
            assert c.raw.hget(key(c.ns, "jobs", ident=jid), field) == \
                (value if isinstance(value, bytes) else value.encode())
    c.done()


# ---- job IDs as other languages write them ----

@pytest.mark.parametrize("form", list(uuid_forms()))
def test_uuids_in_other_forms_are_jobs_like_any(case, form):
    """Ready entries that are UUIDs in upper or mixed case, or braced (as C#, Swift and SQL
    Server write them), with their job hash at NS:jobs:<entry as written>: each runs like any job,
    its attempt's job field the entry as written: a noop completes, a failing job with rty 0 is
    dead under the entry as written, one with retries left is scheduled under it."""
    c = case
    c.start()
    ok = c.job_as_written(uuid_forms()[form], "b")
    dead = c.job_as_written(uuid_forms()[form], "b", cls="bg.fail", rty=0)
    retried = c.job_as_written(uuid_forms()[form], "b", cls="bg.fail", rty=3)
    c.wait_in(c.jobs(5, "a") + c.jobs(5, "b") + c.jobs(5, "c"), "completed")
    c.wait_in([ok], "completed")
    c.wait_in([dead], "dead")
    c.wait_in([retried], "scheduled")
    for jid in (ok, dead, retried):
        atts = c.attempts_of(jid)
        assert len(atts) == 1 and atts[0]["job"] == jid, atts
    assert c.r.hget(key(c.ns, "jobs", ident=retried), "att") == "1"
    c.done()


def test_uuids_in_other_forms_are_trimmed_like_any(case):
    """With no retention, the watcher deletes completed attempts and their job hashes, and dead
    jobs' hashes, whatever the form of the job's UUID: nothing of an upper-case or braced job
    is left behind once it is trimmed, and the counters count it."""
    c = case
    c.start(watcher_extra=("--retain-completed", "0", "--retain-dead", "0", "--retain-failed",
                           "0"))
    forms = uuid_forms()
    jobs = [c.job_as_written(forms["upper"], "b"), c.job_as_written(forms["braced"], "b"),
            c.job_as_written(uuid_forms()["braced-upper"], "b", cls="bg.fail", rty=0)]
    wait_for(lambda: c.stats("b") == {"completed": 2, "failed": 1, "dead": 1}, 10,
             what="the counters")
    wait_for(lambda: not any(c.r.exists(key(c.ns, "jobs", ident=j)) for j in jobs), 10,
             what="the job hashes to be trimmed")
    wait_for(lambda: not list(c.r.scan_iter(f"{c.ns}:attempts:*")), 10,
             what="the attempts to be trimmed")
    c.real = []
    c.done()


# ---- ready entries that are not jobs ----

@pytest.mark.parametrize("form", list(junk_entries(str(uuid.uuid4()))))
def test_ready_entries_that_are_not_jobs_are_dropped(case, form):
    """Entries of NS:ready:b that are not jobs (1 MB strings of text, NULs or non-UTF-8 bytes,
    empty, not UUID-shaped, a UUID with no job hash, a real job's UUID in another case with no
    hash of its own, or with a NUL or space after it): each is dropped with a log line cut
    short, never taken for the real job it resembles; the real jobs around it complete once."""
    c = case
    c.start(c=1)
    real = c.jobs(3, "b")
    junk = junk_entries(real[0])[form]
    c.raw.rpush(key(c.ns, "ready", "b"), junk)
    real += c.jobs(3, "b")
    c.raw.rpush(key(c.ns, "ready", "b"), junk, junk)
    real += c.jobs(3, "b") + c.jobs(3, "a") + c.jobs(3, "c")
    c.wait_in(real, "completed")
    wait_for(lambda: c.r.llen(key(c.ns, "ready", "b")) == 0, 5, what="the junk to be dropped")
    for j in real:
        assert len(c.attempts_of(j)) == 1, f"{j} ran {len(c.attempts_of(j))} times"
    assert max(map(len, c.lines("worker"))) < 1000, "the worker logged a junk entry whole"
    c.done(allow=("completed",))


def test_many_megabyte_entries_keep_the_log_bounded(case):
    """Forty 1 MB junk entries among real jobs: all dropped, the real jobs completed once, the
    log bounded (the lines rate-limited and cut short)."""
    c = case
    c.start()
    real = []
    for i in range(40):
        real += c.jobs(2, "b")
        c.raw.rpush(key(c.ns, "ready", "b"), (b"%03d" % i) * (MB // 3))
    c.wait_in(real + c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    wait_for(lambda: c.r.llen(key(c.ns, "ready", "b")) == 0, 5, what="the junk to be dropped")
    assert max(map(len, c.lines("worker"))) < 1000
    c.done(allow=("completed",))


def test_arguments_of_megabytes_are_claimed_within_the_byte_budget(case):
    """Eight jobs with 3 MB arguments among small ones: every argument reaches its exec job
    byte for byte, every job completes once, no claim overruns the socket timeout (no job
    handed back and claimed again), and small jobs on a and c are served meanwhile."""
    c = case
    c.start()
    big = {}
    for i in range(8):
        arg = os.urandom(3 * MB)
        big[c.jobs(1, "b", cls="Echo", arg=arg)[0]] = arg
        c.jobs(3, "b")
    c.wait_in(list(c.real) + c.jobs(10, "a") + c.jobs(10, "c"), "completed", timeout=30)
    for jid, arg in big.items():
        assert len(c.attempts_of(jid)) == 1
        with open(c.dir / jid, "rb") as f:
            assert f.read() == arg
    c.done(allow=("completed",))


# ---- keys that break while a job runs: the finish is held, not half-written ----

MID = [("completed", "ok"), ("stats", "ok"), ("stats-field", "ok"), ("failed", "retry"),
       ("scheduled", "retry"), ("dead", "die")]


@pytest.mark.parametrize("kind,outcome", MID, ids=ids_of(MID))
def test_a_key_that_breaks_while_its_job_runs_holds_the_finish(case, kind, outcome):
    """A job of b runs (0.3 s) when a key its finish will write turns bad (a string; for
    stats-field a counter that is not a number; for jobs the job hash itself). The finish is not
    recorded: the attempt stays in processing, untouched (no fin), while a and c are served; the
    worker sends the result again with later round trips, so once the key is repaired (DEL; the
    job hash written back) the job ends where it should: completed (ok), scheduled (retry, rty
    3), or dead (die, rty 0)."""
    c = case
    c.start()
    if outcome == "ok":
        jid = c.jobs(1, "b", cls="bg.sleep", arg='{"ms":300}')[0]
    else:
        jid = c.jobs(1, "b", cls="Slow.Fail", rty=3 if outcome == "retry" else 0)[0]
    jk = key(c.ns, "jobs", ident=jid)
    wait_for(lambda: c.places([jid])[jid] == ["processing"], 5, what="the job to start")
    if kind == "stats-field":
        k = key(c.ns, "stats", "b")
        c.raw.hset(k, "completed", "abc")
    else:
        k = key(c.ns, kind, "b")
        assert plant(c.r, k, "string")
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    c.wait_log("worker", k)
    c.hold(lambda: c.places([jid])[jid] == ["processing"], 0.3, "the held attempt in processing")
    (a,) = c.attempts_of(jid)
    assert "fin" not in a and "err" not in a, f"the held finish wrote its attempt: {a}"
    assert c.mentions("worker", k) == 1, "\n".join(c.lines("worker"))
    c.r.delete(k)
    c.jobs(1, "b")  # a round trip of b's fibers
    c.wait_in([jid], {"ok": "completed", "retry": "scheduled", "die": "dead"}[outcome])
    c.done()


@pytest.mark.parametrize("outcome", ["ok", "retry"])
def test_a_job_hash_overwritten_while_it_runs(case, outcome):
    """The job hash of a running job of b is replaced by a string. A success needs nothing of
    the job hash: it is recorded as completed. A failure with retries left cannot be retried
    (the job's fields are gone, and a claim would bury it as InvalidJob): the failed attempt is
    recorded and the UUID buried in NS:dead:b at once, counted, the string left as it is, and
    a and c served throughout (docs/claim.md, "Check, then write")."""
    c = case
    c.start()
    if outcome == "ok":
        jid = c.jobs(1, "b", cls="bg.sleep", arg='{"ms":300}')[0]
    else:
        jid = c.jobs(1, "b", cls="Slow.Fail", rty=3)[0]
    jk = key(c.ns, "jobs", ident=jid)
    wait_for(lambda: c.places([jid])[jid] == ["processing"], 5, what="the job to start")
    c.raw.delete(jk)
    c.raw.set(jk, "hostile")
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "c"), "completed")
    c.wait_in([jid], "completed" if outcome == "ok" else "dead")
    (a,) = c.attempts_of(jid)
    assert "fin" in a, a
    if outcome == "retry":
        assert a["err"] == "ExitStatus", a
        assert c.stats("b").get("dead") == 1
    assert c.raw.get(jk) == b"hostile"
    c.done()


VANISH = [("failed", 3, "scheduled"), ("scheduled", 3, "scheduled"), ("dead", 0, "dead"),
          ("stats", 3, "scheduled")]


@pytest.mark.parametrize("kind,rty,ends", VANISH, ids=[v[0] for v in VANISH])
def test_a_vanished_workers_attempt_waits_for_the_repair(case, kind, rty, ends):
    """A second worker (queue d) is SIGKILLed while its job runs, and a key the watcher's
    Worker Timeout will write is bad: the watcher leaves the attempt in processing and tries
    again each interval, reporting the key at most once; once the key is repaired, the attempt
    is failed with Worker Timeout and the job scheduled (rty 3) or dead (rty 0)."""
    c = case
    c.start()
    victim = c.worker(queues="d", c=1, name="victim")
    jid = c.jobs(1, "d", cls="bg.sleep", arg='{"ms":60000}', rty=rty)[0]
    wait_for(lambda: c.places([jid])[jid] == ["processing"], 5, what="the job to start")
    k = key(c.ns, kind, "d")
    assert plant(c.r, k, "string")
    victim.signal(signal.SIGKILL)
    victim.wait()
    del c.progs["victim"]
    c.wait_log("watcher", k)
    c.hold(lambda: c.places([jid])[jid] == ["processing"], 0.5, "the attempt in processing")
    assert c.mentions("watcher", k) == 1, "\n".join(c.lines("watcher"))
    c.wait_in(c.jobs(10, "a") + c.jobs(10, "b"), "completed")
    c.r.delete(k)
    c.wait_in([jid], ends)
    (a,) = c.attempts_of(jid)
    assert a["err"] == "Worker Timeout", a
    c.done()


# ---- bg-cli: a script whose check fails changes nothing ----

def _cli_one_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"want one line on stderr, got {p.stderr!r}"


@pytest.mark.parametrize("what", ["enqueue-ready", "enqueue-scheduled", "enqueue-queues",
                                  "retry-job", "retry-dead", "dequeue", "status"])
def test_bg_cli_on_broken_keys_says_so_and_changes_nothing(rs, what):
    """bg-cli against keys of the wrong type: it exits 1 with one clear line on stderr and
    Redis exactly as it was (enqueue into a broken ready list or scheduled set, retry of a dead
    job into a broken ready list, one by one or --dead -q b), or, where the broken key is not one
    it must write (NS:queues for enqueue, scheduled for a dequeue from ready), does its work
    completely; status never crashes on broken keys, and changes nothing."""
    ns = f"hcli{os.getpid()}-{next(_ns)}"
    r = rs.client(encoding_errors="replace")
    raw = redis.Redis(port=rs.port)
    jid = str(uuid.uuid4())
    if what == "enqueue-ready":
        plant(r, key(ns, "ready", "b"), "string")
        args = ["enqueue", "bg.noop", "-q", "b"]
    elif what == "enqueue-scheduled":
        plant(r, key(ns, "scheduled", "b"), "string")
        args = ["enqueue", "bg.noop", "-q", "b", "--in", "60s"]
    elif what == "enqueue-queues":
        plant(r, key(ns, "queues"), "string")
        args = ["enqueue", "bg.noop", "-q", "b"]
    elif what in ("retry-job", "retry-dead"):
        r.hset(key(ns, "jobs", ident=jid), mapping={"que": "b", "cls": "bg.noop", "arg": "{}",
                                                    "qat": 0, "att": 1, "rty": 0})
        r.zadd(key(ns, "dead", "b"), {jid: 1})
        plant(r, key(ns, "ready", "b"), "string")
        args = ["retry", jid] if what == "retry-job" else ["retry", "--dead", "-q", "b"]
    elif what == "dequeue":
        new_jobs(r, 1, "b", ns=ns)
        jid = r.lrange(key(ns, "ready", "b"), 0, -1)[0]
        plant(r, key(ns, "scheduled", "b"), "string")
        args = ["dequeue", jid]
    else:
        for kind in ("ready", "scheduled", "processing", "completed", "failed", "dead", "stats"):
            plant(r, key(ns, kind, "b"), "string")
        r.sadd(key(ns, "queues"), "b")
        args = ["status", "-q", "b"]
    before = dump_all(raw, ns)
    p = cli(rs, *args, ns=ns)
    after = dump_all(raw, ns)
    assert p.returncode in (0, 1), (p.returncode, p.stderr)
    if what == "status":
        assert after == before
        if p.returncode:
            _cli_one_line(p)
        return
    if what in ("enqueue-queues", "dequeue") and p.returncode == 0:
        if what == "dequeue":
            assert not r.exists(key(ns, "jobs", ident=jid)) and \
                r.llen(key(ns, "ready", "b")) == 0
        else:
            (new,) = r.lrange(key(ns, "ready", "b"), 0, -1)
            assert new == p.stdout.strip() and r.hget(key(ns, "jobs", ident=new), "cls")
        assert r.get(key(ns, "queues" if what == "enqueue-queues" else "scheduled", "b")) \
            == "hostile"
        return
    assert p.returncode == 1, (p.stdout, p.stderr)
    _cli_one_line(p)
    assert after == before, "bg-cli changed Redis although it failed"
