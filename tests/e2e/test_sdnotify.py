"""bg-worker and bg-watcher as systemd Type=notify services (docs/operations.md#systemd), tested
with a datagram socket of the test's own as $NOTIFY_SOCKET: READY=1 only once Redis answers and
the scripts are loaded, STATUS= lines, WATCHDOG=1 while Redis answers (and none while it does
not), STOPPING=1 on TERM."""

import os
import signal
import socket
import time

import pytest

from conftest import _free_port, exe, wait_for


class NotifySocket:
    """A Unix datagram socket that collects what a service sends to $NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setblocking(False)
        self.messages = []

    def drain(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except BlockingIOError:
                return self.messages

    def lines(self):
        return [line for m in self.drain() for line in m.split("\n") if line]

    def has(self, prefix):
        return any(line.startswith(prefix) for line in self.lines())

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path):
    n = NotifySocket(str(tmp_path / "notify.sock"))
    yield n
    n.close()


def env_for(notify, **extra):
    env = dict(os.environ, NOTIFY_SOCKET=notify.path)
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.mark.parametrize("prog", ["bg-watcher", "bg-worker"])
def test_ready_status_watchdog_stopping(rs, spawn, notify, prog):
    args = [exe(prog), "-r", rs.url] + (["-c", "2"] if prog == "bg-worker" else [])
    p = spawn(args, env=env_for(notify, WATCHDOG_USEC=1000000))
    wait_for(lambda: notify.has("READY=1"), what="READY=1")
    wait_for(lambda: notify.has("STATUS="), what="a STATUS= line")
    wait_for(lambda: notify.lines().count("WATCHDOG=1") >= 2, timeout=6, what="two WATCHDOG=1")
    assert not notify.has("STOPPING=1")
    p.signal(signal.SIGTERM)
    assert p.wait() == 0
    assert notify.has("STOPPING=1")
    order = [line.split("=")[0] for line in notify.lines()]
    assert order.index("READY") < order.index("STOPPING")


@pytest.mark.parametrize("prog", ["bg-watcher", "bg-worker"])
def test_not_ready_until_redis_answers(rs, spawn, notify, prog, tmp_path):
    port = _free_port()
    args = [exe(prog), "-r", f"redis://127.0.0.1:{port}"] + (
        ["-c", "1"] if prog == "bg-worker" else [])
    p = spawn(args, env=env_for(notify, WATCHDOG_USEC=1000000))
    wait_for(lambda: notify.has("STATUS="), what="a STATUS= line while Redis is away")
    time.sleep(1.5)  # a watchdog interval and a half: no WATCHDOG=1 may come while Redis is away
    assert not notify.has("READY=1") and "WATCHDOG=1" not in notify.lines()
    status = [line for line in notify.lines() if line.startswith("STATUS=")]
    assert any("Redis" in s for s in status), status
    from conftest import RedisServer
    srv = RedisServer()
    try:
        srv.start(port=port)
        wait_for(lambda: notify.has("READY=1"), timeout=10, what="READY=1 once Redis answers")
        wait_for(lambda: "WATCHDOG=1" in notify.lines(), timeout=6, what="WATCHDOG=1")
    finally:
        p.stop()
        srv.cleanup()


def test_watchdog_pid_of_another_process(rs, spawn, notify):
    p = spawn([exe("bg-watcher"), "-r", rs.url],
              env=env_for(notify, WATCHDOG_USEC=1000000, WATCHDOG_PID=1))
    wait_for(lambda: notify.has("READY=1"), what="READY=1")
    time.sleep(1.5)
    assert "WATCHDOG=1" not in notify.lines()
    p.stop()


def test_no_notify_socket_is_fine(rs, spawn):
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    p = spawn([exe("bg-watcher"), "-r", rs.url], env=env)
    time.sleep(0.3)
    p.signal(signal.SIGTERM)
    assert p.wait() == 0
