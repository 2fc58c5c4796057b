"""bg-cli show end to end: a job in each of its states, with its attempts newest first (lat, then
each attempt's prv), one attempt, IDs that name nothing or are no UUID, a job key another
program wrote, --json; and the fields lat, prv, ler and lms as docs/schema.md says."""

import json
import signal
import uuid

from conftest import cli, wait_for
from test_cli import ok, one_line_error
from test_watcher import schedule, watcher
from test_worker import attempts_of, push, server_ms, worker


def show(rs, *args):
    return ok(cli(rs, "show", *args))


def show_json(rs, ident):
    return json.loads(show(rs, ident, "--json"))


def test_waiting_job(rs, r):
    jid = push(r, "Mail::Send", '{"to":"a@b.c"}')
    out = show(rs, jid)
    assert f"job    {jid}\nstate  waiting\nqueue  default\n" in out
    assert "cls    Mail::Send\n" in out and 'arg    {"to":"a@b.c"}\n' in out
    qat = r.hget(f"bg:jobs:{jid}", "qat")
    assert f"({qat} ms)" in out and "Z (" in out  # UTC ISO 8601 beside the ms
    assert "no attempts recorded" in out
    j = show_json(rs, jid)
    assert j["job"] == jid and j["state"] == "waiting" and j["queue"] == "default"
    assert j["fields"]["qat"] == int(qat) and j["fields"]["cls"] == "Mail::Send"
    assert j["times"]["qat"].endswith("Z") and j["attempts"] == []
    assert j["more"] is False and j["trimmed"] is False


def test_scheduled_job_any_case_and_braces(rs, r):
    jid = schedule(r, "bg.noop", server_ms(r) + 3_600_000, pat=server_ms(r) + 3_600_000)
    assert show_json(rs, jid)["state"] == "scheduled"
    # An ID may be given as producers may write it: upper case, in braces.
    up = "{" + jid.upper() + "}"
    r.rename(f"bg:jobs:{jid}", f"bg:jobs:{up}")
    r.zadd("bg:scheduled:default", {up: server_ms(r) + 3_600_000})
    assert show_json(rs, up)["state"] == "scheduled"


def test_running_job(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.sleep", '{"ms":20000}')
    wait_for(lambda: r.scard("bg:processing:default") == 1, what="the job to start")
    j = show_json(rs, jid)
    assert j["state"] == "running"
    [a] = j["attempts"]
    assert a["outcome"] == "running" and isinstance(a["fields"]["wrk"], int)
    assert a["fields"]["sta"] == int(r.hget(f"bg:attempts:{a['attempt']}", "sta"))
    out = show(rs, jid)
    assert "state  running" in out and a["attempt"] in out
    w.signal(signal.SIGKILL)


def test_completed_job(rs, r, spawn):
    worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.noop")
    wait_for(lambda: r.zcard("bg:completed:default") == 1, what="the job to complete")
    j = show_json(rs, jid)
    assert j["state"] == "completed"
    [a] = j["attempts"]
    assert a["outcome"] == "completed" and isinstance(a["fields"]["time"], float)
    assert a["times"]["fin"].endswith("Z")
    lines = show(rs, jid).splitlines()
    row = [ln for ln in lines if ln.startswith(a["attempt"])][0]
    assert "completed" in row and " ms" in row


def test_retrying_job(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.fail", '{"err":"Boom","msg":"it broke"}', rty=3)
    wait_for(lambda: r.zscore("bg:scheduled:default", jid), what="the retry to be scheduled")
    w.stop()
    j = show_json(rs, jid)
    assert j["state"] == "retrying"
    [a] = j["attempts"]
    assert a["outcome"] == "failed" and a["fields"]["err"] == "Boom"
    assert a["fields"]["msg"] == "it broke"
    row = [ln for ln in show(rs, jid).splitlines() if ln.startswith(a["attempt"])][0]
    assert "failed" in row and "Boom" in row and "it broke" in row


def test_dead_job_says_why_after_its_attempts_are_trimmed(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.fail", '{"err":"Fatal","msg":"disk full"}', rty=0)
    wait_for(lambda: r.zscore("bg:dead:default", jid), what="the job to die")
    w.stop()
    [att] = attempts_of(r, jid)
    watcher(spawn, rs, "-i", "0.1", "--retain-failed", "0")
    wait_for(lambda: not r.exists(f"bg:attempts:{att['id']}"), what="the attempt to be trimmed")
    j = show_json(rs, jid)
    assert j["state"] == "dead" and j["attempts"] == [] and j["trimmed"] is True
    assert j["fields"]["ler"] == "Fatal" and j["fields"]["lms"] == "disk full"
    out = show(rs, jid)
    assert "state  dead" in out and "ler    Fatal" in out and "lms    disk full" in out
    assert "(older attempts trimmed)" in out


def test_attempt(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.fail", '{"err":"Boom"}', rty=0)
    wait_for(lambda: r.zscore("bg:dead:default", jid), what="the job to die")
    w.stop()
    [att] = attempts_of(r, jid)
    out = show(rs, att["id"])
    assert out.startswith(f"attempt  {att['id']}\njob      {jid}\noutcome  failed\n")
    assert "err      Boom" in out
    j = show_json(rs, att["id"])
    assert j["attempt"] == att["id"] and j["job"] == jid and j["outcome"] == "failed"
    assert j["fields"]["err"] == "Boom" and j["fields"]["que"] == "default"
    assert "state" not in j


def test_unknown_and_malformed_ids(rs, r):
    line = one_line_error(cli(rs, "show", str(uuid.uuid4())), 1)
    assert "no job or attempt" in line
    for bad in ("nope", "0ab05c1c-9ea4-4e08-9b64-169a0814dc1", "0ab05c1c_9ea4_4e08_9b64_169a0814dc1b",
                "{0ab05c1c-9ea4-4e08-9b64-169a0814dc1b", ""):
        line = one_line_error(cli(rs, "show", bad), 2)
        assert "not a job or attempt UUID" in line
    one_line_error(cli(rs, "show"), 2)
    one_line_error(cli(rs, "show", str(uuid.uuid4()), str(uuid.uuid4())), 2)
    one_line_error(cli(rs, "show", str(uuid.uuid4()), "--jsn"), 2)


def test_job_key_of_the_wrong_type(rs, r):
    jid = str(uuid.uuid4())
    r.set(f"bg:jobs:{jid}", "not a hash")
    line = one_line_error(cli(rs, "show", jid), 1)
    assert f"bg:jobs:{jid} is a string, not a hash" in line
    aid = str(uuid.uuid4())
    r.rpush(f"bg:attempts:{aid}", "x")
    line = one_line_error(cli(rs, "show", aid), 1)
    assert f"bg:attempts:{aid} is a list, not a hash" in line
    assert r.get(f"bg:jobs:{jid}") == "not a hash"  # show only reads


def test_lat_prv_ler_lms_as_documented(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.fail", '{"err":"Boom","msg":"first"}', rty=1)
    wait_for(lambda: r.zscore("bg:scheduled:default", jid), what="the retry to be scheduled")
    [first] = attempts_of(r, jid)
    h = r.hgetall(f"bg:jobs:{jid}")
    assert h["lat"] == first["id"] and "prv" not in first
    assert h["ler"] == "Boom" and h["lms"] == "first"
    # No msg this time, and no retry left (retry sets att back to 0).
    r.hset(f"bg:jobs:{jid}", mapping={"arg": '{"err":"Bang"}', "rty": 0})
    ok(cli(rs, "retry", jid))
    wait_for(lambda: r.zscore("bg:dead:default", jid), what="the job to die")
    w.stop()
    second = [a for a in attempts_of(r, jid) if a["id"] != first["id"]][0]
    h = r.hgetall(f"bg:jobs:{jid}")
    assert h["lat"] == second["id"] and second["prv"] == first["id"]
    assert h["ler"] == "Bang" and h["lms"] == ""
    j = show_json(rs, jid)
    assert [a["attempt"] for a in j["attempts"]] == [second["id"], first["id"]]
    assert j["trimmed"] is False and j["more"] is False


def test_shutdown_hand_back_writes_no_failure(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "--shutdown-timeout", "0.1")
    jid = push(r, "bg.sleep", '{"ms":20000}')
    wait_for(lambda: r.scard("bg:processing:default") == 1, what="the job to start")
    w.signal(signal.SIGTERM)
    w.wait()
    [a] = attempts_of(r, jid)
    assert a["err"] == "Worker Shutdown"
    h = r.hgetall(f"bg:jobs:{jid}")
    assert "ler" not in h and "lms" not in h and h["lat"] == a["id"]
    assert show_json(rs, jid)["state"] == "waiting"


def test_worker_timeout_is_recorded_on_the_job(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.sleep", '{"ms":20000}', rty=0)
    wait_for(lambda: r.scard("bg:processing:default") == 1, what="the job to start")
    w.signal(signal.SIGKILL)
    w.wait()
    watcher(spawn, rs, "-i", "0.1", "--grace", "0.2")
    wait_for(lambda: r.zscore("bg:dead:default", jid), what="the watcher to bury the job")
    h = r.hgetall(f"bg:jobs:{jid}")
    assert h["ler"] == "Worker Timeout" and h["lms"] == "" and h["itr"] == "1"
    j = show_json(rs, jid)
    assert j["state"] == "dead" and j["attempts"][0]["fields"]["err"] == "Worker Timeout"
