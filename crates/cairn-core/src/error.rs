//! The engine's error type.

use std::path::PathBuf;

/// Everything that can go wrong in the engine.
///
/// Variants that describe bad input (`InvalidKey`, `ValueTooLarge`, ...) leave
/// the database untouched. `Storage`, `Io`, `Closed` and `Unavailable` mean the engine itself
/// is in trouble.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another process holds the data directory's lock.
    #[error(
        "data directory {path} is locked: another process holds it (is a cairn server already running on it?), \
         or this process still has it open (a Db, or a Subscription of one)"
    )]
    Locked {
        /// The data directory.
        path: PathBuf,
    },
    /// The named store does not exist.
    #[error("store {store:?} does not exist")]
    UnknownStore {
        /// Store name.
        store: String,
    },
    /// A store with that name exists with a different spec.
    #[error("store {store:?} already exists with a different spec ({differs}); drop it first to change it")]
    StoreExists {
        /// Store name.
        store: String,
        /// The fields that differ, e.g. `key_type: int here, string asked`.
        differs: String,
    },
    /// A store spec is malformed.
    #[error("invalid store spec for {store:?}: {reason}")]
    InvalidSpec {
        /// Store name.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// The key does not fit the store's key type or the limits.
    #[error("invalid key for store {store:?}: {reason}")]
    InvalidKey {
        /// Store name.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// The key is longer than the configured limit.
    #[error("key for store {store:?} is {len} bytes, over the limit of {max}")]
    KeyTooLarge {
        /// Store the key was for.
        store: String,
        /// Key length in bytes.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The value is larger than the configured limit.
    #[error("{what} is {len} bytes, over the limit of {max}")]
    ValueTooLarge {
        /// Which value: `value for key "k" in store "s"`, or `content`.
        what: String,
        /// Encoded value length in bytes.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The value does not fit the store's value type or JSON Schema.
    #[error("invalid value for key {key:?} in store {store:?}: {reason}")]
    InvalidValue {
        /// Store name.
        store: String,
        /// Key (text form).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An integer-only increment ([`crate::Op::Incr`] with `integer`) met a
    /// value that is not an integer.
    #[error("value of key {key:?} in store {store:?} is not an integer")]
    NotAnInteger {
        /// Store name.
        store: String,
        /// Key (text form).
        key: String,
    },
    /// `incr` on a value that is not a number.
    #[error("value of key {key:?} in store {store:?} is not a number")]
    NotANumber {
        /// Store name.
        store: String,
        /// Key (text form).
        key: String,
    },
    /// An integer increment overflowed.
    #[error("increment of key {key:?} in store {store:?} would overflow")]
    Overflow {
        /// Store name.
        store: String,
        /// Key (text form).
        key: String,
    },
    /// A batch has more operations than allowed.
    #[error("batch has {len} operations, over the limit of {max}")]
    BatchTooLarge {
        /// Number of checks plus operations.
        len: usize,
        /// Configured maximum.
        max: usize,
    },
    /// A list cursor could not be decoded.
    #[error("invalid cursor: {reason}")]
    InvalidCursor {
        /// What is wrong.
        reason: String,
    },
    /// Any other argument that is out of shape.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A content hash is malformed.
    #[error("invalid content hash {hash:?}: expected 40 (sha1) or 64 (sha256) hex digits")]
    InvalidHash {
        /// The offending text.
        hash: String,
    },
    /// Stored content does not match its hash.
    #[error("content {hash} is corrupted: stored bytes hash to {actual}")]
    Corrupted {
        /// The hash the content is stored under.
        hash: String,
        /// What the stored bytes actually hash to.
        actual: String,
    },
    /// Stored data could not be decoded.
    #[error("stored record is corrupted: {0}")]
    CorruptRecord(String),
    /// A watch asked for revisions that were compacted away.
    #[error("revision {requested} has been compacted; the oldest available revision is {oldest}")]
    Compacted {
        /// What was asked for.
        requested: u64,
        /// The oldest revision still in the change log.
        oldest: u64,
    },
    /// The engine was shut down.
    #[error("the database is closed")]
    Closed,
    /// The engine refuses writes because it can no longer make them durable
    /// (a commit failed, or the data directory was removed). Reads go on;
    /// a restart, once the cause is fixed, clears it.
    #[error("writes are refused: {reason}")]
    Unavailable {
        /// What went wrong, for the operator.
        reason: String,
    },
    /// The storage library failed.
    #[error("storage error: {0}")]
    Storage(#[from] fjall::Error),
    /// An I/O error outside the storage library.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short machine-readable code for front ends (`not_found` is never
    /// produced here: a missing key is not an error).
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Error::Locked { .. } => "locked",
            Error::UnknownStore { .. } => "unknown_store",
            Error::StoreExists { .. } => "store_exists",
            Error::InvalidSpec { .. } => "invalid_spec",
            Error::InvalidKey { .. } => "invalid_key",
            Error::KeyTooLarge { .. } => "key_too_large",
            Error::ValueTooLarge { .. } => "value_too_large",
            Error::InvalidValue { .. } => "invalid_value",
            Error::NotANumber { .. } => "not_a_number",
            Error::NotAnInteger { .. } => "not_an_integer",
            Error::Overflow { .. } => "overflow",
            Error::BatchTooLarge { .. } => "batch_too_large",
            Error::InvalidCursor { .. } => "invalid_cursor",
            Error::InvalidArgument(_) => "invalid_argument",
            Error::InvalidHash { .. } => "invalid_hash",
            Error::Corrupted { .. } | Error::CorruptRecord(_) => "corrupted",
            Error::Compacted { .. } => "compacted",
            Error::Closed => "closed",
            Error::Unavailable { .. } => "unavailable",
            Error::Storage(_) | Error::Io(_) => "internal",
        }
    }

    /// True when the error was caused by the caller's input (a 4xx in HTTP terms).
    #[must_use]
    pub fn is_client_error(&self) -> bool {
        !matches!(
            self,
            Error::Storage(_)
                | Error::Io(_)
                | Error::Corrupted { .. }
                | Error::CorruptRecord(_)
                | Error::Closed
                | Error::Unavailable { .. }
                | Error::Locked { .. }
        )
    }
}
