#!/usr/bin/env bash
# HTTP throughput of `cairn serve`: GET and PUT of small JSON values with 1
# and 64 connections, in `sync` and `relaxed` durability. Load from wrk.
#   DURATION=5 bash bench/http.sh
#   MODES=sync OPS=PUT bash bench/http.sh     (a subset)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
THREADS=${THREADS:-2}
MODES=${MODES:-sync relaxed}
OPS=${OPS:-GET PUT}

if ! command -v wrk >/dev/null; then
    echo "installing wrk (apt-get)..." >&2
    apt-get install -y wrk >/dev/null || { echo "need wrk: apt-get install wrk" >&2; exit 1; }
fi
cargo build --release -p cairn
BIN=target/release/cairn

tmp=$(mktemp -d)
pid=""
cleanup() {
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Each PUT writes a new key (a per-thread counter), so the store grows as it would under load.
cat >"$tmp/put.lua" <<'LUA'
local n = 0
local id = tostring(math.random(1, 1000000000))
request = function()
    n = n + 1
    return wrk.format("PUT", "/v1/stores/default/keys/bench-" .. id .. "-" .. n,
        {["Content-Type"] = "application/json"}, '{"n":' .. n .. ',"payload":"0123456789abcdef0123456789abcdef"}')
end
LUA

# run MODE OP CONNS -> prints "requests/s p50 p99"
run() {
    local url=$1 op=$2 conns=$3 threads=$THREADS
    [ "$conns" -lt "$threads" ] && threads=$conns
    local script=()
    [ "$op" = PUT ] && script=(-s "$tmp/put.lua")
    wrk -t"$threads" -c"$conns" -d"${DURATION}s" --latency "${script[@]}" "$url" >"$tmp/out" 2>&1
    local rps p50 p99 errs
    rps=$(awk '/^Requests\/sec/ {print $2}' "$tmp/out")
    p50=$(awk '$1 == "50%" {print $2}' "$tmp/out")
    p99=$(awk '$1 == "99%" {print $2}' "$tmp/out")
    errs=$(awk '/Non-2xx or 3xx responses/ {print $5}' "$tmp/out")
    if [ -n "$errs" ]; then
        echo "warning: $errs non-2xx responses for $op c=$conns" >&2
    fi
    echo "$rps $p50 $p99"
}

declare -A RPS
rows=()
for mode in $MODES; do
    port=$(free_port)
    "$BIN" serve --data-dir "$tmp/data-$mode" --http "127.0.0.1:$port" --resp off --durability "$mode" \
        2>"$tmp/server-$mode.log" &
    pid=$!
    base="http://127.0.0.1:$port"
    for _ in $(seq 100); do
        curl -fsS "$base/v1/health" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS -X PUT -H 'content-type: application/json' -d '{"hello":"world"}' "$base/v1/stores/default/keys/bench" >/dev/null
    for op in $OPS; do
        for conns in 1 64; do
            url="$base/v1/stores/default/keys/bench"
            [ "$op" = PUT ] && url="$base/"
            read -r rps p50 p99 < <(run "$url" "$op" "$conns")
            RPS[$mode-$op-$conns]=$rps
            rows+=("$(printf '%-8s %-4s %5s %12s %10s %10s' "$mode" "$op" "$conns" "$rps" "$p50" "$p99")")
        done
    done
    kill -TERM "$pid"
    wait "$pid" || true
    pid=""
done

printf '\n%-8s %-4s %5s %12s %10s %10s\n' durability op conns "requests/s" p50 p99
printf '%s\n' "${rows[@]}"
if [ -n "${RPS[sync-PUT-64]:-}" ]; then
    ratio=$(python3 -c "print(f'{${RPS[sync-PUT-64]} / ${RPS[sync-PUT-1]}:.1f}')")
    echo
    echo "sync PUT: 64 connections = ${ratio}x 1 connection (group commit; target >= 20x)"
fi
