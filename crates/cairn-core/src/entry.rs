//! Entries: a value with its metadata, and their storage encoding.

use crate::varint::{get_varint, put_varint};
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

/// Version 1: five fixed little-endian u64s (revision, created revision,
/// version, updated_at, expires_at or 0). Still read; no longer written.
const RECORD_V1: u8 = 1;
const V1_HEADER: usize = 1 + 8 * 5;
/// Version 2: LEB128 varints — revision, revision − created revision,
/// version, updated_at, expires_at or 0 — about 14 bytes instead of 41,
/// which keeps more records per cached block.
const RECORD_V2: u8 = 2;

/// A record's metadata, decoded without its value.
struct Header {
    revision: u64,
    created_revision: u64,
    version: u64,
    updated_at: u64,
    expires_at: Option<u64>,
    /// Where the value's encoding starts.
    value_at: usize,
}

impl Header {
    fn decode(b: &[u8]) -> Result<Header> {
        let bad = |why: &str| Error::CorruptRecord(format!("entry record: {why}"));
        let h = match b.first() {
            Some(&RECORD_V2) => {
                let mut pos = 1;
                let mut next = || get_varint(b, &mut pos).ok_or_else(|| bad("truncated header"));
                let revision = next()?;
                let age = next()?;
                let version = next()?;
                let updated_at = next()?;
                let expires = next()?;
                Header {
                    revision,
                    created_revision: revision.checked_sub(age).ok_or_else(|| bad("created after updated"))?,
                    version,
                    updated_at,
                    expires_at: (expires != 0).then_some(expires),
                    value_at: pos,
                }
            }
            Some(&RECORD_V1) if b.len() > V1_HEADER => {
                let n = |i: usize| {
                    let start = 1 + i * 8;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&b[start..start + 8]);
                    u64::from_le_bytes(a)
                };
                let expires = n(4);
                Header {
                    revision: n(0),
                    created_revision: n(1),
                    version: n(2),
                    updated_at: n(3),
                    expires_at: (expires != 0).then_some(expires),
                    value_at: V1_HEADER,
                }
            }
            Some(&RECORD_V1) | None => return Err(bad("too short")),
            Some(_) => return Err(bad("unknown record version")),
        };
        if h.value_at >= b.len() {
            return Err(bad("no value"));
        }
        Ok(h)
    }

    fn into_record(self, value: Value, enc: Vec<u8>) -> Record {
        Record {
            value: Arc::new(value),
            enc,
            revision: self.revision,
            created_revision: self.created_revision,
            version: self.version,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }
}

impl Record {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + self.enc.len());
        out.push(RECORD_V2);
        put_varint(&mut out, self.revision);
        debug_assert!(self.created_revision <= self.revision);
        put_varint(&mut out, self.revision.saturating_sub(self.created_revision));
        put_varint(&mut out, self.version);
        put_varint(&mut out, self.updated_at);
        put_varint(&mut out, self.expires_at.unwrap_or(0));
        out.extend_from_slice(&self.enc);
        out
    }

    pub fn decode(b: &[u8]) -> Result<Record> {
        let h = Header::decode(b)?;
        let enc = &b[h.value_at..];
        let value = Value::decode(enc).map_err(|e| Error::CorruptRecord(format!("entry record: {e}")))?;
        Ok(h.into_record(value, enc.to_vec()))
    }

    /// The record's metadata with a null value, for keys-only listings.
    pub fn decode_without_value(b: &[u8]) -> Result<Record> {
        Ok(Header::decode(b)?.into_record(Value::Json(serde_json::Value::Null), Vec::new()))
    }

    /// True when the stored record `b` has expired, without decoding its value.
    pub fn stored_is_expired(b: &[u8], now_ms: u64) -> Result<bool> {
        Ok(Header::decode(b)?.expires_at.is_some_and(|t| t <= now_ms))
    }

    /// The expiry time in a stored record, read from its header only.
    pub fn stored_expires_at(b: &[u8]) -> Result<Option<u64>> {
        Ok(Header::decode(b)?.expires_at)
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
        let enc = r.encode();
        assert!(
            enc.len() < 20 + r.enc.len(),
            "compact header: {} bytes",
            enc.len() - r.enc.len()
        );
        assert_eq!(Record::decode(&enc).unwrap(), r);
        assert!(Record::decode(&[1, 2, 3]).is_err());
        assert!(Record::decode(&[2, 0x80]).is_err(), "truncated varint");
        assert!(Record::decode(&[9; 50]).is_err(), "unknown version");
        assert!(!Record::stored_is_expired(&enc, 1_700_000_000_000).unwrap());
        assert!(Record::stored_is_expired(&enc, 1_800_000_000_000).unwrap());
    }

    #[test]
    fn version_1_records_still_read() {
        let value = Value::Json(serde_json::json!({"a": 1}));
        let mut v1 = vec![1u8];
        for n in [9u64, 3, 4, 1_700_000_000_000, 0] {
            v1.extend_from_slice(&n.to_le_bytes());
        }
        v1.extend_from_slice(&value.encode());
        let r = Record::decode(&v1).unwrap();
        assert_eq!((r.revision, r.created_revision, r.version), (9, 3, 4));
        assert_eq!((r.updated_at, r.expires_at), (1_700_000_000_000, None));
        assert_eq!(*r.value, value);
        assert!(Record::decode(&v1[..30]).is_err());
    }
}
