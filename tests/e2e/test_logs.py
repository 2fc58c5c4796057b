"""The programs' logs as an operator's log shipper reads them (docs/operations.md#logs): with
`--log-format json` every line is one JSON object, whatever bytes a foreign producer put in a
job, and the events about a job carry its fields of their own."""

import json
import uuid

from conftest import wait_for
from test_worker import push, worker


def json_lines(text):
    """Every line of a log, each parsed as one JSON object (a line that is not one fails)."""
    out = []
    for line in text.splitlines():
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        assert {"time", "level", "role", "msg"} <= doc.keys(), line
        out.append(doc)
    return out


def test_json_line_survives_bytes_that_are_not_utf8(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "-v", "--log-format", "json")
    # The hash is whole before its UUID is pushed, so the worker sees only the raw bytes.
    jid = str(uuid.uuid4())
    r.hset(f"bg:jobs:{jid}", mapping={"que": "default", "cls": b"Bad\xff\xfeClass", "arg": "{}",
                                      "qat": 1})
    r.rpush("bg:ready:default", jid)
    wait_for(lambda: r.zcard("bg:failed:default") == 1, what="the job to fail")
    w.stop()
    docs = json_lines(w.log())
    named = [d for d in docs if "Bad" in d["msg"]]
    assert named, "no line names the job's class"
    assert all("\ufffd" in d["msg"] for d in named)


def test_job_events_carry_their_fields(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1", "-v", "--log-format", "json")
    good = push(r, "bg.noop")
    bad = push(r, "bg.fail", '{"err": "Boom", "msg": "it broke"}', rty=0)
    wait_for(lambda: r.zcard("bg:dead:default") == 1 and
             r.hget("bg:stats:default", "completed") == "1", what="both jobs")
    w.stop()
    docs = json_lines(w.log())
    starts = [d for d in docs if "] Started " in d["msg"]]
    done = [d for d in docs if d.get("job") == good and "] Started " not in d["msg"]]
    failed = [d for d in docs if d.get("job") == bad and "] Started " not in d["msg"]]
    assert len(done) == 1 and len(failed) == 1, docs
    # Each attempt's start comes before its end, with the same fields but no time or error.
    assert [(s["job"], s["attempt"]) for s in starts] == \
        [(good, r.hget(f"bg:jobs:{good}", "lat")), (bad, r.hget(f"bg:jobs:{bad}", "lat"))]
    assert all(s["level"] == "debug" and "ms" not in s and "err" not in s for s in starts)
    assert docs.index(starts[0]) < docs.index(done[0])
    d, f = done[0], failed[0]
    assert d["level"] == "debug" and d["cls"] == "bg.noop" and d["que"] == "default"
    assert d["attempt"] == r.hget(f"bg:jobs:{good}", "lat")
    assert isinstance(d["ms"], (int, float)) and d["ms"] >= 0 and "err" not in d
    assert f["level"] == "warn" and f["err"] == "Boom" and f["cls"] == "bg.fail"
    assert f["attempt"] == r.hget(f"bg:jobs:{bad}", "lat")


def test_text_failure_line_names_the_job(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    bad = push(r, "bg.fail", '{"err": "Boom", "msg": "it broke"}', rty=0)
    wait_for(lambda: r.zcard("bg:dead:default") == 1, what="the job to die")
    w.stop()
    lines = [line for line in w.log().splitlines() if "Failed bg.fail" in line]
    assert len(lines) == 1, w.log()
    assert f" W worker: [{r.hget(f'bg:jobs:{bad}', 'lat')}] Failed bg.fail (job {bad}) in " \
        in lines[0]
    assert lines[0].endswith("ms: Boom: it broke")
