"""The installed tree serves a C program: `cmake --install` puts headers, libbg, libbg.pc and the
CMake package under a prefix, the examples/ build against it both ways, and the example worker
(a bg worker loop inside a program of its own, with its own handler) runs a job that the
example producer enqueued. It serves an operator too: a man page for each program naming every
option its -h lists, libbg(3), the bash completion, the systemd units (which systemd-analyze
accepts, where it is installed) and the documentation."""

import glob
import os
import re
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


PROGRAMS = ("bg-worker", "bg-watcher", "bg-cli")


def _installed_env(libdir, **extra):
    """The environment to run the installed programs in: their RPATH names the configured
    prefix, not the temporary one."""
    env = dict(os.environ, LD_LIBRARY_PATH=libdir, **extra)
    env.pop("BG_NAMESPACE", None)
    return env


def _help(prefix, libdir, *args):
    p = subprocess.run([os.path.join(prefix, "bin", args[0]), *args[1:], "-h"],
                       env=_installed_env(libdir), capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout, (args, p.returncode, p.stderr)
    return p.stdout


def _long_options(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*[a-z]", text))


def _man_text(path):
    """A man page's roff source as a reader sees the words: \\- as -, no font changes."""
    with open(path) as f:
        roff = f.read()
    return re.sub(r"\\f[BIRP]", "", roff.replace("\\-", "-").replace("\\e", "\\"))


def _bg_cli_commands(help_text):
    listing = help_text.split("\ncommands:\n", 1)[1]
    return re.findall(r"^  ([a-z][a-z-]*)", listing, re.M)


def test_installed_man_pages_name_every_option(installed):
    prefix, libdir = installed
    for prog in PROGRAMS:
        page = os.path.join(prefix, "share", "man", "man1", f"{prog}.1")
        assert os.path.isfile(page), f"no {page}"
        text = _man_text(page)
        assert text.startswith(".\\\"") and f".TH {prog.upper()} 1 " in text, text[:200]
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "ENVIRONMENT",
                        "EXIT STATUS", "SEE ALSO"):
            assert f"\n.SH {section}\n" in text, (prog, section)
        assert "BG_REDIS_URL" in text and "BG_NAMESPACE" in text, prog
        helps = [_help(prefix, libdir, prog)]
        if prog == "bg-cli":
            commands = _bg_cli_commands(helps[0])
            assert {"status", "enqueue", "ping"} <= set(commands), commands
            for command in commands:
                assert f"\n.SS {command}\n" in text, (prog, command)
                helps.append(_help(prefix, libdir, prog, command))
        else:
            assert "COMMANDS" not in text
        wanted = set().union(*map(_long_options, helps))
        assert {"--help", "--redis", "--namespace"} <= wanted, wanted
        missing = sorted(o for o in wanted if o not in _long_options(text))
        assert not missing, f"{prog}(1) does not name {missing}"
    assert "\n.SH SIGNALS\n" in _man_text(os.path.join(prefix, "share/man/man1/bg-worker.1"))

    # libbg(3): every function the installed headers export, by name.
    page = os.path.join(prefix, "share", "man", "man3", "libbg.3")
    text = _man_text(page)
    assert ".TH LIBBG 3 " in text and "#include <bg/bg.h>" in text
    exported = set()
    for header in glob.glob(os.path.join(prefix, "include", "bg", "*.h")):
        with open(header) as f:
            exported |= set(re.findall(r"BG_EXPORT [^;(]*?\b(bg_\w+)\s*\(", f.read()))
    assert {"bg_enqueue", "bg_worker_run", "bg_watcher_run", "bg_version"} <= exported, exported
    missing = sorted(fn for fn in exported if not re.search(rf"\b{fn}\(", text))
    assert not missing, f"libbg(3) does not name {missing}"

    # Well-formed roff: groff, where it is installed, warns about nothing.
    if shutil.which("groff"):
        for page in glob.glob(os.path.join(prefix, "share", "man", "man*", "*")):
            p = subprocess.run(["groff", "-man", "-ww", "-z", "-Tutf8", page],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0 and p.stderr == "", (page, p.stderr)


def _complete(prefix, libdir, words, env_extra=None):
    """What the installed completion offers for the command line words (the last one the word
    being completed), run by a real bash with the program's directory first on PATH."""
    script = os.path.join(prefix, "share", "bash-completion", "completions", words[0])
    bindir = os.path.join(prefix, "bin")
    env = _installed_env(libdir, PATH=f"{bindir}:{os.environ['PATH']}", **(env_extra or {}))
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    prog = f"""source '{script}'
COMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))
COMP_LINE="${{COMP_WORDS[*]}}"; COMP_POINT=${{#COMP_LINE}}
spec=$(complete -p "${{COMP_WORDS[0]}}") || exit 3
fn=$(sed -E 's/.*-F ([^ ]+).*/\\1/' <<<"$spec")
"$fn" "${{COMP_WORDS[0]}}" "${{COMP_WORDS[COMP_CWORD]}}" "${{COMP_WORDS[COMP_CWORD - 1]}}"
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    p = subprocess.run(["bash", "--norc", "--noprofile", "-c", prog], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, (words, p.returncode, p.stderr)
    return [w for w in p.stdout.split("\n") if w]


def test_installed_bash_completion(installed, rs, r):
    prefix, libdir = installed
    compdir = os.path.join(prefix, "share", "bash-completion", "completions")
    for prog in PROGRAMS:
        assert os.path.isfile(os.path.join(compdir, prog)), f"no completion for {prog}"
        p = subprocess.run(["bash", "-n", os.path.join(compdir, prog)], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, p.stderr

    # Options and commands, read from the programs' -h.
    assert _complete(prefix, libdir, ["bg-worker", "--shut"]) == ["--shutdown-timeout"]
    assert "--retain-dead" in _complete(prefix, libdir, ["bg-watcher", "--ret"])
    assert _complete(prefix, libdir, ["bg-worker", "--log-format", ""]) == ["text", "json"]
    commands = _complete(prefix, libdir, ["bg-cli", ""])
    assert commands == _bg_cli_commands(_help(prefix, libdir, "bg-cli")), commands
    assert _complete(prefix, libdir, ["bg-cli", "-r", rs.url, "pi"]) == ["ping"]
    assert "--limit" in _complete(prefix, libdir, ["bg-cli", "dead", "--"])
    assert "--limit" not in _complete(prefix, libdir, ["bg-cli", "status", "--"])

    # Queue names from the namespace of the command line (or the environment), after -q,
    # the last name of a comma list included.
    r.sadd("bg:queues", "mail", "maintenance", "reports")
    r.sadd("other:queues", "elsewhere")
    got = _complete(prefix, libdir, ["bg-worker", "-r", rs.url, "-q", "ma"])
    assert sorted(got) == ["mail", "maintenance"], got
    got = _complete(prefix, libdir, ["bg-worker", "-q", "mail,re"], {"BG_REDIS_URL": rs.url})
    assert got == ["mail,reports"], got
    got = _complete(prefix, libdir, ["bg-cli", "-r", rs.url, "-n", "other", "purge", "-q", ""])
    assert got == ["elsewhere"], got
    # No Redis: no names, and no wait beyond a second or so.
    got = _complete(prefix, libdir, ["bg-cli", "-r", "redis://127.0.0.1:1/0", "status", "-q", ""])
    assert got == [], got


def test_installed_units_and_docs(installed):
    prefix, libdir = installed
    unitdir = os.path.join(prefix, "lib", "systemd", "system")
    units = {}
    for unit, prog in (("bg-worker@.service", "bg-worker"), ("bg-watcher.service", "bg-watcher")):
        with open(os.path.join(unitdir, unit)) as f:
            units[unit] = text = f.read()
        for line in ("Type=notify", "NotifyAccess=main", "Restart=always"):
            assert f"\n{line}\n" in text, (unit, line)
        assert re.search(r"^WatchdogSec=\d+", text, re.M), unit
        # The installed unit runs the installed program.
        start = re.search(r"^ExecStart=(\S+)", text, re.M).group(1)
        assert start == os.path.join(prefix, "bin", prog), (unit, start)
        assert os.access(start, os.X_OK), start
        assert f"man:{prog}(1)" in text, unit
    worker = units["bg-worker@.service"]
    assert "\nEnvironmentFile=/etc/bg/%i.env\n" in worker
    assert "\nKillMode=mixed\n" in worker
    # TERM must be able to wait --shutdown-timeout (25 s) plus the 5 s exec children get.
    assert int(re.search(r"^TimeoutStopSec=(\d+)", worker, re.M).group(1)) > 30

    # systemd's own check, where systemd is installed: it parses every line (a typo is a
    # warning, not a failure, so any output fails), checks that ExecStart= is executable, and
    # that the man pages of Documentation= exist.
    if shutil.which("systemd-analyze"):
        env = dict(os.environ, MANPATH=os.path.join(prefix, "share", "man"))
        p = subprocess.run(["systemd-analyze", "verify", "./bg-watcher.service",
                            "./bg-worker@.service"], cwd=unitdir, env=env,
                           capture_output=True, text=True, timeout=60)
        assert p.returncode == 0 and p.stderr.strip() == "" and p.stdout.strip() == "", \
            (p.returncode, p.stdout, p.stderr)

    # The documentation, every page of docs/.
    docdir = os.path.join(prefix, "share", "doc", "bg")
    for page in glob.glob(os.path.join(TOP, "docs", "*.md")):
        assert os.path.isfile(os.path.join(docdir, os.path.basename(page))), page
    assert os.path.isfile(os.path.join(docdir, "README.md"))
