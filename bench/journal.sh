#!/usr/bin/env bash
# Journal and data-dir size under a sustained overwrite load: redis-benchmark
# SETs 300-byte values over 200k keys (-P 16, 20 connections, relaxed) and
# the script samples the size of fjall's journals (`fjall/*.jnl`) and of the
# whole data dir every 5 s, then the size after a clean stop.
#   N=4000000 bash bench/journal.sh                 # default journal budget
#   EXTRA="--journal-bytes 536870912" bash bench/journal.sh   # fjall's own default
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-4000000}
PORT=${PORT:-17390}
BIN=${CAIRN_BIN:-target/release/cairn}
[ -n "${CAIRN_BIN:-}" ] || cargo build --release -p cairn
command -v redis-benchmark >/dev/null || apt-get install -y redis-tools >/dev/null

tmp=$(mktemp -d)
"$BIN" serve --data-dir "$tmp/data" --http "127.0.0.1:$PORT" --resp "127.0.0.1:$((PORT + 1))" \
    --durability relaxed ${EXTRA:-} >"$tmp/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do redis-cli -p $((PORT + 1)) ping >/dev/null 2>&1 && break; sleep 0.1; done

redis-benchmark -p $((PORT + 1)) -t set -r 200000 -d 300 -n "$N" -P 16 -c 20 -q >"$tmp/bench" 2>&1 &
load=$!
max_jnl=0 max_dir=0
echo "seconds journal_MB dir_MB"
start=$(date +%s)
while kill -0 $load 2>/dev/null; do
    jnl=$(find "$tmp/data/fjall" -maxdepth 1 -name '*.jnl' -printf '%s\n' | awk '{s+=$1} END {print s+0}')
    dir=$(du -sb "$tmp/data" | cut -f1)
    ((jnl > max_jnl)) && max_jnl=$jnl
    ((dir > max_dir)) && max_dir=$dir
    echo "$(($(date +%s) - start)) $((jnl >> 20)) $((dir >> 20))"
    sleep 5
done
tr '\r' '\n' <"$tmp/bench" | grep -a 'requests per second' | tail -1
kill -TERM $server
wait $server || true
echo "peak journal $((max_jnl >> 20)) MB, peak data dir $((max_dir >> 20)) MB, after a clean stop $(( $(du -sb "$tmp/data" | cut -f1) >> 20 )) MB"
