"""The programs' logs as an operator's log shipper reads them (docs/operations.md#logs): with
`--log-format json` every line is one JSON object, whatever bytes a foreign producer put in a
job, and the events about a job carry its fields of their own."""

import json

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
    jid = push(r, "Bad\xff\xfeClass".encode("latin-1").decode("latin-1"))
    r.hset(f"bg:jobs:{jid}", "cls", b"Bad\xff\xfeClass")
    wait_for(lambda: r.zcard("bg:failed:default") == 1, what="the job to fail")
    w.stop()
    docs = json_lines(w.log())
    named = [d for d in docs if "Bad" in d["msg"]]
    assert named, "no line names the job's class"
    assert all("\ufffd" in d["msg"] for d in named)
