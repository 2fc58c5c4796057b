"""The producers of examples/producers/ (Python, Ruby, Node, shell), run as users run them, against
a real bg-worker and bg-watcher: each job runs with its arguments byte for byte, a delayed one
not before its time, the queue is registered in NS:queues, the connection and namespace come
from the environment as bg's programs take them, and bad input is refused with exit 2 before
anything is written."""

import os
import shlex
import shutil
import subprocess
import sys

import pytest
import redis

from conftest import TOP, clients_named, exe, run, wait_for

PRODUCERS = os.path.join(TOP, "examples", "producers")
NS = "bg-prod.test"
QUEUE = "mail.high"

# Quotes, shell syntax, a printf directive, UTF-8, newlines and blanks at both ends: what a
# producer that builds a command line or a format string by hand would mangle.
ARG = ' {"to":"a@b.c","note":"é ✓ $(exit 1) `x` \'q\' \\"dq\\" %s %n \\\\"}\n\ttail \n'.encode()
# Bytes that are not UTF-8 reach every producer but Node's, which reads its command line as text.
NOT_UTF8 = b"\xff\xfe\x80"
FIELDS = ("qat", "pat", "rty")


def _need(program):
    """The path of a runtime a producer needs. A missing one fails the test rather than skips it:
    CI installs every one (dev.sh), so a missing runtime is a broken install to report."""
    path = shutil.which(program)
    if not path:
        pytest.fail(f"{program} is not installed, so its producer cannot be tested; "
                    f"dev.sh installs it", pytrace=False)
    return path


@pytest.fixture(scope="session")
def node_dir(tmp_path_factory):
    """A copy of the Node producer with ioredis installed by `npm ci` from the committed lock file,
    once a session, so that the source tree gets no node_modules/."""
    npm = _need("npm")
    d = str(tmp_path_factory.mktemp("node-producer"))
    for name in ("package.json", "package-lock.json", "produce.js"):
        shutil.copy(os.path.join(PRODUCERS, name), d)
    p = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=d,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"npm ci failed:\n{p.stdout}\n{p.stderr}"
    return d


@pytest.fixture(params=["python", "ruby", "node", "shell"])
def lang(request):
    return request.param


@pytest.fixture
def produce(lang, request):
    """produce(*args, env={...}) runs the producer of the language with a clean bg environment
    plus env; returns the CompletedProcess (text output)."""
    if lang == "python":
        cmd = [sys.executable, os.path.join(PRODUCERS, "produce.py")]
    elif lang == "ruby":
        cmd = [_need("ruby"), os.path.join(PRODUCERS, "produce.rb")]
    elif lang == "node":
        cmd = [_need("node"), os.path.join(request.getfixturevalue("node_dir"), "produce.js")]
    else:
        cmd = [_need("sh"), os.path.join(PRODUCERS, "produce.sh")]

    def go(*args, env=None):
        e = {k: v for k, v in os.environ.items()
             if k not in ("BG_REDIS_URL", "REDIS_URL", "BG_NAMESPACE")}
        e.update(env or {})
        return run(cmd + list(args), env=e)

    return go


def _uuid(p):
    """The job UUID a producer printed, checked to be what bg takes: lowercase, version 4."""
    assert p.returncode == 0, (p.returncode, p.stderr)
    job = p.stdout.strip()
    assert len(job) == 36 and job == job.lower() and job[14] == "4", p.stdout
    return job


def test_jobs_run_with_their_arguments_and_the_delayed_one_on_time(lang, produce, rs, r, spawn,
                                                                  tmp_path):
    arg = ARG if lang == "node" else ARG + NOT_UTF8
    # $BG_REDIS_URL wins over $REDIS_URL, which points nowhere here.
    env = {"BG_REDIS_URL": rs.url, "REDIS_URL": "redis://127.0.0.1:1/0", "BG_NAMESPACE": NS}
    now = _uuid(produce("Echo", arg, "-q", QUEUE, "--retries", "3", env=env))
    later = _uuid(produce("Echo", arg, "--in", "2.5", "-q", QUEUE, env=env))

    with redis.Redis(port=rs.port) as raw:  # arg as bytes
        for job in (now, later):
            h = raw.hgetall(f"{NS}:jobs:{job}")
            assert h[b"que"] == QUEUE.encode() and h[b"cls"] == b"Echo" and h[b"arg"] == arg, h
    jobs = {job: {k: v for k, v in zip(FIELDS, r.hmget(f"{NS}:jobs:{job}", FIELDS)) if v}
            for job in (now, later)}
    s, us = r.time()
    server_ms = s * 1000 + us // 1000
    for h in jobs.values():
        assert 0 <= server_ms - int(h["qat"]) < 10_000, (server_ms, h)
    assert jobs[now]["rty"] == "3" and "pat" not in jobs[now], jobs[now]
    assert "rty" not in jobs[later], jobs[later]
    pat = int(jobs[later]["pat"])
    assert pat - int(jobs[later]["qat"]) == 2500, jobs[later]
    assert r.lrange(f"{NS}:ready:{QUEUE}", 0, -1) == [now]
    assert r.zrange(f"{NS}:scheduled:{QUEUE}", 0, -1, withscores=True) == [(later, pat)]
    # Registered by the producer alone: no bg program has run yet.
    assert r.smembers(f"{NS}:queues") == {QUEUE}

    out = tmp_path / "out"
    out.mkdir()
    spawn([exe("bg-worker"), "-r", rs.url, "-n", NS, "-q", QUEUE, "-c", "2",
           "-e", f'Echo=cat > {shlex.quote(str(out))}/"$BG_JOB_ID"'])
    spawn([exe("bg-watcher"), "-r", rs.url, "-n", NS, "-i", "0.1"])
    wait_for(lambda: len(clients_named(r, f"{NS}-worker-fiber:")) >= 2
             and clients_named(r, f"{NS}-watcher"), what="the worker and the watcher to connect")

    def completed():
        atts = r.zrange(f"{NS}:completed:{QUEUE}", 0, -1)
        return len(atts) == 2 and {r.hget(f"{NS}:attempts:{a}", "job"): r.hgetall(
            f"{NS}:attempts:{a}") for a in atts}

    attempts = wait_for(completed, timeout=20, what="both jobs to complete")
    assert set(attempts) == {now, later}, attempts
    assert int(attempts[later]["sta"]) >= pat, (attempts[later], pat)
    for job in (now, later):
        assert "err" not in attempts[job], attempts[job]
        assert (out / job).read_bytes() == arg
    assert r.llen(f"{NS}:ready:{QUEUE}") == 0 and r.zcard(f"{NS}:scheduled:{QUEUE}") == 0


def test_redis_url_and_namespace_defaults(produce, rs, r):
    # Empty variables count as unset, as with bg's programs: $REDIS_URL and namespace bg.
    job = _uuid(produce("Echo", env={"BG_REDIS_URL": "", "REDIS_URL": rs.url,
                                     "BG_NAMESPACE": ""}))
    assert r.hgetall(f"bg:jobs:{job}")["arg"] == "{}"
    assert r.lrange("bg:ready:default", 0, -1) == [job]
    assert r.smembers("bg:queues") == {"default"}


# Arguments, environment, and what the error must name. Few, as each starts an interpreter.
BAD_INPUT = [
    (["Echo", "{}", "-q", "mail:high"], {}, "mail:high"),
    (["Echo", "{}", "-q", "q" * 129], {}, "q" * 129),
    (["Echo"], {"BG_NAMESPACE": "bg:x"}, "bg:x"),
    (["Echo"], {"BG_NAMESPACE": "n" * 65}, "n" * 65),
    (["Echo", "--in", "1e3"], {}, "--in"),
    (["Echo", "--in", "-1"], {}, "--in"),
    (["Echo", "--retries", "many"], {}, "--retries"),
    (["Echo", "--bogus"], {}, "--bogus"),
    ([], {}, "CLASS"),
    (["Echo"], {"BG_REDIS_URL": "http://127.0.0.1:6379/"}, "Redis URL"),
]


def test_bad_input_exits_2_and_writes_nothing(produce, rs, r):
    for args, env, named in BAD_INPUT:
        p = produce(*args, env={"BG_REDIS_URL": rs.url, **env})
        what = f"{args} {env}"
        assert p.returncode == 2, (what, p.returncode, p.stdout, p.stderr)
        assert p.stdout == "" and p.stderr.strip(), (what, p.stdout, p.stderr)
        assert named in p.stderr, (what, p.stderr)
        assert r.dbsize() == 0, (what, r.keys())


def test_help_exits_0_and_an_unreachable_redis_exits_1(produce, rs, r):
    p = produce("-h")
    assert p.returncode == 0 and "usage" in p.stdout.lower(), (p.returncode, p.stdout, p.stderr)
    # Nothing listens on port 1 of the loopback.
    p = produce("Echo", env={"BG_REDIS_URL": "redis://127.0.0.1:1/0"})
    assert p.returncode == 1 and p.stdout == "" and p.stderr.strip(), (p.stdout, p.stderr)
