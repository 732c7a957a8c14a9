#!/usr/bin/env bash
# cairn against its peers (Redis, etcd, NATS KV; the embedded crates fjall, redb, sled),
# same workloads, alternating systems (A B A B) over several rounds, then a
# report with medians, min–max, cairn's ratio to the best peer and plots.
#
#   bash bench/compare.sh [--quick] [--rounds N] [--suites resp,http,watch,embedded,cost] [--out DIR]
#
# --quick is a smoke check (small sizes, about 3 minutes once built); the full
# run takes about 20 minutes on 2 cores. Results: bench/results/<date>[-quick]/
# report.md, results.csv, *.png, logs/. Peers missing from Debian are skipped
# and named in the report.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
HERE=$ROOT/bench/compare
source "$HERE/lib.sh"

# Everything runs inside main so that bash has parsed the whole file before it starts.

main() {
    ORIG_ARGS="$*"
    QUICK=0
    ROUNDS=3
    SUITES=resp,http,watch,embedded,cost
    OUT=""
    while [ $# -gt 0 ]; do
        case $1 in
            --quick) QUICK=1 ;;
            --rounds) ROUNDS=${2:?--rounds needs a number}; shift ;;
            --suites) SUITES=${2:?--suites needs a list}; shift ;;
            --out) OUT=${2:?--out needs a directory}; shift ;;
            -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
            *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
        esac
        shift
    done
    case $ROUNDS in ''|*[!0-9]*|0) echo "compare.sh: --rounds must be a positive integer, got '$ROUNDS'" >&2; exit 2 ;; esac
    for s in ${SUITES//,/ }; do
        case $s in resp|http|watch|embedded|cost) ;; *) echo "compare.sh: unknown suite '$s'" >&2; exit 2 ;; esac
    done

    if [ "$QUICK" = 1 ]; then
        RB_N1=3000 RB_N16=15000       # redis-benchmark requests per test, -P 1 / -P 16
        HEY_SECS=1                    # hey -z per run
        WATCH_SECS=1 WATCH_RATE=100   # watch: seconds of writes, writes/s
        EMB_ARGS=(--keys 20000 --phase-secs 0.25 --durable-ops 300 --writers 16)
        COST_KEYS=30000
        MODE=quick
    else
        RB_N1=40000 RB_N16=150000
        HEY_SECS=4
        WATCH_SECS=6 WATCH_RATE=100
        EMB_ARGS=(--keys 500000 --phase-secs 1.5 --durable-ops 5000 --writers 16)
        COST_KEYS=1000000
        MODE=full
    fi
    DATE=$(date -u +%Y-%m-%d)
    OUT=${OUT:-bench/results/$DATE$([ "$QUICK" = 1 ] && echo -quick || true)}
    mkdir -p "$OUT/logs"
    OUT=$(cd "$OUT" && pwd)
    CSV=$OUT/results.csv
    rm -f "$CSV" "$OUT"/*.png
    echo "suite,workload,system,round,metric,value" >"$CSV"
    SCRATCH=$(mktemp -d /tmp/cairn-compare.XXXXXX)
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    T_START=$(date +%s)
    say "mode $MODE, $ROUNDS rounds, suites $SUITES, results in $OUT"
    ensure_peers
    say "building cairn (release) and the embedded bench"
    cargo build --release -p cairn 2>"$OUT/logs/build.log" || { tail -20 "$OUT/logs/build.log" >&2; exit 1; }
    if [[ ,$SUITES, == *,embedded,* ]]; then
        cargo bench -p cairn-bench-compare --bench embedded --no-run 2>>"$OUT/logs/build.log" ||
            { tail -20 "$OUT/logs/build.log" >&2; exit 1; }
    fi
    CAIRN=$ROOT/target/release/cairn
    write_machine_info

    for suite in ${SUITES//,/ }; do
        say "suite $suite"
        "suite_$suite"
    done

    echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine inflates the spread)" >>"$OUT/machine.txt"
    echo "duration: $(( $(date +%s) - T_START )) s including the build" >>"$OUT/machine.txt"
    say "writing report"
    python3 "$HERE/report.py" "$OUT"
    say "done in $(( $(date +%s) - T_START )) s: $OUT/report.md"
}

main "$@"
