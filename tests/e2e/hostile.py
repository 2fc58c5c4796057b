"""The catalogue of hostile data the hostile suites write into bg's keys, as another tool with a
bug (or a careless operator) could: keys of the wrong type, fields with values bg never writes,
job IDs in the forms other languages write, and ready entries that are not jobs.

Shared by test_hostile_corpus.py (each entry in turn) and test_hostile_random.py (a seeded mix),
so both judge the same data."""

import uuid as _uuid

# The type bg gives each kind of key (docs/schema.md), and every type a hostile tool may leave
# there instead.
RIGHT = {
    "jobs": "hash",
    "ready": "list",
    "scheduled": "zset",
    "attempts": "hash",
    "processing": "set",
    "completed": "zset",
    "failed": "zset",
    "dead": "zset",
    "stats": "hash",
    "jps": "string",
    "queues": "set",
}
TYPES = ("string", "list", "set", "zset", "hash")


def wrong_types(kind):
    return [t for t in TYPES if t != RIGHT[kind]]


# Creates KEYS[1] with the type ARGV[1] only when the key does not exist, in one step, so that a
# hostile write never destroys a record bg made a moment before (that would be a loss the test
# caused, not one bg caused). ARGV[2] is the value written; ARGV[3] a TTL in ms (0: none).
_PLANT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t, v = ARGV[1], ARGV[2]
if t == 'string' then redis.call('SET', KEYS[1], v)
elseif t == 'list' then redis.call('RPUSH', KEYS[1], v)
elseif t == 'set' then redis.call('SADD', KEYS[1], v)
elseif t == 'zset' then redis.call('ZADD', KEYS[1], 1, v)
elseif t == 'hash' then redis.call('HSET', KEYS[1], 'hostile', v)
else return redis.error_reply('unknown type ' .. t) end
if tonumber(ARGV[3]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
return 1
"""


def plant(r, key, typ, value="hostile", ttl_ms=0):
    """Writes a key of type typ at key unless something is there already; True if it did."""
    return r.eval(_PLANT, 1, key, typ, value, ttl_ms) == 1


def key(ns, kind, queue="b", ident=None):
    """The name of a key of kind (docs/schema.md): per queue, per job or attempt (ident), or the
    one NS:queues; for jps, ident is the slot."""
    if kind == "queues":
        return f"{ns}:queues"
    if kind in ("jobs", "attempts"):
        return f"{ns}:{kind}:{ident}"
    if kind == "jps":
        return f"{ns}:jps:{queue}:{ident}"
    return f"{ns}:{kind}:{queue}"


def server_ms(r):
    s, us = r.time()
    return s * 1000 + us // 1000


def jps_keys(r, ns, queue, ahead_s=30.0):
    """The jps slot keys of queue from a second ago to ahead_s seconds from now: the keys a
    finish will count its completions in while a case runs."""
    slot = server_ms(r) // 100
    return [key(ns, "jps", queue, s) for s in range(slot - 10, slot + int(ahead_s * 10) + 1)]


MB = 1 << 20

# Values for job and attempt fields that bg never writes. Each is bytes or str; "nul" and
# "nonutf8" carry bytes that C strings and UTF-8 decoders trip on.
NUMBERS = {
    "huge": "9" * 40,
    "megabyte": "7" * MB,
    "negative": "-5",
    "nonnumeric": "abc",
    "decimal": "1.5",
    "empty": "",
    "nul": b"1\x002",
    "nonutf8": b"\xff\xfe1",
}
TEXTS = {
    "huge": "x" * MB,
    "negative": "-5",
    "empty": "",
    "nul": b"bg.noop\x00tail",
    "nonutf8": b"\xff\xfe\xc3(",
}


def uuid_forms(u=None):
    """One job UUID in each form another language writes it (brief point 3)."""
    u = u or str(_uuid.uuid4())
    return {
        "upper": u.upper(),
        "mixed": u[:18].upper() + u[18:],
        "braced": "{" + u + "}",
        "braced-upper": "{" + u.upper() + "}",
    }


def junk_entries(real):
    """Ready-list entries that are not jobs (brief point 3: dropped, with a log line cut to 100
    bytes); real is the UUID of a real job, for the entries that alias it."""
    return {
        "megabyte": "x" * MB,
        "megabyte-nonutf8": b"\xff" * MB,
        "megabyte-nul": b"\x00" * MB,
        "empty": "",
        "not-a-uuid": "not-a-uuid",
        "no-job-hash": str(_uuid.uuid4()),
        "upper-alias": real.upper(),
        "nul-suffix": real.encode() + b"\x00",
        "space-suffix": real + " ",
        "unbalanced-brace": "{" + real,
    }


def dump_all(raw, ns):
    """Every key of ns with its DUMP: two snapshots compare equal when nothing changed."""
    return {k: raw.dump(k) for k in raw.scan_iter(match=f"{ns}:*".encode(), count=1000)}
