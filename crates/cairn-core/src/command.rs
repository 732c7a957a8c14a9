//! The single vocabulary of mutations. Every write is a [`Command`]; the
//! engine's one `apply` turns it into storage writes and change events.
//! Commands are plain serializable values so that replication can ship them.

use crate::{StoreSpec, Value};
use serde::{Deserialize, Serialize};

/// A mutation of the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Command {
    /// Create a store (no-op when an identical spec exists).
    CreateStore {
        /// The new store's spec.
        spec: StoreSpec,
    },
    /// Drop a store and everything in it.
    DropStore {
        /// Store name.
        store: String,
    },
    /// Remove every key of a store.
    Clear {
        /// Store name.
        store: String,
    },
    /// Checks and operations applied all-or-nothing at one revision.
    Write {
        /// Conditions that must all hold.
        checks: Vec<Check>,
        /// Operations applied when they do.
        ops: Vec<Op>,
    },
    /// Remove a key whose TTL has passed (issued by the TTL collector).
    Expire {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
    },
    /// Store content under its hash.
    PutContent {
        /// Hash algorithm.
        algorithm: crate::Algorithm,
        /// The content.
        #[serde(with = "serde_bytes_b64")]
        data: Vec<u8>,
    },
    /// Remove content.
    DeleteContent {
        /// Hash in hex.
        hash: String,
    },
}

/// A condition on a key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// Store name.
    pub store: String,
    /// Raw key.
    pub key: Vec<u8>,
    /// What must hold.
    pub cond: Cond,
}

/// What a [`Check`] requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cond {
    /// The key exists with exactly this revision.
    Revision(u64),
    /// The key does not exist.
    Absent,
    /// The key exists.
    Present,
}

/// One operation of a [`Command::Write`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Set a key.
    Put {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// New value.
        value: Value,
        /// What happens to the key's expiry.
        #[serde(default)]
        ttl: Ttl,
    },
    /// Remove a key.
    Delete {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
    },
    /// Add to a number (a missing key counts as 0).
    Incr {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Amount.
        by: serde_json::Number,
        /// Only on an integer (or absent) value, as Redis's `INCR` family:
        /// a fractional number is refused with [`crate::Error::NotAnInteger`]
        /// and nothing is written. `false`: JSON arithmetic (3.5 + 1 = 4.5).
        #[serde(default)]
        integer: bool,
    },
    /// Change only a key's expiry.
    Touch {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// New expiry.
        ttl: Ttl,
    },
    /// Read a key as the operations before it in the same write left it
    /// (a transaction's read: Redis `GET` inside `MULTI`). Writes nothing.
    Get {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
    },
}

impl Op {
    /// The store and raw key this operation writes (or, for
    /// [`Op::Get`], reads).
    #[must_use]
    pub fn target(&self) -> (&str, &[u8]) {
        match self {
            Op::Put { store, key, .. }
            | Op::Delete { store, key }
            | Op::Incr { store, key, .. }
            | Op::Touch { store, key, .. }
            | Op::Get { store, key } => (store, key),
        }
    }
}

/// Expiry of a written key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Ttl {
    /// The store's default TTL, if any (a put), or unchanged (a touch).
    #[default]
    Default,
    /// Expire this many milliseconds after the write.
    Millis(u64),
    /// Expire at this time (ms since the Unix epoch).
    At(u64),
    /// Keep the key's current expiry.
    Keep,
    /// No expiry.
    Persist,
}

/// What one operation of a committed write did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpOutcome {
    /// A put; `created` when the key did not exist.
    Put {
        /// True when the key was new.
        created: bool,
    },
    /// A delete; `existed` when there was something to delete.
    Delete {
        /// True when the key existed.
        existed: bool,
    },
    /// An increment and the resulting value.
    Incr {
        /// The new value.
        value: serde_json::Number,
    },
    /// A touch; `existed` when the key was there.
    Touch {
        /// True when the key existed.
        existed: bool,
    },
    /// A read: the live entry at that point of the write, if any.
    Get {
        /// The entry, or `None` when the key was absent or expired.
        entry: Option<Box<crate::Entry>>,
    },
}

/// The result of applying a [`Command::Write`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WriteOutcome {
    /// True when all checks held and the operations were applied.
    pub success: bool,
    /// The revision of the commit, or the current revision when nothing was written
    /// (a failed check, or operations that changed nothing).
    pub revision: u64,
    /// Index of the first failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<usize>,
    /// Revision of the failed check's key now (`None`: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<u64>,
    /// One outcome per operation (empty when a check failed).
    pub ops: Vec<OpOutcome>,
}

mod serde_bytes_b64 {
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}
