//! Entries: a value with its metadata, and their storage encoding.

use crate::{Error, Key, Result, Value};
use serde::Serialize;
use std::sync::Arc;

/// A stored value with its metadata.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// The key.
    pub key: Key,
    /// The value.
    pub value: Value,
    /// Revision of the last write to this key.
    pub revision: u64,
    /// Revision that created this key (since its last deletion).
    pub created_revision: u64,
    /// Writes since creation, from 1.
    pub version: u64,
    /// Time of the last write, milliseconds since the Unix epoch.
    pub updated_at: u64,
    /// Expiry time, milliseconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// The metadata and value of a record, without its key.
///
/// `enc` is the value's storage encoding, made once when the value enters
/// the engine: the record, its change-log events, the cache's size check and
/// the limits all reuse it instead of serializing the value again.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    /// Shared with the change events that carry it.
    pub value: Arc<Value>,
    pub enc: Vec<u8>,
    pub revision: u64,
    pub created_revision: u64,
    pub version: u64,
    pub updated_at: u64,
    pub expires_at: Option<u64>,
}

const RECORD_VERSION: u8 = 1;
const HEADER: usize = 1 + 8 * 5;

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.enc.len());
        out.push(RECORD_VERSION);
        for n in [
            self.revision,
            self.created_revision,
            self.version,
            self.updated_at,
            self.expires_at.unwrap_or(0),
        ] {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&self.enc);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Record> {
        let bad = |why: &str| Error::CorruptRecord(format!("entry record: {why}"));
        if b.len() < HEADER + 1 {
            return Err(bad("too short"));
        }
        if b[0] != RECORD_VERSION {
            return Err(bad("unknown record version"));
        }
        let n = |i: usize| {
            let start = 1 + i * 8;
            let mut a = [0u8; 8];
            a.copy_from_slice(&b[start..start + 8]);
            u64::from_le_bytes(a)
        };
        let value = Value::decode(&b[HEADER..]).map_err(|e| bad(&e))?;
        let expires = n(4);
        Ok(Record {
            value: Arc::new(value),
            enc: b[HEADER..].to_vec(),
            revision: n(0),
            created_revision: n(1),
            version: n(2),
            updated_at: n(3),
            expires_at: (expires != 0).then_some(expires),
        })
    }

    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at.is_some_and(|t| t <= now_ms)
    }

    /// Length of the value's storage encoding.
    pub fn value_len(&self) -> usize {
        self.enc.len()
    }

    /// The entry, copying the value (for records shared with the cache).
    pub fn to_entry(&self, key: Key) -> Entry {
        Entry {
            key,
            value: Value::clone(&self.value),
            revision: self.revision,
            created_revision: self.created_revision,
            version: self.version,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }

    pub fn into_entry(self, key: Key) -> Entry {
        Entry {
            key,
            value: Arc::unwrap_or_clone(self.value),
            revision: self.revision,
            created_revision: self.created_revision,
            version: self.version,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip() {
        let value = Value::Json(serde_json::json!([1, "two"]));
        let r = Record {
            enc: value.encode(),
            value: Arc::new(value),
            revision: 9,
            created_revision: 3,
            version: 4,
            updated_at: 1_700_000_000_000,
            expires_at: Some(1_800_000_000_000),
        };
        assert_eq!(Record::decode(&r.encode()).unwrap(), r);
        assert!(Record::decode(&[1, 2, 3]).is_err());
    }
}
