#!/usr/bin/python3
"""Worker "hosts" on one machine, for tests/e2e/test_hosts.py and bench/run's hosts scenario:
each host is a network namespace of its own (ip netns) with its own address on a private /24,
joined by a veth pair to a bridge in the root namespace that holds the Redis address, and a
UTS namespace of its own so that gethostname() gives the host's name. A bg-worker started with
Hosts.command(i, argv) runs on host i and reaches Redis over the bridge, as a worker on another
machine does over a network.

Where namespaces cannot be made (no CAP_NET_ADMIN, no iproute2), the hosts fall back to separate
processes on loopback, each still in a UTS namespace of its own when that can be had, and
Hosts.fallback says why; the caller prints it as one FALLBACK line rather than skipping.

    hosts = Hosts(4).start()       # leftovers of a killed run are removed first
    srv = RedisServer(extra=hosts.redis_args()).start()
    subprocess.Popen(hosts.command(0, ["bg-worker", "-r", hosts.url(srv.port)]))
    ...
    hosts.cleanup()                # namespaces, veths and the bridge; also at exit

Every name carries the prefix and the PID of the process that made it (namespaces
bgh-<pid>-<i>, links bgh<pid>b and bgh<pid>h<i>), so a later run removes what a killed one left
behind, and never what a live one still uses.

As a program: `hosts.py clean` removes the leftovers of dead runs; `hosts.py make N` makes N
hosts, prints one line of their addresses (or the FALLBACK line) and waits for a signal."""

import atexit
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys

PREFIX = "bgh"
# Link names are at most 15 bytes (IFNAMSIZ): bgh + a PID of up to 7 digits + b or h<i>.
MAX_HOSTS = 9
# The /24 is 10.<SUBNET_BASE>.<n>.0 with n chosen from the PID, moved on while a route of this
# machine already covers it.
SUBNET_BASE = 213
HOST_NAME = "bg-host-{}"
_NS_RE = re.compile(rf"^{PREFIX}-(\d+)-(\d+)$")
_LINK_RE = re.compile(rf"^{PREFIX}(\d+)(?:b|h\d+)$")


def _ip(*args, ns=None, check=True):
    """Runs ip(8), in namespace ns when given; raises OSError with its message on failure."""
    argv = ["ip"] + (["netns", "exec", ns, "ip"] if ns else []) + list(args)
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=False)
    if check and p.returncode != 0:
        raise OSError(f"{' '.join(argv)}: {(p.stderr or p.stdout).strip() or p.returncode}")
    return p.stdout


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _our_namespaces():
    if not shutil.which("ip"):
        return []
    out = subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.split()
            and _NS_RE.match(line.split()[0])]


def _our_links():
    if not shutil.which("ip"):
        return []
    out = subprocess.run(["ip", "-o", "link", "show"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, check=False).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(":", 2)
        if len(parts) >= 2:
            name = parts[1].strip().split("@", 1)[0]
            if _LINK_RE.match(name):
                names.append(name)
    return names


def clean_leftovers(keep_pid=None):
    """Removes the namespaces and links of runs whose process is gone (a run killed before its
    cleanup); returns their names. Those of live processes, and of keep_pid, are left alone."""
    gone = []
    for name in _our_namespaces():
        pid = int(_NS_RE.match(name).group(1))
        if pid != keep_pid and not _alive(pid):
            _ip("netns", "delete", name, check=False)
            gone.append(name)
    for name in _our_links():
        pid = int(_LINK_RE.match(name).group(1))
        if pid != keep_pid and not _alive(pid):
            _ip("link", "delete", name, check=False)
            gone.append(name)
    return gone


def _subnet_free(net):
    """Whether no route of the root namespace (in any table) overlaps the /24 net, so that the
    bridge shadows nothing this machine reaches and no other run's hosts."""
    out = _ip("-4", "route", "show", "table", "all", check=False)
    for line in out.splitlines():
        words = line.split()
        if words and words[0] in ("local", "broadcast", "unicast", "anycast", "multicast"):
            words = words[1:]
        if not words or words[0] == "default":
            continue
        try:
            if ipaddress.ip_network(words[0], strict=False).overlaps(net):
                if ipaddress.ip_network(words[0], strict=False).prefixlen > 0:
                    return False
        except ValueError:
            continue
    return True


def _uts_wrapper():
    """The argv prefix that gives a process a UTS namespace of its own, where one can be had:
    `unshare --uts` as root, else in a user namespace of its own (`unshare -r -u`); None when
    neither works here."""
    if not shutil.which("unshare"):
        return None
    for pre in (["unshare", "--uts"], ["unshare", "--user", "--map-root-user", "--uts"]):
        p = subprocess.run(pre + ["sh", "-c", "echo bg-probe > /proc/sys/kernel/hostname"],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, check=False)
        if p.returncode == 0:
            return pre
    return None


class Hosts:
    """count worker hosts. After start(): mode is "netns" or "loopback", fallback the reason
    for loopback (None with namespaces), names the host names, addrs each host's own address
    (127.0.0.1 for all on loopback), redis_host the address their workers reach Redis at, and
    named whether each host's processes see its name as their host name."""

    def __init__(self, count, force_fallback=None):
        if not 1 <= count <= MAX_HOSTS:
            raise ValueError(f"1 to {MAX_HOSTS} hosts")
        self.count = count
        self.force_fallback = force_fallback
        self.pid = os.getpid()
        self.names = [HOST_NAME.format(i + 1) for i in range(count)]
        self.mode = None
        self.fallback = None
        self.namespaces = []
        self.links = []
        self.addrs = []
        self.redis_host = "127.0.0.1"
        self._uts_pre = None
        self._desc = None
        self.named = False
        self._registered = False

    # One Hosts at a time in a process: the names carry only the PID.
    _live = None

    # ---- making them ----

    def start(self):
        if Hosts._live is not None and Hosts._live is not self:
            raise RuntimeError("another Hosts of this process is still up: clean it up first")
        Hosts._live = self
        clean_leftovers(keep_pid=self.pid)
        if not self._registered:
            atexit.register(self.cleanup)
            self._registered = True
        why = self.force_fallback or self._cannot()
        if why is None:
            try:
                self._make()
                self.mode = "netns"
            except OSError as e:
                self.cleanup()
                Hosts._live = self
                why = f"network namespaces could not be made: {e}"
        if why is not None:
            self.mode = "loopback"
            self.fallback = why
            self.addrs = ["127.0.0.1"] * self.count
            self.redis_host = "127.0.0.1"
        self._uts_pre = ["unshare", "--uts"] if self.mode == "netns" else _uts_wrapper()
        self.named = self._uts_pre is not None
        self._desc = None
        self.describe()
        return self

    def _cannot(self):
        if not shutil.which("ip"):
            return "no ip(8) here (iproute2 is not installed)"
        if os.geteuid() != 0:
            return "not root, so no CAP_NET_ADMIN to make network namespaces"
        return None

    def _pick_subnet(self):
        for k in range(254):
            third = (self.pid + k) % 254 + 1
            if _subnet_free(ipaddress.ip_network(f"10.{SUBNET_BASE}.{third}.0/24")):
                return f"10.{SUBNET_BASE}.{third}"
        raise OSError(f"no free /24 under 10.{SUBNET_BASE}.0.0/16")

    def _make(self):
        net = self._pick_subnet()
        bridge = f"{PREFIX}{self.pid}b"
        _ip("link", "add", bridge, "type", "bridge")
        self.links.append(bridge)
        _ip("addr", "add", f"{net}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        self.redis_host = f"{net}.1"
        for i in range(self.count):
            ns = f"{PREFIX}-{self.pid}-{i + 1}"
            outer, inner = f"{PREFIX}{self.pid}h{i + 1}", f"{PREFIX}{self.pid}p{i + 1}"
            _ip("netns", "add", ns)
            self.namespaces.append(ns)
            _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
            self.links.append(outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "master", bridge)
            _ip("link", "set", outer, "up")
            addr = f"{net}.{11 + i}"
            _ip("addr", "add", f"{addr}/24", "dev", inner, ns=ns)
            _ip("link", "set", inner, "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            self.addrs.append(addr)

    # ---- using them ----

    def redis_args(self):
        """redis-server options that make it listen where the hosts reach it (127.0.0.1 too,
        for the tests' own clients)."""
        binds = ["127.0.0.1"] + ([self.redis_host] if self.redis_host != "127.0.0.1" else [])
        return ["--bind"] + binds + ["--protected-mode", "no"]

    def bind_value(self):
        """The same as one CONFIG SET bind value, for a redis-server already running."""
        return " ".join(self.redis_args()[1:-2])

    def url(self, port, db=0):
        """The Redis URL a host's worker uses."""
        return f"redis://{self.redis_host}:{port}/{db}"

    def command(self, i, argv):
        """argv run on host i: in its network namespace (netns mode) and, where one can be had,
        in a UTS namespace whose host name is names[i]. Every wrapper execs the next, so the
        process's PID is argv's."""
        pre = []
        if self.mode == "netns":
            pre = ["ip", "netns", "exec", self.namespaces[i]]
        if self._uts_pre:
            pre += self._uts_pre + ["sh", "-c",
                                    'echo "$0" > /proc/sys/kernel/hostname && exec "$@"',
                                    self.names[i]]
        return pre + list(argv)

    def host_of_addr(self, addr):
        """The host name whose address addr is (a CLIENT LIST addr, ip:port), or None."""
        ip = addr.rsplit(":", 1)[0]
        if self.mode != "netns":
            return None
        for name, a in zip(self.names, self.addrs):
            if a == ip:
                return name
        return None

    def describe(self):
        """One line for the output: what the hosts are (still right after cleanup)."""
        if self._desc is None:
            self._desc = self._describe()
        return self._desc

    def _describe(self):
        if self.mode == "netns":
            net = self.redis_host.rsplit(".", 1)[0]
            return (f"{self.count} hosts in network namespaces of their own "
                    f"({', '.join(self.namespaces)}), each a veth into bridge {self.links[0]} "
                    f"on {net}.0/24, Redis at {self.redis_host}")
        return self.fallback_line()

    def fallback_line(self):
        if self.mode != "loopback":
            return None
        names = ("each with its own host name" if self.named else
                 "all with this machine's host name (no UTS namespace either)")
        return (f"FALLBACK: {self.fallback}; the {self.count} hosts are separate processes on "
                f"loopback, {names}")

    def cleanup(self):
        """Removes the namespaces and links this run made. Processes still inside a namespace
        keep it alive after the delete, so the caller stops its workers first."""
        for ns in self.namespaces:
            _ip("netns", "delete", ns, check=False)
        for link in self.links:
            _ip("link", "delete", link, check=False)
        self.namespaces, self.links = [], []
        if Hosts._live is self:
            Hosts._live = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()
        return False


def main(argv):
    if argv == ["clean"]:
        for name in clean_leftovers():
            print(f"removed {name}")
        return 0
    if len(argv) == 2 and argv[0] == "make" and argv[1].isdigit():
        hosts = Hosts(int(argv[1])).start()
        print(hosts.fallback_line() or " ".join(hosts.addrs), flush=True)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        signal.pause()
        return 0
    print("usage: hosts.py clean | hosts.py make N", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
