"""The no-loss invariant, read from Redis alone: every real job is in exactly one of the places a
job can rest (completed, waiting in ready, scheduled, dead), and nothing is left processing.

Used by the hostile-data, fault and chaos suites after each case, so they all judge "nothing
lost" the same way."""

import uuid as _uuid


def new_jobs(r, n, queue="default", cls="bg.noop", arg="{}", ns="bg", extra=None):
    """Enqueues n jobs as a foreign producer does (HSET, then RPUSH); returns their UUIDs."""
    ids = [str(_uuid.uuid4()) for _ in range(n)]
    p = r.pipeline(transaction=False)
    for jid in ids:
        fields = {"que": queue, "cls": cls, "arg": arg, "qat": "0"}
        if extra:
            fields.update(extra)
        p.hset(f"{ns}:jobs:{jid}", mapping=fields)
        p.rpush(f"{ns}:ready:{queue}", jid)
    p.execute()
    return ids


def _typed(r, key, want):
    return r.type(key) == want


def places(r, jobs, queues, ns="bg"):
    """Maps each job UUID of jobs to the list of places it is found in now: 'completed',
    'ready', 'scheduled', 'dead', 'processing' (an attempt of it still runs). Keys of the wrong
    type are skipped (a hostile case may leave one), so the map says where jobs are in the keys
    bg can read."""
    want = set(jobs)
    found = {j: [] for j in jobs}

    def attempt_jobs(key):
        aids = r.zrange(key, 0, -1) if _typed(r, key, "zset") else r.smembers(key)
        p = r.pipeline(transaction=False)
        aids = list(aids)
        for a in aids:
            p.type(f"{ns}:attempts:{a}")
        types = p.execute()
        p = r.pipeline(transaction=False)
        ok = [a for a, t in zip(aids, types) if t == "hash"]
        for a in ok:
            p.hget(f"{ns}:attempts:{a}", "job")
        return p.execute()

    for q in queues:
        if _typed(r, f"{ns}:completed:{q}", "zset"):
            for j in attempt_jobs(f"{ns}:completed:{q}"):
                if j in want:
                    found[j].append("completed")
        if _typed(r, f"{ns}:processing:{q}", "set"):
            for j in attempt_jobs(f"{ns}:processing:{q}"):
                if j in want:
                    found[j].append("processing")
        if _typed(r, f"{ns}:ready:{q}", "list"):
            for j in r.lrange(f"{ns}:ready:{q}", 0, -1):
                if j in want:
                    found[j].append("ready")
        for kind in ("scheduled", "dead"):
            key = f"{ns}:{kind}:{q}"
            if _typed(r, key, "zset"):
                for j in r.zrange(key, 0, -1):
                    if j in want:
                        found[j].append(kind)
    return found


def check(r, jobs, queues, ns="bg", allow=("completed", "ready", "scheduled", "dead")):
    """Asserts the invariant for jobs: each is in exactly one place, that place is one of allow,
    and no job is still processing. Returns {place: count} for the test's output."""
    found = places(r, jobs, queues, ns)
    lost = [j for j, p in found.items() if not p]
    twice = {j: p for j, p in found.items() if len(p) > 1}
    wrong = {j: p for j, p in found.items() if len(p) == 1 and p[0] not in allow}
    assert not lost, f"{len(lost)} jobs are nowhere, e.g. {lost[:3]}"
    assert not twice, f"{len(twice)} jobs are in two places, e.g. {list(twice.items())[:3]}"
    assert not wrong, f"{len(wrong)} jobs are in a place not allowed, e.g. {list(wrong.items())[:3]}"
    counts = {}
    for p in found.values():
        counts[p[0]] = counts.get(p[0], 0) + 1
    return counts


def processing_empty(r, queues, ns="bg"):
    """True when no queue has an attempt in processing (keys of the wrong type aside)."""
    for q in queues:
        key = f"{ns}:processing:{q}"
        if _typed(r, key, "set") and r.scard(key):
            return False
    return True
