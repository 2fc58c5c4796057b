# shellcheck shell=bash
# say.sh: the messages of dev.sh and examples/demo/demo.sh, sourced by both so that they speak
# alike. say marks a step (bold on a terminal); warn and die start with "$PROG: ", and die
# exits 1. Set PROG before sourcing it.

if [ -t 2 ]; then
    say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
else
    say() { printf '==> %s\n' "$*" >&2; }
fi
warn() { printf '%s: warning: %s\n' "$PROG" "$*" >&2; }
die() {
    printf '%s: %s\n' "$PROG" "$*" >&2
    exit 1
}
