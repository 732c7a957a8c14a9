# Helpers for bench/compare.sh: peers, processes, ports, CSV. Sourced, not run.
# shellcheck shell=bash

PIDS=()          # every server this run started; stopped by PID on exit
SKIPPED=()       # "peer: reason" lines for the report
HAVE_REDIS=0 HAVE_ETCD=0 HAVE_HEY=0 HAVE_NATS=0

say() { printf '[%s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# emit SUITE WORKLOAD SYSTEM ROUND METRIC VALUE
emit() {
    [ -n "$6" ] || { say "warning: no value for $1/$2/$3/round $4/$5"; return 0; }
    printf '%s,%s,%s,%s,%s,%s\n' "$@" >>"$CSV"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

# ensure_pkg COMMAND PACKAGE...: installs the Debian packages when COMMAND is missing.
ensure_pkg() {
    local cmd=$1; shift
    command -v "$cmd" >/dev/null && return 0
    if [ -z "${APT_UPDATED:-}" ]; then
        as_root apt-get update -qq >/dev/null 2>&1 || true
        APT_UPDATED=1
    fi
    local p
    for p in "$@"; do
        # Read the whole answer first: `grep -q` closing the pipe early makes
        # apt-cache die of SIGPIPE, which pipefail turns into "no package".
        local policy
        policy=$(apt-cache policy "$p" 2>/dev/null || true)
        if ! grep -q 'Candidate: [0-9]' <<<"$policy"; then
            SKIPPED+=("$p: no such Debian package here")
            return 1
        fi
    done
    say "installing $* (apt-get)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1 || true
    command -v "$cmd" >/dev/null || { SKIPPED+=("$*: apt-get install failed"); return 1; }
}

ensure_peers() {
    ensure_pkg redis-server redis-server && ensure_pkg redis-benchmark redis-tools && HAVE_REDIS=1
    ensure_pkg etcd etcd-server && ensure_pkg etcdctl etcd-client && HAVE_ETCD=1
    ensure_pkg hey hey && HAVE_HEY=1
    ensure_pkg nats-server nats-server && HAVE_NATS=1
    ensure_pkg gnuplot gnuplot-nox || say "no gnuplot: the report will have no plots"
    [ "$HAVE_REDIS" = 1 ] || say "Redis missing: RESP rows and its cost row are skipped"
    [ "$HAVE_ETCD" = 1 ] || say "etcd missing: HTTP, watch and its cost rows are skipped"
    [ "$HAVE_HEY" = 1 ] || say "hey missing: HTTP suite skipped"
}

# stop_pid PID: SIGTERM, then SIGKILL after 30 s; waits for exit.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local keep=() p
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

cleanup() {
    local p
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    [ -n "${SCRATCH:-}" ] && rm -rf "$SCRATCH"
}

# wait_until SECS CMD...: retries CMD every 50 ms.
wait_until() {
    local secs=$1; shift
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt "$end" ] || return 1
        sleep 0.05
    done
}

rss_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null; }
disk_bytes() { du -sB1 "$1" 2>/dev/null | cut -f1; }

# Servers. spawn_* start the process and set *_PID/*_PORT/*_DIR without waiting;
# start_* also wait until it answers. Each run gets a fresh data dir unless DIR is given.

spawn_cairn() { # MODE [DIR]
    CAIRN_DIR=${2:-$(mktemp -d "$SCRATCH/cairn.XXXX")}
    [ -n "${2:-}" ] || { CAIRN_HTTP=$(free_port); CAIRN_RESP=$(free_port); }
    "$CAIRN" serve --data-dir "$CAIRN_DIR/data" --http "127.0.0.1:$CAIRN_HTTP" --resp "127.0.0.1:$CAIRN_RESP" \
        --durability "$1" >>"$OUT/logs/cairn.log" 2>&1 &
    CAIRN_PID=$!
    PIDS+=("$CAIRN_PID")
}
start_cairn() {
    spawn_cairn "$@"
    wait_until 60 curl -fsS "http://127.0.0.1:$CAIRN_HTTP/v1/health" ||
        { tail -5 "$OUT/logs/cairn.log" >&2; echo "cairn did not start" >&2; exit 1; }
    wait_until 10 redis-cli -p "$CAIRN_RESP" PING || { echo "cairn RESP port not answering" >&2; exit 1; }
}

spawn_redis() { # always|everysec [DIR]
    REDIS_DIR=${2:-$(mktemp -d "$SCRATCH/redis.XXXX")}
    [ -n "${2:-}" ] || REDIS_PORT=$(free_port)
    # AOF only (no RDB snapshots), so durability is the appendfsync policy under test.
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$REDIS_DIR" --appendonly yes \
        --appendfsync "$1" --save '' --protected-mode no --daemonize no >>"$OUT/logs/redis.log" 2>&1 &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
}
start_redis() {
    spawn_redis "$@"
    wait_until 30 redis-cli -p "$REDIS_PORT" PING || { echo "redis did not start" >&2; exit 1; }
}

spawn_etcd() { # [DIR]
    ETCD_DIR=${1:-$(mktemp -d "$SCRATCH/etcd.XXXX")}
    [ -n "${1:-}" ] || { ETCD_PORT=$(free_port); ETCD_PEER=$(free_port); }
    # etcd fsyncs its WAL on every commit; there is no relaxed mode to pick.
    etcd --name bench --data-dir "$ETCD_DIR/data" \
        --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
        --listen-peer-urls "http://127.0.0.1:$ETCD_PEER" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER" \
        --initial-cluster "bench=http://127.0.0.1:$ETCD_PEER" --max-txn-ops 1000 \
        --quota-backend-bytes 8589934592 --log-level error >>"$OUT/logs/etcd.log" 2>&1 &
    ETCD_PID=$!
    PIDS+=("$ETCD_PID")
}
start_etcd() {
    spawn_etcd "$@"
    wait_until 60 curl -fsS -X POST -d '{"key":"AA=="}' "http://127.0.0.1:$ETCD_PORT/v3/kv/range" ||
        { tail -5 "$OUT/logs/etcd.log" >&2; echo "etcd did not start" >&2; exit 1; }
}

spawn_nats() { # [DIR]
    NATS_DIR=${1:-$(mktemp -d "$SCRATCH/nats.XXXX")}
    [ -n "${1:-}" ] || NATS_PORT=$(free_port)
    # JetStream file storage: nats-server 2.9 fsyncs it periodically, not per write.
    nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$NATS_DIR/js" >>"$OUT/logs/nats.log" 2>&1 &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
}
start_nats() {
    spawn_nats "$@"
    wait_until 30 "${CLIENTS[@]}" bucket --port "$NATS_PORT" || { tail -5 "$OUT/logs/nats.log" >&2; echo "nats did not start" >&2; exit 1; }
}

# fsync_latency_ms DIR: mean latency of 4 KiB O_DSYNC writes (dd), the floor for one durable writer.
fsync_latency_ms() {
    local f=$1/dd-probe out secs
    out=$(dd if=/dev/zero of="$f" bs=4k count=500 oflag=dsync 2>&1 | tail -1)
    rm -f "$f"
    secs=$(echo "$out" | sed -E 's/.* copied, ([0-9.]+) s.*/\1/')
    python3 -c "print(f'{$secs / 500 * 1000:.3f}')"
}

write_machine_info() {
    local m=$OUT/machine.txt lat
    lat=$(fsync_latency_ms "$SCRATCH")
    {
        echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "command: bash bench/compare.sh $ORIG_ARGS"
        echo "mode: $MODE ($ROUNDS rounds; systems alternate A B A B within every round)"
        echo "cairn: git $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet HEAD -- crates 2>/dev/null || echo ' (+ uncommitted changes)')"
        echo "cpu: $(nproc) cores, $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
        echo "memory: $(free -g | awk '/^Mem/ {print $2}') GiB"
        echo "kernel: $(uname -r)"
        echo "disk fsync latency (dd bs=4k oflag=dsync, mean of 500): $lat ms, i.e. at most $(python3 -c "print(round(1000/$lat))") durable writes/s for one client that waits for each"
        echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
        [ "$HAVE_REDIS" = 1 ] && echo "redis: $(redis-server --version | sed -E 's/.*v=([^ ]+).*/\1/') (AOF, appendfsync everysec or always, no RDB)"
        [ "$HAVE_ETCD" = 1 ] && echo "etcd: $(etcd --version | sed -n 's/^etcd Version: //p') (single member, v3 JSON gateway, linearizable reads)"
        [ "$HAVE_HEY" = 1 ] && echo "hey: $(dpkg-query -W -f '${Version}' hey 2>/dev/null)"
        echo "redis-benchmark: -c 50, -r 10000 (16-byte keys), -d 128; $RB_N1 requests per test at -P 1, $RB_N16 at -P 16 (MSET, 10 keys a request: a fifth of that)"
        echo "sizes: hey ${HEY_SECS}s per run; watch: ${WATCH_RATE} writes/s for ${WATCH_SECS}s; embedded: ${EMB_ARGS[*]}; cost: $COST_KEYS keys"
        if [ "$HAVE_NATS" = 1 ]; then
            echo "nats: $(nats-server --version 2>&1 | sed 's/^nats-server: //') (JetStream file store, one KV bucket; spoken to by bench/compare/nats_kv.py, a raw-protocol client, as Debian packages no NATS client; in the watch and cost suites only, as NATS has no HTTP or RESP front end)"
        fi
        local s
        for s in "${SKIPPED[@]}"; do echo "skipped: $s"; done
    } >"$m"
    cat "$m" >&2
}

source "$HERE/suites.sh"
