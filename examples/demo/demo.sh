#!/usr/bin/env bash
# demo.sh: a short tour of bg. It starts a redis-server of its own on a free loopback port in a
# temporary directory (or uses REDIS_URL, in the namespace bg-demo), a bg-watcher and a
# bg-worker, enqueues a few jobs with bg-cli and one with redis-cli as a producer in another
# language would, waits for them, prints bg-cli status and one job, then stops everything it
# started. `./dev.sh demo [REDIS_URL]` installs what it needs, builds bg and runs it; run it
# yourself against another build with BG_BUILD_DIR=DIR examples/demo/demo.sh [REDIS_URL].
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
BUILD=${BG_BUILD_DIR:-$TOP/build}
# Debian's python3, whatever else is first on PATH; the demo's Python needs only its stdlib.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
REDIS_SERVER_PY=$TOP/tests/support/redis_server.py

WORKER=$BUILD/bg-worker/bg-worker
WATCHER=$BUILD/bg-watcher/bg-watcher
BGCLI=$BUILD/bg-cli/bg-cli
NS=bg-demo

PIDS=()
DIR=
REDIS_STARTED=
URL=
WATCHER_PID=
FOREIGN_ID=

PROG=demo
# shellcheck source=examples/demo/say.sh
. "$HERE/say.sh"

bgcli() { "$BGCLI" -r "$URL" -n "$NS" "$@"; }

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    # The bg programs first (they stop gracefully on TERM), then the demo's own redis-server.
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$REDIS_STARTED" ]; then
        "$PY" "$REDIS_SERVER_PY" stop "$DIR" || true
    fi
    if [ -n "$DIR" ]; then
        echo
        echo "Everything the demo started is stopped. Its logs are in $DIR:"
        printf "  %s\n" "$DIR"/*.log
    fi
    exit "$rc"
}

start_redis() {
    local port pid
    read -r port pid < <("$PY" "$REDIS_SERVER_PY" start "$DIR" --maxmemory-policy noeviction) ||
        die "could not start redis-server (see $DIR/redis.log)"
    REDIS_STARTED=1
    URL="redis://127.0.0.1:$port/0"
    say "redis-server $(redis-server --version | sed 's/.* v=\([^ ]*\).*/\1/') on $URL (pid $pid)"
}

# The URL with its password masked, for what the demo prints.
masked_url() {
    # shellcheck disable=SC2001 # a regex, not a plain substitution
    sed 's#^\([a-z]*://[^:@/]*\):[^/]*@#\1:***@#' <<<"$URL"
}

# redis-cli for a bg URL: redis://... as is, unix:///path?db=N as -s and -n.
rcli() {
    if [[ $URL == unix://* ]]; then
        local rest=${URL#unix://} db=0
        [[ $rest == *\?db=* ]] && db=${rest##*\?db=}
        redis-cli --no-auth-warning -s "${rest%%\?*}" -n "$db" "$@"
    else
        redis-cli --no-auth-warning -u "$URL" "$@"
    fi
}

# Shows and runs one `bg-cli enqueue`, and the new job's UUID.
enqueue() {
    local a shown="" id
    for a in "$@"; do
        if [[ $a =~ ^[A-Za-z0-9._,:/=-]+$ ]]; then
            shown+=" $a"
        else
            shown+=" '$a'"
        fi
    done
    id=$(bgcli enqueue "$@")
    printf '  bg-cli enqueue%s\n      %s\n' "$shown" "$id"
}

# Sums of the status figures of the demo's queues: completed failed processing ready scheduled.
counts() {
    bgcli status -q high,default --json 2>/dev/null | "$PY" "$HERE/counts.py"
}

# The figures before the demo enqueued anything: a Redis given by URL may hold earlier runs.
BASE=(0 0 0 0 0)

# Waits until `want` more attempts finished than before the demo and nothing is ready or
# running (and, when want_scheduled is 0, no more is scheduled than before). Returns 1 after
# timeout seconds.
wait_for_jobs() {
    local want=$1 want_scheduled=$2 timeout=$3 figures c f p r s
    local deadline=$((SECONDS + timeout))
    want=$((want + BASE[0] + BASE[1]))
    while [ $SECONDS -lt $deadline ]; do
        if figures=$(counts); then
            read -r c f p r s <<<"$figures"
            if [ $((c + f)) -ge "$want" ] && [ "$p" = 0 ] && [ "$r" = 0 ] &&
                { [ "$want_scheduled" != 0 ] || [ "$s" -le "${BASE[4]}" ]; }; then
                return 0
            fi
        fi
        sleep 0.2
    done
    return 1
}

# Starts the watcher and the worker; prints the watcher's PID, or nothing when it exited at once.
start_programs() {
    say "starting bg-watcher and bg-worker (namespace $NS)"
    "$WATCHER" -r "$URL" -n "$NS" -i 0.2 -v 2>"$DIR/watcher.log" &
    WATCHER_PID=$!
    PIDS+=("$WATCHER_PID")
    "$WORKER" -r "$URL" -n "$NS" -q high,default -c 4 -e 'demo.echo=cat' -v \
        2>"$DIR/worker.log" &
    local worker_pid=$!
    PIDS+=("$worker_pid")
    sleep 0.5
    if ! kill -0 "$worker_pid" 2>/dev/null; then
        tail -n 20 "$DIR/worker.log" >&2 || true
        die "bg-worker exited at once (log above)"
    fi
    if ! kill -0 "$WATCHER_PID" 2>/dev/null; then
        WATCHER_PID=
        warn "bg-watcher exited at once; the delayed job will wait in scheduled"
    fi
}

# Enqueues one job as a producer in another language does (docs/schema.md), with redis-cli;
# sets FOREIGN_ID to its UUID.
enqueue_foreign() {
    say "enqueueing one job as a producer in another language would (docs/schema.md), with redis-cli"
    local now
    FOREIGN_ID=$(cat /proc/sys/kernel/random/uuid)
    now=$(rcli TIME | { read -r s && read -r us && echo $((s * 1000 + us / 1000)); })
    echo "  HSET $NS:jobs:$FOREIGN_ID que default cls demo.echo arg '{\"from\":\"redis-cli\"}' qat $now"
    echo "  RPUSH $NS:ready:default $FOREIGN_ID"
    rcli HSET "$NS:jobs:$FOREIGN_ID" que default cls demo.echo arg '{"from":"redis-cli"}' \
        qat "$now" >/dev/null
    rcli RPUSH "$NS:ready:default" "$FOREIGN_ID" >/dev/null
}

main() {
    case "${1:-}" in
    -h | --help)
        echo "usage: examples/demo/demo.sh [REDIS_URL]   (./dev.sh demo builds bg and runs it)"
        return 0
        ;;
    esac
    [ $# -le 1 ] || die "usage: examples/demo/demo.sh [REDIS_URL]"
    URL=${1:-}
    local p
    for p in "$WORKER" "$WATCHER" "$BGCLI"; do
        [ -x "$p" ] || die "$p is not built: run ./dev.sh demo, or set BG_BUILD_DIR"
    done

    DIR=$(mktemp -d /tmp/bg-demo.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    if [ -z "$URL" ]; then
        start_redis
    else
        say "using $(masked_url)"
    fi
    start_programs

    local base
    if base=$(counts); then
        read -r -a BASE <<<"$base"
    fi
    say "enqueueing jobs with bg-cli"
    enqueue bg.noop -q high
    enqueue bg.sleep '{"ms":200}'
    enqueue demo.echo '{"hello":"world"}'
    enqueue bg.fail '{"err":"Demo::Oops","msg":"this one fails on purpose"}' --retries 0
    enqueue bg.noop '{"delayed":true}' --in 2s
    enqueue_foreign

    say "waiting for the jobs to run"
    if ! wait_for_jobs 5 1 30; then
        bgcli status -q high,default || true
        die "the jobs did not run within 30 s (see $DIR/worker.log)"
    fi
    if [ -n "$WATCHER_PID" ] && kill -0 "$WATCHER_PID" 2>/dev/null; then
        wait_for_jobs 6 0 15 || warn "the delayed job has not run yet (see $DIR/watcher.log)"
    fi

    say "the end of bg-worker's log"
    tail -n 12 "$DIR/worker.log"
    echo
    say "bg-cli -r $(masked_url) -n $NS status -q high,default"
    bgcli status -q high,default
    echo
    say "redis-cli HGETALL $NS:jobs:$FOREIGN_ID    (the job redis-cli enqueued)"
    rcli HGETALL "$NS:jobs:$FOREIGN_ID" | paste - -
}

main "$@"
