#!/bin/sh
# Enqueues one bg job from the shell with redis-cli (Debian: redis-tools).
#
#     produce.sh CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]
#
# Prints the job's UUID. ARG (default {}) is stored byte for byte. With --in the job is delayed:
# it goes into the scheduled set and a bg-watcher moves it to the ready list when due. The Redis
# server is $BG_REDIS_URL, else $REDIS_URL, else redis://127.0.0.1:6379/0 (redis://, rediss://
# or unix:///path[?db=N]); the namespace is $BG_NAMESPACE, else bg. Bad input exits 2, a Redis
# error exits 1. The keys and fields are those of docs/schema.md.
#
# redis-cli -u puts the URL on its command line, where ps shows it to this host's users: where
# that matters, leave the password out of the URL and set REDISCLI_AUTH instead.
set -eu
export LC_ALL=C # byte-wise patterns and lengths

usage="usage: produce.sh CLASS [ARG] [-q QUEUE] [--in SECONDS] [--retries N]"
usage_error() {
    printf 'produce.sh: %s\n%s\n' "$1" "$usage" >&2
    exit 2
}

# bg's rule for queue names (1 to 128) and namespaces (1 to 64): bg's programs refuse others.
valid_name() { # NAME MAXLEN
    case $1 in '' | *[!A-Za-z0-9_.-]*) return 1 ;; esac
    [ "${#1}" -le "$2" ]
}

# VALUE * SCALE as a whole number, refused above MAX (shell arithmetic has no decimals).
scaled() { # VALUE SCALE MAX
    awk -v v="$1" -v scale="$2" -v max="$3" \
        'BEGIN { v *= scale; if (v > max) exit 1; printf "%.0f", v }'
}

# One command in the Redis protocol, for redis-cli --pipe: each argument is sent with its length
# in bytes, so spaces, quotes, newlines and bytes that are not UTF-8 arrive exactly as given.
resp() {
    printf '*%d\r\n' $#
    for word; do
        printf '$%d\r\n%s\r\n' "${#word}" "$word"
    done
}

queue=default delayed='' delay='' delay_ms=0 retries='' rty='' cls='' arg='{}' nargs=0 options=yes
while [ $# -gt 0 ]; do
    case $options$1 in
    yes-h | yes--help) echo "$usage"; exit 0 ;;
    yes-q | yes--queue | yes--in | yes--retries)
        [ $# -ge 2 ] || usage_error "$1 needs a value"
        case $1 in
        -q | --queue) queue=$2 ;;
        --in) delayed=yes delay=$2 ;;
        --retries) retries=x$2 ;; # x: given, even when empty
        esac
        shift ;;
    yes--) options=no ;; # what follows -- is CLASS and ARG, even when it begins with -
    yes-?*) usage_error "unknown option $1" ;;
    *)
        nargs=$((nargs + 1))
        case $nargs in 1) cls=$1 ;; 2) arg=$1 ;; *) usage_error "too many arguments" ;; esac ;;
    esac
    shift
done
[ "$nargs" -ge 1 ] || usage_error "CLASS is missing"

ns=${BG_NAMESPACE:-bg}
valid_name "$ns" 64 ||
    usage_error "invalid namespace '$ns' in \$BG_NAMESPACE: 1 to 64 of A-Z a-z 0-9 _ . -"
valid_name "$queue" 128 || usage_error "invalid queue '$queue': 1 to 128 of A-Z a-z 0-9 _ . -"
if [ -n "$delayed" ]; then
    case $delay in
    '' | *[!0-9.]* | .* | *. | *.*.*) false ;;
    *) delay_ms=$(scaled "$delay" 1000 9007199254740992) ;;
    esac || usage_error "invalid --in '$delay': a number of seconds such as 30 or 1.5"
fi
if [ -n "$retries" ]; then
    retries=${retries#x}
    case $retries in
    '' | *[!0-9]*) false ;;
    *) rty=$(scaled "$retries" 1 2147483647) ;;
    esac || usage_error "invalid --retries '$retries': a whole number from 0 to 2147483647"
fi

# The connection, as redis-cli's arguments.
url=${BG_REDIS_URL:-${REDIS_URL:-redis://127.0.0.1:6379/0}}
case $url in
redis://* | rediss://*) set -- -u "$url" ;;
unix://*)
    path=${url#unix://}
    db=0
    case $path in *\?db=*) db=${path##*\?db=}; path=${path%%\?*} ;; esac
    case $db in '' | *[!0-9]*) usage_error "invalid Redis URL: db=$db is not a number" ;; esac
    set -- -s "$path" -n "$db" ;;
*) usage_error "invalid Redis URL: not redis://, rediss:// or unix://" ;;
esac

job=$(cat /proc/sys/kernel/random/uuid) # lowercase, random (version 4): bg drops any other kind

# The server's clock, the one bg's programs compare against: seconds, then microseconds.
time=$(redis-cli --no-auth-warning "$@" TIME) || exit 1
s='' us=''
{ read -r s; read -r us; } <<EOF || :
$time
EOF
case $s.$us in
*[!0-9.]* | .* | *.) printf 'produce.sh: TIME answered: %s\n' "$time" >&2; exit 1 ;;
esac
now=$((s * 1000 + us / 1000))

# The hash, the push (or the scheduling) and the queue's registration in one MULTI/EXEC. --pipe
# sends them over one connection and never reconnects, so a producer or a connection that dies
# halfway leaves nothing behind, and it exits 1 when Redis refused a command (the transaction is
# then discarded whole). It cannot see an error inside EXEC's reply, which only a key of the
# wrong type (one that bg never writes) would cause.
at=$((now + delay_ms))
{
    resp MULTI
    resp HSET "$ns:jobs:$job" que "$queue" cls "$cls" arg "$arg" qat "$now" \
        ${rty:+rty "$rty"} ${delayed:+pat "$at"}
    if [ -z "$delayed" ]; then
        resp RPUSH "$ns:ready:$queue" "$job"
    else
        resp ZADD "$ns:scheduled:$queue" "$at" "$job"
    fi
    resp SADD "$ns:queues" "$queue"
    resp EXEC
} | redis-cli --no-auth-warning "$@" --pipe >/dev/null ||
    { echo "produce.sh: the job was not enqueued" >&2; exit 1; }
echo "$job"
