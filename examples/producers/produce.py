#!/usr/bin/env python3
"""Enqueues one bg job from Python with redis-py (Debian: python3-redis; pip: redis).

    produce.py CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]

Prints the job's UUID. ARG (default {}) is stored byte for byte. With --in the job is delayed:
it goes into the scheduled set and a bg-watcher moves it to the ready list when due. The Redis
server is $BG_REDIS_URL, else $REDIS_URL, else redis://127.0.0.1:6379/0; the namespace is
$BG_NAMESPACE, else bg. Bad input exits 2, a Redis error exits 1. The keys and fields are those
of docs/schema.md."""

import argparse
import os
import re
import sys
import uuid

import redis

# bg's rule for queue names (1 to 128) and namespaces (1 to 64): bg's programs refuse others.
NAME = re.compile(r"[A-Za-z0-9_.-]+")
SECONDS = re.compile(r"[0-9]+(\.[0-9]*)?|\.[0-9]+")
COUNT = re.compile(r"[0-9]+")
MAX_MS = 2**53  # what bg accepts, so the due time stays an exact integer everywhere


def env(name, default):
    """An environment variable, where an empty one counts as unset, as bg's programs do."""
    return os.environ.get(name) or default


def parse_args(argv):
    p = argparse.ArgumentParser(prog="produce.py", description="Enqueues a bg job.")
    p.add_argument("cls", metavar="CLASS", help="the class a worker dispatches on")
    p.add_argument("arg", metavar="ARG", nargs="?", default="{}",
                   help="the job's arguments, usually JSON (default {})")
    p.add_argument("-q", "--queue", default="default", help="the queue (default: default)")
    p.add_argument("--in", dest="delay", metavar="SECONDS",
                   help="run it this many seconds from now (decimals allowed)")
    p.add_argument("--retries", metavar="N", help="retry it at most N times")
    a = p.parse_args(argv)
    a.ns = env("BG_NAMESPACE", "bg")
    if not NAME.fullmatch(a.ns) or len(a.ns) > 64:
        p.error(f"invalid namespace {a.ns!r} in $BG_NAMESPACE: 1 to 64 of A-Z a-z 0-9 _ . -")
    if not NAME.fullmatch(a.queue) or len(a.queue) > 128:
        p.error(f"invalid queue {a.queue!r}: 1 to 128 of A-Z a-z 0-9 _ . -")
    if a.delay is not None:
        ms = float(a.delay) * 1000 if SECONDS.fullmatch(a.delay) else -1
        if not 0 <= ms <= MAX_MS:
            p.error(f"invalid --in {a.delay!r}: a number of seconds such as 30 or 1.5")
        a.delay = round(ms)
    if a.retries is not None and (not COUNT.fullmatch(a.retries) or int(a.retries) > 2**31 - 1):
        p.error(f"invalid --retries {a.retries!r}: a whole number from 0 to 2147483647")
    # The class and arguments exactly as given, even bytes that are not UTF-8.
    a.cls, a.arg = os.fsencode(a.cls), os.fsencode(a.arg)
    return a


def enqueue(r, ns, queue, cls, arg, delay_ms=None, retries=None):
    """Writes the job and makes it visible in one MULTI/EXEC, so a producer that dies halfway
    leaves nothing behind; returns the job's UUID."""
    job = str(uuid.uuid4())  # lowercase, random (version 4): bg drops any other kind
    seconds, micros = r.time()  # the server's clock, the one bg's programs compare against
    now = seconds * 1000 + micros // 1000
    fields = {"que": queue, "cls": cls, "arg": arg, "qat": now}
    if retries is not None:
        fields["rty"] = retries
    with r.pipeline(transaction=True) as tx:
        if delay_ms is None:
            tx.hset(f"{ns}:jobs:{job}", mapping=fields)
            tx.rpush(f"{ns}:ready:{queue}", job)
        else:
            fields["pat"] = now + delay_ms
            tx.hset(f"{ns}:jobs:{job}", mapping=fields)
            tx.zadd(f"{ns}:scheduled:{queue}", {job: fields["pat"]})
        tx.sadd(f"{ns}:queues", queue)  # so bg-cli status and the watchers know it at once
        tx.execute()
    return job


def main(argv):
    a = parse_args(argv)
    url = env("BG_REDIS_URL", env("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        r = redis.Redis.from_url(url)
    except ValueError as e:
        print(f"produce.py: invalid Redis URL: {e}", file=sys.stderr)
        return 2
    try:
        with r:
            print(enqueue(r, a.ns, a.queue, a.cls, a.arg, a.delay, a.retries))
    except redis.RedisError as e:
        print(f"produce.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
