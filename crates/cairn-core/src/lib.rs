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
//!
//! # A tour
//!
//! Values are [`Value`]s: any JSON (`Value::Json`) or raw bytes. Keys are
//! passed in their raw form, for every key type: text for `string` stores,
//! the number's text for `int` stores (`"7"`), a UUID's text for `uuid`
//! stores, any bytes for `bytes` stores.
//!
//! ```
//! use cairn_core::{Check, Cond, Db, KeyType, ListOptions, Op, PutOptions, StoreSpec, Ttl, TypedStore, Value};
//! use serde_json::json;
//! use std::time::Duration;
//! # let dir = tempfile::tempdir().unwrap();
//! let db = Db::open(dir.path())?;
//!
//! // Put, get, conditional put (compare-and-set on the revision).
//! let r = db.put("default", "greeting", Value::Json(json!("hello")))?;
//! let rev = r.revision.expect("a successful put has a revision");
//! let e = db.get("default", "greeting")?.expect("just written");
//! assert_eq!((e.value, e.version), (Value::Json(json!("hello")), 1));
//! let cas = PutOptions { if_revision: Some(rev), ..PutOptions::default() };
//! assert!(db.put_with("default", "greeting", Value::Json(json!("hi")), cas.clone())?.success);
//! assert!(!db.put_with("default", "greeting", Value::Json(json!("hey")), cas)?.success);
//!
//! // A TTL; an expired key is invisible at once.
//! let ttl = PutOptions { ttl: Some(Duration::from_secs(60)), ..PutOptions::default() };
//! db.put_with("default", "session:1", Value::Json(json!({"user": 7})), ttl)?;
//! assert!(db.get("default", "session:1")?.unwrap().expires_at.is_some());
//!
//! // An int-keyed store lists in numeric order; pages come with a cursor.
//! db.create_store(StoreSpec::new("scores").key_type(KeyType::Int))?;
//! for k in ["10", "-3", "2"] {
//!     db.put("scores", k, Value::Json(json!(0)))?;
//! }
//! let page = db.list("scores", &ListOptions { limit: Some(2), ..ListOptions::default() })?;
//! let keys: Vec<String> = page.items.iter().map(|e| e.key.to_string()).collect();
//! assert_eq!(keys, ["-3", "2"]);
//! let rest = ListOptions { cursor: page.next_cursor, ..ListOptions::default() };
//! assert_eq!(db.list("scores", &rest)?.items.len(), 1);
//!
//! // An atomic batch: applied whole only if its checks hold.
//! let out = db.batch(
//!     vec![Check { store: "default".into(), key: b"lock".to_vec(), cond: Cond::Absent }],
//!     vec![
//!         Op::Put { store: "default".into(), key: b"lock".to_vec(), value: Value::Json(json!("me")), ttl: Ttl::Default },
//!         Op::Delete { store: "default".into(), key: b"greeting".to_vec() },
//!     ],
//! )?;
//! assert!(out.success);
//!
//! // Typed access with serde, and a retrying read-modify-write.
//! let counts: TypedStore<String, u64> = TypedStore::open(&db, "counts")?;
//! counts.update(&"visits".to_string(), |n| n.unwrap_or(0) + 1)?;
//! assert_eq!(counts.get(&"visits".to_string())?, Some(1));
//! # Ok::<(), cairn_core::Error>(())
//! ```
//!
//! The methods above block the calling thread until the write is committed
//! (in `sync` durability, on disk). From async code, build the command
//! (`Db::put_command`, ...) and await [`Db::execute_async`], or run the
//! blocking call in `spawn_blocking`.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod apply;
mod backup;
mod builder;
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
mod keystats;
mod maintenance;
mod multiget;
mod ops;
mod queue;
mod retire;
mod spec;
mod typed;
mod value;
mod varint;
mod watch;
mod writer;

pub use backup::{BACKUP_FORMAT_VERSION, BACKUP_MAGIC, BackupInfo, CheckReport, restore, verify_backup};
pub use builder::Builder;
pub use command::{Check, Command, Cond, Op, OpError, OpOutcome, Ttl, WriteOutcome};
pub use config::{Config, Durability, Limits};
pub use content::{Algorithm, ContentHash, ContentInfo};
pub use counter::Counter;
pub use db::{Db, Stats};
pub use entry::Entry;
pub use error::{Error, Result};
pub use event::{Event, EventKind};
pub use export::{ExportInfo, ExportItem, ExportLine, ExportOptions, ImportInfo, OnConflict, key_from_json};
pub use incr::redis_int;
pub use key::{Key, KeyType, json_key};
pub use keystats::KeyStats;
pub use multiget::ManyValue;
pub use ops::{
    DeleteResult, IncrResult, ListOptions, ListPage, MAX_LIST_LIMIT, PutOptions, PutResult, delete_result, incr_result,
    put_result,
};
pub use spec::{DEFAULT_STORE, MAX_TTL_SECS, StoreSpec, validate_store_name};
pub use typed::{TypedKey, TypedStore};
pub use value::{MAX_VALUE_DEPTH, Value, ValueType, json_depth, number_from_f64};
pub use watch::{Filter, Subscription};
pub use writer::Applied;
pub use writer::tx::Tx;
