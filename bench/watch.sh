#!/usr/bin/env bash
# Write→event latency (p50/p99) and delivered events/s with 1, 100 and 1,000
# subscribers at a steady write rate (engine level, relaxed durability).
#   CAIRN_WATCH_RATE=10000 CAIRN_WATCH_SECS=3 bash bench/watch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench -p cairn-core --bench watch
