"""bg-cli end to end: what `enqueue` writes is exactly the hash of docs/schema.md#keys, `dequeue`
removes only waiting jobs, and `status` prints the table of docs/cli.md for figures set up
directly in Redis and for workers and fibers counted from real named connections. Every bad
flag is a usage error that writes nothing."""

import datetime
import json
import os
import re

import pytest
import redis

from conftest import (RedisServer, _free_port, cli, cli_piped, clients_named, exe, run,
                      wait_for)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
HEADER = "workers fibers jps ready scheduled processing completed failed dead"


def server_ms(r):
    sec, usec = r.time()
    return sec * 1000 + usec // 1000


def ok(p):
    assert p.returncode == 0, f"exit {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}"
    return p.stdout


def one_line_error(p, status):
    """The command failed with status and said so in one line on stderr, nothing on stdout."""
    assert p.returncode == status, f"exit {p.returncode}, want {status}: {p.stderr!r}"
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and p.stderr.endswith("\n"), f"want one line: {p.stderr!r}"
    assert lines[0].startswith("bg-cli: ")
    return lines[0]


def enqueue(rs, *args, **kw):
    out = ok(cli(rs, "enqueue", *args, **kw)).splitlines()
    assert len(out) == 1 and UUID_RE.match(out[0]), out
    return out[0]


# ---- enqueue ----


def test_enqueue_writes_exactly_the_spec_hash_and_pushes(rs, r):
    arg = '{"to":"a@b.c","body":"h\u00e9llo \\"w\\"\\tx"}'
    before = server_ms(r)
    jid = enqueue(rs, "Mail::Send", arg, "-q", "high")
    after = server_ms(r)
    h = r.hgetall(f"bg:jobs:{jid}")
    assert set(h) == {"que", "cls", "arg", "qat"}
    assert h["que"] == "high" and h["cls"] == "Mail::Send" and h["arg"] == arg
    assert re.fullmatch(r"\d+", h["qat"]) and before <= int(h["qat"]) <= after
    assert r.lrange("bg:ready:high", 0, -1) == [jid]
    assert r.smembers("bg:queues") == {"high"}
    assert not r.exists("bg:scheduled:high")


def test_enqueue_defaults_to_empty_object_and_default_queue(rs, r):
    jid = enqueue(rs, "Noop")
    assert r.hgetall(f"bg:jobs:{jid}")["arg"] == "{}"
    assert r.hget(f"bg:jobs:{jid}", "que") == "default"
    assert r.lrange("bg:ready:default", 0, -1) == [jid]


def test_enqueue_arg_is_stored_byte_for_byte(rs):
    raw = redis.Redis(port=rs.port)
    arg = b"\xff\xfe not UTF-8 \x01 {\n}"
    p = run([exe("bg-cli"), "-r", rs.url, "enqueue", "Bin", arg])
    assert p.returncode == 0, p.stderr
    jid = p.stdout.strip()
    assert raw.hget(f"bg:jobs:{jid}", "arg") == arg
    raw.close()


def test_options_may_come_before_or_after_arguments(rs, r):
    a = enqueue(rs, "-q", "low", "--retries", "2", "A", "[1]")
    b = enqueue(rs, "B", "--retries=4", "[2]", "--queue", "low")
    assert r.lrange("bg:ready:low", 0, -1) == [a, b]
    assert r.hmget(f"bg:jobs:{a}", "cls", "arg", "rty") == ["A", "[1]", "2"]
    assert r.hmget(f"bg:jobs:{b}", "cls", "arg", "rty") == ["B", "[2]", "4"]


@pytest.mark.parametrize("dur,ms", [("5m", 300000), ("1.5s", 1500), ("30", 30000),
                                    ("250ms", 250), ("2h", 7200000), ("1d", 86400000)])
def test_enqueue_in_schedules_with_pat(rs, r, dur, ms):
    before = server_ms(r)
    jid = enqueue(rs, "Later", "--in", dur, "-q", "mail")
    after = server_ms(r)
    h = r.hgetall(f"bg:jobs:{jid}")
    assert set(h) == {"que", "cls", "arg", "qat", "pat"}
    pat = int(h["pat"])
    assert before + ms <= pat <= after + ms
    assert pat == int(h["qat"]) + ms
    assert r.zrange("bg:scheduled:mail", 0, -1, withscores=True) == [(jid, float(pat))]
    assert not r.exists("bg:ready:mail")


@pytest.mark.parametrize("when", ["1893456000000", "2030-01-01T00:00:00Z",
                                  "2030-01-01T02:00:00.000+02:00",
                                  "2029-12-31T18:30:00-05:30"])
def test_enqueue_at_schedules_at_that_time(rs, r, when):
    want = 1893456000000
    jid = enqueue(rs, "At", "{}", "--at", when)
    assert r.hget(f"bg:jobs:{jid}", "pat") == str(want)
    assert r.zscore("bg:scheduled:default", jid) == want
    assert r.llen("bg:ready:default") == 0


def test_enqueue_at_with_milliseconds(rs, r):
    iso = "2031-05-06T07:08:09.123Z"
    want = int(datetime.datetime(2031, 5, 6, 7, 8, 9, 123000,
                                 tzinfo=datetime.timezone.utc).timestamp() * 1000)
    jid = enqueue(rs, "At", "--at", iso)
    assert int(r.hget(f"bg:jobs:{jid}", "pat")) == want


def test_enqueue_retries_writes_rty(rs, r):
    jid = enqueue(rs, "R", "--retries", "3")
    assert r.hget(f"bg:jobs:{jid}", "rty") == "3"
    jid = enqueue(rs, "R", "--retries", "0")
    assert r.hget(f"bg:jobs:{jid}", "rty") == "0"


def test_bulk_from_stdin_keeps_order(rs, r):
    lines = [json.dumps({"i": i, "s": "x" * (i % 7)}) for i in range(1000)]
    p = cli(rs, "enqueue", "Bulk", "-", "-q", "bulk", "--retries", "1",
            input="\n".join(lines) + "\n")
    ids = ok(p).splitlines()
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert all(UUID_RE.match(i) for i in ids)
    assert r.lrange("bg:ready:bulk", 0, -1) == ids
    pipe = r.pipeline()
    for i in ids:
        pipe.hmget(f"bg:jobs:{i}", "cls", "arg", "que", "rty")
    assert pipe.execute() == [["Bulk", line, "bulk", "1"] for line in lines]
    assert len(list(r.scan_iter("bg:jobs:*", count=1000))) == 1000


def test_bulk_lines_are_args_byte_for_byte(rs, r):
    # An empty line is an empty ARG, a last line needs no newline, a CR is kept.
    p = cli(rs, "enqueue", "L", "-", input='{"a":1}\n\nwin\r\nlast')
    ids = ok(p).splitlines()
    assert len(ids) == 4
    assert [r.hget(f"bg:jobs:{i}", "arg") for i in ids] == ['{"a":1}', "", "win\r", "last"]


def test_bulk_with_in_schedules_every_job(rs, r):
    ids = ok(cli(rs, "enqueue", "S", "-", "--in", "1h", input="a\nb\nc\n")).splitlines()
    assert len(ids) == 3
    assert set(r.zrange("bg:scheduled:default", 0, -1)) == set(ids)
    for i in ids:
        assert r.zscore("bg:scheduled:default", i) == int(r.hget(f"bg:jobs:{i}", "pat"))
    assert not r.exists("bg:ready:default")


def test_bulk_of_empty_input_prints_nothing(rs, r):
    assert ok(cli(rs, "enqueue", "E", "-", input="")) == ""
    assert r.dbsize() == 0


# ---- dequeue ----


def test_dequeue_ready_and_scheduled_jobs(rs, r):
    keep = enqueue(rs, "Keep")
    ready = enqueue(rs, "Ready")
    sched = enqueue(rs, "Sched", "--in", "1h")
    p = cli(rs, "dequeue", ready)
    assert p.returncode == 0 and p.stdout == "" and p.stderr == ""
    assert not r.exists(f"bg:jobs:{ready}")
    assert r.lrange("bg:ready:default", 0, -1) == [keep]
    ok(cli(rs, "dequeue", sched))
    assert not r.exists(f"bg:jobs:{sched}")
    assert r.zcard("bg:scheduled:default") == 0
    assert r.exists(f"bg:jobs:{keep}")


def test_dequeue_unknown_job_exits_1(rs, r):
    line = one_line_error(cli(rs, "dequeue", "0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d"), 1)
    assert "0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d" in line and "no job" in line
    one_line_error(cli(rs, "dequeue", "not-a-job"), 1)
    assert r.dbsize() == 0


def test_dequeue_running_job_exits_1_and_removes_nothing(rs, r):
    jid = enqueue(rs, "Busy", "-q", "work")
    # What a worker's claim leaves: the UUID off the list, an attempt in processing.
    assert r.lpop("bg:ready:work") == jid
    aid = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
    r.hset(f"bg:attempts:{aid}", mapping={"sta": server_ms(r), "job": jid, "wrk": 7,
                                          "que": "work"})
    r.sadd("bg:processing:work", aid)
    r.hset(f"bg:jobs:{jid}", "att", 1)
    before = {k: r.dump(k) for k in r.keys("*")}
    line = one_line_error(cli(rs, "dequeue", jid), 1)
    assert jid in line
    assert {k: r.dump(k) for k in r.keys("*")} == before


def test_dequeue_dead_job_exits_1(rs, r):
    jid = enqueue(rs, "Dead")
    r.lpop("bg:ready:default")
    r.zadd("bg:dead:default", {jid: server_ms(r)})
    one_line_error(cli(rs, "dequeue", jid), 1)
    assert r.exists(f"bg:jobs:{jid}")


# ---- status ----


def setup_figures(r, ns="bg", q="high"):
    """ready 3, scheduled 2, processing 1, counters 500000/7/2, and 35 completions in the last
    second spread over three 100 ms slots (plus slots outside the second that must not count)."""
    r.sadd(f"{ns}:queues", q)
    r.rpush(f"{ns}:ready:{q}", "a", "b", "c")
    r.zadd(f"{ns}:scheduled:{q}", {"d": 1, "e": 2})
    r.sadd(f"{ns}:processing:{q}", "f")
    r.hset(f"{ns}:stats:{q}", mapping={"completed": 500000, "failed": 7, "dead": 2})
    slot = server_ms(r) // 100
    for s, n in ((slot, 10), (slot - 1, 20), (slot - 2, 5), (slot - 20, 1000), (slot + 30, 99)):
        r.set(f"{ns}:jps:{q}:{s}", n, px=60000)


def test_status_table_matches_spec_format(rs, r):
    setup_figures(r)
    out = ok(cli(rs, "status", "-q", "high"))
    assert out == ("high\n" + HEADER + "\n"
                   "      0      0  35     3         2          1    500000      7    2\n")
    assert "\033" not in out


def test_status_empty_queue_and_blank_line_between(rs, r):
    setup_figures(r)
    out = ok(cli(rs, "status", "-q", "high,empty"))
    assert out == ("high\n" + HEADER + "\n"
                   "      0      0  35     3         2          1    500000      7    2\n"
                   "\n"
                   "empty\n" + HEADER + "\n"
                   "      0      0   0     0         0          0         0      0    0\n")


def test_status_defaults_to_known_queues_sorted(rs, r):
    r.sadd("bg:queues", "low", "high", "default", "a-z", "Zed")
    out = ok(cli(rs, "status"))
    blocks = out.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == ["Zed", "a-z", "default", "high", "low"]
    assert all(b.splitlines()[1] == HEADER for b in blocks)


def test_status_repeated_q_flags(rs, r):
    out = ok(cli(rs, "status", "-q", "b", "--queue", "a,b", "-q", "c"))
    names = [b.splitlines()[0] for b in out.split("\n\n")]
    assert names == ["b", "a", "c"]


def test_status_with_no_queues_says_so(rs, r):
    assert ok(cli(rs, "status")) == "no queues yet in namespace bg\n"


def test_status_json(rs, r):
    setup_figures(r)
    r.sadd("bg:queues", "low")
    doc = json.loads(ok(cli(rs, "status", "--json")))
    assert [q["name"] for q in doc["queues"]] == ["high", "low"]
    high = doc["queues"][0]
    want = {"name": "high", "workers": 0, "fibers": 0, "jps": 35, "ready": 3, "scheduled": 2,
            "processing": 1, "completed": 500000, "failed": 7, "dead": 2}
    assert {k: high[k] for k in want} == want
    assert all(type(high[k]) is int for k in want if k != "name")


class Conns:
    """Named connections opened with redis-py, closed at the end."""

    def __init__(self, rs):
        self.rs = rs
        self.conns = []
        self.ids = set()

    def open(self, name):
        c = redis.Redis(port=self.rs.port, decode_responses=True, single_connection_client=True)
        c.client_setname(name)
        self.conns.append(c)
        cid = c.client_id()
        self.ids.add(str(cid))
        return cid

    def close(self):
        """Closes them all and waits until the server has let go of them, so the next test's
        CLIENT LIST is its own."""
        for c in self.conns:
            c.close()
            c.connection_pool.disconnect()  # close() only hands the connection back
        r = self.rs.client()
        wait_for(lambda: not self.ids & {c["id"] for c in r.client_list()},
                 what="named connections to close")
        r.close()


@pytest.fixture
def conns(rs):
    c = Conns(rs)
    yield c
    c.close()


def test_status_counts_workers_and_fibers_from_live_connections(rs, r, conns):
    r.sadd("bg:queues", "high", "low", "idle")
    w1 = conns.open("bg-worker:high,low")
    w2 = conns.open("bg-worker:low")
    for _ in range(3):
        conns.open(f"bg-worker-fiber:{w1}")
    conns.open(f"bg-worker-fiber:{w2}")
    # Decoys: a fiber of a connection that is no worker, workers and fibers of other
    # namespaces (one of which, "bg-worker", shares a prefix), near-miss names.
    conns.open("bg-worker-fiber:999999")
    conns.open("other-worker:high")
    conns.open(f"other-worker-fiber:{w1}")
    ow = conns.open("bg-worker-worker:high")
    conns.open(f"bg-worker-worker-fiber:{ow}")
    conns.open("bg-workers:high")
    conns.open("bg-worker:highest")
    conns.open(f"bg-worker-fiber:{w1}x")
    wait_for(lambda: len(clients_named(r, "bg-worker-fiber:")) == 6, what="fiber connections")
    doc = json.loads(ok(cli(rs, "status", "--json")))
    got = {q["name"]: (q["workers"], q["fibers"]) for q in doc["queues"]}
    assert got == {"high": (1, 3), "low": (2, 4), "idle": (0, 0)}
    out = ok(cli(rs, "status", "-q", "low"))
    assert out.splitlines()[2].split()[:2] == ["2", "4"]
    # The namespace "bg-worker" sees only its own worker and fiber.
    doc = json.loads(ok(cli(rs, "status", "--json", "-q", "high", ns="bg-worker")))
    assert (doc["queues"][0]["workers"], doc["queues"][0]["fibers"]) == (1, 1)


def test_status_forgets_a_worker_that_disconnects(rs, r, conns):
    w = conns.open("bg-worker:high")
    conns.open(f"bg-worker-fiber:{w}")
    assert json.loads(ok(cli(rs, "status", "--json", "-q", "high")))["queues"][0]["workers"] == 1
    r.client_kill_filter(_id=w)
    wait_for(lambda: not [c for c in r.client_list() if c["id"] == str(w)], what="kill")
    doc = json.loads(ok(cli(rs, "status", "--json", "-q", "high")))
    assert (doc["queues"][0]["workers"], doc["queues"][0]["fibers"]) == (0, 0)


PASSWORD = "s3cr3t-pw"


class AuthRedisServer(RedisServer):
    """A test server that wants a password (requirepass), pinged with it."""

    def __init__(self):
        super().__init__(extra=["--requirepass", PASSWORD])

    def _ping(self):
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited")
        try:
            return redis.Redis(port=self.port, password=PASSWORD, socket_timeout=1).ping()
        except redis.exceptions.ConnectionError:
            return False


@pytest.fixture
def auth_server():
    srv = AuthRedisServer().start()
    yield srv
    srv.cleanup()


def test_status_verbose_masks_the_password(auth_server):
    url = f"redis://:s3cr3t-pw@127.0.0.1:{auth_server.port}/0"
    r = redis.Redis(port=auth_server.port, password=PASSWORD, decode_responses=True)
    r.sadd("bg:queues", "high", "low")
    p = run([exe("bg-cli"), "-r", url, "status", "-v"])
    out = ok(p)
    assert "s3cr3t" not in out
    blocks = out.split("\n\n")
    assert [b.splitlines()[0] for b in blocks[:2]] == ["high", "low"]
    head, row = blocks[2].splitlines()
    assert head.split() == ["time", "url", "namespace", "queues"]
    t, u, ns, qs = row.split()
    assert float(t) >= 0 and re.fullmatch(r"\d+\.\d{3}", t)
    assert u == f"redis://:***@127.0.0.1:{auth_server.port}/0"
    assert (ns, qs) == ("bg", "high,low")
    # Columns line up as in the other tables: right-aligned, each header ends where its value
    # ends.
    assert len(head) == len(row)
    for h, v in zip(head.split(), row.split()):
        assert head.index(h) + len(h) == row.index(v) + len(v), (h, v)
    # The ACL user form works too, and a wrong password is one clear line, masked.
    url_user = f"redis://default:s3cr3t%2Dpw@127.0.0.1:{auth_server.port}/0"
    ok(run([exe("bg-cli"), "-r", url_user, "status"]))
    bad = f"redis://:wrong-pw@127.0.0.1:{auth_server.port}/0"
    line = one_line_error(run([exe("bg-cli"), "-r", bad, "status"]), 1)
    assert "wrong-pw" not in line and f"redis://:***@127.0.0.1:{auth_server.port}/0" in line
    doc = json.loads(ok(run([exe("bg-cli"), "-r", url, "status", "--json", "-v"])))
    assert doc["url"] == f"redis://:***@127.0.0.1:{auth_server.port}/0"
    assert doc["namespace"] == "bg" and doc["time_ms"] >= 0
    r.close()


# ---- namespaces and the environment ----


def test_onyx_namespace_keys_and_client_name(rs, r):
    jid = enqueue(rs, "Onyx::Job", "{}", ns="onyx-background")
    assert r.hget(f"onyx-background:jobs:{jid}", "cls") == "Onyx::Job"
    assert r.lrange("onyx-background:ready:default", 0, -1) == [jid]
    assert r.smembers("onyx-background:queues") == {"default"}
    assert not list(r.scan_iter("bg:*"))
    out = ok(cli(rs, "status", ns="onyx-background"))
    assert out.splitlines()[0] == "default"
    assert out.splitlines()[2].split()[3] == "1"
    ok(cli(rs, "dequeue", jid, ns="onyx-background"))
    assert not r.exists(f"onyx-background:jobs:{jid}")


@pytest.mark.parametrize("ns", [None, "onyx-background"])
def test_client_name_is_ns_cli(rs, r, ns):
    # A bulk enqueue keeps its connection open while it waits for more input.
    with cli_piped(rs, "enqueue", "C", "-", ns=ns) as p:
        p.stdin.write("{}\n" * 1000)
        p.stdin.flush()
        for _ in range(1000):
            assert UUID_RE.match(p.stdout.readline().strip())
        name = f"{ns or 'bg'}-cli"
        conns = wait_for(lambda: clients_named(r, name), what="the bg-cli connection")
        assert [c["name"] for c in conns] == [name]
    assert p.returncode == 0


def test_url_and_namespace_from_the_environment(rs, r):
    env = dict(os.environ, BG_REDIS_URL=rs.url, BG_NAMESPACE="envns", REDIS_URL="redis://x:1")
    p = run([exe("bg-cli"), "enqueue", "E"], env=env)
    jid = ok(p).strip()
    assert r.hget(f"envns:jobs:{jid}", "cls") == "E"
    env = dict(os.environ, BG_REDIS_URL="", REDIS_URL=rs.url, BG_NAMESPACE="")
    jid = ok(run([exe("bg-cli"), "enqueue", "F"], env=env)).strip()
    assert r.hget(f"bg:jobs:{jid}", "cls") == "F"
    # -r and -n win over the environment.
    env = dict(os.environ, BG_REDIS_URL="redis://127.0.0.1:1/0", BG_NAMESPACE="nope")
    jid = ok(run([exe("bg-cli"), "-r", rs.url, "-n", "flag", "enqueue", "G"], env=env)).strip()
    assert r.exists(f"flag:jobs:{jid}")


# ---- usage and errors ----


def test_help_and_version(rs, r):
    p = run([exe("bg-cli"), "-h"])
    assert p.returncode == 0 and p.stderr == ""
    for name in ("status", "enqueue", "dequeue", "retry"):
        assert f"  {name} " in p.stdout
    for name in ("show", "workers", "pause", "resume", "cancel", "metrics", "ping"):
        assert f"  {name} " in p.stdout
    for name in ("status", "enqueue", "dequeue", "retry"):
        p = run([exe("bg-cli"), name, "-h"])
        assert p.returncode == 0 and p.stderr == ""
        assert p.stdout.startswith(f"usage: bg-cli [-r URL] [-n NS] {name}")
        p = run([exe("bg-cli"), "-r", "http://bad", name, "--help"])
        assert p.returncode == 0
    p = run([exe("bg-cli"), "-V"])
    assert p.returncode == 0 and re.fullmatch(r"bg-cli \d+\.\d+\.\d+\n", p.stdout)
    assert r.dbsize() == 0


URL = object()  # stands for the test server's URL

BAD_GLOBAL = [
    (["-r", "redis://h:0", "status"], "redis://h:0"),
    (["-r", "redis://h:65536/0", "status"], "65536"),
    (["-r", "redis://h:port", "status"], "redis://h:port"),
    (["-r", "redis://h:6379/db", "enqueue", "C"], "redis://h:6379/db"),
    (["-r", "redis://:6379", "status"], "host"),
    (["-r", "http://127.0.0.1:6379", "status"], "http://"),
    (["-r", "rediss://127.0.0.1:6379?ssl_cert_reqs=none", "status"], "query"),
    (["-r", "redis://127.0.0.1:6379", "--tls-server-name", "h", "status"], "rediss://"),
    (["-r", "redis://:hunter2@h:0/0", "dequeue", "x"], "redis://:***@h:0/0"),
    (["--redis", "redis://:hunter2%zz@h", "status"], "redis://:***@h"),
    (["-r", "redis://user@h", "status"], "redis://user@h"),
    (["-r", "redis://h o", "status"], "redis://h o"),
    (["-r", "", "status"], "URL"),
    (["-r", URL, "-n", "bad ns", "enqueue", "C"], "bad ns"),
    (["-r", URL, "--namespace", "", "status"], "namespace"),
    (["-r", URL, "-n", "a" * 65, "status"], "namespace"),
    (["-r", URL, "-n", "a:b", "status"], "a:b"),
    (["-r", URL, "-x", "status"], "-x"),
    (["-r", URL, "--bogus", "status"], "--bogus"),
    (["-r"], "-r"),
    (["-r", URL], "no command"),
    (["-r", URL, "frobnicate"], "frobnicate"),
    (["-r", URL, "show", "x"], "show"),
    (["-r", URL, "status", "-r", URL], "-r"),
]


@pytest.mark.parametrize("args,needle", BAD_GLOBAL)
def test_bad_global_usage_exits_2(rs, r, args, needle):
    argv = [exe("bg-cli")] + [rs.url if a is URL else a for a in args]
    line = one_line_error(run(argv), 2)
    assert needle in line
    assert "hunter2" not in line
    assert r.dbsize() == 0


BAD_COMMAND = [
    (["status", "-q", "a,,b"], "''"),
    (["status", "-q", "bad queue"], "bad queue"),
    (["status", "-q", ""], "''"),
    (["status", "-q", "a:b"], "a:b"),
    (["status", "extra"], "extra"),
    (["status", "--json=1"], "--json"),
    (["status", "-q"], "-q"),
    (["enqueue"], "class"),
    (["enqueue", ""], "class"),
    (["enqueue", "C", "{}", "more"], "more"),
    (["enqueue", "C", "-q", "bad/queue"], "bad/queue"),
    (["enqueue", "C", "-q", "a,b"], "a,b"),
    (["enqueue", "C", "--in", "5x"], "5x"),
    (["enqueue", "C", "--in", "-1"], "-1"),
    (["enqueue", "C", "--in", ""], "''"),
    (["enqueue", "C", "--in", "1e3"], "1e3"),
    (["enqueue", "C", "--in", "inf"], "inf"),
    (["enqueue", "C", "--at", "yesterday"], "yesterday"),
    (["enqueue", "C", "--at", "2026-02-30T00:00:00Z"], "2026-02-30"),
    (["enqueue", "C", "--at", "2026-11-22T10:00:00"], "2026-11-22T10:00:00"),
    (["enqueue", "C", "--at", "2026-11-22T24:00:00Z"], "24:00"),
    (["enqueue", "C", "--at", "-5"], "-5"),
    (["enqueue", "C", "--in", "5", "--at", "1893456000000"], "--in and --at"),
    (["enqueue", "C", "--retries", "-1"], "-1"),
    (["enqueue", "C", "--retries", "abc"], "abc"),
    (["enqueue", "C", "--retries", "1.5"], "1.5"),
    (["enqueue", "C", "--retries", "99999999999"], "99999999999"),
    (["enqueue", "C", "--retries"], "--retries"),
    (["enqueue", "C", "--frob"], "--frob"),
    (["enqueue", "C", "-", "extra"], "extra"),
    (["dequeue"], "job"),
    (["dequeue", "a", "b"], "b"),
    (["dequeue", "-z", "a"], "-z"),
]


@pytest.mark.parametrize("args,needle", BAD_COMMAND)
def test_bad_command_usage_exits_2_and_writes_nothing(rs, r, args, needle):
    line = one_line_error(cli(rs, *args, input="{}\n"), 2)
    assert needle.lower() in line.lower()
    assert f"bg-cli {args[0]} -h" in line
    assert r.dbsize() == 0


@pytest.mark.parametrize("args", [["status"], ["status", "--json"], ["enqueue", "C"],
                                  ["enqueue", "C", "-"], ["dequeue", "x"]])
def test_redis_down_exits_1_naming_the_masked_url(args):
    port = _free_port()
    url = f"redis://:hunter2@127.0.0.1:{port}/0"
    line = one_line_error(run([exe("bg-cli"), "-r", url] + args, input="{}\n"), 1)
    assert f"redis://:***@127.0.0.1:{port}/0" in line
    assert "hunter2" not in line


def test_unix_socket_url(tmp_path):
    sock = str(tmp_path / "r.sock")
    srv = RedisServer(extra=["--unixsocket", sock, "--unixsocketperm", "700"]).start()
    try:
        wait_for(lambda: os.path.exists(sock), what="the socket")
        jid = ok(run([exe("bg-cli"), "-r", f"unix://{sock}?db=3", "enqueue", "U"])).strip()
        r3 = redis.Redis(port=srv.port, db=3, decode_responses=True)
        assert r3.hget(f"bg:jobs:{jid}", "cls") == "U"
        r3.close()
    finally:
        srv.cleanup()
