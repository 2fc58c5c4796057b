#!/usr/bin/python3
"""A redis-server of bg's own for tests, bench/run and the demo: on a free loopback port (never
6379), with its data and log in a directory of its own, stopped by PID, so that nothing bg runs
for checking ever touches a Redis somebody else uses.

As a module (tests/e2e/conftest.py, bench/run):

    srv = RedisServer(extra=["--appendonly", "yes"]).start()
    srv.url, srv.port, srv.client(), srv.restart(), srv.cleanup()

As a program (the demo), which leaves the server running after it exits:

    python3 tests/support/redis_server.py start DIR [REDIS-SERVER-OPTION...]
        prints "PORT PID" once the server answers PING; its log is DIR/redis.log
    python3 tests/support/redis_server.py stop DIR
        stops the server that start left in DIR (TERM, then KILL after 10 s)

Only the standard library is needed; client() alone imports redis-py."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from procs import stop_proc

# redis-server cannot pick a free port itself (--port 0 turns TCP off), so a port that was free
# when probed may be taken by the time redis-server binds it: these lines in its log say so,
# and another port is tried.
_BIND_FAILURES = ("Failed listening", "Address already in use")
START_TIMEOUT = 5.0
STOP_TIMEOUT = 10.0
PIDFILE = "redis-server.pid"


def free_port():
    """A loopback port nothing listens on now, never Redis's default 6379."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != 6379:
            return port


def _pid_gone(pid):
    """Whether pid has exited; a zombie (exited, not yet reaped by its parent) counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True


def stop_pid(pid, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """Sends sig to pid and waits for it to exit; KILL when it has not after timeout seconds."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while not _pid_gone(pid):
        if time.monotonic() > deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
        time.sleep(0.02)


class RedisServer:
    """A redis-server on a free loopback port in its own temporary directory, stopped by PID.

    extra: more redis-server options; dir: the data directory (a new temporary one, removed by
    cleanup(), when None); exe: the redis-server to run."""

    start_timeout = START_TIMEOUT

    def __init__(self, extra=(), dir=None, exe="redis-server"):
        self.own_dir = dir is None
        self.dir = tempfile.mkdtemp(prefix="bg-test-redis-") if dir is None else dir
        self.extra = list(extra)
        self.exe = exe
        self.proc = None
        self.port = None

    @property
    def log_path(self):
        return os.path.join(self.dir, "redis.log")

    def _args(self):
        return [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--logfile", self.log_path] + self.extra

    def _log_since(self, offset):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def start(self, port=None, new_session=False):
        """Starts the server (on port, else on a free one) and returns self once it answers.

        A free port taken meanwhile is retried on another; a given port is not. new_session
        puts the server in a session of its own, out of reach of the terminal's ^C."""
        for _ in range(20):
            self.port = port or free_port()
            try:
                offset = os.path.getsize(self.log_path)
            except FileNotFoundError:
                offset = 0
            if self._launch(new_session):
                return self
            log = self._log_since(offset)
            if port or not any(s in log for s in _BIND_FAILURES):
                tail = "\n".join(log.splitlines()[-10:])
                raise RuntimeError(f"could not start redis-server on port {self.port} "
                                   f"(log {self.log_path}):\n{tail}")
        raise RuntimeError(f"could not start redis-server: no free port in 20 tries "
                           f"(log {self.log_path})")

    def _launch(self, new_session=False):
        """Runs the server once, on self.port: True once it answers; False, the process
        reaped, when it exited or stayed silent for start_timeout seconds."""
        self.proc = subprocess.Popen(self._args(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     start_new_session=new_session)
        if self._wait_ready():
            return True
        self._kill()
        return False

    def _wait_ready(self):
        """True once the server answers; False when it exited or stayed silent too long."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self._ping():
                    return True
            except AssertionError:
                return False
            time.sleep(0.01)
        return False

    def _ping(self):
        """Whether the server answers PING (it says -LOADING or nothing while it starts)."""
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                # -NOAUTH: up, and wanting a password (--requirepass) PING cannot give.
                return s.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    def _kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def stop(self, sig=signal.SIGTERM):
        """Stops the server by its PID: sig, then KILL after 10 s."""
        if self.proc:
            stop_proc(self.proc, sig, STOP_TIMEOUT)

    def restart(self):
        """Stops the server and starts it again on the same port (same data dir)."""
        self.stop()
        self.start(port=self.port)

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, **kw):
        """A redis-py client on the server, decoding replies."""
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **kw)

    def cleanup(self):
        """Stops the server, and removes its directory when it made it."""
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


# ---- the command line ----


def _is_redis_server(pid):
    """Whether pid still runs redis-server, so that a stale pid file never stops another
    program that was given the same PID since."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv0 = f.read().split(b"\0", 1)[0]
    except OSError:
        return False
    return b"redis-server" in argv0


def _cmd_start(d, extra):
    os.makedirs(d, exist_ok=True)
    srv = RedisServer(extra=extra, dir=os.path.abspath(d)).start(new_session=True)
    with open(os.path.join(d, PIDFILE), "w") as f:
        f.write(f"{srv.proc.pid}\n")
    print(srv.port, srv.proc.pid, flush=True)


def _cmd_stop(d):
    path = os.path.join(d, PIDFILE)
    try:
        with open(path) as f:
            pid = int(f.read().strip())
    except (FileNotFoundError, ValueError):
        return
    if _is_redis_server(pid):
        stop_pid(pid)
    os.unlink(path)


def main(argv):
    prog = "redis_server.py"
    if len(argv) >= 2 and argv[0] == "start":
        cmd = lambda: _cmd_start(argv[1], argv[2:])
    elif len(argv) == 2 and argv[0] == "stop":
        cmd = lambda: _cmd_stop(argv[1])
    else:
        print(f"usage: {prog} start DIR [REDIS-SERVER-OPTION...]\n"
              f"       {prog} stop DIR", file=sys.stderr)
        return 2
    try:
        cmd()
    except (OSError, RuntimeError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
