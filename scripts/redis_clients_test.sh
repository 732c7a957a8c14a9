#!/usr/bin/env bash
# Real Redis clients against `cairn serve`: redis-cli, redis-py
# (scripts/redis_clients_test.py) and redis-benchmark.
#   bash scripts/redis_clients_test.sh [path/to/cairn]   (default target/debug/cairn)
# Needs redis-cli, redis-benchmark (Debian: redis-tools) and python3 with `redis`.
# Exits non-zero on any failure; the last line is "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-target/debug/cairn}

for tool in redis-cli redis-benchmark python3; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install redis-tools python3)" >&2; exit 2; }
done
python3 -c 'import redis' 2>/dev/null || { echo "missing the redis Python package (pip install redis)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "no cairn binary at $BIN (cargo build -p cairn)" >&2; exit 2; }

tmp=$(mktemp -d)
pid=""
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
HTTP=$(free_port)
"$BIN" serve --data-dir "$tmp/data" --http "127.0.0.1:$HTTP" --resp "127.0.0.1:$PORT" >"$tmp/server.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    redis-cli -p "$PORT" PING >/dev/null 2>&1 && break
    sleep 0.1
done

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok    $1"; }
bad() { failed=$((failed + 1)); echo "FAIL  $1"; }

# expect NAME WANT redis-cli-args...: redis-cli's output must equal WANT.
expect() {
    local name=$1 want=$2
    shift 2
    local got
    got=$(redis-cli -p "$PORT" "$@" 2>&1)
    if [ "$got" = "$want" ]; then ok "$name"; else bad "$name: want [$want] got [$got]"; fi
}

expect "ping" "PONG" PING
expect "set" "OK" SET greeting hello
expect "get" "hello" GET greeting
expect "get missing" "" GET nothing
expect "incr from text" "11" INCRBY counter 11
expect "incr again" "12" INCR counter
expect "incr on text fails" "ERR value is not an integer or out of range" INCR greeting
expect "set nx refused" "" SET greeting x NX
expect "set get" "hello" SET greeting world GET
expect "mset" "OK" MSET a 1 b 2
expect "mget" "$(printf '1\n2\n')" MGET a b
expect "del" "2" DEL a b nothing
expect "role: a primary without replicas" "$(printf 'master\n0\n')" ROLE
expect "exists" "1" EXISTS greeting
expect "set ex" "OK" SET temp v EX 100
expect "ttl" "100" TTL temp
expect "persist" "1" PERSIST temp
expect "ttl gone" "-1" TTL temp
expect "type" "string" TYPE temp
expect "dbsize" "3" DBSIZE
expect "select 2" "OK" SELECT 2
expect "db 2 is separate" "" -n 2 GET greeting
expect "set in db 2" "OK" -n 2 SET greeting bonjour
expect "get in db 2" "bonjour" -n 2 GET greeting
expect "db 0 unchanged" "world" -n 0 GET greeting
expect "select by name" "OK" SELECT default
expect "unknown command" "ERR unknown command 'NOPE', with args beginning with: 'x' " NOPE x
expect "wrong arity" "ERR wrong number of arguments for 'get' command" GET
expect "config get" "$(printf 'notify-keyspace-events\nAKE')" CONFIG GET notify-keyspace-events
expect "keys" "greeting" KEYS 'gre*'
expect "echo" "hi there" ECHO "hi there"
expect "client setname" "OK" CLIENT SETNAME tester
info=$(redis-cli -p "$PORT" INFO keyspace)
if echo "$info" | grep -q '^db0:keys=3,'; then ok "info keyspace"; else bad "info keyspace: $info"; fi
scan=$(redis-cli -p "$PORT" --scan --pattern '*' | sort | tr '\n' ' ')
if [ "$scan" = "counter greeting temp " ]; then ok "redis-cli --scan"; else bad "redis-cli --scan: [$scan]"; fi
tx=$(printf 'MULTI\nSET t1 a\nINCR n1\nGET t1\nEXEC\n' | redis-cli -p "$PORT" | tr '\n' ' ')
if [ "$tx" = "OK QUEUED QUEUED QUEUED OK 1 a " ]; then ok "multi/exec"; else bad "multi/exec: [$tx]"; fi
pipe=$(printf 'SET p1 1\r\nINCR p1\r\nGET p1\r\n' | redis-cli -p "$PORT" --pipe 2>&1)
if echo "$pipe" | grep -q "errors: 0, replies: 3"; then ok "redis-cli --pipe"; else bad "redis-cli --pipe: $pipe"; fi
expect "eval (lua)" "12" EVAL "return redis.call('GET', KEYS[1])" 1 counter
lua=$(mktemp)
printf "return redis.call('GET', KEYS[1]) .. ARGV[1]\n" > "$lua"
expect "redis-cli --eval" "12!" --eval "$lua" counter , '!'
rm -f "$lua"

if python3 scripts/redis_clients_test.py "$PORT" >"$tmp/py.log" 2>&1; then
    n=$(grep -c '^ok' "$tmp/py.log")
    passed=$((passed + n))
    cat "$tmp/py.log"
else
    cat "$tmp/py.log"
    bad "redis-py tests"
fi

bench=$(timeout 300 redis-benchmark -p "$PORT" -t set,get,incr,mset -n 20000 -c 20 -q 2>&1 | tr '\r' '\n')
echo "$bench" | grep "requests per second"
if echo "$bench" | grep -qiE "error|ERR"; then bad "redis-benchmark reported errors"; echo "$bench" | grep -iE "error|ERR" | head -5
elif [ "$(echo "$bench" | grep -c "requests per second")" -ge 4 ]; then ok "redis-benchmark set,get,incr,mset"
else bad "redis-benchmark: $bench"; fi

if kill -0 "$pid" 2>/dev/null; then ok "server still running"; else bad "server died"; cat "$tmp/server.log"; fi
kill -TERM "$pid"
if wait "$pid"; then ok "graceful shutdown (exit 0)"; else bad "shutdown exit code $?"; fi
pid=""

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
