"""Write->notification latency: N watchers on one prefix, one writer at a steady rate.

Each write puts a fresh key `wl:` + 13 digits (its sequence number) with a
128-byte value; the send time is taken just before the request is written.
Watchers are raw sockets in one selector loop; the receipt time is taken when
recv returns, before any parsing, so the helper's own parse cost is not
counted. Latency includes the durable commit: both cairn (sync) and etcd
publish an event only after the write is fsynced.
"""

import base64
import http.client
import json
import os
import selectors
import socket
import statistics
import threading
import time

PREFIX = b"wl:"


def wkey(seq):
    return b"wl:%013d" % seq


class Stream:
    """One watcher connection: HTTP/1.1 response, chunked or not, body fed to a parser."""

    def __init__(self, port, request, parse_body):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(request)
        self.sock.setblocking(False)
        self.raw = b""
        self.headers_done = False
        self.chunked = False
        self.body = b""
        self.parse_body = parse_body
        self.ready = False

    def feed(self, data):
        self.raw += data
        if not self.headers_done:
            if b"\r\n\r\n" not in self.raw:
                return []
            head, self.raw = self.raw.split(b"\r\n\r\n", 1)
            status = head.split(b"\r\n", 1)[0]
            if b" 200" not in status:
                raise RuntimeError("watch request refused: %r" % head[:300])
            self.chunked = b"transfer-encoding: chunked" in head.lower()
            self.headers_done = True
        if self.chunked:
            while True:
                if b"\r\n" not in self.raw:
                    break
                size_line, rest = self.raw.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if len(rest) < size + 2:
                    break
                self.body += rest[:size]
                self.raw = rest[size + 2 :]
        else:
            self.body += self.raw
            self.raw = b""
        seqs, self.body = self.parse_body(self, self.body)
        return seqs


def sse_parse(stream, body):
    """cairn SSE: blocks separated by a blank line; `data:` lines hold the event JSON."""
    seqs = []
    body = body.replace(b"\r\n", b"\n")
    while b"\n\n" in body:
        block, body = body.split(b"\n\n", 1)
        data = b"".join(line[5:].strip() for line in block.split(b"\n") if line.startswith(b"data:"))
        stream.ready = True
        if not data:
            continue
        ev = json.loads(data)
        k = ev.get("key")
        if isinstance(k, str) and k.startswith("wl:"):
            seqs.append(int(k[3:]))
    return seqs, body


def etcd_parse(stream, body):
    """etcd gateway: a stream of JSON objects `{"result": {...}}`, one per watch response."""
    seqs = []
    dec = json.JSONDecoder()
    text = body.decode()
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        try:
            obj, end = dec.raw_decode(text, pos)
        except json.JSONDecodeError:
            break
        pos = end
        result = obj.get("result", {})
        if result.get("created"):
            stream.ready = True
        for ev in result.get("events", []):
            k = base64.b64decode(ev["kv"]["key"])
            if k.startswith(PREFIX):
                seqs.append(int(k[3:]))
    return seqs, text[pos:].encode()


class NatsStream:
    """One NATS KV watcher: its own connection and ephemeral push consumer."""

    def __init__(self, port, i):
        from nats_kv import Nats

        self.conn = Nats(port)
        # Unique per process: an ephemeral consumer of an earlier run may outlive its connection by seconds.
        self.conn.watch("_INBOX.watch.%d.%d" % (os.getpid(), i))
        self.sock = self.conn.sock
        self.sock.setblocking(False)
        self.headers_done = self.ready = True

    def feed(self, data):
        self.conn.buf += data
        seqs = []
        while True:
            item = self.conn.parse()
            if item is None:
                return seqs
            kind, msg = item
            if kind == "MSG" and msg[0].startswith("$KV.bench.wl_"):
                seqs.append(int(msg[0].rsplit("_", 1)[1]))


def open_watchers(system, port, n):
    if system == "nats":
        from nats_kv import Nats

        Nats(port).ensure_bucket()
        return [NatsStream(port, i) for i in range(n)]
    if system == "cairn":
        req = (
            b"GET /v1/watch?store=default&prefix=wl%%3A HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
            b"Accept: text/event-stream\r\n\r\n" % port
        )
        return [Stream(port, req, sse_parse) for _ in range(n)]
    body = json.dumps(
        {"create_request": {"key": base64.b64encode(PREFIX).decode(), "range_end": base64.b64encode(b"wl;").decode()}}
    ).encode()
    req = (
        b"POST /v3/watch HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (port, len(body), body)
    )
    return [Stream(port, req, etcd_parse) for _ in range(n)]


def writer(system, port, rate, secs, sent, stop):
    if system == "nats":
        from nats_kv import Nats

        nats = Nats(port)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    value = b"v" * 128
    n = int(rate * secs)
    t0 = time.perf_counter()
    for seq in range(n):
        due = t0 + seq / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        k = wkey(seq)
        if system == "nats":
            sent[seq] = time.perf_counter()
            nats.put(k.replace(b":", b"_"), value)
            continue
        if system == "cairn":
            body = json.dumps(value.decode()).encode()
            path = "/v1/stores/default/keys/" + k.decode()
            method = "PUT"
        else:
            body = json.dumps({"key": base64.b64encode(k).decode(), "value": base64.b64encode(value).decode()})
            body = body.encode()
            path, method = "/v3/kv/put", "POST"
        sent[seq] = time.perf_counter()
        conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        resp.read()
        if resp.status >= 300:
            raise RuntimeError("write %s -> %d" % (k, resp.status))
    stop.set()


def run_watch(system, port, n_watchers, rate, secs):
    streams = open_watchers(system, port, n_watchers)
    sel = selectors.DefaultSelector()
    for s in streams:
        sel.register(s.sock, selectors.EVENT_READ, s)
    received = []  # (seq, receipt time)

    def pump(timeout):
        for skey, _ in sel.select(timeout):
            s = skey.data
            try:
                data = s.sock.recv(1 << 20)
            except BlockingIOError:
                continue
            t = time.perf_counter()
            if not data:
                raise RuntimeError("a watcher's connection closed")
            for seq in s.feed(data):
                received.append((seq, t))

    # Wait until every watcher is subscribed (SSE: first bytes of the stream; etcd: "created").
    deadline = time.time() + 20
    while not all(s.headers_done and (s.ready or system == "cairn") for s in streams):
        if time.time() > deadline:
            raise RuntimeError("watchers not ready after 20 s")
        pump(0.1)
    time.sleep(0.3)
    sent = {}
    stop = threading.Event()
    t = threading.Thread(target=writer, args=(system, port, rate, secs, sent, stop), daemon=True)
    t.start()
    while not stop.is_set():
        pump(0.05)
    expected = len(sent) * n_watchers
    tail = time.time() + 3
    while len(received) < expected and time.time() < tail:
        pump(0.05)
    t.join()
    lat = sorted((tr - sent[seq]) * 1000 for seq, tr in received if seq in sent)
    for s in streams:
        s.sock.close()
    if not lat:
        raise RuntimeError("no events received")
    q = statistics.quantiles(lat, n=100, method="inclusive")
    print("%.3f %.3f %d %d" % (statistics.median(lat), q[98], len(lat), expected))
