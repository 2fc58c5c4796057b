"""The installed tree serves a C program: `cmake --install` puts headers, libbg, libbg.pc and the
CMake package under a prefix, the examples/ build against it both ways, and the example worker
(a bg worker loop inside a program of its own, with its own handler) runs a job that the
example producer enqueued."""

import glob
import os
import shutil
import signal
import subprocess

import pytest

from conftest import BUILD, TOP, clients_named, wait_for

EXAMPLES = os.path.join(TOP, "examples")


def _cache(name):
    """A value from the build tree's CMakeCache.txt, or '' when it is not set there."""
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            key, _, value = line.rstrip("\n").partition("=")
            if key.split(":")[0] == name:
                return value
    return ""


def _sh(args, **kw):
    """Runs a build step; on failure the assertion shows its output."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=300, **kw)
    assert p.returncode == 0, f"{' '.join(map(str, args))} failed:\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The build tree installed under a fresh prefix: (prefix, libdir)."""
    prefix = tmp_path_factory.mktemp("prefix")
    _sh(["cmake", "--install", BUILD, "--prefix", str(prefix)])
    pcs = glob.glob(os.path.join(prefix, "lib*", "**", "libbg.pc"), recursive=True)
    assert len(pcs) == 1, f"expected one libbg.pc under {prefix}, found {pcs}"
    libdir = os.path.dirname(os.path.dirname(pcs[0]))
    assert glob.glob(os.path.join(libdir, "libbg.so*")), f"no libbg.so in {libdir}"
    assert os.path.isfile(os.path.join(libdir, "cmake", "bg", "bgConfig.cmake"))
    assert os.path.isfile(os.path.join(prefix, "include", "bg", "bg.h"))
    return str(prefix), libdir


def _toolchain():
    """The compiler and flags the build tree used, so that examples linked against a libbg built
    with sanitizers are built with the same sanitizers (their runtime must come first)."""
    cc = _cache("CMAKE_C_COMPILER") or "cc"
    san = _cache("BG_SANITIZE")
    flags = f"-fsanitize={san} -fno-omit-frame-pointer" if san else ""
    return cc, flags


def _build_with_pkgconfig(prefix, libdir, out):
    """examples/Makefile, with pkg-config finding libbg.pc under the prefix. libbg.pc names the
    prefix it was configured with, so point its prefix variable at where it was installed."""
    src = os.path.join(out, "src")
    shutil.copytree(EXAMPLES, src)
    cc, flags = _toolchain()
    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(libdir, "pkgconfig"))
    pkg_config = f"pkg-config --define-variable=prefix={prefix}"
    cflags = _sh([*pkg_config.split(), "--cflags", "libbg"], env=env).stdout
    assert f"-I{prefix}/include" in cflags, cflags
    _sh(["make", "-C", src, f"CC={cc}", f"PKG_CONFIG={pkg_config}",
         f"CFLAGS=-O1 -g -Wall -Wextra -Werror {flags}", f"LDFLAGS={flags}"], env=env)
    return src


def _build_with_cmake(prefix, libdir, out):
    """examples/CMakeLists.txt, with find_package(bg) finding the CMake package under the
    prefix."""
    bdir = os.path.join(out, "build")
    cc, flags = _toolchain()
    _sh(["cmake", "-S", EXAMPLES, "-B", bdir, f"-DCMAKE_PREFIX_PATH={prefix}",
         f"-DCMAKE_C_COMPILER={cc}", f"-DCMAKE_C_FLAGS=-Wall -Wextra -Werror {flags}",
         f"-DCMAKE_EXE_LINKER_FLAGS={flags}"])
    _sh(["cmake", "--build", bdir])
    return bdir


@pytest.mark.parametrize("how", ["pkg-config", "cmake"])
def test_installed_examples_run_a_job(how, installed, rs, r, spawn, tmp_path):
    prefix, libdir = installed
    build = _build_with_pkgconfig if how == "pkg-config" else _build_with_cmake
    bindir = build(prefix, libdir, str(tmp_path))
    worker_exe = os.path.join(bindir, "embed_worker")
    enqueue_exe = os.path.join(bindir, "enqueue")
    assert os.access(worker_exe, os.X_OK) and os.access(enqueue_exe, os.X_OK)

    env = dict(os.environ, BG_REDIS_URL=rs.url, LD_LIBRARY_PATH=libdir)
    env.pop("BG_NAMESPACE", None)
    worker = spawn([worker_exe], env=env)
    wait_for(lambda: clients_named(r, "bg-worker:"), timeout=10,
             what="the embedded worker's connection")

    p = subprocess.run([enqueue_exe, "example.hello", '{"name":"bg"}'], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    job = p.stdout.strip()
    assert len(job) == 36 and r.hget(f"bg:jobs:{job}", "cls") == "example.hello"

    def completed_attempt():
        for att in r.zrange("bg:completed:default", 0, -1):
            if r.hget(f"bg:attempts:{att}", "job") == job:
                return att
        return None

    att = wait_for(completed_attempt, timeout=15, what="the job to complete")
    rec = r.hgetall(f"bg:attempts:{att}")
    assert rec["que"] == "default" and "fin" in rec and "time" in rec and "err" not in rec
    assert r.scard("bg:processing:default") == 0

    # A graceful stop on SIGTERM, with only the handler's line on standard output.
    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0, worker.log()
    out = worker.proc.stdout.read().decode()
    assert f"job {job} attempt 1 on default" in out, out
    assert out.count("\n") == 1, out


def test_embed_worker_usage(installed, tmp_path):
    """-h is help and an unknown option a usage error, never the name of a queue to work on."""
    prefix, libdir = installed
    worker_exe = os.path.join(_build_with_pkgconfig(prefix, libdir, str(tmp_path)), "embed_worker")
    # Redis is nowhere: a program that took -h for a queue would try to connect and fail with 1.
    env = dict(os.environ, BG_REDIS_URL="redis://127.0.0.1:1/0", LD_LIBRARY_PATH=libdir)
    for args in (["-h"], ["--help"], ["default", "-h"]):
        p = subprocess.run([worker_exe, *args], env=env, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, (args, p.returncode, p.stderr)
        assert p.stdout.startswith("usage: embed_worker") and p.stderr == "", (args, p.stdout)
    for args, named in ((["-x"], "-- 'x'"), (["--queue", "default"], "--queue")):
        p = subprocess.run([worker_exe, *args], env=env, capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert named in p.stderr and "usage: embed_worker" in p.stderr and p.stdout == "", \
            (args, p.stderr)
