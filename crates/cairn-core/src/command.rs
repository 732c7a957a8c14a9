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
    /// The key exists and has no expiry (Redis `EXPIRE .. NX`).
    Persistent,
    /// The key exists and has an expiry (Redis `EXPIRE .. XX`).
    Expiring,
    /// The key exists with an expiry earlier than this time, ms since the
    /// Unix epoch (Redis `EXPIRE .. GT`: no expiry counts as infinite).
    ExpiresBefore(u64),
    /// The key exists and has no expiry or one later than this time
    /// (Redis `EXPIRE .. LT`).
    ExpiresAfter(u64),
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
        /// A string holding a number counts as that number, as Redis
        /// strings do (`SET k 5` then `INCR k`): an integer in Redis's
        /// canonical form (no `+`, spaces or leading zeros) or, unless
        /// `integer`, a finite decimal. The result is stored as a number.
        #[serde(default)]
        text: bool,
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
    /// Operations applied only when `checks` hold at this point of the
    /// write, as the operations before it left the keys. Unlike the
    /// write's own checks, a failed one fails nothing: the operations are
    /// skipped (reported in [`OpOutcome::If`]) and the rest of the write
    /// applies. Redis's per-command conditions inside `MULTI` (`SET .. NX`,
    /// `SETNX`, `MSETNX`, `EXPIRE .. GT`, ...).
    If {
        /// Conditions that must all hold.
        checks: Vec<Check>,
        /// Operations applied when they do.
        ops: Vec<Op>,
    },
    /// Operations undone, not failed, when applying them meets an error
    /// caused by the request (an increment of a non-number, a value over
    /// the size limit or of the wrong type, an unknown store): their
    /// outcome is [`OpOutcome::Failed`] and the rest of the write applies
    /// without them. Redis's runtime errors inside `MULTI` / `EXEC`
    /// (`INCR` of a non-integer answers its error, the other commands
    /// apply). A failure of the engine itself (storage, shutdown) still
    /// fails the whole write.
    Try {
        /// Operations applied together or not at all.
        ops: Vec<Op>,
    },
    /// Append bytes to a key's value read as raw bytes (Redis `APPEND`;
    /// a missing key counts as empty). The result is parsed as the store's
    /// value type, as a RESP string is; the key keeps its expiry.
    Append {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Bytes to append.
        data: Vec<u8>,
    },
    /// Overwrite a key's raw bytes from `offset`, padding with zero bytes
    /// past the end (Redis `SETRANGE`). Empty `data` writes nothing.
    SetRange {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Byte offset.
        offset: u64,
        /// Bytes to write there.
        data: Vec<u8>,
    },
    /// Copy a key's value and expiry to another key (Redis `COPY`); an
    /// existing destination is overwritten only with `replace`.
    Copy {
        /// Store name of the source.
        store: String,
        /// Raw source key.
        key: Vec<u8>,
        /// Store name of the destination.
        to_store: String,
        /// Raw destination key.
        to: Vec<u8>,
        /// Overwrite an existing destination.
        #[serde(default)]
        replace: bool,
    },
    /// Move a key's value and expiry to another key of the same store
    /// (Redis `RENAME`; with `nx`, `RENAMENX`: only if `to` is absent).
    Rename {
        /// Store name.
        store: String,
        /// Raw source key.
        key: Vec<u8>,
        /// Raw destination key.
        to: Vec<u8>,
        /// Only when the destination does not exist.
        #[serde(default)]
        nx: bool,
    },
    /// Move a key, with its value and expiry, to the same key of another
    /// store, only if it is absent there (Redis `MOVE`): outcome
    /// [`OpOutcome::Copy`], `done` when it moved.
    Move {
        /// Store name of the source.
        store: String,
        /// Raw key, in both stores.
        key: Vec<u8>,
        /// Store name of the destination.
        to_store: String,
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
    /// [`Op::Get`], reads): the source of a copy or rename, the first
    /// operation of an [`Op::If`] (`("", [])` when it has none). Use
    /// [`Op::targets`] for every key an operation may write.
    #[must_use]
    pub fn target(&self) -> (&str, &[u8]) {
        match self {
            Op::Put { store, key, .. }
            | Op::Delete { store, key }
            | Op::Incr { store, key, .. }
            | Op::Touch { store, key, .. }
            | Op::Append { store, key, .. }
            | Op::SetRange { store, key, .. }
            | Op::Copy { store, key, .. }
            | Op::Rename { store, key, .. }
            | Op::Move { store, key, .. }
            | Op::Get { store, key } => (store, key),
            Op::If { ops, .. } | Op::Try { ops } => ops.first().map_or(("", &[][..]), Op::target),
        }
    }

    /// Every store and raw key this operation may write or read, the
    /// destination of a copy or rename and nested operations included.
    #[must_use]
    pub fn targets(&self) -> Vec<(&str, &[u8])> {
        match self {
            Op::If { ops, .. } | Op::Try { ops } => ops.iter().flat_map(Op::targets).collect(),
            Op::Copy {
                store,
                key,
                to_store,
                to,
                ..
            } => vec![(store, key), (to_store, to)],
            Op::Rename { store, key, to, .. } => vec![(store, key), (store, to)],
            Op::Move { store, key, to_store } => vec![(store, key), (to_store, key)],
            other => vec![other.target()],
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
    /// A conditional group: `held` when its checks held and its
    /// operations ran (their outcomes in `ops`, empty otherwise).
    If {
        /// True when the checks held.
        held: bool,
        /// One outcome per nested operation when they ran.
        ops: Vec<OpOutcome>,
    },
    /// An append or set-range: the value's length in bytes after it.
    Length {
        /// Length of the raw value.
        len: u64,
    },
    /// A copy or rename.
    Copy {
        /// True when the source existed.
        found: bool,
        /// True when the destination was written.
        done: bool,
    },
    /// A read: the live entry at that point of the write, if any.
    Get {
        /// The entry, or `None` when the key was absent or expired.
        entry: Option<Box<crate::Entry>>,
    },
    /// An [`Op::Try`] group that applied: one outcome per operation.
    Tried {
        /// One outcome per nested operation.
        ops: Vec<OpOutcome>,
    },
    /// An [`Op::Try`] group undone by `error`; it changed nothing.
    Failed {
        /// Why it was undone.
        error: OpError,
    },
}

/// The error that undid an [`Op::Try`] group. Serialized as
/// `{"code", "message"}` ([`crate::Error::code`] and its text).
#[derive(Debug, Clone)]
pub struct OpError(pub std::sync::Arc<crate::Error>);

impl PartialEq for OpError {
    fn eq(&self, other: &Self) -> bool {
        self.0.code() == other.0.code() && self.0.to_string() == other.0.to_string()
    }
}

impl Serialize for OpError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("OpError", 2)?;
        st.serialize_field("code", self.0.code())?;
        st.serialize_field("message", &self.0.to_string())?;
        st.end()
    }
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
