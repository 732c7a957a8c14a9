# The suites of bench/compare.sh. Each round starts every system afresh (new
# data dir, free ports), runs the same workload, and stops it by PID before the
# next system starts, so the systems never compete with each other for the CPU.
# shellcheck shell=bash

CLIENTS=(python3 "$HERE/clients.py")

# ---- RESP: redis-benchmark against cairn and Redis, matched durability ----

# run_rb SYSTEM PORT MODE ROUND
# MSET (10 keys a request) runs with a fifth of the requests, so it still writes twice the keys.
run_rb() {
    local sys=$1 port=$2 mode=$3 r=$4 p n tests test rps p50 p99 out=$OUT/logs/rb.csv
    for p in 1 16; do
        n=$RB_N1
        [ "$p" = 16 ] && n=$RB_N16
        : >"$out"
        for tests in set,get,incr mset; do
            [ "$tests" = mset ] && n=$((n / 5))
            redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P "$p" -n "$n" -r 10000 -d 128 -t "$tests" --csv \
                >>"$out" 2>>"$OUT/logs/redis-benchmark.log" || say "warning: redis-benchmark $tests failed against $sys -P $p"
        done
        while IFS=, read -r test rps _ _ p50 _ p99 _; do
            test=${test//\"/}
            test=${test%% *}
            [ "$test" = test ] && continue
            emit resp "$test -P$p $mode" "$sys" "$r" ops_per_s "${rps//\"/}"
            emit resp "$test -P$p $mode" "$sys" "$r" p50_ms "${p50//\"/}"
            emit resp "$test -P$p $mode" "$sys" "$r" p99_ms "${p99//\"/}"
        done <"$out"
    done
}

suite_resp() {
    [ "$HAVE_REDIS" = 1 ] || { say "skip resp: no redis"; return 0; }
    local r pair mode fsync
    for r in $(seq "$ROUNDS"); do
        # buffered: cairn relaxed vs appendfsync everysec; fsync: cairn sync vs appendfsync always.
        for pair in "relaxed everysec buffered" "sync always fsync"; do
            read -r mode fsync label <<<"$pair"
            say "resp round $r/$ROUNDS: cairn $mode"
            start_cairn "$mode"
            run_rb cairn "$CAIRN_RESP" "$label" "$r"
            stop_pid "$CAIRN_PID"
            say "resp round $r/$ROUNDS: redis appendfsync $fsync"
            start_redis "$fsync"
            run_rb redis "$REDIS_PORT" "$label" "$r"
            stop_pid "$REDIS_PID"
        done
    done
}

# ---- HTTP: hey against cairn's REST API and etcd's v3 JSON gateway, both fsync every write ----

HTTP_KEY=key:000000000001 # 16 bytes
HTTP_VALUE=$(printf 'v%.0s' $(seq 128))

# run_hey WORKLOAD SYSTEM ROUND CONNS HEY_ARGS...
run_hey() {
    local w=$1 sys=$2 r=$3 c=$4 out=$OUT/logs/hey.out rps p50 p99 bad
    shift 4
    hey -z "${HEY_SECS}s" -c "$c" "$@" >"$out" 2>&1 || say "warning: hey failed for $sys $w"
    rps=$(awk '/Requests\/sec:/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" && $2 == "in" {print $3 * 1000}' "$out")
    p99=$(awk '$1 == "99%" && $2 == "in" {print $3 * 1000}' "$out")
    bad=$(awk '/^ *\[[0-9]+\]/ && $1 != "[200]" {n += $2} /Error distribution/ {e = 1} END {print n + e}' "$out")
    if [ "$bad" != 0 ]; then
        say "warning: $sys $w: non-200 responses or errors (see logs/hey-errors.log); row dropped"
        { echo "== $sys $w round $r"; cat "$out"; } >>"$OUT/logs/hey-errors.log"
        return 0
    fi
    emit http "$w" "$sys" "$r" ops_per_s "$rps"
    emit http "$w" "$sys" "$r" p50_ms "$p50"
    emit http "$w" "$sys" "$r" p99_ms "$p99"
}

suite_http() {
    [ "$HAVE_HEY" = 1 ] || { say "skip http: no hey"; return 0; }
    local r c base ek ev
    ek=$(printf '%s' "$HTTP_KEY" | base64 -w0)
    ev=$(printf '%s' "$HTTP_VALUE" | base64 -w0)
    for r in $(seq "$ROUNDS"); do
        say "http round $r/$ROUNDS: cairn (sync)"
        start_cairn sync
        base=http://127.0.0.1:$CAIRN_HTTP/v1/stores/default/keys/$HTTP_KEY
        curl -fsS -X PUT -H 'content-type: application/json' -d "\"$HTTP_VALUE\"" "$base" >/dev/null
        for c in 1 64; do
            run_hey "PUT c=$c" cairn "$r" "$c" -m PUT -T application/json -d "\"$HTTP_VALUE\"" "$base"
            run_hey "GET c=$c" cairn "$r" "$c" "$base"
        done
        stop_pid "$CAIRN_PID"
        [ "$HAVE_ETCD" = 1 ] || continue
        say "http round $r/$ROUNDS: etcd"
        start_etcd
        base=http://127.0.0.1:$ETCD_PORT/v3/kv
        curl -fsS -X POST -d "{\"key\":\"$ek\",\"value\":\"$ev\"}" "$base/put" >/dev/null
        for c in 1 64; do
            run_hey "PUT c=$c" etcd "$r" "$c" -m POST -T application/json -d "{\"key\":\"$ek\",\"value\":\"$ev\"}" "$base/put"
            run_hey "GET c=$c" etcd "$r" "$c" -m POST -T application/json -d "{\"key\":\"$ek\"}" "$base/range"
        done
        stop_pid "$ETCD_PID"
    done
}

# ---- Watch: write -> notification latency, cairn SSE vs etcd gateway watch ----

# run_watch SYSTEM PORT ROUND
run_watch() {
    local sys=$1 port=$2 r=$3 n p50 p99 got want
    for n in 1 100; do
        if ! read -r p50 p99 got want < <("${CLIENTS[@]}" watch --system "$sys" --port "$port" --watchers "$n" \
            --rate "$WATCH_RATE" --secs "$WATCH_SECS" 2>>"$OUT/logs/watch.log"); then
            say "warning: watch helper failed for $sys with $n watchers (logs/watch.log)"
            continue
        fi
        [ "$got" = "$want" ] || say "warning: $sys $n watchers: $got of $want events arrived"
        local w="$n watchers"
        [ "$n" = 1 ] && w="1 watcher"
        emit watch "$w" "$sys" "$r" p50_ms "$p50"
        emit watch "$w" "$sys" "$r" p99_ms "$p99"
    done
}

suite_watch() {
    local r
    for r in $(seq "$ROUNDS"); do
        say "watch round $r/$ROUNDS: cairn (sync, SSE)"
        start_cairn sync
        run_watch cairn "$CAIRN_HTTP" "$r"
        stop_pid "$CAIRN_PID"
        if [ "$HAVE_ETCD" = 1 ]; then
            say "watch round $r/$ROUNDS: etcd (gateway watch)"
            start_etcd
            run_watch etcd "$ETCD_PORT" "$r"
            stop_pid "$ETCD_PID"
        fi
        [ "$HAVE_NATS" = 1 ] || continue
        say "watch round $r/$ROUNDS: nats (KV push consumer)"
        start_nats
        run_watch nats "$NATS_PORT" "$r"
        stop_pid "$NATS_PID"
    done
}

# ---- Embedded: the cairn-bench-compare crate (cairn-core, fjall, redb, sled) ----

suite_embedded() {
    say "embedded: cargo bench -p cairn-bench-compare (${EMB_ARGS[*]} --rounds $ROUNDS)"
    cargo bench -p cairn-bench-compare --bench embedded -- "${EMB_ARGS[@]}" --rounds "$ROUNDS" --csv "$CSV" \
        >"$OUT/logs/embedded.log" 2>&1 || { tail -20 "$OUT/logs/embedded.log" >&2; say "warning: embedded bench failed"; }
}

# ---- Cost: bulk load, peak RSS, disk, restart to first served GET ----

# cost_one SYSTEM ROUND
cost_one() {
    local sys=$1 r=$2 pid dir load_port probe_port rate rss bytes probe_out t0 t1
    case $sys in
        cairn) start_cairn sync; pid=$CAIRN_PID dir=$CAIRN_DIR load_port=$CAIRN_RESP probe_port=$CAIRN_HTTP ;;
        redis) start_redis always; pid=$REDIS_PID dir=$REDIS_DIR load_port=$REDIS_PORT probe_port=$REDIS_PORT ;;
        etcd) start_etcd; pid=$ETCD_PID dir=$ETCD_DIR load_port=$ETCD_PORT probe_port=$ETCD_PORT ;;
        nats) start_nats; pid=$NATS_PID dir=$NATS_DIR load_port=$NATS_PORT probe_port=$NATS_PORT ;;
    esac
    rate=$("${CLIENTS[@]}" load --system "$sys" --port "$load_port" --keys "$COST_KEYS" 2>>"$OUT/logs/cost.log") ||
        { say "warning: loading $sys failed (logs/cost.log)"; stop_pid "$pid"; return 0; }
    rss=$(rss_kb "$pid")
    stop_pid "$pid"
    bytes=$(disk_bytes "$dir")
    # The probe polls before the server exists, so the first served GET is seen within ~5 ms.
    probe_out=$OUT/logs/probe.out
    "${CLIENTS[@]}" probe --system "$sys" --port "$probe_port" >"$probe_out" 2>>"$OUT/logs/cost.log" &
    local probe_pid=$!
    sleep 0.3
    t0=$(date +%s.%N)
    case $sys in
        cairn) spawn_cairn sync "$dir"; pid=$CAIRN_PID ;;
        redis) spawn_redis always "$dir"; pid=$REDIS_PID ;;
        etcd) spawn_etcd "$dir"; pid=$ETCD_PID ;;
        nats) spawn_nats "$dir"; pid=$NATS_PID ;;
    esac
    if wait "$probe_pid"; then
        t1=$(cat "$probe_out")
        emit cost "restart to first GET" "$sys" "$r" secs "$(python3 -c "print(f'{$t1 - $t0:.3f}')")"
    else
        say "warning: $sys served no GET after restart"
    fi
    stop_pid "$pid"
    rm -rf "$dir"
    emit cost "load $COST_KEYS keys" "$sys" "$r" keys_per_s "$rate"
    emit cost "peak RSS after load" "$sys" "$r" rss_kb "$rss"
    emit cost "disk after load" "$sys" "$r" bytes "$bytes"
}

suite_cost() {
    local r sys systems=(cairn)
    [ "$HAVE_REDIS" = 1 ] && systems+=(redis)
    [ "$HAVE_ETCD" = 1 ] && systems+=(etcd)
    [ "$HAVE_NATS" = 1 ] && systems+=(nats)
    for r in $(seq "$ROUNDS"); do
        for sys in "${systems[@]}"; do
            say "cost round $r/$ROUNDS: $sys ($COST_KEYS keys)"
            cost_one "$sys" "$r"
        done
    done
}
