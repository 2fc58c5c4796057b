"""--liveness lease (docs/operations.md#liveness): where a server forbids CLIENT, workers keep a
lease key fresh for their attempts and watchers fail the attempts whose lease expired. Run for
real under a Redis user denied every CLIENT subcommand: jobs complete; a SIGKILLed worker's
attempt fails once its lease is gone, never before; a slow job outlives its lease's TTL many
times over and is not failed; a SIGSTOPped worker past its lease counts as vanished; each
watcher reports (and never fails) the attempts its test cannot judge; bad values are usage
errors."""

import json
import signal
import time
import uuid

import pytest

from conftest import exe, run, wait_for
from test_worker import push, server_ms

PASSWORD = "s3cret"
LEASE = "500ms"


@pytest.fixture
def url(rs, r):
    """A user allowed everything but CLIENT, as some managed providers give."""
    r.execute_command("ACL", "SETUSER", "noclient", "reset", "on", f">{PASSWORD}", "~*", "&*",
                      "+@all", "-client")
    r.execute_command("ACL", "LOG", "RESET")
    yield f"redis://noclient:{PASSWORD}@127.0.0.1:{rs.port}/0"
    r.execute_command("ACL", "DELUSER", "noclient")


def refused(r):
    """The objects Redis refused, from its ACL LOG."""
    out = []
    for e in r.execute_command("ACL", "LOG"):
        d = dict(zip(e[::2], e[1::2])) if isinstance(e, list) else e
        out.append(d.get("object"))
    return out


def lease_worker(spawn, url, *args):
    p = spawn([exe("bg-worker"), "-r", url, "--liveness", "lease", "--lease", LEASE] + list(args))
    wait_for(lambda: "started:" in p.log() or p.proc.poll() is not None, what="worker start")
    assert p.proc.poll() is None, p.log()
    return p


def lease_watcher(spawn, url, *args, liveness="lease"):
    p = spawn([exe("bg-watcher"), "-r", url, "--liveness", liveness, "-i", "0.05",
               "--grace", "0.1"] + list(args))
    wait_for(lambda: f"liveness {liveness}:" in p.log() or p.proc.poll() is not None,
             what="the watcher's liveness line")
    assert p.proc.poll() is None, p.log()
    return p


def running_attempt(r, jid):
    """The attempt of jid in processing, with its fields, once there is one."""
    for aid in r.smembers("bg:processing:default"):
        h = r.hgetall(f"bg:attempts:{aid}")
        if h.get("job") == jid:
            return dict(h, id=aid)
    return None


def plant_attempt(r, **fields):
    """An attempt in processing as another program wrote it, with its job hash."""
    jid, aid = str(uuid.uuid4()), str(uuid.uuid4())
    r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": "bg.noop", "arg": "{}",
                                      "qat": server_ms(r), "att": 1, "rty": 5, "lat": aid})
    r.hset(f"bg:attempts:{aid}", mapping={"sta": server_ms(r), "job": jid, "que": "default",
                                          **fields})
    r.sadd("bg:processing:default", aid)
    return aid


def test_jobs_complete_with_no_client_command(rs, r, spawn, url):
    w = lease_worker(spawn, url, "-c", "2", "-v")
    lease_watcher(spawn, url)
    jobs = [push(r, "bg.noop") for _ in range(10)]
    slow = push(r, "bg.sleep", '{"ms":400}')
    a = wait_for(lambda: running_attempt(r, slow), what="the slow job to start")
    # The attempt names its fiber's lease, whose key lives while it runs; wrk is the client ID
    # HELLO gave, so foreign readers find the field they expect.
    assert uuid.UUID(a["lse"]) and a["wrk"].isdigit(), a
    assert r.pttl(f"bg:lease:{a['lse']}") > 0
    wait_for(lambda: r.zcard("bg:completed:default") == 11, what="every job to complete")
    assert r.zcard("bg:failed:default") == 0
    # Not one CLIENT command got through but as refused optional wake-ups (CLIENT TRACKING): the
    # names and IDs came with HELLO.
    assert set(refused(r)) <= {"client|tracking"}, refused(r)
    noperm = [ln for ln in w.log().splitlines() if "NOPERM" in ln]
    assert all("CLIENT TRACKING refused" in ln for ln in noperm), noperm
    assert all(r.hget(f"bg:jobs:{j}", "att") == "1" for j in jobs)


def test_sigkilled_worker_fails_once_its_lease_expired_and_is_retried(rs, r, spawn, url):
    w = lease_worker(spawn, url, "-c", "1")
    wa = lease_watcher(spawn, url)
    jid = push(r, "bg.sleep", '{"ms":30000}')
    a = wait_for(lambda: running_attempt(r, jid), what="the job to start")
    lease = f"bg:lease:{a['lse']}"
    w.signal(signal.SIGKILL)
    w.wait()
    killed = time.monotonic()
    # While the lease lives the attempt is not failed, whatever the connection did.
    while r.exists(lease):
        assert r.zcard("bg:failed:default") == 0
        assert time.monotonic() - killed < 5, "the lease outlived its TTL"
        time.sleep(0.01)
    wait_for(lambda: r.zcard("bg:failed:default") == 1, timeout=5, what="Worker Timeout")
    f = r.hgetall(f"bg:attempts:{a['id']}")
    assert f["err"] == "Worker Timeout" and "fin" not in f and "time" not in f, f
    job = r.hgetall(f"bg:jobs:{jid}")
    assert job["itr"] == "1" and r.zscore("bg:scheduled:default", jid) is not None, job
    assert not r.sismember("bg:processing:default", a["id"])
    assert "lease expired" in wa.log(), wa.log()


def test_a_slow_job_outlives_its_lease_ttl_and_is_not_failed(rs, r, spawn, url):
    lease_worker(spawn, url, "-c", "1")
    # Grace 0: a lease found gone even once would fail the attempt at the next pass.
    lease_watcher(spawn, url, "--grace", "0")
    jid = push(r, "bg.sleep", '{"ms":2500}')  # five times the lease
    wait_for(lambda: r.zcard("bg:completed:default") == 1, timeout=10, what="the slow job")
    assert r.zcard("bg:failed:default") == 0
    assert r.hget(f"bg:jobs:{jid}", "itr") is None


def test_a_worker_stopped_past_its_lease_counts_as_vanished(rs, r, spawn, url):
    """SIGSTOP freezes the fiber that refreshes the lease: past lease + grace the watcher fails
    the attempt, as for a dead worker (docs/operations.md#liveness). Once continued, the worker
    finds the attempt failed and drops its result; the job is retried, never lost."""
    w = lease_worker(spawn, url, "-c", "1")
    lease_watcher(spawn, url)
    jid = push(r, "bg.sleep", '{"ms":1200}')
    a = wait_for(lambda: running_attempt(r, jid), what="the job to start")
    w.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: r.zcard("bg:failed:default") == 1, timeout=5, what="Worker Timeout")
    finally:
        w.signal(signal.SIGCONT)
    assert r.hget(f"bg:attempts:{a['id']}", "err") == "Worker Timeout"
    wait_for(lambda: "failed by a watcher" in w.log(), timeout=5, what="the dropped result")
    assert r.zcard("bg:completed:default") == 0
    assert r.zscore("bg:scheduled:default", jid) is not None


def test_lease_watcher_reports_attempts_without_a_lease_and_never_fails_them(rs, r, spawn, url):
    no_lease = plant_attempt(r, wrk="999999")  # a worker judged by client ID
    bad_lease = plant_attempt(r, wrk="999998", lse="not-a-lease")
    expired = plant_attempt(r, wrk="999997", lse=str(uuid.uuid4()))  # its lease is gone
    wa = lease_watcher(spawn, url)
    # The expired one fails after two passes: those passes judged the others too.
    wait_for(lambda: r.zscore("bg:failed:default", expired), what="the expired lease's attempt")
    wait_for(lambda: "cannot be judged by liveness lease" in wa.log(), what="the report")
    assert r.sismember("bg:processing:default", no_lease)
    assert r.sismember("bg:processing:default", bad_lease)
    assert r.zcard("bg:failed:default") == 1
    log = wa.log()
    assert "2 running attempts cannot be judged by liveness lease" in log, log
    assert "a watcher with --liveness clientid judges them" in log, log


def test_clientid_watcher_reports_attempts_with_a_lease_and_no_client_id(rs, r, spawn):
    leased = plant_attempt(r, lse=str(uuid.uuid4()))  # no wrk: nothing CLIENT LIST can tell
    gone = plant_attempt(r, wrk="999997")  # a connection that is not there
    wa = lease_watcher(spawn, rs.url, liveness="clientid")
    wait_for(lambda: r.zscore("bg:failed:default", gone), what="the vanished worker's attempt")
    wait_for(lambda: "cannot be judged by liveness clientid" in wa.log(), what="the report")
    assert r.sismember("bg:processing:default", leased)
    log = wa.log()
    assert f"[{leased}]" in log and "it has a lease (lse) and no client ID (wrk)" in log, log
    assert "a watcher with --liveness lease judges them" in log, log


def test_clientid_watcher_refused_client_list_says_to_use_leases(rs, r, url):
    p = run([exe("bg-watcher"), "-r", url, "-i", "0.05"], timeout=10)
    assert p.returncode == 1, p.stderr
    assert "liveness clientid:" in p.stderr
    assert "refused CLIENT" in p.stderr and "run workers and watchers with --liveness lease" \
        in p.stderr, p.stderr


@pytest.mark.parametrize("prog,args,needle", [
    ("bg-worker", ["--liveness", "lease2"], "invalid --liveness 'lease2': clientid or lease"),
    ("bg-worker", ["--liveness", ""], "invalid --liveness '': clientid or lease"),
    ("bg-worker", ["--liveness", "LEASE"], "invalid --liveness 'LEASE'"),
    ("bg-worker", ["--liveness", "lease", "--lease", "2x"], "invalid --lease '2x'"),
    ("bg-worker", ["--liveness", "lease", "--lease", "-1"], "invalid --lease '-1'"),
    ("bg-worker", ["--liveness", "lease", "--lease", "0"], "invalid --lease '0': from 100ms to 1h"),
    ("bg-worker", ["--liveness", "lease", "--lease", "50ms"], "from 100ms to 1h"),
    ("bg-worker", ["--liveness", "lease", "--lease", "2h"], "from 100ms to 1h"),
    ("bg-worker", ["--lease", "5s"], "--lease needs --liveness lease"),
    ("bg-worker", ["--liveness", "clientid", "--lease", "5s"], "--lease needs --liveness lease"),
    ("bg-watcher", ["--liveness", "leases"], "invalid --liveness 'leases': clientid or lease"),
    ("bg-watcher", ["--lease", "5s"], "unknown option '--lease'"),
])
def test_malformed_liveness_and_lease_are_usage_errors(rs, r, prog, args, needle):
    p = run([exe(prog), "-r", rs.url] + args, timeout=10)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert r.dbsize() == 0  # nothing was written


def test_help_names_the_options(rs):
    for prog in ("bg-worker", "bg-watcher"):
        assert "--liveness" in run([exe(prog), "-h"]).stdout
    assert "--lease D" in run([exe("bg-worker"), "-h"]).stdout


def test_cli_status_counts_workers_from_heartbeats_when_client_list_is_refused(rs, r, spawn,
                                                                                url):
    lease_worker(spawn, url, "-c", "3", "-q", "high,low")
    wait_for(lambda: r.scard("bg:workers") == 1, what="the heartbeat")
    pre = [exe("bg-cli"), "-r", url]
    p = run(pre + ["status", "-q", "high,low,other", "--json"])
    assert p.returncode == 0, p.stderr
    q = {e["name"]: e for e in json.loads(p.stdout)["queues"]}
    assert (q["high"]["workers"], q["high"]["fibers"]) == (1, 3), q
    assert (q["low"]["workers"], q["low"]["fibers"]) == (1, 3), q
    assert (q["other"]["workers"], q["other"]["fibers"]) == (0, 0), q
    p = run(pre + ["workers", "--json"])
    assert p.returncode == 0, p.stderr
    assert [w["fibers"] for w in json.loads(p.stdout)["workers"]] == [3], p.stdout
    assert run(pre + ["ping"]).returncode == 0
    # bg-cli tried CLIENT, was refused, and did without: its name came with HELLO, its census
    # from the heartbeats. Nothing else was refused.
    assert all(o.startswith("client|") for o in refused(r)), refused(r)


def test_clientid_worker_refused_client_says_to_use_leases(rs, r, url):
    p = run([exe("bg-worker"), "-r", url, "-c", "1"], timeout=10)
    assert p.returncode == 1, p.stderr
    assert "refused CLIENT SETNAME" in p.stderr and \
        "run workers and watchers with --liveness lease" in p.stderr, p.stderr
