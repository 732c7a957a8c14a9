//! Change events: what the change log stores and watchers receive.

use crate::{Error, Result, Value};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A key was written that did not exist.
    Created,
    /// An existing key was written.
    Updated,
    /// A key was deleted.
    Deleted,
    /// A key's TTL passed and it was removed.
    Expired,
    /// A whole store was cleared (or dropped).
    Cleared,
}

impl EventKind {
    /// Lowercase name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Created => "created",
            EventKind::Updated => "updated",
            EventKind::Deleted => "deleted",
            EventKind::Expired => "expired",
            EventKind::Cleared => "cleared",
        }
    }

    fn tag(self) -> u8 {
        self as u8
    }

    fn from_tag(t: u8) -> Option<Self> {
        Some(match t {
            0 => EventKind::Created,
            1 => EventKind::Updated,
            2 => EventKind::Deleted,
            3 => EventKind::Expired,
            4 => EventKind::Cleared,
            _ => return None,
        })
    }
}

/// A committed change. Serializes as `{"revision", "store", "key", "type",
/// "old_value"?, "new_value"?, "timestamp"}`, the key as
/// [`crate::json_key`] gives it (`{"$base64": ...}` for bytes that are not
/// UTF-8).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Revision of the commit (shared by all events of one batch).
    pub revision: u64,
    /// Store name.
    pub store: String,
    /// Key in text form (`None` for `cleared`).
    pub key: Option<String>,
    /// What happened.
    pub kind: EventKind,
    /// Value before the change (updated, deleted, expired).
    pub old_value: Option<Arc<Value>>,
    /// Value after the change (created, updated).
    pub new_value: Option<Arc<Value>>,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// The key as raw bytes (what RESP clients sent); not serialized.
    pub raw_key: Vec<u8>,
    /// Name of the operation that caused it (`set`, `incrby`, `del`, `expire`, ...;
    /// `set+expire` for a write that also set an expiry), used for Redis
    /// keyspace notifications; not serialized.
    pub op: &'static str,
}

impl Event {
    /// The key as JSON (see [`crate::json_key`]); `None` for `cleared`.
    #[must_use]
    pub fn key_json(&self) -> Option<serde_json::Value> {
        self.key.as_deref().map(|k| crate::json_key(k, &self.raw_key))
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Shape<'a> {
            revision: u64,
            store: &'a str,
            key: Option<serde_json::Value>,
            #[serde(rename = "type")]
            kind: EventKind,
            #[serde(skip_serializing_if = "Option::is_none")]
            old_value: Option<&'a Value>,
            #[serde(skip_serializing_if = "Option::is_none")]
            new_value: Option<&'a Value>,
            timestamp: u64,
        }
        Shape {
            revision: self.revision,
            store: &self.store,
            key: self.key_json(),
            kind: self.kind,
            old_value: self.old_value.as_deref(),
            new_value: self.new_value.as_deref(),
            timestamp: self.timestamp,
        }
        .serialize(s)
    }
}

const OPS: &[&str] = &[
    "set",
    "del",
    "incrby",
    "expire",
    "persist",
    "expired",
    "flushdb",
    "incrbyfloat",
    "drop",
    // A write that also set an expiry (SET .. EX): Redis notifies `set`,
    // then `expire`. New names go at the end: the tags are stored.
    "set+expire",
    // APPEND, SETRANGE, RENAME (source, destination) and COPY, named as
    // Redis names their notifications.
    "append",
    "setrange",
    "rename_from",
    "rename_to",
    "copy_to",
];

fn op_tag(op: &str) -> u8 {
    OPS.iter().position(|o| *o == op).map_or(0, |i| i as u8)
}

impl Event {
    /// Storage encoding for the change log.
    #[cfg(test)]
    pub(crate) fn encode(&self) -> Vec<u8> {
        let old = self.old_value.as_deref().map(Value::encode);
        let new = self.new_value.as_deref().map(Value::encode);
        self.encode_with(old.as_deref(), new.as_deref())
    }

    /// Storage encoding for the change log, given the values' storage
    /// encodings (the writer has them already; values are not re-serialized).
    pub(crate) fn encode_with(&self, old: Option<&[u8]>, new: Option<&[u8]>) -> Vec<u8> {
        debug_assert_eq!(old.is_some(), self.old_value.is_some());
        debug_assert_eq!(new.is_some(), self.new_value.is_some());
        let key_len = self.key.as_ref().map_or(0, String::len);
        let mut out = Vec::with_capacity(
            32 + self.store.len()
                + self.raw_key.len()
                + key_len
                + old.map_or(0, <[u8]>::len)
                + new.map_or(0, <[u8]>::len),
        );
        out.push(1); // format version
        out.push(self.kind.tag());
        out.push(op_tag(self.op));
        out.extend_from_slice(&self.timestamp.to_le_bytes());
        put_bytes(&mut out, self.store.as_bytes());
        put_bytes(&mut out, &self.raw_key);
        match &self.key {
            Some(k) => {
                out.push(1);
                put_bytes(&mut out, k.as_bytes());
            }
            None => out.push(0),
        }
        for v in [old, new] {
            match v {
                Some(v) => {
                    out.push(1);
                    put_bytes(&mut out, v);
                }
                None => out.push(0),
            }
        }
        out
    }

    pub(crate) fn decode(revision: u64, b: &[u8]) -> Result<Event> {
        let mut r = Reader { b, pos: 0 };
        let bad = || Error::CorruptRecord(format!("change log entry at revision {revision}"));
        if r.u8().ok_or_else(bad)? != 1 {
            return Err(bad());
        }
        let kind = EventKind::from_tag(r.u8().ok_or_else(bad)?).ok_or_else(bad)?;
        let op = OPS.get(usize::from(r.u8().ok_or_else(bad)?)).copied().ok_or_else(bad)?;
        let timestamp = r.u64().ok_or_else(bad)?;
        let store = String::from_utf8(r.bytes().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?;
        let raw_key = r.bytes().ok_or_else(bad)?.to_vec();
        let key = match r.u8().ok_or_else(bad)? {
            1 => Some(String::from_utf8(r.bytes().ok_or_else(bad)?.to_vec()).map_err(|_| bad())?),
            _ => None,
        };
        let mut vals = [None, None];
        for slot in &mut vals {
            if r.u8().ok_or_else(bad)? == 1 {
                *slot = Some(Arc::new(Value::decode(r.bytes().ok_or_else(bad)?).map_err(|_| bad())?));
            }
        }
        let [old_value, new_value] = vals;
        Ok(Event {
            revision,
            store,
            key,
            kind,
            old_value,
            new_value,
            timestamp,
            raw_key,
            op,
        })
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|s| s.try_into().ok()).map(u64::from_le_bytes)
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.take(4).and_then(|s| s.try_into().ok()).map(u32::from_le_bytes)?;
        self.take(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_round_trip() {
        let e = Event {
            revision: 7,
            store: "default".into(),
            key: Some("k".into()),
            kind: EventKind::Updated,
            old_value: Some(Arc::new(Value::Json(serde_json::json!(1)))),
            new_value: Some(Arc::new(Value::Bytes(vec![1, 2]))),
            timestamp: 123,
            raw_key: b"k".to_vec(),
            op: "incrby",
        };
        assert_eq!(Event::decode(7, &e.encode()).unwrap(), e);
        assert!(Event::decode(7, &[1, 0]).is_err());
    }
}
