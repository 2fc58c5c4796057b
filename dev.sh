#!/usr/bin/env bash
# dev.sh: bg's one entry point for developers and CI on Debian 12. It installs what the build
# needs (as root, with apt-get), then either builds bg and runs its demo (examples/demo/demo.sh)
# or runs every check CI runs. See usage() below, or ./dev.sh -h.
set -euo pipefail

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$TOP"

# Debian's python3: it has python3-redis and python3-pytest, whatever else is first on PATH.
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
FUZZ_SECONDS=${FUZZ_SECONDS:-8}
# Upper bounds, so that a hung test ends the run with a message instead of eating CI's time.
E2E_TIMEOUT=${E2E_TIMEOUT:-900}
# pytest processes an end-to-end run spreads its tests over (pytest-xdist): the tests spend most
# of their time waiting for programs and servers, so a run of one process leaves cores idle.
E2E_PROCS=${E2E_PROCS:-$JOBS}
UNIT_TIMEOUT=${UNIT_TIMEOUT:-300}
VALGRIND_TIMEOUT=${VALGRIND_TIMEOUT:-600}

PACKAGES=(build-essential cmake pkg-config libhiredis-dev uuid-dev libjansson-dev libcmocka-dev
    libssl-dev openssl
    redis-server redis-tools python3 python3-redis python3-pytest python3-pytest-xdist clang libclang-rt-14-dev procps
    valgrind)
TEST_PACKAGES=(clang-format ruby ruby-redis nodejs iproute2)

usage() {
    cat <<EOF
usage: ./dev.sh demo [REDIS_URL]
       ./dev.sh test [--long]
       ./dev.sh -h

  demo   Installs what is missing, builds bg (Release) into build/ and runs
         examples/demo/demo.sh: it starts a redis-server of its own on a free port in a
         temporary directory (or uses REDIS_URL, in the namespace bg-demo), a bg-watcher and a
         bg-worker, enqueues a few jobs with bg-cli and one with redis-cli as a producer in
         another language would, waits for them, prints bg-cli status and one job, then stops
         everything it started.

  test   Installs what is missing, then runs what CI runs:
           build        -DBG_WERROR=ON into build/
           unit         ctest in build/
           e2e          pytest tests/e2e against build/ (with a 100,000-job soak of one worker)
           valgrind     memcheck over a short run of each program (tests/e2e/test_valgrind.py)
           format       clang-format --dry-run --Werror on every tracked .c and .h
           asan-*       the same build and suites with -DBG_SANITIZE=address,undefined
                        (clang) in build-asan/, but for the long runs in ASAN_SKIP
           tsan-*       the programs built with -DBG_SANITIZE=thread (clang) in build-tsan/,
                        and the worker's end-to-end tests against them; any ThreadSanitizer
                        report fails the stage
           fuzz_*       each libFuzzer target, built in build-fuzz/, for FUZZ_SECONDS seconds
         A stage that fails does not stop the others; the last line says what failed.
         --long also runs the long variants: the soak with 1,000,000 jobs (BG_LONG=1).

Environment:
  CI              when set (not "false"), a skipped test counts as a failure (the hook is
                  in tests/e2e/conftest.py, so a plain pytest run with CI=true does the same)
  FUZZ_SECONDS    how long each fuzz target runs (default 8)
  E2E_TIMEOUT     seconds one pytest run may take before it is ended (default 900)
  E2E_PROCS       pytest processes an end-to-end run uses (default: one a core)
  BG_LONG         when 1, the same as --long

Installing packages needs root (or sudo). Nothing is installed when every package is there.
EOF
}

PROG=dev.sh
# shellcheck source=examples/demo/say.sh
. "$TOP/examples/demo/say.sh"

is_ci() { [ -n "${CI:-}" ] && [ "${CI}" != false ] && [ "${CI}" != 0 ]; }

# ---- packages ----

# Installs the packages of "$@" that dpkg does not list as installed; apt-get is not run at all
# when every one is there.
ensure_packages() {
    local missing=() p status
    for p in "$@"; do
        status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        [[ $status == *"install ok installed"* ]] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "run as root to install: ${missing[*]}"
        sudo=(sudo)
    fi
    say "installing ${missing[*]}"
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
}

# ---- building ----

# A build directory configured with another compiler cannot be switched in place: start it over.
fresh_for_compiler() {
    local dir=$1 cc=$2 cached
    [ -f "$dir/CMakeCache.txt" ] || return 0
    cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$dir/CMakeCache.txt")
    if [ -n "$cached" ] && [ "$(readlink -f "$cached")" != "$(readlink -f "$(command -v "$cc")")" ]; then
        rm -rf "$dir"
    fi
}

# configure DIR CMAKE_ARGS...: configures the tree into DIR.
configure() {
    local dir=$1
    shift
    say "configuring $dir $*"
    cmake -S "$TOP" -B "$dir" "$@"
}

# ---- demo ----

# The demo itself is examples/demo/demo.sh; here it gets its packages and a Release build.
cmd_demo() {
    [ $# -le 1 ] || die "usage: ./dev.sh demo [REDIS_URL]"
    ensure_packages "${PACKAGES[@]}"
    configure build -DCMAKE_BUILD_TYPE=Release -DBG_WERROR=OFF -DBG_SANITIZE= -DBG_FUZZ=OFF
    cmake --build build -j "$JOBS" --target bg-worker bg-watcher bg-cli
    BG_BUILD_DIR=$TOP/build exec "$TOP/examples/demo/demo.sh" "$@"
}

# ---- test ----

STAGES=()
RESULTS=()

# stage NAME FUNCTION ARGS...: runs one check, records how it went, and never stops the run.
stage() {
    local name=$1 start=$SECONDS rc=0
    shift
    echo
    say "[$name] $*"
    "$@" || rc=$?
    STAGES+=("$name")
    if [ $rc -eq 0 ]; then
        RESULTS+=("passed")
        say "[$name] passed in $((SECONDS - start)) s"
    else
        RESULTS+=("FAILED")
        say "[$name] FAILED (status $rc) after $((SECONDS - start)) s"
    fi
    return 0
}

# A stage that cannot run because one it depends on failed.
not_run() {
    STAGES+=("$1")
    RESULTS+=("not run ($2 failed)")
}

passed() {
    local i
    for i in "${!STAGES[@]}"; do
        if [ "${STAGES[$i]}" = "$1" ]; then
            [ "${RESULTS[$i]}" = passed ]
            return
        fi
    done
    return 1
}

do_build() {
    local dir=$1
    shift
    configure "$dir" "$@" && cmake --build "$dir" -j "$JOBS"
}

do_unit() {
    (cd "$1" && ctest --output-on-failure --no-tests=error --timeout "$UNIT_TIMEOUT" -j "$JOBS")
}

# Runs the end-to-end suite against a build directory. In CI a skipped test is a failure
# (pytest_runtest_makereport in tests/e2e/conftest.py): a test that silently skips (no
# redis-server, say) would otherwise hide that nothing was checked.
# The suites the sanitizer stage leaves to the plain one: long runs that exercise no code path
# the others miss (the soak, chaos and random runs; the benchmark; installing and building the
# examples; the producers in other languages), so CI stays within its time.
ASAN_SKIP=(test_soak.py test_chaos.py test_hostile_random.py test_bench.py test_install.py
    test_producers.py test_ci_skips.py)

do_e2e() {
    local dir=$1 rc=0 skip=()
    if [ "$dir" = build-asan ]; then
        for f in "${ASAN_SKIP[@]}"; do skip+=(--ignore="tests/e2e/$f"); done
    fi
    # test_valgrind.py is a stage of its own (do_valgrind), against build/ only.
    BG_BUILD_DIR="$TOP/$dir" timeout -k 30 "$E2E_TIMEOUT" \
        "$PY" -m pytest -q -rs -p no:cacheprovider -n "$E2E_PROCS" --durations=10 \
        --ignore=tests/e2e/test_valgrind.py "${skip[@]}" tests/e2e || rc=$?
    [ $rc -eq 124 ] && echo "dev.sh: pytest did not finish within $E2E_TIMEOUT s" >&2
    return $rc
}

# memcheck over each program (what counts as an error: tests/e2e/test_valgrind.py).
do_valgrind() {
    local rc=0
    BG_VALGRIND=1 BG_BUILD_DIR="$TOP/$1" timeout -k 30 "$VALGRIND_TIMEOUT" \
        "$PY" -m pytest -q -rs -p no:cacheprovider tests/e2e/test_valgrind.py || rc=$?
    [ $rc -eq 124 ] && echo "dev.sh: pytest did not finish within $VALGRIND_TIMEOUT s" >&2
    return $rc
}

# The targets the worker's end-to-end tests run: a ThreadSanitizer build of only these is
# quicker than of everything.
TSAN_TARGETS=(bg-worker bg-watcher bg-cli plugin_test)

do_build_tsan() {
    configure build-tsan -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBG_SANITIZE=thread -DBG_TESTS=ON -DBG_FUZZ=OFF -DBG_WERROR=ON &&
        cmake --build build-tsan -j "$JOBS" --target "${TSAN_TARGETS[@]}"
}

# ThreadSanitizer of clang 14 cannot map its shadow memory under the larger address-space
# randomisation of recent kernels ("unexpected memory mapping"); without randomisation it can.
# Prints the command prefix that makes a TSan program run here, or fails.
tsan_prefix() {
    local d
    d=$(mktemp -d)
    printf 'int main(void) { return 0; }\n' >"$d/t.c"
    if ! clang -fsanitize=thread -g "$d/t.c" -o "$d/t" 2>/dev/null; then
        rm -rf "$d"
        return 1
    fi
    if "$d/t" >/dev/null 2>&1; then
        echo
    elif setarch "$(uname -m)" -R "$d/t" >/dev/null 2>&1; then
        echo "setarch $(uname -m) -R"
    else
        rm -rf "$d"
        return 1
    fi
    rm -rf "$d"
}

# The worker's end-to-end tests against the ThreadSanitizer build. Every TSan report goes to a
# file of its own (log_path), whichever process it came from, even one a test stops without
# looking at its exit status: any such file fails the stage, and halt_on_error ends the
# program at its first report, so a race also fails the test that provoked it.
do_tsan_e2e() {
    local logs=$TOP/build-tsan/tsan-reports rc=0 prefix f
    prefix=$(tsan_prefix) || {
        echo "dev.sh: a ThreadSanitizer program does not run here" >&2
        return 1
    }
    rm -rf "$logs"
    mkdir -p "$logs"
    # shellcheck disable=SC2086 # the prefix is words
    TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:log_path=$logs/tsan" \
        BG_BUILD_DIR="$TOP/build-tsan" timeout -k 30 "$E2E_TIMEOUT" $prefix \
        "$PY" -m pytest -q -rs -p no:cacheprovider -n "$E2E_PROCS" tests/e2e/test_worker.py \
        tests/e2e/test_worker_lifecycle.py || rc=$?
    [ $rc -eq 124 ] && echo "dev.sh: pytest did not finish within $E2E_TIMEOUT s" >&2
    for f in "$logs"/tsan.*; do
        [ -e "$f" ] || continue
        echo "dev.sh: ThreadSanitizer report in $f:" >&2
        head -n 80 "$f" >&2
        rc=1
    done
    return $rc
}

do_format() {
    local files
    if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        files=$(git -C "$TOP" ls-files '*.c' '*.h')
    else
        files=$(find . -path ./build\* -prune -o \( -name '*.c' -o -name '*.h' \) -print)
    fi
    [ -n "$files" ] || return 0
    echo "$files" | xargs -d '\n' clang-format --dry-run --Werror
}

# LeakSanitizer needs ptrace-like powers that some containers deny; check before relying on it.
lsan_works() {
    local d out
    d=$(mktemp -d)
    printf '#include <stdlib.h>\nint main(void) { return malloc(7) == NULL; }\n' >"$d/leak.c"
    clang -fsanitize=address -g "$d/leak.c" -o "$d/leak" 2>/dev/null || {
        rm -rf "$d"
        return 1
    }
    out=$(ASAN_OPTIONS=detect_leaks=1 "$d/leak" 2>&1 || true)
    rm -rf "$d"
    [[ $out == *"detected memory leaks"* ]]
}

do_fuzz() {
    local target=$1 bin=build-fuzz/tests/fuzz/$1 work=build-fuzz/corpus/$1 rc=0
    mkdir -p "$work" build-fuzz/artifacts
    # New inputs go to the first (scratch) directory; the checked-in seeds are only read.
    "$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="build-fuzz/artifacts/$target-" "$work" "tests/fuzz/corpus/$target" \
        >"build-fuzz/$target.log" 2>&1 || rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 60 "build-fuzz/$target.log" >&2
        echo "dev.sh: $target found a crash; the input is in build-fuzz/artifacts/" >&2
        return $rc
    fi
    grep -E '^(Done|stat::number_of_executed_units)' "build-fuzz/$target.log" || true
}

cmd_test() {
    while [ $# -gt 0 ]; do
        case $1 in
        --long) export BG_LONG=1 ;;
        *) die "usage: ./dev.sh test [--long]" ;;
        esac
        shift
    done
    local start=$SECONDS
    ensure_packages "${PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    if is_ci; then
        say "CI: a skipped test counts as a failure"
    fi
    if [ -n "${BG_LONG:-}" ] && [ "$BG_LONG" != 0 ]; then
        say "long variants: the soak runs 1,000,000 jobs"
    fi

    # 1. The regular build, warnings as errors, and its suites.
    stage build do_build build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_WERROR=ON \
        -DBG_SANITIZE= -DBG_TESTS=ON -DBG_FUZZ=OFF
    if passed build; then
        stage unit do_unit build
        stage e2e do_e2e build
        stage valgrind do_valgrind build
    else
        not_run unit build
        not_run e2e build
        not_run valgrind build
    fi

    # 2. Format.
    stage format do_format

    # 3. The same suites under AddressSanitizer (with LeakSanitizer) and UBSan, built by clang.
    local leaks=1
    if ! lsan_works; then
        leaks=0
        warn "LeakSanitizer does not work here; the sanitizer run checks no leaks"
    fi
    export ASAN_OPTIONS="detect_leaks=$leaks"
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    fresh_for_compiler build-asan clang
    stage asan-build do_build build-asan -DCMAKE_C_COMPILER=clang \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBG_WERROR=ON -DBG_SANITIZE=address,undefined \
        -DBG_TESTS=ON -DBG_FUZZ=OFF
    if passed asan-build; then
        stage asan-unit do_unit build-asan
        stage asan-e2e do_e2e build-asan
    else
        not_run asan-unit asan-build
        not_run asan-e2e asan-build
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS

    # 4. The worker's end-to-end tests under ThreadSanitizer (clang): fibers are threads.
    fresh_for_compiler build-tsan clang
    stage tsan-build do_build_tsan
    if passed tsan-build; then
        stage tsan-e2e do_tsan_e2e
    else
        not_run tsan-e2e tsan-build
    fi

    # 5. The fuzz targets, each for a bounded time from its seed corpus.
    local targets=() t
    for t in tests/fuzz/fuzz_*.c; do
        t=${t##*/}
        targets+=("${t%.c}")
    done
    fresh_for_compiler build-fuzz clang
    stage fuzz-build do_build_fuzz "${targets[@]}"
    for t in "${targets[@]}"; do
        if passed fuzz-build; then
            stage "$t" do_fuzz "$t"
        else
            not_run "$t" fuzz-build
        fi
    done

    summary $((SECONDS - start))
}

do_build_fuzz() {
    configure build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DBG_FUZZ=ON -DBG_TESTS=OFF -DBG_SANITIZE= -DBG_WERROR=OFF &&
        cmake --build build-fuzz -j "$JOBS" --target "$@"
}

summary() {
    local secs=$1 i failed=()
    echo
    echo "Summary:"
    for i in "${!STAGES[@]}"; do
        printf '  %-12s %s\n' "${STAGES[$i]}" "${RESULTS[$i]}"
        [ "${RESULTS[$i]}" = passed ] || failed+=("${STAGES[$i]}")
    done
    local took="$((secs / 60))m$((secs % 60))s"
    if [ ${#failed[@]} -eq 0 ]; then
        echo "dev.sh test: PASSED, all ${#STAGES[@]} stages in $took"
        return 0
    fi
    echo "dev.sh test: FAILED ${#failed[@]} of ${#STAGES[@]} stages (${failed[*]}) in $took"
    return 1
}

case "${1:-}" in
demo)
    shift
    cmd_demo "$@"
    ;;
test)
    shift
    cmd_test "$@"
    ;;
-h | --help | help)
    usage
    ;;
"")
    usage >&2
    exit 2
    ;;
*)
    echo "dev.sh: unknown command '$1'" >&2
    usage >&2
    exit 2
    ;;
esac
