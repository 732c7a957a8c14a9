//! cairn-core: the embedded engine of cairn, a persistent key-value store.
//!
//! A [`Db`] is one data directory holding many named, typed stores. Every
//! mutation is a [`Command`] applied by one writer thread that assigns it the
//! next revision and commits data, change-log entries and history in one
//! atomic storage batch, sharing fsyncs between concurrent writers (group
//! commit). Reads go through a cache kept exact by the write path. Every
//! change is an [`Event`] in a durable change log that [`Subscription`]s
//! read from. Content can be stored by hash ([`Db::put_content`]).
//!
//! It is not a server (that is `cairn-server`) and knows no protocol.
//!
//! ```
//! use cairn_core::{Db, StoreSpec, KeyType, ValueType, Filter};
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path())?;
//! db.create_store(StoreSpec::new("counters").value_type(ValueType::Int))?;
//! let mut sub = db.subscribe(Filter { store: Some("counters".into()), ..Default::default() }, None)?;
//! db.incr("counters", "visits", 1.into())?;
//! let events = sub.poll(100)?;
//! assert_eq!(events[0].key.as_deref(), Some("visits"));
//! # Ok::<(), cairn_core::Error>(())
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod apply;
mod backup;
mod cache;
mod changelog;
mod command;
mod config;
mod content;
mod counter;
mod db;
mod entry;
mod error;
mod event;
mod export;
mod fault;
mod incr;
mod key;
mod maintenance;
mod ops;
mod queue;
mod spec;
mod typed;
mod value;
mod varint;
mod watch;
mod writer;

pub use backup::{BACKUP_FORMAT_VERSION, BACKUP_MAGIC, BackupInfo, CheckReport, restore, verify_backup};
pub use command::{Check, Command, Cond, Op, OpError, OpOutcome, Ttl, WriteOutcome};
pub use config::{Config, Durability, Limits};
pub use content::{Algorithm, ContentHash, ContentInfo};
pub use counter::Counter;
pub use db::{Builder, Db, Stats};
pub use entry::Entry;
pub use error::{Error, Result};
pub use event::{Event, EventKind};
pub use export::{ExportInfo, ExportItem, ExportLine, ExportOptions, ImportInfo, OnConflict, key_from_json};
pub use incr::redis_int;
pub use key::{Key, KeyType, json_key};
pub use ops::{
    DeleteResult, IncrResult, ListOptions, ListPage, MAX_LIST_LIMIT, PutOptions, PutResult, delete_result, incr_result,
    put_result,
};
pub use spec::{DEFAULT_STORE, MAX_TTL_SECS, StoreSpec, validate_store_name};
pub use typed::{TypedKey, TypedStore};
pub use value::{MAX_VALUE_DEPTH, Value, ValueType, json_depth, number_from_f64};
pub use watch::{Filter, Subscription};
pub use writer::Applied;
