#!/usr/bin/env bash
# Backup, restore, export and import throughput for N entries (default 1M):
# loads a data dir with `examples/load_restart` (keys `user:` + 12 digits,
# 128-byte values), then times the offline CLI commands on it and prints
# entries/s and MB/s (of the file written or read).
#   N=1000000 bash bench/backup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
cargo build --release -q -p cairn
cargo build --release -q -p cairn-core --example load_restart
BIN=target/release/cairn

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "loading $N entries..."
KEEP=1 target/release/examples/load_restart "$N" "$tmp/src" | sed 's/^/  /'

# Runs "$@", prints the row: label, seconds, entries/s, file MB/s.
row() {
    local label=$1 file=$2
    shift 2
    local start end secs size
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    secs=$(echo "$end - $start" | bc -l)
    size=$(stat -c %s "$file")
    printf '%-8s %8.2f s %12.0f entries/s %8.1f MB/s  (%s: %.1f MB)\n' \
        "$label" "$secs" "$(echo "$N / $secs" | bc -l)" "$(echo "$size / $secs / 1000000" | bc -l)" \
        "$(basename "$file")" "$(echo "$size / 1000000" | bc -l)"
}

echo
row backup "$tmp/b.cairn" "$BIN" backup "$tmp/b.cairn" --data-dir "$tmp/src"
row check "$tmp/b.cairn" "$BIN" check --backup "$tmp/b.cairn"
row restore "$tmp/b.cairn" "$BIN" restore "$tmp/b.cairn" --data-dir "$tmp/restored"
row export "$tmp/e.ndjson" "$BIN" export --data-dir "$tmp/src" -o "$tmp/e.ndjson"
KEEP=1 target/release/examples/load_restart 0 "$tmp/imported" >/dev/null  # an empty database
row import "$tmp/e.ndjson" "$BIN" import "$tmp/e.ndjson" --data-dir "$tmp/imported"
