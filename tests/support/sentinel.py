"""A Redis Sentinel set of bg's own for tests: a primary, replicas and three sentinels, each on a
free loopback port with its own directory, stopped by PID; failover kept fast (a primary is
judged down after DOWN_AFTER_MS).

    s = SentinelSet(replicas=1).start()
    s.url("mymaster"), s.primary(), s.client(), s.kill_primary(), s.wait_failover(old)
    s.cleanup()

Only the standard library is needed; client() and sentinel_client() import redis-py."""

import os
import shutil
import signal
import tempfile
import time

from redis_server import RedisServer, free_port

MASTER = "mymaster"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 2000
START_TIMEOUT = 10.0


class Sentinel(RedisServer):
    """One redis-sentinel process (redis-server --sentinel) on a free loopback port, started,
    checked and stopped as a RedisServer is."""

    start_timeout = START_TIMEOUT

    def __init__(self, parent_dir, primary_port, index, quorum, master=MASTER):
        super().__init__(dir=os.path.join(parent_dir, f"sentinel{index}"))
        os.makedirs(self.dir)
        self.primary_port = primary_port
        self.quorum = quorum
        self.master = master
        self.port = free_port()
        self.myid = os.urandom(20).hex()
        self.peers = []     # the other sentinels, known from the start
        self.replicas = []  # the replicas' ports, known from the start

    @property
    def log_path(self):
        return os.path.join(self.dir, "sentinel.log")

    def _write_conf(self):
        conf = os.path.join(self.dir, "sentinel.conf")
        with open(conf, "w") as f:
            f.write(f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
                    f"logfile {self.log_path}\ndaemonize no\n"
                    f"sentinel monitor {self.master} 127.0.0.1 {self.primary_port} {self.quorum}\n"
                    f"sentinel down-after-milliseconds {self.master} {DOWN_AFTER_MS}\n"
                    f"sentinel failover-timeout {self.master} {FAILOVER_TIMEOUT_MS}\n"
                    f"sentinel parallel-syncs {self.master} 1\n"
                    f"sentinel myid {self.myid}\n")
            # Told up front, a sentinel needs not wait for the others' hello messages (every
            # 2 s) before it can vote: the set is ready for a failover at once.
            for peer in self.peers:
                f.write(f"sentinel known-sentinel {self.master} 127.0.0.1 {peer.port} "
                        f"{peer.myid}\n")
            for port in self.replicas:
                f.write(f"sentinel known-replica {self.master} 127.0.0.1 {port}\n")
        return conf

    def _args(self):
        return [self.exe, self._write_conf(), "--sentinel"]

    def start(self):
        """The first try is on the port chosen in __init__, which the sentinels started before
        this one were told; any failure is tried again on another port."""
        for tries in range(20):
            if tries:
                self.port = free_port()
            if self._launch():
                return self
        raise RuntimeError(f"could not start a sentinel (log {self.log_path})")


class SentinelSet:
    """A primary, `replicas` replicas of it and `sentinels` sentinels (quorum 2) watching it
    under the name MASTER; every server in a directory of its own under one temporary one."""

    def __init__(self, replicas=1, sentinels=3, extra=()):
        self.dir = tempfile.mkdtemp(prefix="bg-test-sentinel-")
        self.extra = list(extra)
        self.nreplicas = replicas
        self.nsentinels = sentinels
        self.servers = []  # every data node, the first started as the primary
        self.sentinels = []

    def _server(self, name, more=()):
        d = os.path.join(self.dir, name)
        os.makedirs(d)
        # A replica syncs at once, not 5 s later (Redis's default diskless sync delay).
        return RedisServer(extra=["--repl-diskless-sync-delay", "0"] + self.extra + list(more),
                           dir=d).start()

    def start(self):
        try:
            primary = self._server("primary")
            self.servers.append(primary)
            for i in range(self.nreplicas):
                self.servers.append(self._server(
                    f"replica{i}", ["--replicaof", "127.0.0.1", str(primary.port)]))
            for srv in self.servers[1:]:
                self._wait(lambda: srv.client().info("replication").get("master_link_status")
                           == "up", "a replica in sync")
            self.sentinels = [Sentinel(self.dir, primary.port, i, 2)
                              for i in range(self.nsentinels)]
            for s in self.sentinels:
                s.peers = [p for p in self.sentinels if p is not s]
                s.replicas = [srv.port for srv in self.servers[1:]]
            for s in self.sentinels:
                s.start()
            # Each sentinel has found the replicas and the other sentinels: a failover can
            # then be voted and carried out at once.
            for s in self.sentinels:
                self._wait(lambda: self._sees_all(s), "the sentinels to know one another")
        except BaseException:
            self.cleanup()
            raise
        return self

    def _sees_all(self, s):
        c = s.client()
        try:
            m = c.execute_command("SENTINEL", "MASTER", MASTER)
            m = dict(zip(m[::2], m[1::2])) if isinstance(m, list) else m
            return (int(m["num-slaves"]) >= self.nreplicas
                    and int(m["num-other-sentinels"]) >= self.nsentinels - 1)
        finally:
            c.close()

    @staticmethod
    def _wait(cond, what, timeout=20.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                if cond():
                    return
            except Exception:  # a server still starting, or one just killed
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            time.sleep(0.02)

    def url(self, master=MASTER, db=None, password=None, user=""):
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        auth = f"{user}:{password}@" if password else ""
        return f"redis-sentinel://{auth}{hosts}/{master}" + (f"/{db}" if db is not None else "")

    def primary_addr(self):
        """(host, port) the first sentinel that answers names as the primary."""
        for s in self.sentinels:
            try:
                c = s.client()
                addr = c.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
                c.close()
                if addr:
                    return addr[0], int(addr[1])
            except Exception:
                continue
        return None

    def primary(self):
        """The RedisServer the sentinels name as the primary now."""
        addr = self.primary_addr()
        return next(s for s in self.servers if addr and s.port == addr[1])

    def client(self):
        """A redis-py client on the primary now."""
        return self.primary().client()

    def kill_primary(self):
        """SIGKILLs the primary; returns it (its port names the old address)."""
        p = self.primary()
        p.proc.send_signal(signal.SIGKILL)
        p.proc.wait()
        return p

    def wait_failover(self, old, timeout=20.0):
        """Waits until every sentinel names another primary than old and that one says it is
        a master; returns the new primary."""
        def done():
            addrs = set()
            for s in self.sentinels:
                c = s.client()
                a = c.execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
                c.close()
                addrs.add(int(a[1]))
            if len(addrs) != 1 or old.port in addrs:
                return False
            new = self.primary()
            return new.client().execute_command("ROLE")[0] == "master"
        self._wait(done, "the failover", timeout)
        return self.primary()

    def cleanup(self):
        for s in self.sentinels:
            s.stop()
        for srv in self.servers:
            srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
