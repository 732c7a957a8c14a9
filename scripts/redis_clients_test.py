#!/usr/bin/env python3
"""redis-py against a running cairn: basic ops, pipelines, WATCH
transactions (with a conflict), pub/sub keyspace notifications, RESP3,
MGET seeing an MSET or MULTI whole while they run, Lua scripts (redis-py's
Lock and Script).

Usage: python3 scripts/redis_clients_test.py PORT
Prints one "ok <name>" line per passed check; exits 1 on the first failure.
"""
import sys
import threading
import time

import redis

PORT = int(sys.argv[1])


def check(name, got, want):
    if got != want:
        print(f"FAIL {name}: want {want!r}, got {got!r}")
        sys.exit(1)
    print(f"ok    py: {name}")


def client(**kw):
    return redis.Redis(host="127.0.0.1", port=PORT, decode_responses=True, **kw)


r = client()
r.flushdb()
check("ping", r.ping(), True)
# A URL with the default user and a password, as for a Redis without one.
url = redis.Redis.from_url(f"redis://default:secret@127.0.0.1:{PORT}/0", decode_responses=True)
check("url with default user and password", url.ping(), True)
check("set", r.set("py:k", "v"), True)
check("get", r.get("py:k"), "v")
check("set ex + ttl", (r.set("py:t", "v", ex=50), r.ttl("py:t")), (True, 50))
check("incr on text number", (r.set("py:n", "41"), r.incr("py:n")), (True, 42))
check("incrbyfloat", r.incrbyfloat("py:f", 1.5), 1.5)
check("mset/mget", (r.mset({"py:a": "1", "py:b": "2"}), r.mget("py:a", "py:b", "py:zz")), (True, ["1", "2", None]))
check("delete", r.delete("py:a", "py:b", "py:zz"), 2)
check("exists", r.exists("py:k", "py:a"), 1)
check("getdel", (r.getdel("py:k"), r.get("py:k")), ("v", None))
check("set nx", (r.set("py:once", "1", nx=True), r.set("py:once", "2", nx=True)), (True, None))
check("scan_iter", sorted(r.scan_iter(match="py:*", count=2)), ["py:f", "py:n", "py:once", "py:t"])
try:
    r.incr("py:once-text") and r.set("py:word", "abc") and r.incr("py:word")
    check("incr on a word fails", "no error", "ResponseError")
except redis.ResponseError as e:
    check("incr on a word fails", "not an integer" in str(e), True)

# Pipelines (no transaction): replies in order.
p = r.pipeline(transaction=False)
for i in range(100):
    p.set(f"py:p{i}", i)
p.get("py:p99")
p.incr("py:pc")
out = p.execute()
check("pipeline", (out[:3], out[100], out[101]), ([True, True, True], "99", 1))

# Transactions: pipeline(transaction=True) is MULTI/EXEC.
p = r.pipeline()
p.set("py:tx", "1").incr("py:tx").get("py:tx")
check("multi/exec", p.execute(), [True, 2, "2"])
# A read inside the transaction sees only the commands queued before it.
p = r.pipeline()
p.set("py:tx", "1").get("py:tx").incr("py:tx").getset("py:tx", "7").get("py:tx")
check("reads inside multi/exec", p.execute(), [True, "1", 2, "2", "7"])
# Conditional commands inside a transaction: a condition that fails answers
# False / None / 0 and the rest of the transaction still applies.
r.set("py:lock", "held")
p = r.pipeline()
p.setnx("py:lock", "mine").set("py:lock", "x", nx=True).set("py:free", "y", nx=True)
p.append("py:lock", "!").incr("py:tries").expire("py:lock", 100, gt=True).getrange("py:lock", 0, 3)
check(
    "conditional commands in multi/exec",
    (p.execute(), r.get("py:lock"), r.get("py:free")),
    ([False, None, True, 5, 1, False, "held"], "held!", "y"),
)
# A command that fails while applying answers its error in place; the
# others apply, as in Redis (raise_on_error=False keeps the error in the list).
r.set("py:word", "abc")
p = r.pipeline()
p.set("py:rt", "1").incr("py:word").append("py:rt", "2")
out = p.execute(raise_on_error=False)
check(
    "runtime error in multi/exec",
    (out[0], type(out[1]).__name__, str(out[1]), out[2], r.get("py:rt"), r.get("py:word")),
    (True, "ResponseError", "value is not an integer or out of range", 2, "12", "abc"),
)

# WATCH: a change by another connection between WATCH and EXEC aborts it.
other = client()
r.set("py:balance", 100)
with r.pipeline() as p:
    p.watch("py:balance")
    bal = int(p.get("py:balance"))
    other.set("py:balance", 500)
    p.multi()
    p.set("py:balance", bal - 30)
    try:
        p.execute()
        check("watch conflict aborts", "committed", "WatchError")
    except redis.WatchError:
        check("watch conflict aborts", r.get("py:balance"), "500")


# The usual optimistic-locking loop converges.
def spend(pipe):
    bal = int(pipe.get("py:balance"))
    pipe.multi()
    pipe.set("py:balance", bal - 30)


r.transaction(spend, "py:balance")
check("transaction helper", r.get("py:balance"), "470")

# Keyspace notifications through pub/sub.
ps = client().pubsub()
ps.psubscribe("__keyspace@0__:py:watched*")
ps.subscribe("__keyevent@0__:del")
deadline = time.time() + 5
while time.time() < deadline:
    m = ps.get_message(timeout=1)
    if m and m["type"] == "subscribe":
        break
r.set("py:watched", "1")
r.expire("py:watched", 100)
r.delete("py:watched")
want = [
    ("pmessage", "__keyspace@0__:py:watched", "set"),
    ("pmessage", "__keyspace@0__:py:watched", "expire"),
    ("pmessage", "__keyspace@0__:py:watched", "del"),
    ("message", "__keyevent@0__:del", "py:watched"),
]
got = []
deadline = time.time() + 10
while len(got) < len(want) and time.time() < deadline:
    m = ps.get_message(timeout=1)
    if m and m["type"] in ("message", "pmessage"):
        got.append((m["type"], m["channel"], m["data"]))
check("keyspace notifications", sorted(got), sorted(want))
check("publish", r.publish("__keyevent@0__:del", "manual"), 1)
ps.close()

# RESP3 (HELLO 3) through redis-py.
r3 = client(protocol=3)
check("resp3 get", (r3.set("py:r3", "x"), r3.get("py:r3"), r3.get("py:none")), (True, "x", None))
check("resp3 ttl", r3.ttl("py:none"), -2)

# MGET reads one revision: an MSET or a MULTI/EXEC that writes all the keys
# shows whole or not at all, however the writers interleave with it.
KEYS = [f"py:torn:{i}" for i in range(10)]
r.mset({k: 0 for k in KEYS})
stop = threading.Event()


def mset_writer():
    w = client()
    i = 0
    while not stop.is_set():
        i += 1
        w.mset({k: f"m{i}" for k in KEYS})


def multi_writer():
    w = client()
    i = 0
    while not stop.is_set():
        i += 1
        p = w.pipeline(transaction=True)
        for k in KEYS:
            p.set(k, f"x{i}")
        p.execute()


writers = [threading.Thread(target=mset_writer), threading.Thread(target=multi_writer)]
for t in writers:
    t.start()
torn, reads = [], 0
deadline = time.time() + 3
while time.time() < deadline:
    got = r.mget(KEYS)
    reads += 1
    if len(set(got)) != 1:
        torn.append(got)
stop.set()
for t in writers:
    t.join()
check(f"mget never sees half an mset or multi ({reads} reads)", torn[:1], [])

# INFO stats counts key lookups as Redis does (redis-cli --stat, exporters).
before = r.info("stats")
r.set("py:hit", "1")
r.get("py:hit")
r.get("py:no-hit")
r.mget("py:hit", "py:no-hit-2")
after = r.info("stats")
check(
    "info keyspace_hits / keyspace_misses",
    (after["keyspace_hits"] - before["keyspace_hits"], after["keyspace_misses"] - before["keyspace_misses"]),
    (2, 2),
)
check(
    "info fields redis-cli --stat and exporters read",
    [f in after for f in ("instantaneous_ops_per_sec", "evicted_keys", "rejected_connections")]
    + [r.info("clients").get("blocked_clients")],
    [True, True, True, 0],
)
# CONFIG RESETSTAT zeroes what INFO stats counts, as in Redis.
r.config_resetstat()
r.get("py:hit")
stats = r.info("stats")
check(
    "config resetstat",
    (stats["keyspace_hits"], stats["keyspace_misses"], stats["expired_keys"], stats["total_commands_processed"] < 5),
    (1, 0, 0, True),
)
# Lua: redis-py's Lock releases and extends with scripts; Script objects
# use EVALSHA and fall back to loading the script on NOSCRIPT.
lock = r.lock("py:mutex", timeout=10)
check("lock acquire", lock.acquire(blocking=False), True)
check("lock held elsewhere", r.lock("py:mutex", timeout=10).acquire(blocking=False), False)
check("lock extend (script)", lock.extend(5), True)
lock.release()
check("lock release (script)", r.exists("py:mutex"), 0)
r.script_flush()
bump = r.register_script("local v = redis.call('INCRBY', KEYS[1], ARGV[1]); return {v, redis.call('GET', KEYS[1])}")
check("register_script after SCRIPT FLUSH (EVALSHA, NOSCRIPT, reload)", bump(keys=["py:s"], args=[5]), [5, "5"])
with r.pipeline() as p:
    bump(keys=["py:s"], args=[1], client=p)
    bump(keys=["py:s"], args=[1], client=p)
    check("script in a pipeline", p.execute(), [[6, "6"], [7, "7"]])
print("ok    py: all")
