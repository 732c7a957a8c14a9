#!/usr/bin/env bash
# RESP throughput of `cairn serve` next to redis-server, same machine, same
# run, same load (redis-benchmark: SET, GET, INCR, MSET; 50 connections;
# no pipelining and -P 16; random keys from a space of 100k):
#   cairn relaxed  vs  Redis appendonly + appendfsync everysec
#   cairn sync     vs  Redis appendonly + appendfsync always
#   N=50000 N_PIPE=200000 bash bench/resp.sh
# Prints requests/s and p99 (ms) for each, and cairn/Redis ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-50000}
N_PIPE=${N_PIPE:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-set,get,incr,mset}

if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "installing redis-server and redis-tools (apt-get)..." >&2
    apt-get install -y redis-server redis-tools >/dev/null || { echo "need redis-server and redis-benchmark" >&2; exit 1; }
fi
# CAIRN_BIN=path skips the release build (e.g. to try the script on a debug build).
BIN=${CAIRN_BIN:-target/release/cairn}
[ -n "${CAIRN_BIN:-}" ] || cargo build --release -p cairn

tmp=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ping() {
    for _ in $(seq 100); do
        redis-cli -p "$1" PING >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "server on port $1 did not start" >&2
    exit 1
}

# bench PORT PIPELINE -> lines "TEST rps p99"
bench() {
    local port=$1 pipe=$2 n=$N
    [ "$pipe" -gt 1 ] && n=$N_PIPE
    redis-cli -p "$port" FLUSHALL >/dev/null
    redis-benchmark -p "$port" -t "$TESTS" -n "$n" -c "$CLIENTS" -P "$pipe" -r 100000 --csv 2>/dev/null |
        awk -F',' 'NR > 1 { for (i = 1; i <= NF; i++) gsub(/"/, "", $i); split($1, name, " "); print name[1], $2, $7 }'
    [ -n "${NO_EVAL:-}" ] && return 0
    redis-benchmark -p "$port" -n "$n" -c "$CLIENTS" -P "$pipe" -r 100000 --csv \
        eval "return redis.call('incr', KEYS[1])" 1 key:__rand_int__ 2>/dev/null |
        awk -F',' 'NR > 1 { for (i = 1; i <= NF; i++) gsub(/"/, "", $i); print "EVAL", $2, $7 }'
}

declare -A R
for mode in relaxed sync; do
    fsync=everysec
    [ "$mode" = sync ] && fsync=always
    cport=$(free_port)
    "$BIN" serve --data-dir "$tmp/cairn-$mode" --http off --resp "127.0.0.1:$cport" --durability "$mode" \
        >"$tmp/cairn-$mode.log" 2>&1 &
    pids+=($!)
    rport=$(free_port)
    mkdir -p "$tmp/redis-$mode"
    redis-server --port "$rport" --bind 127.0.0.1 --dir "$tmp/redis-$mode" --save "" --appendonly yes \
        --appendfsync "$fsync" --daemonize no --logfile "$tmp/redis-$mode.log" &
    pids+=($!)
    wait_ping "$cport"
    wait_ping "$rport"
    for pipe in 1 16; do
        echo "running: $mode, -P $pipe" >&2
        while read -r t rps p99; do R["cairn,$mode,$pipe,$t"]="$rps $p99"; done < <(bench "$cport" "$pipe")
        while read -r t rps p99; do R["redis,$mode,$pipe,$t"]="$rps $p99"; done < <(bench "$rport" "$pipe")
    done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    pids=()
done

printf '\n%-8s %-6s %-3s %12s %9s %12s %9s %7s\n' durability test P "cairn req/s" "p99 ms" "redis req/s" "p99 ms" ratio
for mode in relaxed sync; do
    label="$mode"
    [ "$mode" = relaxed ] && label="relaxed (redis everysec)" || label="sync (redis always)"
    echo "-- $label"
    for pipe in 1 16; do
        for t in SET GET INCR MSET EVAL; do
            read -r crps cp99 <<<"${R["cairn,$mode,$pipe,$t"]:-0 -}"
            read -r rrps rp99 <<<"${R["redis,$mode,$pipe,$t"]:-0 -}"
            ratio=$(awk -v a="$crps" -v b="$rrps" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
            printf '%-8s %-6s %-3s %12s %9s %12s %9s %7s\n' "$mode" "$t" "$pipe" "$crps" "$cp99" "$rrps" "$rp99" "$ratio"
        done
    done
done
