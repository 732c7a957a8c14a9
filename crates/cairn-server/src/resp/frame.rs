//! RESP frames: parsing requests from byte slices and encoding replies.
//!
//! Parsing never touches a socket: [`Frame::parse`] looks at the bytes
//! received so far and either returns one complete frame with the number of
//! bytes it used, [`FrameError::Incomplete`] ("read more and call again"),
//! or [`FrameError::Invalid`] (the peer broke the protocol; reply and close).
//! Every length is checked against [`Limits`] before anything is allocated
//! for it, so a peer cannot make the server reserve memory it never sends.
//!
//! ```text
//! *2\r\n$3\r\nGET\r\n$1\r\nk\r\n     a command: an array of bulk strings
//! GET k\r\n                          an inline command (what telnet sends)
//! ```

use bytes::{BufMut, BytesMut};

/// Size limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest bulk string, bytes.
    pub max_bulk: usize,
    /// Most elements in one array.
    pub max_array: usize,
    /// Longest inline command line, bytes.
    pub max_inline: usize,
    /// Deepest array nesting.
    pub max_depth: usize,
}

impl Default for Limits {
    /// Redis's own: 512 MiB bulks would be too much for cairn, whose values
    /// are at most 8 MiB by default, so bulks get that plus slack for keys.
    fn default() -> Limits {
        Limits {
            max_bulk: (8 << 20) + (64 << 10),
            max_array: 1 << 20,
            max_inline: 64 << 10,
            max_depth: 8,
        }
    }
}

/// One RESP value as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// `+text`
    Simple(String),
    /// `-text`
    Error(String),
    /// `:n`
    Integer(i64),
    /// `$len` + bytes
    Bulk(Vec<u8>),
    /// `$-1` or `*-1`
    Null,
    /// `*len` + frames
    Array(Vec<Frame>),
    /// A line without a type prefix, split into arguments like Redis does.
    Inline(Vec<Vec<u8>>),
}

/// Why no frame could be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The bytes so far are a valid prefix of a frame: read more.
    #[error("incomplete frame")]
    Incomplete,
    /// The bytes can never become a valid frame.
    #[error("Protocol error: {0}")]
    Invalid(String),
}

fn invalid<T>(msg: impl Into<String>) -> Result<T, FrameError> {
    Err(FrameError::Invalid(msg.into()))
}

impl Frame {
    /// Parses one frame from the start of `buf` with default [`Limits`].
    ///
    /// # Errors
    /// [`FrameError::Incomplete`] when more bytes are needed, [`FrameError::Invalid`] otherwise.
    pub fn parse(buf: &[u8]) -> Result<(Frame, usize), FrameError> {
        Frame::parse_with(buf, &Limits::default())
    }

    /// Parses one frame from the start of `buf`; returns it and the bytes it used.
    ///
    /// # Errors
    /// As [`Frame::parse`].
    pub fn parse_with(buf: &[u8], limits: &Limits) -> Result<(Frame, usize), FrameError> {
        let mut p = Parser { buf, pos: 0, limits };
        let f = match buf.first() {
            None => return Err(FrameError::Incomplete),
            Some(b'*' | b'$' | b'+' | b'-' | b':') => p.frame(0)?,
            Some(_) => p.inline()?,
        };
        Ok((f, p.pos))
    }

    /// The command arguments this frame carries: an array of bulk (or
    /// simple) strings, or an inline line.
    ///
    /// # Errors
    /// A protocol error message for any other shape.
    pub fn into_args(self) -> Result<Vec<Vec<u8>>, String> {
        match self {
            Frame::Inline(a) => Ok(a),
            Frame::Array(items) => items
                .into_iter()
                .map(|f| match f {
                    Frame::Bulk(b) => Ok(b),
                    Frame::Simple(s) => Ok(s.into_bytes()),
                    Frame::Integer(i) => Ok(i.to_string().into_bytes()),
                    other => Err(format!(
                        "Protocol error: expected a bulk string argument, got {}",
                        other.kind()
                    )),
                })
                .collect(),
            other => Err(format!(
                "Protocol error: expected an array of bulk strings, got {}",
                other.kind()
            )),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Frame::Simple(_) => "a simple string",
            Frame::Error(_) => "an error",
            Frame::Integer(_) => "an integer",
            Frame::Bulk(_) => "a bulk string",
            Frame::Null => "a null",
            Frame::Array(_) => "an array",
            Frame::Inline(_) => "an inline command",
        }
    }

    /// Encodes this frame (RESP2; inline frames as an array of bulks).
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Frame::Simple(s) => line(out, b'+', s.as_bytes()),
            Frame::Error(s) => line(out, b'-', s.as_bytes()),
            Frame::Integer(i) => int_line(out, b':', *i),
            Frame::Bulk(b) => bulk(out, b),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::Array(items) => {
                int_line(out, b'*', items.len() as i64);
                for f in items {
                    f.encode(out);
                }
            }
            Frame::Inline(args) => {
                int_line(out, b'*', args.len() as i64);
                for a in args {
                    bulk(out, a);
                }
            }
        }
    }
}

/// Writes `<tag><text>\r\n`.
pub(crate) fn line(out: &mut BytesMut, tag: u8, text: &[u8]) {
    out.reserve(text.len() + 3);
    out.put_u8(tag);
    out.put_slice(text);
    out.put_slice(b"\r\n");
}

/// Writes `<tag><n>\r\n`.
pub(crate) fn int_line(out: &mut BytesMut, tag: u8, n: i64) {
    let b = itoa_buf(n);
    out.reserve(b.len + 3);
    out.put_u8(tag);
    out.put_slice(b.as_slice());
    out.put_slice(b"\r\n");
}

/// Writes a bulk string.
pub(crate) fn bulk(out: &mut BytesMut, b: &[u8]) {
    int_line(out, b'$', b.len() as i64);
    out.reserve(b.len() + 2);
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

struct Digits {
    buf: [u8; 20],
    len: usize,
}

impl Digits {
    fn as_slice(&self) -> &[u8] {
        &self.buf[20 - self.len..]
    }
}

fn itoa_buf(n: i64) -> Digits {
    let mut d = Digits { buf: [0; 20], len: 0 };
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        d.len += 1;
        d.buf[20 - d.len] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        d.len += 1;
        d.buf[20 - d.len] = b'-';
    }
    d
}

struct Parser<'a> {
    buf: &'a [u8],
    pos: usize,
    limits: &'a Limits,
}

impl Parser<'_> {
    /// The line starting at `pos` without its CRLF; advances past it.
    /// `max` bounds how far to look before the line counts as too long.
    fn line(&mut self, max: usize, what: &str) -> Result<&[u8], FrameError> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(max + 2)];
        match window.iter().position(|&b| b == b'\n') {
            Some(i) if i > 0 && window[i - 1] == b'\r' => {
                self.pos += i + 1;
                Ok(&rest[..i - 1])
            }
            Some(_) => invalid(format!("{what} line must end with CRLF")),
            None if rest.len() > max + 1 => invalid(format!("{what} line longer than {max} bytes")),
            None => Err(FrameError::Incomplete),
        }
    }

    fn number(&mut self, what: &str) -> Result<i64, FrameError> {
        let l = self.line(32, what)?;
        std::str::from_utf8(l)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .map_or_else(|| invalid(format!("invalid {what}")), Ok)
    }

    fn frame(&mut self, depth: usize) -> Result<Frame, FrameError> {
        let Some(&tag) = self.buf.get(self.pos) else {
            return Err(FrameError::Incomplete);
        };
        self.pos += 1;
        match tag {
            b'+' | b'-' => {
                let l = self.line(self.limits.max_inline, "simple string")?;
                let s = String::from_utf8(l.to_vec()).or_else(|_| invalid("simple string is not UTF-8"))?;
                Ok(if tag == b'+' { Frame::Simple(s) } else { Frame::Error(s) })
            }
            b':' => self.number("integer").map(Frame::Integer),
            b'$' => {
                let len = self.number("bulk length")?;
                if len == -1 {
                    return Ok(Frame::Null);
                }
                let len = usize::try_from(len).or_else(|_| invalid("invalid bulk length"))?;
                if len > self.limits.max_bulk {
                    return invalid(format!("bulk length {len} over the limit of {}", self.limits.max_bulk));
                }
                let end = self.pos + len;
                if self.buf.len() < end + 2 {
                    return Err(FrameError::Incomplete);
                }
                if &self.buf[end..end + 2] != b"\r\n" {
                    return invalid("bulk string not followed by CRLF");
                }
                let b = self.buf[self.pos..end].to_vec();
                self.pos = end + 2;
                Ok(Frame::Bulk(b))
            }
            b'*' => {
                let len = self.number("multibulk length")?;
                if len == -1 {
                    return Ok(Frame::Null);
                }
                let len = usize::try_from(len).or_else(|_| invalid("invalid multibulk length"))?;
                if len > self.limits.max_array {
                    return invalid(format!(
                        "multibulk length {len} over the limit of {}",
                        self.limits.max_array
                    ));
                }
                if depth >= self.limits.max_depth {
                    return invalid(format!("arrays nested deeper than {}", self.limits.max_depth));
                }
                // Each element takes at least 3 bytes (`:0\r\n` is 4, `$0\r\n\r\n` 6),
                // so a length the buffer cannot back yet is only pre-allocated
                // as far as the bytes already received justify.
                let mut items = Vec::with_capacity(len.min((self.buf.len() - self.pos) / 3));
                for _ in 0..len {
                    items.push(self.frame(depth + 1)?);
                }
                Ok(Frame::Array(items))
            }
            other => invalid(format!("expected a RESP type byte, got {:?}", char::from(other))),
        }
    }

    /// An inline command: whitespace-separated words, `"..."` with escapes, `'...'`.
    fn inline(&mut self) -> Result<Frame, FrameError> {
        let rest = &self.buf[self.pos..];
        let window = &rest[..rest.len().min(self.limits.max_inline + 1)];
        let Some(nl) = window.iter().position(|&b| b == b'\n') else {
            if rest.len() > self.limits.max_inline {
                return invalid("too big inline request");
            }
            return Err(FrameError::Incomplete);
        };
        let l = &rest[..nl];
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        let args = split_inline(l)?;
        self.pos += nl + 1;
        Ok(Frame::Inline(args))
    }
}

/// Splits an inline command line like Redis's `sdssplitargs`.
fn split_inline(l: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
    let mut args = Vec::new();
    let mut i = 0;
    while i < l.len() {
        while i < l.len() && l[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == l.len() {
            break;
        }
        let mut cur = Vec::new();
        match l[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                loop {
                    let Some(&c) = l.get(i) else {
                        return invalid("unbalanced quotes in request");
                    };
                    i += 1;
                    if c == q {
                        if l.get(i).is_some_and(|c| !c.is_ascii_whitespace()) {
                            return invalid("closing quote must be followed by a space");
                        }
                        break;
                    }
                    if c == b'\\' && q == b'"' {
                        let Some(&e) = l.get(i) else {
                            return invalid("unbalanced quotes in request");
                        };
                        i += 1;
                        cur.push(match e {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            b'x' if l.len() >= i + 2 => {
                                match u8::from_str_radix(std::str::from_utf8(&l[i..i + 2]).unwrap_or("zz"), 16) {
                                    Ok(v) => {
                                        i += 2;
                                        v
                                    }
                                    Err(_) => b'x',
                                }
                            }
                            other => other,
                        });
                    } else if c == b'\\' && q == b'\'' && l.get(i) == Some(&b'\'') {
                        i += 1;
                        cur.push(b'\'');
                    } else {
                        cur.push(c);
                    }
                }
            }
            _ => {
                while i < l.len() && !l[i].is_ascii_whitespace() {
                    cur.push(l[i]);
                    i += 1;
                }
            }
        }
        args.push(cur);
    }
    Ok(args)
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
