"""Fixtures for bg's end-to-end tests: a real redis-server of the tests' own on a free loopback
port, and the real bg executables, run as users run them.

The build directory comes from $BG_BUILD_DIR (default: build/ at the top of the tree)."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BG_BUILD_DIR", os.path.join(TOP, "build"))

# The test redis-server is started the same way for the tests, bench/run and the demo.
sys.path.insert(0, os.path.join(TOP, "tests", "support"))
from redis_server import RedisServer, free_port as _free_port  # noqa: E402,F401
from procs import stop_proc  # noqa: E402


def exe(name):
    """Path of a built bg program (bg-worker, bg-watcher, bg-cli) or test helper."""
    for cand in (os.path.join(BUILD, name, name), os.path.join(BUILD, "tests", name),
                 os.path.join(BUILD, name)):
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(f"{name} is not built under {BUILD}")


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    """Polls cond() until it returns a truthy value, which it returns; fails past timeout."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def ci():
    """Whether this is a CI run: $CI set, and not "false" (nor "0" or empty)."""
    return os.environ.get("CI", "") not in ("", "false", "0")


# In CI a skipped test is a failure: a test that silently skips (no redis-server, a runtime
# missing) would otherwise hide that nothing was checked. An expected failure (xfail) is not a
# skip. The report keeps the skip's reason, so the failure says what was missing.
def _skip_fails(rep):
    reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
    rep.outcome = "failed"
    rep.longrepr = f"skipped, and in CI (CI={os.environ['CI']}) a skip is a failure: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    rep = (yield).get_result()
    if rep.skipped and not hasattr(rep, "wasxfail") and ci():
        _skip_fails(rep)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    rep = (yield).get_result()
    if rep.skipped and ci():  # a whole module skipped (pytest.skip(allow_module_level=True))
        _skip_fails(rep)


@pytest.fixture(scope="session")
def redis_server_session():
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    srv = RedisServer().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def rs(redis_server_session):
    """The shared test server, flushed for each test."""
    r = redis_server_session.client()
    r.flushall()
    r.close()
    return redis_server_session


@pytest.fixture
def r(rs):
    """A python redis client on the test server: the foreign producer."""
    c = rs.client()
    yield c
    c.close()


class Proc:
    """A bg program started as users start it, stopped by signal at the end of the test."""

    def __init__(self, args, env=None):
        self.args = args
        self.errpath = tempfile.mktemp(prefix="bg-test-stderr-")
        self.errf = open(self.errpath, "wb")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.errf,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        with open(self.errpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout)

    def stop(self):
        stop_proc(self.proc)
        self.errf.close()
        return self.proc.returncode


@pytest.fixture
def spawn():
    """spawn(args, env=None) starts a program; every one is stopped (TERM, then KILL) at the end."""
    procs = []

    def start(args, env=None):
        p = Proc(args, env=env)
        procs.append(p)
        return p

    yield start
    for p in procs:
        p.stop()


def run(args, input=None, env=None, timeout=30):
    """Runs a program to completion; returns CompletedProcess with text stdout/stderr."""
    return subprocess.run(args, input=input, capture_output=True, env=env, timeout=timeout,
                          text=isinstance(input, str) or input is None)


def cli_argv(rs, *args, ns=None):
    """The command line of bg-cli against the test server."""
    pre = [exe("bg-cli"), "-r", rs.url]
    if ns:
        pre += ["-n", ns]
    return pre + list(args)


def cli(rs, *args, ns=None, input=None, env=None):
    """Runs bg-cli against the test server."""
    return run(cli_argv(rs, *args, ns=ns), input=input, env=env)


@contextlib.contextmanager
def cli_piped(rs, *args, ns=None):
    """Starts bg-cli against the test server with text pipes on stdin, stdout and stderr, for
    an `enqueue CLASS -` fed while it runs; on leaving, closes its input and waits up to 10 s
    for it to exit (its returncode is the caller's to check)."""
    p = subprocess.Popen(cli_argv(rs, *args, ns=ns), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield p
    finally:
        p.stdin.close()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()


def clients_named(r, prefix):
    """The CLIENT LIST entries whose name starts with prefix."""
    return [c for c in r.client_list() if c.get("name", "").startswith(prefix)]
