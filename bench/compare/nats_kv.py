"""A minimal NATS KV client over the raw NATS protocol (stdlib only): enough
for bench/compare.sh to load a bucket, probe it after a restart and watch it.

A bucket is the JetStream stream `KV_<bucket>` on subjects `$KV.<bucket>.>`,
one message kept per subject; a put is a publish acknowledged by JetStream
once stored; a watch is an ephemeral push consumer delivering new messages.
Keys use `_` instead of `:` (NATS KV allows neither `:` nor spaces).
"""

import json
import socket

BUCKET = "bench"
STREAM = "KV_" + BUCKET


class Nats:
    def __init__(self, port, timeout=30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        # Requests are small writes that wait for an answer: without this, Nagle and delayed ACKs add 40 ms.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.inbox_n = 0
        info = self._line()
        if not info.startswith(b"INFO "):
            raise RuntimeError("not a NATS server: %r" % info[:80])
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":true,"no_responders":true,"lang":"py","version":"0"}\r\nPING\r\n')
        while True:
            kind, _ = self.next()
            if kind == "PONG":
                break

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("NATS server closed the connection")
        self.buf += chunk

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def parse(self):
        """Next protocol item from the buffer, or None when it is incomplete."""
        end = self.buf.find(b"\r\n")
        if end < 0:
            return None
        line = self.buf[:end]
        op = line.split(b" ", 1)[0].upper()
        if op in (b"MSG", b"HMSG"):
            parts = line.split(b" ")
            size = int(parts[-1])
            start = end + 2
            if len(self.buf) < start + size + 2:
                return None
            payload = self.buf[start : start + size]
            if op == b"HMSG":
                payload = payload[int(parts[-2]) :]
            self.buf = self.buf[start + size + 2 :]
            return ("MSG", (parts[1].decode(), payload))
        self.buf = self.buf[end + 2 :]
        if op == b"PING":
            self.sock.sendall(b"PONG\r\n")
            return ("PING", None)
        if op == b"-ERR":
            raise RuntimeError("NATS error: " + line.decode(errors="replace"))
        return (op.decode(), line)

    def next(self):
        while True:
            item = self.parse()
            if item is not None:
                return item
            self._fill()

    def inbox(self):
        self.inbox_n += 1
        return "_INBOX.bench.%d" % self.inbox_n

    def request(self, subject, payload):
        ib = self.inbox()
        self.sock.sendall(b"SUB %s 1\r\nPUB %s %s %d\r\n%s\r\n" % (ib.encode(), subject.encode(), ib.encode(), len(payload), payload))
        while True:
            kind, msg = self.next()
            if kind == "MSG" and msg[0] == ib:
                self.sock.sendall(b"UNSUB 1\r\n")
                return json.loads(msg[1])

    def ensure_bucket(self):
        cfg = {
            "name": STREAM,
            "subjects": ["$KV.%s.>" % BUCKET],
            "retention": "limits",
            "max_msgs_per_subject": 1,
            "discard": "new",
            "storage": "file",
            "num_replicas": 1,
            "allow_rollup_hdrs": True,
            "deny_delete": True,
            "allow_direct": True,
        }
        res = self.request("$JS.API.STREAM.CREATE." + STREAM, json.dumps(cfg).encode())
        if "error" in res and res["error"].get("err_code") != 10058:  # 10058: stream name already in use
            raise RuntimeError("creating the KV bucket failed: %r" % res["error"])

    def put_many(self, items):
        """Publishes every (key, value) with an ack inbox, then waits for all acks (pipelined)."""
        self.sock.sendall(b"SUB _INBOX.acks.* 2\r\n")
        out = []
        for k, v in items:
            out.append(b"PUB $KV.%s.%s _INBOX.acks.x %d\r\n%s\r\n" % (BUCKET.encode(), k, len(v), v))
        self.sock.sendall(b"".join(out))
        acks = 0
        while acks < len(items):
            kind, msg = self.next()
            if kind == "MSG":
                res = json.loads(msg[1])
                if "error" in res:
                    raise RuntimeError("NATS KV put failed: %r" % res["error"])
                acks += 1
        self.sock.sendall(b"UNSUB 2\r\n")

    def put(self, k, v):
        res = self.request("$KV.%s.%s" % (BUCKET, k.decode()), v)
        if "error" in res:
            raise RuntimeError("NATS KV put failed: %r" % res["error"])

    def get(self, k):
        ib = self.inbox()
        subj = "$JS.API.DIRECT.GET.%s.$KV.%s.%s" % (STREAM, BUCKET, k.decode())
        self.sock.sendall(b"SUB %s 1\r\nPUB %s %s 0\r\n\r\n" % (ib.encode(), subj.encode(), ib.encode()))
        while True:
            kind, msg = self.next()
            if kind == "MSG" and msg[0] == ib:
                self.sock.sendall(b"UNSUB 1\r\n")
                return msg[1] or None

    def watch(self, deliver):
        """Starts an ephemeral push consumer of new messages in the bucket, delivered to `deliver`."""
        self.sock.sendall(b"SUB %s 9\r\n" % deliver.encode())
        cfg = {
            "stream_name": STREAM,
            "config": {
                "deliver_subject": deliver,
                "deliver_policy": "new",
                "ack_policy": "none",
                "replay_policy": "instant",
                "filter_subject": "$KV.%s.>" % BUCKET,
                "mem_storage": True,
                "num_replicas": 1,
            },
        }
        res = self.request("$JS.API.CONSUMER.CREATE." + STREAM, json.dumps(cfg).encode())
        if "error" in res:
            raise RuntimeError("NATS KV watch failed: %r" % res["error"])
