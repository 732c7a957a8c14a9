//! Key types and their order-preserving encodings.
//!
//! Every key is stored as `store_id (u32 BE) ++ encoded key`, where the
//! encoding sorts bytewise in the key type's natural order: strings and bytes
//! as themselves, ints as big-endian with the sign bit flipped (negatives
//! first), UUIDs as their 16 bytes.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The type of a store's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum KeyType {
    /// UTF-8 text (default).
    #[default]
    String,
    /// A UUID, given in its hyphenated text form.
    Uuid,
    /// A signed 64-bit integer, given in decimal.
    Int,
    /// Arbitrary bytes.
    Bytes,
}

impl KeyType {
    /// The name used in store specs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::String => "string",
            KeyType::Uuid => "uuid",
            KeyType::Int => "int",
            KeyType::Bytes => "bytes",
        }
    }

    /// True when prefix queries make sense for this key type.
    #[must_use]
    pub fn supports_prefix(self) -> bool {
        matches!(self, KeyType::String | KeyType::Bytes)
    }
}

/// A decoded key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    /// A string key.
    Str(String),
    /// A UUID key.
    Uuid(uuid::Uuid),
    /// An integer key.
    Int(i64),
    /// A bytes key.
    Bytes(Vec<u8>),
}

impl Key {
    /// Parses the raw key as given by a client (text or bytes) for `ty`.
    ///
    /// # Errors
    /// A message saying why the input is not a key of that type.
    pub fn parse(ty: KeyType, raw: &[u8]) -> Result<Key, String> {
        if raw.is_empty() {
            return Err("key must not be empty".into());
        }
        match ty {
            KeyType::String => std::str::from_utf8(raw)
                .map(|s| Key::Str(s.to_owned()))
                .map_err(|_| "key is not valid UTF-8".to_string()),
            KeyType::Bytes => Ok(Key::Bytes(raw.to_vec())),
            KeyType::Int => std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse::<i64>().ok())
                .map(Key::Int)
                .ok_or_else(|| format!("{:?} is not a 64-bit integer", String::from_utf8_lossy(raw))),
            KeyType::Uuid => std::str::from_utf8(raw)
                .ok()
                .and_then(|s| uuid::Uuid::parse_str(s).ok())
                .map(Key::Uuid)
                .ok_or_else(|| format!("{:?} is not a UUID", String::from_utf8_lossy(raw))),
        }
    }

    /// The order-preserving encoding (without the store prefix).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Key::Str(s) => s.as_bytes().to_vec(),
            Key::Bytes(b) => b.clone(),
            Key::Int(i) => ((*i as u64) ^ (1 << 63)).to_be_bytes().to_vec(),
            Key::Uuid(u) => u.as_bytes().to_vec(),
        }
    }

    /// Decodes an encoding produced by [`Key::encode`].
    ///
    /// # Errors
    /// A message when the bytes are not a valid encoding for `ty`.
    pub fn decode(ty: KeyType, enc: &[u8]) -> Result<Key, String> {
        match ty {
            KeyType::String => std::str::from_utf8(enc)
                .map(|s| Key::Str(s.to_owned()))
                .map_err(|_| "stored string key is not UTF-8".to_string()),
            KeyType::Bytes => Ok(Key::Bytes(enc.to_vec())),
            KeyType::Int => <[u8; 8]>::try_from(enc)
                .map(|b| Key::Int((u64::from_be_bytes(b) ^ (1 << 63)) as i64))
                .map_err(|_| "stored int key is not 8 bytes".to_string()),
            KeyType::Uuid => uuid::Uuid::from_slice(enc)
                .map(Key::Uuid)
                .map_err(|_| "stored uuid key is not 16 bytes".to_string()),
        }
    }

    /// The key as raw bytes in its client-facing form (text for ints and UUIDs).
    #[must_use]
    pub fn to_raw(&self) -> Vec<u8> {
        match self {
            Key::Str(s) => s.as_bytes().to_vec(),
            Key::Bytes(b) => b.clone(),
            Key::Int(i) => i.to_string().into_bytes(),
            Key::Uuid(u) => u.hyphenated().to_string().into_bytes(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Str(s) => f.write_str(s),
            Key::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            Key::Int(i) => write!(f, "{i}"),
            Key::Uuid(u) => write!(f, "{}", u.hyphenated()),
        }
    }
}

impl Key {
    /// The key as JSON: its text, or `{"$base64": ...}` for bytes that are
    /// not UTF-8 (whose text form would have replaced them with U+FFFD).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Key::Bytes(b) => json_key(&String::from_utf8_lossy(b), b),
            other => serde_json::Value::String(other.to_string()),
        }
    }
}

/// A key as JSON from its text form and raw bytes (as in
/// [`crate::Event`]): the text, or `{"$base64": ...}` of the bytes when they
/// are not UTF-8 and the text is therefore lossy. The form `export` writes
/// and every front end and `import` reads back.
#[must_use]
pub fn json_key(text: &str, raw: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    match std::str::from_utf8(raw) {
        Ok(_) => serde_json::Value::String(text.to_owned()),
        Err(_) => serde_json::json!({"$base64": base64::engine::general_purpose::STANDARD.encode(raw)}),
    }
}

impl Serialize for Key {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::Bytes(b) if std::str::from_utf8(b).is_err() => self.to_json().serialize(s),
            _ => s.collect_str(self),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_json_keep_bytes_that_are_not_utf8() {
        assert_eq!(
            Key::Bytes(vec![0, 0xff, 0x80]).to_json(),
            serde_json::json!({"$base64": "AP+A"})
        );
        assert_eq!(Key::Bytes(b"ok".to_vec()).to_json(), serde_json::json!("ok"));
        assert_eq!(Key::Int(-7).to_json(), serde_json::json!("-7"));
        assert_eq!(
            serde_json::to_value(Key::Bytes(vec![0xc3, 0x28])).unwrap(),
            serde_json::json!({"$base64": "wyg="})
        );
        assert_eq!(json_key("a", b"a"), serde_json::json!("a"));
    }

    #[test]
    fn int_keys_sort_numerically() {
        let mut v: Vec<i64> = vec![5, -1, 0, i64::MIN, i64::MAX, -300, 42];
        let mut enc: Vec<Vec<u8>> = v.iter().map(|i| Key::Int(*i).encode()).collect();
        enc.sort();
        v.sort();
        let dec: Vec<i64> = enc
            .iter()
            .map(|e| match Key::decode(KeyType::Int, e).unwrap() {
                Key::Int(i) => i,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(dec, v);
    }

    #[test]
    fn parse_rejects_wrong_types() {
        assert!(Key::parse(KeyType::Int, b"12x").is_err());
        assert!(Key::parse(KeyType::Uuid, b"nope").is_err());
        assert!(Key::parse(KeyType::String, &[0xff, 0xfe]).is_err());
        assert!(Key::parse(KeyType::String, b"").is_err());
        assert_eq!(Key::parse(KeyType::Int, b"-7").unwrap(), Key::Int(-7));
    }
}
