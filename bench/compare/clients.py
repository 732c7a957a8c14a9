#!/usr/bin/env python3
"""Load, restart-probe and watch-latency helpers for bench/compare.sh (stdlib only).

  clients.py load   --system cairn|redis|etcd --port P --keys N      bulk load, prints keys/s
  clients.py probe  --system cairn|redis|etcd --port P              polls until a GET of key 0 is
                                                                    served, prints that epoch time
  clients.py watch  --system cairn|etcd --port P --watchers N --rate R --secs S
                                                                    write->event latency: "p50_ms p99_ms events expected"

Keys are `key:` + 12 digits (16 bytes, the shape redis-benchmark uses) and
values 128 bytes, as in every other workload of the comparison.
"""

import argparse
import base64
import http.client
import json
import socket
import sys
import time

VALUE = b"v" * 128
BATCH = 500  # keys per MSET / etcd txn / cairn batch; under every system's per-request limit


def key(i):
    return b"key:%012d" % i


def b64(b):
    return base64.b64encode(b).decode()


# ---- RESP -----------------------------------------------------------------


def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Resp:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("RESP server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"-":
            raise RuntimeError("RESP error: " + rest.decode(errors="replace"))
        if kind in (b"+", b":"):
            return rest
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            while len(self.buf) < n + 2:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("RESP server closed the connection")
                self.buf += chunk
            data, self.buf = self.buf[:n], self.buf[n + 2 :]
            return data
        if kind == b"*":
            return [self.reply() for _ in range(int(rest))]
        raise RuntimeError("unexpected RESP reply %r" % line)

    def call(self, *args):
        self.sock.sendall(resp_cmd(*args))
        return self.reply()


# ---- HTTP -----------------------------------------------------------------


def http_json(conn, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    headers = {"Content-Type": content_type} if data is not None else {}
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status >= 300:
        raise RuntimeError("%s %s -> %d %s" % (method, path, resp.status, payload[:200]))
    return json.loads(payload) if payload else None


# ---- load -----------------------------------------------------------------


def load(system, port, n):
    start = time.perf_counter()
    if system in ("cairn", "redis"):
        r = Resp(port)
        for lo in range(0, n, BATCH):
            args = ["MSET"]
            for i in range(lo, min(lo + BATCH, n)):
                args += [key(i), VALUE]
            r.call(*args)
    elif system == "etcd":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        v = b64(VALUE)
        for lo in range(0, n, BATCH):
            ops = [{"request_put": {"key": b64(key(i)), "value": v}} for i in range(lo, min(lo + BATCH, n))]
            res = http_json(conn, "POST", "/v3/kv/txn", {"success": ops})
            if not res.get("succeeded"):
                raise RuntimeError("etcd txn not applied: %r" % res)
    elif system == "nats":
        from nats_kv import Nats

        nats = Nats(port)
        nats.ensure_bucket()
        for lo in range(0, n, BATCH):
            nats.put_many([(key(i).replace(b":", b"_"), VALUE) for i in range(lo, min(lo + BATCH, n))])
    else:
        raise SystemExit("load: unknown system %r" % system)
    secs = time.perf_counter() - start
    print("%.1f" % (n / secs))


# ---- probe ----------------------------------------------------------------


def probe_once(system, port):
    probe_key = key(0)
    try:
        if system == "redis" or system == "cairn-resp":
            r = Resp(port)
            ok = r.call("GET", probe_key) is not None
            r.sock.close()
            return ok
        if system == "nats":
            from nats_kv import Nats

            nats = Nats(port, timeout=5)
            ok = nats.get(probe_key.replace(b":", b"_")) is not None
            nats.sock.close()
            return ok
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        if system == "cairn":
            conn.request("GET", "/v1/stores/default/keys/" + probe_key.decode())
            resp = conn.getresponse()
            resp.read()
            return resp.status == 200
        if system == "etcd":
            res = http_json(conn, "POST", "/v3/kv/range", {"key": b64(probe_key)})
            return bool(res.get("kvs"))
    except (OSError, RuntimeError, ValueError, http.client.HTTPException):
        return False
    raise SystemExit("probe: unknown system %r" % system)


def probe(system, port, timeout):
    start = time.time()
    while time.time() - start < timeout:
        if probe_once(system, port):
            print("%.6f" % time.time())
            return
        time.sleep(0.005)
    raise SystemExit("probe: %s on port %d served no GET of %s within %ss" % (system, port, key(0), timeout))


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("load")
    a.add_argument("--system", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--keys", type=int, required=True)
    a = sub.add_parser("probe")
    a.add_argument("--system", required=True)
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--timeout", type=float, default=120)
    a = sub.add_parser("bucket")
    a.add_argument("--port", type=int, required=True)
    a = sub.add_parser("watch")
    a.add_argument("--system", required=True, choices=["cairn", "etcd", "nats"])
    a.add_argument("--port", type=int, required=True)
    a.add_argument("--watchers", type=int, required=True)
    a.add_argument("--rate", type=float, required=True)
    a.add_argument("--secs", type=float, required=True)
    args = ap.parse_args()
    if args.cmd == "load":
        load(args.system, args.port, args.keys)
    elif args.cmd == "bucket":
        from nats_kv import Nats

        Nats(args.port, timeout=5).ensure_bucket()
    elif args.cmd == "probe":
        probe(args.system, args.port, args.timeout)
    else:
        from watch_latency import run_watch

        run_watch(args.system, args.port, args.watchers, args.rate, args.secs)
    sys.stdout.flush()
