"""bench/run works: one small run of the quick set (BullMQ too where bench/bullmq is installed)
prints every figure line and exits 0, bad options exit 2, and a missing build exits 1 with one
line. It proves the benchmark runs; it asserts no time (see bench/README.md)."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, TOP

RUN = os.path.join(TOP, "bench", "run")
PY = "/usr/bin/python3"
# The lines of the quick set, each starting as bench/run prints it.
QUICK_LINES = ("enqueue:", "drain -c 1:", "drain -c 10:", "cpu -c 10:", "cpu evalsha:",
               "cpu command:", "rss -c 10:", "memory:", "latency:", "delayed:")
RATE_LINES = ("enqueue:", "drain -c 1:", "drain -c 10:")
NUM = r"[0-9][0-9,.]*"


def bench(*args, timeout=150):
    return subprocess.run([PY, RUN, "--build", BUILD, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)


def bullmq_installed():
    return bool(shutil.which("node")) and os.path.isdir(
        os.path.join(TOP, "bench", "bullmq", "node_modules", "bullmq"))


def lines_starting(out, prefix):
    return [line for line in out.splitlines() if line.startswith(prefix)]


def test_quick_set_prints_every_figure():
    p = bench("-n", "2000", "-R", "1", "-l", "200", "-d", "50")
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    out = p.stdout
    first = out.splitlines()[0]
    assert first.startswith("bg bench ") and "N = 2,000" in first and "1 rounds" in first, first
    for prefix in QUICK_LINES:
        assert lines_starting(out, prefix), f"no {prefix!r} line in:\n{out}"
    with_bull = bullmq_installed()
    for prefix in RATE_LINES:
        (line,) = lines_starting(out, prefix)
        m = re.search(rf" bg ({NUM}) jobs/s", line)
        assert m and float(m.group(1).replace(",", "")) > 0, line
        assert re.search(rf"redis-benchmark rpush {NUM} ops/s, bg/rpush {NUM}x", line), line
        assert (re.search(rf"BullMQ {NUM}, bg/BullMQ {NUM}x", line) is not None) == with_bull, \
            line
    (cpu,) = lines_starting(out, "cpu -c 10:")
    assert re.search(rf"redis-server CPU per job: bg {NUM} us", cpu), cpu
    evalsha = lines_starting(out, "cpu evalsha:")
    assert re.search(rf"bg: EVALSHA {NUM} us a job", evalsha[0]), evalsha
    assert any(" hset " in line for line in lines_starting(out, "cpu command:")), out
    (mem,) = lines_starting(out, "memory:")
    assert re.search(rf"bg {NUM} B \(job hash {NUM}, attempt hash {NUM}, completed set {NUM}",
                     mem), mem
    (lat,) = lines_starting(out, "latency:")
    assert re.search(rf"p50 {NUM} ms, p99 {NUM} ms", lat), lat
    (late,) = lines_starting(out, "delayed:")
    assert re.search(rf"p50 {NUM} ms, p99 {NUM} ms", late), late
    if with_bull:
        assert "BullMQ 6." in first and not lines_starting(out, "BullMQ: skipped")
        assert len(evalsha) == 2 and evalsha[1].startswith("cpu evalsha:        BullMQ:")
    else:
        (skip,) = lines_starting(out, "BullMQ: skipped: ")
        assert "bench/run --setup" in skip or "node" in skip, skip
    # Every line of standard output is a figure; progress goes to standard error.
    known = QUICK_LINES + ("bg bench ", "BullMQ: skipped: ")
    stray = [line for line in out.splitlines() if not line.startswith(known)]
    assert not stray, stray


def test_without_bullmq_one_line_says_so():
    p = bench("-n", "1000", "-R", "1", "--only", "enqueue", "--no-bullmq")
    assert p.returncode == 0, p.stderr[-2000:]
    (line,) = lines_starting(p.stdout, "enqueue:")
    assert "BullMQ" not in line and "bg/rpush" in line, line
    assert lines_starting(p.stdout, "BullMQ: skipped: left out with --no-bullmq"), p.stdout
    assert not lines_starting(p.stdout, "drain"), p.stdout


@pytest.mark.parametrize("loopback", [False, True], ids=["namespaces", "loopback"])
def test_hosts_prints_a_row_for_each_number_of_hosts(loopback):
    p = bench("-n", "1000", "-R", "1", "--only", "hosts", "--no-bullmq",
              *(["--hosts-loopback"] if loopback else []))
    assert p.returncode == 0, p.stderr[-2000:]
    rows = lines_starting(p.stdout, "hosts:")
    assert len(rows) == 2 + 4, p.stdout
    assert rows[1].split()[1:3] == ["hosts", "jobs/s"], rows[1]
    for k, row in enumerate(rows[2:], 1):
        m = re.match(rf"hosts: +{k} +({NUM}) +({NUM})x +{NUM} us +{NUM} us +{NUM} +{NUM}% of a core "
                     rf"+{NUM} us$", row)
        assert m and float(m.group(1).replace(",", "")) > 0, row
        if k == 1:
            assert m.group(2) == "1.00", row
    # Where the hosts are not namespaces, one line says so, whatever the reason.
    fallback = lines_starting(p.stdout, "FALLBACK: ")
    assert bool(fallback) == ("FALLBACK: " in rows[0]), p.stdout
    if loopback:
        assert fallback and "--hosts-loopback" in fallback[0], p.stdout
    assert not [ln for ln in p.stdout.splitlines()
                if not ln.startswith(("bg bench ", "hosts:", "FALLBACK: ", "BullMQ: skipped"))]


@pytest.mark.parametrize("args", [
    ["-n", "5"], ["-n", "x"], ["-R", "0"], ["-R", "51"], ["-c", "0"], ["-c", "1,x"],
    ["-l", "5"], ["--rate", "0"], ["-d", "1"], ["--only", "nope"], ["--only", "drain,nope"],
    ["--only", ","], ["--only", "drain", "--all"], ["--frobnicate"],
])
def test_bad_options_exit_2(args):
    p = bench(*args, timeout=30)
    assert p.returncode == 2, (args, p.returncode, p.stderr)
    assert p.stdout == "" and "bench/run: error:" in p.stderr, p.stderr


def test_nothing_built_is_one_line_and_exit_1(tmp_path):
    p = subprocess.run([PY, RUN, "--build", str(tmp_path), "-n", "1000"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30, check=False)
    assert p.returncode == 1 and p.stdout == "", (p.returncode, p.stdout)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench/run: ") and "not built" in lines[0]


def test_replicas_prints_with_and_without_the_flag():
    p = bench("-n", "1000", "-R", "1", "--only", "replicas", "--no-bullmq")
    assert p.returncode == 0, p.stderr[-2000:]
    (head,) = lines_starting(p.stdout, "replicas: ")
    assert "1 replica (redis-server --replicaof)" in head, head
    for prefix in ("replicas drain -c 10:", "replicas enqueue:"):
        (line,) = lines_starting(p.stdout, prefix)
        m = re.search(rf"without ({NUM}) jobs/s; --min-replicas-ack 1 ({NUM}) jobs/s \(a WAIT per "
                      rf"({NUM}) jobs\); with/without {NUM}x$", line)
        assert m, line
        assert all(float(m.group(g).replace(",", "")) > 0 for g in (1, 2, 3)), line
    assert not lines_starting(p.stdout, "drain"), p.stdout
    assert not [ln for ln in p.stdout.splitlines()
                if not ln.startswith(("bg bench ", "replicas", "BullMQ: skipped"))]


# ---- bench/profile ----

PROFILE = os.path.join(TOP, "bench", "profile")


def profile(*args, timeout=150):
    return subprocess.run([PY, PROFILE, "--build", BUILD, *args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=timeout, check=False)


def test_profile_prints_instructions_and_the_workers_costs():
    p = profile("-n", "1000", "-s", "2000")
    assert p.returncode == 0, f"exit {p.returncode}: {p.stderr[-2000:]}"
    (ins,) = lines_starting(p.stdout, "instructions:")
    if shutil.which("valgrind"):
        m = re.search(rf"bulk enqueue ({NUM}), drain -c 10 ({NUM})$", ins)
        assert m and all(float(g.replace(",", "")) > 0 for g in m.groups()), ins
    else:
        assert "skipped: valgrind is not installed" in ins, ins
    (w,) = lines_starting(p.stdout, "worker:")
    m = re.search(rf"({NUM}) context switches, ({NUM}) us of CPU$", w)
    assert m and float(m.group(2).replace(",", "")) > 0, w


@pytest.mark.parametrize("args", [["-n", "999"], ["-n", "x"], ["-s", "10"], ["-c", "0"],
                                  ["--bogus"]])
def test_profile_bad_options_exit_2(args):
    p = profile(*args)
    assert p.returncode == 2 and "usage:" in p.stderr and not p.stdout, p


def test_profile_without_a_build_exits_1(tmp_path):
    p = subprocess.run([PY, PROFILE, "--build", str(tmp_path)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30, check=False)
    assert p.returncode == 1 and "is not built" in p.stderr and len(p.stderr.splitlines()) == 1
