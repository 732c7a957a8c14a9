//! Replies and their RESP2 / RESP3 encodings.

use super::frame::{bulk, int_line, line};
use bytes::{BufMut, BytesMut};

/// A reply to a client. Encoded per the connection's protocol version:
/// RESP3 types fall back to their RESP2 shapes (maps as flat arrays,
/// pushes as arrays, doubles as bulk strings, nulls as `$-1` / `*-1`).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK` and the like.
    Simple(&'static str),
    /// A simple string built at run time (no CR or LF inside).
    Status(String),
    /// `-CODE message`: the text includes the code (`ERR ...`, `WRONGTYPE ...`).
    Error(String),
    /// `:n`
    Int(i64),
    /// `$n` bytes.
    Bulk(Vec<u8>),
    /// A missing value: `$-1` (RESP2) / `_` (RESP3).
    Nil,
    /// A missing array: `*-1` (RESP2) / `_` (RESP3).
    NilArray,
    /// `*n` replies.
    Array(Vec<Reply>),
    /// `%n` pairs (RESP2: a flat array).
    Map(Vec<(Reply, Reply)>),
    /// `>n` out-of-band data (RESP2: an array).
    Push(Vec<Reply>),
    /// `,f` (RESP2: a bulk string).
    Double(f64),
}

impl Reply {
    /// `+OK`.
    pub const OK: Reply = Reply::Simple("OK");

    /// `-ERR <msg>`.
    pub fn err(msg: impl std::fmt::Display) -> Reply {
        Reply::Error(format!("ERR {msg}"))
    }

    /// A bulk string from text.
    pub fn text(s: impl Into<String>) -> Reply {
        Reply::Bulk(s.into().into_bytes())
    }

    /// True for error replies.
    #[must_use]
    pub fn is_error(&self) -> bool {
        matches!(self, Reply::Error(_))
    }

    /// Appends the encoding for protocol version `proto` (2 or 3).
    pub fn encode(&self, proto: u8, out: &mut BytesMut) {
        let v3 = proto >= 3;
        match self {
            Reply::Simple(s) => line(out, b'+', s.as_bytes()),
            Reply::Status(s) => line(out, b'+', sanitize(s).as_bytes()),
            Reply::Error(s) => line(out, b'-', sanitize(s).as_bytes()),
            Reply::Int(i) => int_line(out, b':', *i),
            Reply::Bulk(b) => bulk(out, b),
            Reply::Nil if v3 => out.put_slice(b"_\r\n"),
            Reply::Nil => out.put_slice(b"$-1\r\n"),
            Reply::NilArray if v3 => out.put_slice(b"_\r\n"),
            Reply::NilArray => out.put_slice(b"*-1\r\n"),
            Reply::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Push(items) => {
                int_line(out, if v3 { b'>' } else { b'*' }, items.len() as i64);
                items.iter().for_each(|r| r.encode(proto, out));
            }
            Reply::Map(pairs) => {
                if v3 {
                    int_line(out, b'%', pairs.len() as i64);
                } else {
                    int_line(out, b'*', 2 * pairs.len() as i64);
                }
                for (k, v) in pairs {
                    k.encode(proto, out);
                    v.encode(proto, out);
                }
            }
            Reply::Double(f) => {
                let s = format_double(*f);
                if v3 {
                    line(out, b',', s.as_bytes())
                } else {
                    bulk(out, s.as_bytes())
                }
            }
        }
    }
}

/// Formats a float the way Redis prints INCRBYFLOAT results: shortest
/// round-tripping decimal, no exponent for ordinary magnitudes, no `.0`.
#[must_use]
pub fn format_double(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == f.trunc() && f.abs() < 1e17 {
        return format!("{}", f as i64);
    }
    format!("{f}")
}

/// Status and error lines cannot carry CR or LF.
fn sanitize(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], " ").into()
    } else {
        s.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(r: &Reply, proto: u8) -> String {
        let mut b = BytesMut::new();
        r.encode(proto, &mut b);
        String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn resp2_and_resp3_shapes() {
        assert_eq!(enc(&Reply::Nil, 2), "$-1\r\n");
        assert_eq!(enc(&Reply::Nil, 3), "_\r\n");
        assert_eq!(enc(&Reply::NilArray, 2), "*-1\r\n");
        let m = Reply::Map(vec![(Reply::text("a"), Reply::Int(1))]);
        assert_eq!(enc(&m, 2), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&m, 3), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Reply::Push(vec![Reply::Int(1)]), 3), ">1\r\n:1\r\n");
        assert_eq!(enc(&Reply::Double(1.5), 2), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Reply::Double(3.0), 3), ",3\r\n");
        assert_eq!(enc(&Reply::err("bad\r\nthing"), 2), "-ERR bad  thing\r\n");
    }
}
