#!/usr/bin/env bash
# Disk space after FLUSHDB on an idle server: loads ~400k keys of 100 B
# (redis-benchmark SET -r 500000 -n 800000, relaxed), flushes, then prints
# the data dir's and the journals' size every 5 s, and after a clean stop.
#   bash bench/flushdb_disk.sh [path/to/cairn]     (default: a release build)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-}
if [ -z "$BIN" ]; then cargo build --release -p cairn && BIN=target/release/cairn; fi
PORT=${PORT:-17395}
command -v redis-benchmark >/dev/null || apt-get install -y redis-tools >/dev/null
tmp=$(mktemp -d)
"$BIN" serve --data-dir "$tmp/d" --http "127.0.0.1:$PORT" --resp "127.0.0.1:$((PORT + 1))" \
    --durability relaxed >"$tmp/log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
for _ in $(seq 50); do redis-cli -p $((PORT + 1)) ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-benchmark -p $((PORT + 1)) -t set -r 500000 -n 800000 -d 100 -P 32 -c 10 -q >/dev/null 2>&1
size() { du -sm "$tmp/d" | cut -f1; }
jnl() { du -cm "$tmp"/d/fjall/*.jnl 2>/dev/null | tail -1 | cut -f1; }
echo "keys $(redis-cli -p $((PORT + 1)) dbsize), data dir $(size) MB, journals $(jnl) MB"
redis-cli -p $((PORT + 1)) flushdb >/dev/null
for t in 5 10 15 20 30 45; do
    sleep 5
    echo "FLUSHDB + ${t}s (idle): data dir $(size) MB, journals $(jnl) MB"
done
kill $pid
wait $pid
echo "after a clean stop: data dir $(size) MB"
