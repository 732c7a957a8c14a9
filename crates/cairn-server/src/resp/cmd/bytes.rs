//! Byte-range string commands: GETRANGE (and its old name SUBSTR) and
//! SETRANGE.
//!
//! ```text
//! GETRANGE key start end     -> the bytes start..=end (negative: from the end),
//!                               "" for a missing key or an empty range
//! SETRANGE key offset value  -> :new-length; zero bytes pad past the end;
//!                               an empty value writes nothing
//! ```
//!
//! A value's bytes are what GET returns (`Value::to_raw`). SETRANGE is one
//! engine operation ([`Op::SetRange`]) that reads the value at its place in
//! the batch, so it works inside MULTI. Its result may be at most the
//! engine's value limit (`max_value_bytes`, 8 MiB by default), where Redis
//! allows `proto-max-bulk-len` (512 MB).

use super::{Finish, Pending, engine_error, int_arg};
use crate::resp::Shared;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::Op;

/// The bytes of `raw` that `GETRANGE start end` answers, as Redis computes them.
pub(crate) fn range(raw: &[u8], start: i64, end: i64) -> Vec<u8> {
    let len = raw.len() as i64;
    if start < 0 && end < 0 && start > end {
        return Vec::new();
    }
    let mut start = if start < 0 { len + start } else { start };
    let mut end = if end < 0 { len + end } else { end };
    start = start.max(0);
    end = end.max(0);
    if end >= len {
        end = len - 1;
    }
    if start > end || len == 0 {
        return Vec::new();
    }
    raw[start as usize..=end as usize].to_vec()
}

/// The `(start, end)` arguments of GETRANGE.
pub(crate) fn range_args(args: &[Vec<u8>]) -> Result<(i64, i64), Reply> {
    Ok((int_arg(&args[2])?, int_arg(&args[3])?))
}

/// `GETRANGE key start end` / `SUBSTR key start end`.
pub(super) fn getrange(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Reply {
    let (start, end) = match range_args(args) {
        Ok(r) => r,
        Err(r) => return r,
    };
    match sh
        .app
        .db
        .with_value(&sess.store, &args[1], |v| range(&v.to_raw(), start, end))
    {
        Ok(v) => Reply::Bulk(v.unwrap_or_default()),
        Err(e) => engine_error(&e),
    }
}

/// `SETRANGE key offset value`: one [`Op::SetRange`].
pub(super) fn setrange(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Pending, Reply> {
    let offset = int_arg(&args[2])?;
    if offset < 0 {
        return Err(Reply::err("offset is out of range"));
    }
    let data = &args[3];
    let max = sh.app.db.config().limits.max_value_bytes;
    if !data.is_empty() && (offset as u64).saturating_add(data.len() as u64) > max as u64 {
        return Err(Reply::err(format!(
            "string exceeds maximum allowed size (cairn's max_value_bytes, {max} bytes)"
        )));
    }
    Ok(Pending {
        checks: Vec::new(),
        ops: vec![Op::SetRange {
            store: sess.store.clone(),
            key: args[1].clone(),
            offset: offset as u64,
            data: data.clone(),
        }],
        finish: Finish::Length,
    })
}

#[cfg(test)]
mod tests {
    use super::range;

    #[test]
    fn ranges_follow_redis() {
        let s = b"This is a string";
        assert_eq!(range(s, 0, 3), b"This");
        assert_eq!(range(s, -3, -1), b"ing");
        assert_eq!(range(s, 0, -1), s);
        assert_eq!(range(s, 10, 100), b"string");
        assert_eq!(range(s, 5, 3), b"");
        assert_eq!(range(s, -1, -5), b"");
        assert_eq!(range(s, -100, 2), b"Thi");
        assert_eq!(range(b"", 0, -1), b"");
        assert_eq!(range(s, 100, 200), b"");
    }
}
