"""bg-cli retry end to end: a dead job, or one waiting for its retry, goes back to ready at once
with att and itr reset and runs again; jobs in any other state are left exactly as they were."""

import pytest

from conftest import cli, wait_for
from test_cli import ok, one_line_error
from test_worker import attempts_of, push, worker


def dead_job(r, spawn, rs, n=1, queue="default"):
    """n jobs buried as dead by a real worker (bg.fail with no retry left)."""
    w = worker(spawn, rs, "-c", "2", "-q", queue)
    ids = [push(r, "bg.fail", queue=queue, rty=0) for _ in range(n)]
    wait_for(lambda: r.zcard(f"bg:dead:{queue}") == n, what="the jobs to die")
    w.stop()
    return ids


def test_retry_dead_job_goes_back_to_ready_with_counts_reset(rs, r, spawn):
    [jid] = dead_job(r, spawn, rs)
    r.hset(f"bg:jobs:{jid}", "itr", 2)
    assert r.hget(f"bg:jobs:{jid}", "att") == "1"
    assert ok(cli(rs, "retry", jid)) == ""
    assert r.zcard("bg:dead:default") == 0
    assert r.lrange("bg:ready:default", 0, -1) == [jid]
    h = r.hgetall(f"bg:jobs:{jid}")
    assert h["att"] == "0" and h["itr"] == "0" and h["cls"] == "bg.fail"
    assert r.hget("bg:stats:default", "dead") == "1"  # a lifetime counter stays


def test_retried_job_runs_again(rs, r, spawn):
    [jid] = dead_job(r, spawn, rs)
    r.hset(f"bg:jobs:{jid}", "cls", "bg.noop")  # the bug is fixed; run it again
    ok(cli(rs, "retry", jid))
    worker(spawn, rs, "-c", "1")
    wait_for(lambda: r.zcard("bg:completed:default") == 1, what="the retried job to complete")
    assert len(attempts_of(r, jid)) == 2
    assert r.hget(f"bg:jobs:{jid}", "att") == "1"


def test_retry_job_waiting_for_its_retry(rs, r, spawn):
    w = worker(spawn, rs, "-c", "1")
    jid = push(r, "bg.fail", rty=3)
    wait_for(lambda: r.zscore("bg:scheduled:default", jid), what="the retry to be scheduled")
    w.stop()
    r.hset(f"bg:jobs:{jid}", "itr", 2)
    ok(cli(rs, "retry", jid))
    assert r.zscore("bg:scheduled:default", jid) is None
    assert r.lrange("bg:ready:default", 0, -1) == [jid]
    assert r.hget(f"bg:jobs:{jid}", "att") == "0"
    assert r.hget(f"bg:jobs:{jid}", "itr") == "2"  # interruptions still count toward dead


def test_retry_refuses_jobs_in_other_states(rs, r, spawn):
    ready = push(r, "bg.noop")
    delayed = ok(cli(rs, "enqueue", "bg.noop", "--in", "1h")).strip()
    line = one_line_error(cli(rs, "retry", ready), 1)
    assert ready in line and "neither dead nor waiting for a retry" in line
    line = one_line_error(cli(rs, "retry", delayed), 1)
    assert "never run" in line
    assert r.lrange("bg:ready:default", 0, -1) == [ready]
    assert r.zscore("bg:scheduled:default", delayed) is not None
    assert "att" not in r.hgetall(f"bg:jobs:{delayed}")
    # A completed job: its hash stays, it is in no list.
    worker(spawn, rs, "-c", "1")
    wait_for(lambda: r.zcard("bg:completed:default") == 1, what="the job to complete")
    one_line_error(cli(rs, "retry", ready), 1)
    assert r.llen("bg:ready:default") == 0


def test_retry_unknown_job_exits_1(rs, r):
    line = one_line_error(cli(rs, "retry", "0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d"), 1)
    assert "no job 0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d" in line
    one_line_error(cli(rs, "retry", "not-a-uuid"), 1)


def test_retry_dead_moves_every_dead_job_of_the_queues(rs, r, spawn):
    low = dead_job(r, spawn, rs, n=3, queue="low")
    high = dead_job(r, spawn, rs, n=2, queue="high")
    assert ok(cli(rs, "retry", "--dead", "-q", "low")) == "3\n"
    assert sorted(r.lrange("bg:ready:low", 0, -1)) == sorted(low)
    assert r.zcard("bg:dead:high") == 2 and r.llen("bg:ready:high") == 0
    assert ok(cli(rs, "retry", "--dead")) == "2\n"  # every known queue
    assert sorted(r.lrange("bg:ready:high", 0, -1)) == sorted(high)
    assert ok(cli(rs, "retry", "--dead")) == "0\n"


def test_retry_dead_in_batches_and_drops_entries_without_a_hash(rs, r):
    ids = [push(r, "bg.noop") for _ in range(1203)]
    r.delete("bg:ready:default")
    r.zadd("bg:dead:default", {jid: i for i, jid in enumerate(ids)})
    r.zadd("bg:dead:default", {"0b6d7c1e-3f4a-4b8e-9c2d-5e6f7a8b9c0d": 0})  # trimmed hash
    assert ok(cli(rs, "retry", "--dead", "-q", "default")) == "1203\n"
    assert r.lrange("bg:ready:default", 0, -1) == ids  # oldest first
    assert r.zcard("bg:dead:default") == 0


@pytest.mark.parametrize("args, says", [
    (["retry"], "give its UUID"),
    (["retry", "a", "b"], "'b'"),
    (["retry", "--dead", "a"], "'a'"),
    (["retry", "-q", "low", "a"], "--dead"),
    (["retry", "--dead", "-q", "bad queue"], "invalid queue"),
    (["retry", "--dead", "-q"], "needs a value"),
    (["retry", "--dead=1"], "--dead=1"),
    (["retry", "-x"], "-x"),
])
def test_retry_bad_usage_exits_2_and_changes_nothing(rs, r, args, says):
    jid = push(r, "bg.noop")
    r.zadd("bg:dead:default", {jid: 1})
    line = one_line_error(cli(rs, *args), 2)
    assert says in line
    assert r.zcard("bg:dead:default") == 1
