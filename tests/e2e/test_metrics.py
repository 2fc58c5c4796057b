"""bg-cli metrics and bg-watcher --metrics: the figures of status and workers in the Prometheus
text exposition format 0.0.4, checked by a strict parser against status --json, and served over
HTTP by the watcher to a real HTTP client."""

import json
import os
import signal
import re
import socket
import time
import urllib.error
import urllib.request

import pytest

from conftest import cli, exe, run, wait_for

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


def parse_value(s):
    if s in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise ValueError(f"bad value {s!r}")
    return float(s)


def parse_labels(s, i, line):
    """Parses {a="x",b="y"} starting at s[i] == '{'; returns (labels, index after '}')."""
    labels = {}
    i += 1
    while True:
        if s[i] == "}":
            return labels, i + 1
        m = LABEL.match(s, i)
        assert m, f"bad label name in {line!r}"
        name = m.group(0)
        i = m.end()
        assert s[i:i + 2] == '="', f"bad label in {line!r}"
        i += 2
        val = []
        while s[i] != '"':
            if s[i] == "\\":
                esc = s[i + 1]
                assert esc in '\\"n', f"bad escape \\{esc} in {line!r}"
                val.append({"\\": "\\", '"': '"', "n": "\n"}[esc])
                i += 2
            else:
                assert s[i] != "\n"
                val.append(s[i])
                i += 1
        i += 1
        assert name not in labels, f"label {name} twice in {line!r}"
        labels[name] = "".join(val)
        if s[i] == ",":
            i += 1
        else:
            assert s[i] == "}", f"expected , or }} in {line!r}"


def parse(text):
    """A strict reader of the text format 0.0.4: every line a HELP, a TYPE or a sample; each
    family's HELP and TYPE before its samples, its samples together, no series twice. Returns
    ({name: type}, {(name, frozenset(labels.items())): value})."""
    assert text.endswith("\n"), "the text ends with a newline"
    text.encode("utf-8")
    types, helps, samples, done = {}, set(), {}, set()
    current = None
    for line in text[:-1].split("\n"):
        assert line, "no blank lines"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[0] == "#" and parts[1] in ("HELP", "TYPE"), line
            name = parts[2]
            assert NAME.fullmatch(name), line
            assert name not in samples_names(samples), f"{line!r} after {name}'s samples"
            if parts[1] == "TYPE":
                assert parts[3] in TYPES and name not in types, line
                types[name] = parts[3]
            else:
                assert name not in helps and len(parts) == 4 and parts[3], line
                assert not re.search(r"\\[^\\n]", parts[3]), line
                helps.add(name)
            if current != name:
                if current:
                    done.add(current)
                current = name
            continue
        m = NAME.match(line)
        assert m, line
        name, i = m.group(0), m.end()
        labels = {}
        if i < len(line) and line[i] == "{":
            labels, i = parse_labels(line, i, line)
        assert line[i] == " ", line
        rest = line[i + 1:].split(" ")
        assert 1 <= len(rest) <= 2, line
        value = parse_value(rest[0])
        if len(rest) == 2:
            int(rest[1])
        assert name not in done, f"{name}'s samples are not together"
        assert name == current and name in types and name in helps, f"{name} without HELP/TYPE"
        key = (name, frozenset(labels.items()))
        assert key not in samples, f"series twice: {line!r}"
        samples[key] = value
    for name, t in types.items():
        if t == "counter":
            assert name.endswith("_total"), name
    return types, samples


def samples_names(samples):
    return {k[0] for k in samples}


def by_queue(samples, name):
    return {dict(k[1])["queue"]: v for k, v in samples.items() if k[0] == name}


def metrics(rs, *args, ns=None):
    res = cli(rs, "metrics", *args, ns=ns)
    assert res.returncode == 0, res.stderr
    return res.stdout


def status(rs):
    res = cli(rs, "status", "--json")
    assert res.returncode == 0, res.stderr
    return {q["name"]: q for q in json.loads(res.stdout)["queues"]}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_strict_parser_rejects_what_the_format_forbids():
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{q="\\"\\\\\\n"} 1\n'
    assert parse(good)[1] == {("a_total", frozenset({("q", '"\\\n')})): 1.0}
    for bad in (good[:-1], good + "\n", good + 'a_total{q="\\"\\\\\\n"} 2\n',
                good.replace("\\n", "\\x"), good.replace("# TYPE a_total counter\n", ""),
                good.replace("counter", "gauge").replace("a_total", "a") + "# HELP b y\n"
                "# TYPE b gauge\nb 1\na 2\n", good.replace(" 1\n", " one\n"),
                "# HELP c x\n# TYPE c counter\nc 1\n"):
        with pytest.raises((AssertionError, ValueError)):
            parse(bad)


def test_figures_match_status(rs, r, spawn):
    for _ in range(3):
        cli(rs, "enqueue", "bg.noop", "-q", "high")
    cli(rs, "enqueue", "bg.fail", '{"err":"Boom","msg":"no"}', "-q", "high", "--retries", "0")
    cli(rs, "enqueue", "bg.fail", '{"err":"Boom"}', "-q", "high", "--retries", "1")
    cli(rs, "enqueue", "bg.noop", "-q", "later", "--in", "1h")
    for _ in range(2):
        cli(rs, "enqueue", "bg.noop", "-q", "waiting")
    w = spawn([exe("bg-worker"), "-r", rs.url, "-q", "high,later", "-c", "2"])
    wait_for(lambda: r.zcard("bg:completed:high") == 3 and r.zcard("bg:failed:high") == 2
             and r.zcard("bg:scheduled:high") == 1, what="the jobs to run")
    # jps falls back to 0 a second after the last completion, and the worker's row is up, its
    # busy count refreshed by a beat after the last job (beats come once a second).
    def quiet():
        m = metrics(rs)
        busy = [v for k, v in parse(m)[1].items() if k[0] == "bg_worker_busy"]
        return all(q["jps"] == 0 for q in status(rs).values()) and "bg_workers 1\n" in m \
            and busy == [0]
    wait_for(quiet, what="a quiet second")
    types, samples = parse(metrics(rs))
    st = status(rs)
    assert set(by_queue(samples, "bg_queue_ready")) == set(st) == {"high", "later", "waiting"}
    for field, name in (("completed", "bg_jobs_completed_total"),
                        ("failed", "bg_jobs_failed_total"), ("dead", "bg_jobs_dead_total"),
                        ("ready", "bg_queue_ready"), ("scheduled", "bg_queue_scheduled"),
                        ("processing", "bg_queue_processing"), ("workers", "bg_queue_workers"),
                        ("fibers", "bg_queue_fibers"), ("jps", "bg_queue_jobs_per_second")):
        assert by_queue(samples, name) == {q: st[q][field] for q in st}, name
    assert types["bg_jobs_completed_total"] == "counter"
    assert types["bg_queue_ready"] == "gauge"
    assert by_queue(samples, "bg_jobs_completed_total")["high"] == 3
    assert by_queue(samples, "bg_jobs_dead_total")["high"] == 1
    assert by_queue(samples, "bg_queue_workers") == {"high": 1, "later": 1, "waiting": 0}
    assert by_queue(samples, "bg_queue_fibers")["high"] == 2
    # Latency: the age of the oldest ready job, as status -v says it.
    lat = by_queue(samples, "bg_queue_latency_seconds")
    assert lat["high"] == 0 and lat["later"] == 0
    res = cli(rs, "status", "-v", "--json", "-q", "waiting")
    want = json.loads(res.stdout)["queues"][0]["latency_ms"] / 1000
    assert abs(lat["waiting"] - want) < 5 and lat["waiting"] >= 0
    # The worker, labelled by host and pid.
    wl = {k[1]: v for k, v in samples.items() if k[0] == "bg_worker_fibers"}
    assert wl == {frozenset({("host", socket.gethostname()), ("pid", str(w.pid))}): 2}
    assert samples[("bg_workers", frozenset())] == 1
    busy = [v for k, v in samples.items() if k[0] == "bg_worker_busy"]
    assert busy == [0]
    start = [v for k, v in samples.items() if k[0] == "bg_worker_start_time_seconds"]
    assert abs(start[0] - int(r.time()[0])) < 60
    # -q keeps to those queues.
    _, some = parse(metrics(rs, "-q", "waiting"))
    assert set(by_queue(some, "bg_queue_ready")) == {"waiting"}


def test_an_empty_namespace_still_parses(rs):
    types, samples = parse(metrics(rs))
    assert samples[("bg_workers", frozenset())] == 0
    assert "bg_jobs_completed_total" in types


def test_label_values_are_escaped(rs, r):
    # A heartbeat hash another program wrote, with every character the format escapes, and
    # bytes that are not UTF-8.
    host = b'a"b\\c\nd\xff\xfee'
    r.hset("bg:worker:999999", mapping={"host": host, "pid": "42", "queues": "q",
                                        "fibers": "3", "busy": "1", "started": "1000",
                                        "state": "quiet"})
    r.pexpire("bg:worker:999999", 60000)
    r.sadd("bg:workers", "999999")
    res = run([exe("bg-cli"), "-r", rs.url, "metrics"], input=None)
    assert res.returncode == 0, res.stderr
    _, samples = parse(res.stdout)
    labels = {("host", 'a"b\\c\nd\ufffd\ufffde'), ("pid", "42")}
    assert samples[("bg_worker_fibers", frozenset(labels))] == 3
    assert samples[("bg_worker_busy", frozenset(labels))] == 1
    assert samples[("bg_worker_quiet", frozenset(labels))] == 1
    assert samples[("bg_worker_start_time_seconds", frozenset(labels))] == 1.0


def test_json_holds_the_same_families(rs, r):
    r.hset("bg:worker:77", mapping={"host": 'h"\\\n', "pid": "9", "fibers": "2", "busy": "0",
                                    "started": "5", "state": "running", "queues": "q"})
    r.pexpire("bg:worker:77", 60000)
    r.sadd("bg:workers", "77")
    cli(rs, "enqueue", "bg.noop", "-q", "q1")
    types, samples = parse(metrics(rs))
    res = cli(rs, "metrics", "--json")
    assert res.returncode == 0, res.stderr
    fams = json.loads(res.stdout)["metrics"]
    assert {f["name"]: f["type"] for f in fams} == types
    got = {(f["name"], frozenset(s["labels"].items())): s["value"]
           for f in fams for s in f["samples"]}
    assert got.keys() == samples.keys()
    for k, v in samples.items():
        assert got[k] == pytest.approx(v, abs=0.01) or k[0] in ("bg_scrape_duration_seconds",
                                                                 "bg_queue_latency_seconds"), k
    assert ("bg_worker_fibers", frozenset({("host", 'h"\\\n'), ("pid", "9")})) in got


def test_metrics_usage_errors(rs):
    for args in (["extra"], ["--bogus"], ["-q", "bad name"], ["--json=1"]):
        res = cli(rs, "metrics", *args)
        assert res.returncode == 2 and res.stderr.startswith("bg-cli: metrics:"), (args, res)


def test_metrics_redis_down_exits_1():
    res = run([exe("bg-cli"), "-r", f"redis://127.0.0.1:{free_port()}", "metrics"])
    assert res.returncode == 1 and res.stdout == "", res


def get(url, method="GET"):
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def start_watcher(spawn, rs, listen):
    w = spawn([exe("bg-watcher"), "-r", rs.url, "--metrics", listen])
    wait_for(lambda: "serving metrics" in w.log() or w.proc.poll() is not None,
             what="the watcher to listen")
    assert w.proc.poll() is None, w.log()
    return w


def test_watcher_serves_the_same_text(rs, r, spawn):
    port = free_port()
    spawn([exe("bg-worker"), "-r", rs.url, "-c", "2"])
    cli(rs, "enqueue", "bg.noop", "-q", "default")
    start_watcher(spawn, rs, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    wait_for(lambda: r.zcard("bg:completed:default") == 1 and "bg_workers 1\n" in get(url)[2],
             what="the job and the worker")
    time.sleep(1.2)  # jps back to 0, so both reads see the same figures
    code, headers, body = get(url)
    assert code == 200
    assert headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body.encode())
    _, served = parse(body)
    _, printed = parse(metrics(rs))
    drop = {"bg_scrape_duration_seconds"}
    assert {k: v for k, v in served.items() if k[0] not in drop} == \
        {k: v for k, v in printed.items() if k[0] not in drop}
    assert by_queue(served, "bg_jobs_completed_total") == {"default": 1}
    # A query string is the same page; HEAD has the headers and no body.
    assert get(url + "?x=1")[0] == 200
    code, headers, body = get(url, "HEAD")
    assert code == 200 and body == "" and int(headers["Content-Length"]) > 0
    # Other paths and methods.
    assert get(f"http://127.0.0.1:{port}/")[0] == 404
    assert get(f"http://127.0.0.1:{port}/metricsx")[0] == 404
    code, headers, _ = get(url, "POST")
    assert code == 405 and "GET" in headers["Allow"]


def raw(port, data, family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family) as s:
        s.settimeout(10)
        s.connect((host, port))
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


def test_watcher_http_is_bounded_and_slow_clients_block_nothing(rs, r, spawn):
    port = free_port()
    start_watcher(spawn, rs, f"127.0.0.1:{port}")
    url = f"http://127.0.0.1:{port}/metrics"
    # Silent clients hold their own connection only: scrapes and the watcher go on.
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    half = socket.create_connection(("127.0.0.1", port))
    half.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    t0 = time.monotonic()
    assert get(url)[0] == 200
    assert time.monotonic() - t0 < 3
    jid = cli(rs, "enqueue", "bg.noop", "--in", "0.2s").stdout.strip()
    wait_for(lambda: r.lrange("bg:ready:default", 0, -1) == [jid], what="the watcher's move")
    # A silent client is closed after a few seconds.
    idle[0].settimeout(10)
    assert idle[0].recv(100) == b""
    for s in idle + [half]:
        s.close()
    # A request too large, and one that is not HTTP, are answered and closed.
    assert raw(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000).startswith(
        b"HTTP/1.1 431 ")
    assert raw(port, b"hello\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    # HTTP/1.0 and a bare LF request work; each connection is closed after its response.
    out = raw(port, b"GET /metrics HTTP/1.0\n\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nConnection: close\r\n" in out
    parse(out.split(b"\r\n\r\n", 1)[1].decode())


def test_watcher_listens_on_every_address(rs, spawn):
    port = free_port()
    start_watcher(spawn, rs, f":{port}")
    assert get(f"http://127.0.0.1:{port}/metrics")[0] == 200
    if socket.has_ipv6:
        try:
            out = raw(port, b"GET /metrics HTTP/1.1\r\n\r\n", socket.AF_INET6, "::1")
        except OSError:
            pytest.skip("no IPv6 loopback")
        assert out.startswith(b"HTTP/1.1 200 ")


def test_watcher_on_ipv6_loopback(rs, spawn):
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
            port = s.getsockname()[1]
    except OSError:
        pytest.skip("no IPv6 loopback")
    start_watcher(spawn, rs, f"[::1]:{port}")
    assert get(f"http://[::1]:{port}/metrics")[0] == 200


@pytest.mark.parametrize("value", ["9187", "127.0.0.1", "127.0.0.1:", ":0", ":65536",
                                   "127.0.0.1:-1", "127.0.0.1:12x", "::1:9187", "[::1",
                                   "[::1]9187", "[127.0.0.1]:9187", "localhost:9187",
                                   "300.1.1.1:9187", ""])
def test_watcher_malformed_metrics_value_is_a_usage_error(rs, value):
    res = run([exe("bg-watcher"), "-r", rs.url, "--metrics", value])
    assert res.returncode == 2, (value, res)
    assert res.stderr.startswith("bg-watcher: invalid --metrics"), res.stderr
    assert res.stderr.count("\n") == 1


def test_watcher_port_in_use_exits_1(rs):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        res = run([exe("bg-watcher"), "-r", rs.url, "--metrics", f"127.0.0.1:{port}"])
    assert res.returncode == 1, res
    assert "cannot listen on 127.0.0.1:" in res.stderr and "in use" in res.stderr, res.stderr


def test_watcher_address_not_local_exits_1(rs):
    res = run([exe("bg-watcher"), "-r", rs.url, "--metrics", f"192.0.2.1:{free_port()}"])
    assert res.returncode == 1 and "cannot listen on 192.0.2.1" in res.stderr, res


def test_watcher_scrape_while_redis_is_down_says_503(spawn):
    port, dead = free_port(), free_port()
    w = spawn([exe("bg-watcher"), "-r", f"redis://127.0.0.1:{dead}", "--metrics",
               f"127.0.0.1:{port}"])
    wait_for(lambda: "serving metrics" in w.log() or w.proc.poll() is not None,
             what="the watcher to listen")
    code, _, body = get(f"http://127.0.0.1:{port}/metrics")
    assert code == 503 and "cannot read the figures" in body
    assert w.proc.poll() is None


def test_heartbeat_workers_and_metrics_under_the_documented_users(rs, r, spawn):
    """The users of docs/operations.md#acl: the worker's heartbeat, bg-cli workers and metrics,
    and the watcher's /metrics with the four grants docs/watcher.md#metrics adds."""
    from test_acl import PASSWORD, acl_log, doc_acls
    acls = doc_acls()
    acls["bg-watcher"] += ["+llen", "+scard", "+mget", "+lindex", "+sismember"]
    try:
        for name, rules in acls.items():
            r.execute_command("ACL", "SETUSER", name, *rules)
        r.execute_command("ACL", "LOG", "RESET")
        url = {n: f"redis://{n}:{PASSWORD}@127.0.0.1:{rs.port}/0" for n in acls}
        w = spawn([exe("bg-worker"), "-r", url["bg-worker"], "-c", "1"])
        k = spawn([exe("bg-worker"), "-r", url["bg-worker"], "-c", "1", "-q", "other"])
        port = free_port()
        watcher = spawn([exe("bg-watcher"), "-r", url["bg-watcher"], "--metrics",
                         f"127.0.0.1:{port}"])

        def pids():
            res = run([exe("bg-cli"), "-r", url["bg-cli"], "workers", "--json"])
            assert res.returncode == 0, res.stderr
            return sorted(x["pid"] for x in json.loads(res.stdout)["workers"])

        wait_for(lambda: pids() == sorted([w.pid, k.pid]), what="both workers")
        os.kill(k.pid, signal.SIGKILL)
        wait_for(lambda: pids() == [w.pid], timeout=8, interval=0.1, what="the killed one gone")
        assert r.scard("bg:workers") == 1
        res = run([exe("bg-cli"), "-r", url["bg-cli"], "metrics"])
        assert res.returncode == 0, res.stderr
        assert parse(res.stdout)[1][("bg_workers", frozenset())] == 1
        wait_for(lambda: "serving metrics" in watcher.log(), what="the watcher to listen")
        code, _, body = get(f"http://127.0.0.1:{port}/metrics")
        assert code == 200, body
        assert parse(body)[1][("bg_workers", frozenset())] == 1
        w.signal(signal.SIGTERM)
        assert w.wait(30) == 0
        assert r.scard("bg:workers") == 0 and not r.keys("bg:worker:*")
        for p in (w, watcher):
            assert "NOPERM" not in p.log(), p.log()
        assert set(acl_log(r)) <= {("bg-worker", "toplevel", "config|get")}, acl_log(r)
    finally:
        for name in acls:
            r.execute_command("ACL", "DELUSER", name)
