"""rediss:// end to end (docs/operations.md#tls), against Debian's redis-server on a TLS port only
(--port 0 --tls-port), with a CA, server and client certificates made by openssl for this run:
the lifecycle, the watcher taking back a SIGKILLed worker's job, mutual TLS, bg-cli status and
ping, a dropped and a hung TLS connection behaving as on plaintext, each bad certificate with its
one clear error, and each malformed TLS option or variable refused as a usage error."""

import os
import shutil
import signal
import socket
import ssl
import subprocess
import time

import pytest
import redis

from conftest import RedisServer, clients_named, exe, run, wait_for
from test_worker import attempts_of, push, wait_done

pytestmark = pytest.mark.skipif(not shutil.which("openssl"), reason="openssl is not installed")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_cert(d, name, ca, san, cn, days="2"):
    """A key and a certificate signed by ca (a name in d), valid for days (negative: expired
    already), with the subjectAltName san."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(f"subjectAltName={san}\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", days, "-extfile", f"{name}.ext",
            cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """The certificates of this run: ca signs server (localhost, 127.0.0.1), client, expired
    (notAfter before notBefore: openssl -days -1) and wrongname (other.example only); other_ca
    is a CA the server's certificate does not come from."""
    d = str(tmp_path_factory.mktemp("pki"))
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                "-nodes", "-keyout", f"{ca}.key", "-out", f"{ca}.crt", "-days", "2",
                "-subj", f"/CN=bg test {ca}", cwd=d)
    make_cert(d, "server", "ca", "DNS:localhost,IP:127.0.0.1", "localhost")
    make_cert(d, "client", "ca", "DNS:bg-client", "bg-client")
    make_cert(d, "expired", "ca", "DNS:localhost,IP:127.0.0.1", "localhost", days="-1")
    make_cert(d, "wrongname", "ca", "DNS:other.example", "other.example")
    with open(os.path.join(d, "junk.pem"), "w") as f:
        f.write("this is no certificate\n")
    return lambda name: os.path.join(d, name)


class TLSRedis(RedisServer):
    """A redis-server listening on a TLS port only, with the server certificate cert."""

    def __init__(self, pki, cert="server", auth_clients="no", password=None):
        super().__init__(extra=[
            "--tls-cert-file", pki(f"{cert}.crt"), "--tls-key-file", pki(f"{cert}.key"),
            "--tls-ca-cert-file", pki("ca.crt"), "--tls-auth-clients", auth_clients] +
            (["--requirepass", password] if password else []))
        self.pki = pki
        self.password = password

    def _args(self):
        args = super()._args()
        i = args.index("--port")
        args[i + 1] = "0"
        return args + ["--tls-port", str(self.port)]

    def _ping(self):
        """Whether the server answers, whatever its certificate (an expired one included)."""
        if self.proc.poll() is not None:
            raise AssertionError("redis-server exited")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                ctx.load_cert_chain(self.pki("client.crt"), self.pki("client.key"))
                with ctx.wrap_socket(s) as t:
                    t.sendall(b"PING\r\n")
                    return t.recv(64).startswith((b"+PONG", b"-NOAUTH"))
        except OSError:
            return False

    @property
    def url(self):
        return f"rediss://127.0.0.1:{self.port}/0"

    def client(self, **kw):
        kw.setdefault("password", self.password)
        # Python checks the same certificate; it always presents the client one, so it gets in
        # under --tls-auth-clients yes as well.
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, ssl=True,
                           ssl_ca_certs=self.pki("ca.crt"), ssl_certfile=self.pki("client.crt"),
                           ssl_keyfile=self.pki("client.key"), ssl_cert_reqs=ssl.CERT_REQUIRED,
                           **kw)


@pytest.fixture(scope="module")
def tls_server(pki):
    srv = TLSRedis(pki).start()
    yield srv
    srv.cleanup()


@pytest.fixture
def ts(tls_server):
    c = tls_server.client()
    c.flushall()
    c.close()
    return tls_server


@pytest.fixture
def tr(ts):
    c = ts.client()
    yield c
    c.close()


def tls_env(pki, **extra):
    """The environment with BG_TLS_CA_CERT naming the test CA (and extra variables)."""
    env = dict(os.environ, BG_TLS_CA_CERT=pki("ca.crt"))
    for k in ("BG_TLS_CERT", "BG_TLS_KEY", "BG_TLS_SERVER_NAME"):
        env.pop(k, None)
    env.update(extra)
    return env


def bgcli(url, *args, env=None, timeout=30):
    return run([exe("bg-cli"), "-r", url, *args], env=env, timeout=timeout)


def start(spawn, prog, url, *args, env=None):
    return spawn([exe(prog), "-r", url, *args], env=env)


def tls_worker(spawn, srv, *args, env=None, fibers=2):
    p = start(spawn, "bg-worker", srv.url, "-c", str(fibers), *args, env=env or tls_env(srv.pki))
    r = srv.client()
    wait_for(lambda: len(clients_named(r, "bg-worker-fiber:")) >= fibers or p.proc.poll() is not None,
             what="the worker's fibers to connect over TLS")
    assert p.proc.poll() is None, p.log()
    return p


def tls_watcher(spawn, srv, *args):
    p = start(spawn, "bg-watcher", srv.url, "--tls-ca-cert", srv.pki("ca.crt"), *args,
              env=tls_env(srv.pki))
    r = srv.client()
    wait_for(lambda: clients_named(r, "bg-watcher") or p.proc.poll() is not None,
             what="the watcher to connect over TLS")
    assert p.proc.poll() is None, p.log()
    return p


def echo(tmp_path):
    """An exec handler writing each job's argument to tmp_path/<job>, and a reader of it."""
    return f'echo=cat > {tmp_path}/"$BG_JOB_ID"', lambda jid: (tmp_path / jid).read_text()


def running_attempt(r, jid):
    for a in attempts_of(r, jid):
        if r.sismember(f"bg:processing:{a['que']}", a["id"]):
            return a
    return None


# ---- the lifecycle, the watcher, bg-cli ----

def test_lifecycle_enqueue_worker_completed(ts, tr, spawn, pki, tmp_path):
    handler, output = echo(tmp_path)
    tls_worker(spawn, ts, "-e", handler)
    out = bgcli(ts.url, "--tls-ca-cert", pki("ca.crt"), "enqueue", "echo", '{"n": 1}',
                env=tls_env(pki))
    assert out.returncode == 0, out.stderr
    jid = out.stdout.strip()
    a = wait_done(tr, jid)
    assert "err" not in a and output(jid) == '{"n": 1}', a
    assert tr.zscore("bg:completed:default", a["id"]) is not None
    # Every bg connection is a TLS one: the server has no plaintext port at all.
    assert tr.config_get("port")["port"] == "0"


def test_many_jobs_through_the_pump(ts, tr, spawn, pki, tmp_path):
    """Enough jobs, arguments larger than one TLS record and fibers sharing the pump, so that
    partial reads and writes happen both ways."""
    handler, output = echo(tmp_path)
    tls_worker(spawn, ts, "-e", handler, fibers=4)
    big = '{"pad": "' + "x" * 100000 + '"}'
    jids = [push(tr, "echo", arg=big if i % 10 == 0 else '{"i": %d}' % i) for i in range(200)]
    wait_for(lambda: tr.zcard("bg:completed:default") == 200, timeout=60,
             what="200 jobs to complete over TLS")
    assert output(jids[0]) == big and output(jids[1]) == '{"i": 1}'


def test_watcher_brings_back_a_sigkilled_workers_job(ts, tr, spawn):
    tls_watcher(spawn, ts)
    w = tls_worker(spawn, ts, "-e", "nap=sleep 60", fibers=1)
    jid = push(tr, "nap", rty=1)
    a = wait_for(lambda: running_attempt(tr, jid), what="the job to start")
    w.signal(signal.SIGKILL)
    w.wait(5)
    wait_for(lambda: tr.zscore("bg:failed:default", a["id"]) is not None, timeout=10,
             what="the watcher to fail the vanished attempt")
    assert tr.hget(f"bg:attempts:{a['id']}", "err") == "Worker Timeout"
    assert tr.zscore("bg:scheduled:default", jid) is not None  # back, to be retried


def test_cli_status_and_ping(ts, tr, pki):
    out = bgcli(ts.url, "enqueue", "x", "{}", env=tls_env(pki))
    assert out.returncode == 0, out.stderr
    out = bgcli(ts.url, "status", env=tls_env(pki))
    assert out.returncode == 0, out.stderr
    assert "default" in out.stdout and "1" in out.stdout.split("\n")[2]
    out = bgcli(ts.url, "--tls-ca-cert", pki("ca.crt"), "ping", "--json", env=tls_env(pki))
    assert out.returncode == 0, out.stderr
    assert f'"url": "rediss://127.0.0.1:{ts.port}/0"' in out.stdout.replace('":"', '": "')


def test_password_is_masked(pki, spawn):
    srv = TLSRedis(pki, password="s3cret-pw").start()
    try:
        ok = bgcli(f"rediss://:s3cret-pw@127.0.0.1:{srv.port}/0", "ping", env=tls_env(pki))
        assert ok.returncode == 0, ok.stderr
        assert "s3cret-pw" not in ok.stdout and ":***@" in ok.stdout
        bad = bgcli(f"rediss://:wrong-pw@127.0.0.1:{srv.port}/0", "ping", env=tls_env(pki))
        assert bad.returncode == 1
        assert "wrong-pw" not in bad.stderr and ":***@" in bad.stderr, bad.stderr
    finally:
        srv.cleanup()


# ---- mutual TLS ----

@pytest.fixture(scope="module")
def mtls_server(pki):
    srv = TLSRedis(pki, auth_clients="yes").start()
    yield srv
    srv.cleanup()


def test_mutual_tls(mtls_server, spawn, pki, tmp_path):
    srv = mtls_server
    r = srv.client()
    r.flushall()
    env = tls_env(pki, BG_TLS_CERT=pki("client.crt"), BG_TLS_KEY=pki("client.key"))
    tls_watcher_env = dict(env)
    w = start(spawn, "bg-watcher", srv.url, env=tls_watcher_env)
    handler, output = echo(tmp_path)
    tls_worker(spawn, srv, "-e", handler, env=env)
    wait_for(lambda: clients_named(r, "bg-watcher"), what="the watcher over mutual TLS")
    out = bgcli(srv.url, "--tls-cert", pki("client.crt"), "--tls-key", pki("client.key"),
                "enqueue", "echo", '{"m": 1}', env=tls_env(pki))
    assert out.returncode == 0, out.stderr
    jid = out.stdout.strip()
    wait_done(r, jid)
    assert output(jid) == '{"m": 1}'
    assert w.proc.poll() is None, w.log()
    # Without a certificate the server refuses the client, and says why.
    out = bgcli(srv.url, "ping", env=tls_env(pki))
    assert out.returncode == 1
    assert "TLS: the server requires a client certificate" in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    r.close()


# ---- bad certificates: one clear error each ----

@pytest.mark.parametrize("cert,extra,why", [
    # The server sends its CA along (OpenSSL's own chain): a CA the client does not trust.
    ("server", ["--tls-ca-cert", "other_ca.crt"],
     "certificate verify failed: self-signed certificate in certificate chain"),
    ("server", [], "certificate verify failed: self-signed certificate in certificate chain"),
    ("expired", ["--tls-ca-cert", "ca.crt"], "certificate verify failed: certificate has expired"),
    ("wrongname", ["--tls-ca-cert", "ca.crt"], "certificate verify failed: IP address mismatch"),
    ("server", ["--tls-ca-cert", "ca.crt", "--tls-server-name", "other.example"],
     "certificate verify failed: hostname mismatch"),
])
def test_bad_certificate_is_one_clear_error(pki, spawn, cert, extra, why):
    """The system's store (no --tls-ca-cert) does not know the test CA: refused too."""
    srv = TLSRedis(pki, cert=cert).start()
    try:
        args = [pki(a) if a.endswith(".crt") else a for a in extra]
        env = dict(os.environ)
        env.pop("BG_TLS_CA_CERT", None)
        out = bgcli(srv.url, *args, "ping", env=env)
        assert out.returncode == 1, out
        assert out.stderr == (f"bg-cli: ping: cannot connect to rediss://127.0.0.1:{srv.port}/0: "
                              f"TLS: {why}\n")
        w = start(spawn, "bg-worker", srv.url, "-c", "1", *args, env=env)
        wait_for(lambda: why in w.log(), what="the worker to say why it cannot connect")
        a = start(spawn, "bg-watcher", srv.url, *args, env=env)
        wait_for(lambda: why in a.log() or a.proc.poll() is not None,
                 what="the watcher to say why it cannot connect")
        assert why in a.log()
    finally:
        srv.cleanup()


def test_name_given_matches_where_the_ip_does_not(pki):
    srv = TLSRedis(pki, cert="wrongname").start()
    try:
        out = bgcli(srv.url, "--tls-server-name", "other.example", "ping", env=tls_env(pki))
        assert out.returncode == 0, out.stderr
        env = tls_env(pki, BG_TLS_SERVER_NAME="other.example")
        out = bgcli(srv.url, "ping", env=env)
        assert out.returncode == 0, out.stderr
    finally:
        srv.cleanup()


def test_plaintext_client_on_a_tls_port_and_tls_on_a_plain_one(ts, rs, pki):
    out = bgcli(f"redis://127.0.0.1:{ts.port}/0", "ping", timeout=20)
    assert out.returncode == 1
    out = bgcli(f"rediss://127.0.0.1:{rs.port}/0", "ping", env=tls_env(pki), timeout=20)
    assert out.returncode == 1
    assert "TLS" in out.stderr, out.stderr


# ---- drops and hangs behave as on plaintext ----

def test_dropped_tls_connections_are_reconnected(ts, tr, spawn, tmp_path):
    handler, output = echo(tmp_path)
    tls_worker(spawn, ts, "-e", handler)
    assert tr.client_kill_filter(_type="normal", skipme=True) >= 2
    jid = push(tr, "echo", arg='{"after": "kill"}')
    wait_done(tr, jid, timeout=20)
    assert output(jid) == '{"after": "kill"}'


def test_worker_rides_out_a_tls_server_restart(pki, spawn, tmp_path):
    srv = TLSRedis(pki).start()
    try:
        handler, output = echo(tmp_path)
        w = tls_worker(spawn, srv, "-e", handler)
        srv.restart()
        r = srv.client()
        wait_for(lambda: len(clients_named(r, "bg-worker-fiber:")) >= 2, timeout=20,
                 what="the fibers to reconnect")
        jid = push(r, "echo", arg='{"after": "restart"}')
        wait_done(r, jid, timeout=20)
        assert output(jid) == '{"after": "restart"}'
        assert w.proc.poll() is None
    finally:
        srv.cleanup()


def test_hung_tls_server_times_out(pki):
    """A server that takes the TCP connection but never answers: the handshake read times out
    (bg-cli's 5 s), and on a connection already up the command's read does, as on plaintext."""
    srv = TLSRedis(pki).start()
    try:
        srv.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        out = bgcli(srv.url, "ping", env=tls_env(pki), timeout=30)
        took = time.monotonic() - t0
        assert out.returncode == 1
        assert "did not answer in time" in out.stderr, out.stderr
        assert 4 <= took <= 12, took
    finally:
        srv.proc.send_signal(signal.SIGCONT)
        srv.cleanup()


def test_hung_server_after_connect_times_out_the_read(pki, spawn):
    srv = TLSRedis(pki).start()
    try:
        a = start(spawn, "bg-watcher", srv.url, "-v", env=tls_env(pki))
        r = srv.client()
        # Up: its subscriber subscribed and its main connection tracking (the last step).
        wait_for(lambda: any("t" in c["flags"] for c in clients_named(r, "bg-watcher")) and
                 any(c["sub"] != "0" for c in clients_named(r, "bg-watcher")),
                 what="the watcher to connect")
        r.close()
        srv.proc.send_signal(signal.SIGSTOP)
        t0 = time.monotonic()
        wait_for(lambda: "lost the connection to Redis" in a.log(), timeout=30,
                 what="the watcher to see the hang")
        # Its 3 s socket timeout (or the subscriber's PING), as on plaintext.
        assert time.monotonic() - t0 < 10
        srv.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: "reconnected to Redis" in a.log(), timeout=30,
                 what="the watcher to connect again")
        assert a.proc.poll() is None, a.log()
    finally:
        srv.proc.send_signal(signal.SIGCONT)
        srv.cleanup()


# ---- malformed options ----

PROGS = [("bg-worker", []), ("bg-watcher", []), ("bg-cli", ["ping"])]


def usage_error(prog, url, *args, env=None):
    pre = [exe(prog), "-r", url]
    tail = ["ping"] if prog == "bg-cli" else []
    return run(pre + list(args) + tail, env=env, timeout=10)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BG_TLS_")}
    env.update(extra)
    return env


@pytest.mark.parametrize("prog", [p for p, _ in PROGS])
@pytest.mark.parametrize("args,env,msg", [
    (["--tls-ca-cert", "CA"], {}, "--tls-ca-cert needs a rediss:// URL"),
    (["--tls-server-name", "localhost"], {}, "--tls-server-name needs a rediss:// URL"),
    ([], {"BG_TLS_CA_CERT": "CA"}, "BG_TLS_CA_CERT needs a rediss:// URL"),
])
def test_tls_option_with_a_plain_url_is_a_usage_error(pki, prog, args, env, msg):
    args = [pki("ca.crt") if a == "CA" else a for a in args]
    env = {k: pki("ca.crt") if v == "CA" else v for k, v in env.items()}
    out = usage_error(prog, "redis://127.0.0.1:1/0", *args, env=clean_env(**env))
    assert out.returncode == 2, out
    assert msg in out.stderr, out.stderr


@pytest.mark.parametrize("prog", [p for p, _ in PROGS])
@pytest.mark.parametrize("args,msg", [
    (["--tls-ca-cert", "/nonexistent/ca.pem"],
     "cannot read --tls-ca-cert '/nonexistent/ca.pem': No such file or directory"),
    (["--tls-cert", "/nonexistent/c.pem", "--tls-key", "KEY"], "cannot read --tls-cert '/nonexistent/c.pem'"),
    (["--tls-cert", "CERT", "--tls-key", "/nonexistent/k.pem"], "cannot read --tls-key '/nonexistent/k.pem'"),
    (["--tls-ca-cert", ""], "--tls-ca-cert is empty"),
    (["--tls-server-name", ""], "--tls-server-name is empty"),
    (["--tls-server-name", "a b"], "server name holds a character"),
    (["--tls-cert", "CERT"], "needs its key"),
    (["--tls-key", "KEY"], "needs its key"),
    (["--tls-ca-cert", "JUNK"], "cannot load the TLS CA certificates from"),
    (["--tls-cert", "JUNK", "--tls-key", "KEY"], "cannot load the TLS client certificate from"),
    (["--tls-cert", "CERT", "--tls-key", "JUNK"], "cannot load the TLS client key from"),
    (["--tls-cert", "CERT", "--tls-key", "SERVERKEY"], "key values mismatch"),
    (["--tls-ca-cert"], "needs a value"),
])
def test_malformed_tls_option_is_a_usage_error(pki, prog, args, msg):
    names = {"CERT": "client.crt", "KEY": "client.key", "JUNK": "junk.pem",
             "SERVERKEY": "server.key"}
    args = [pki(names[a]) if a in names else a for a in args]
    out = usage_error(prog, "rediss://127.0.0.1:1/0", *args, env=clean_env())
    if prog == "bg-cli" and args == ["--tls-ca-cert"]:
        out = run([exe("bg-cli"), "-r", "rediss://127.0.0.1:1/0", "--tls-ca-cert"], timeout=10)
    assert out.returncode == 2, out
    assert msg in out.stderr, out.stderr
    assert out.stderr.count("\n") == 1, out.stderr
    for a in args:
        if a.endswith((".pem", ".crt", ".key")) and "cannot" in msg and a in msg:
            assert a in out.stderr


def test_empty_variables_count_as_unset(pki):
    out = usage_error("bg-cli", "redis://127.0.0.1:1/0",
                      env=clean_env(BG_TLS_CA_CERT="", BG_TLS_SERVER_NAME=""))
    assert out.returncode == 1, out  # a connection error: no usage error over empty variables
    assert "needs a rediss://" not in out.stderr


def test_help_lists_the_tls_options():
    for prog in ("bg-worker", "bg-watcher", "bg-cli"):
        out = run([exe(prog), "-h"])
        for opt in ("--tls-ca-cert", "--tls-cert", "--tls-key", "--tls-server-name"):
            assert opt in out.stdout, (prog, opt)
