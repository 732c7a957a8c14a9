//! The database handle: opening, the store catalog and the read path.

use crate::cache::Cache;
use crate::entry::Record;
use crate::queue::WriteQueue;
use crate::spec::{DEFAULT_STORE, StoreHandle};
use crate::watch::Hub;
use crate::writer::Job;
use crate::{Builder, Config, Entry, Error, Key, Result, StoreSpec};
use fjall::{Keyspace, KeyspaceCreateOptions};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

pub(crate) const META_REVISION: &[u8] = b"revision";
pub(crate) const META_OLDEST: &[u8] = b"oldest";
pub(crate) const META_NEXT_STORE: &[u8] = b"next_store_id";

/// The fjall keyspaces the engine uses.
pub(crate) struct Keyspaces {
    /// Counters: revision, oldest retained revision, next store id.
    pub meta: Keyspace,
    /// Store name → persisted [`crate::spec::StoreHandle`] (id + spec) as JSON.
    pub stores: Keyspace,
    /// store id (u32 BE) ++ encoded key → [`Record`].
    pub data: Keyspace,
    /// revision (u64 BE) ++ index (u32 BE) → encoded [`crate::Event`].
    pub changelog: Keyspace,
    /// store id ++ key len (u16 BE) ++ encoded key ++ revision (u64 BE) → [`Record`].
    pub history: Keyspace,
    /// expires_at (u64 BE) ++ store id ++ encoded key → empty.
    pub expiry: Keyspace,
    /// algorithm tag ++ digest → content bytes.
    pub content: Keyspace,
}

#[derive(Default)]
pub(crate) struct Catalog {
    /// Looked up on every read and write: foldhash, not SipHash. Store
    /// names come from clients, but creating stores needs an admin.
    pub by_name: HashMap<String, Arc<StoreHandle>, foldhash::fast::RandomState>,
    pub next_id: u32,
}

impl Catalog {
    pub fn by_id(&self, id: u32) -> Option<&Arc<StoreHandle>> {
        self.by_name.values().find(|h| h.id == id)
    }
}

/// The data keyspace's memtable size (fjall's default: 64 MiB). A memtable
/// keeps every version of a key until it is flushed, and a scan of a store
/// (count, list, SCAN, DBSIZE) walks them all: 1.5M overwrites of 50 keys
/// made DBSIZE take 115-138 ms at 64 MiB and 4-6 ms at 8 MiB, for the same
/// write rate (BENCHMARKS.md). Set when a data directory is created.
const DATA_MEMTABLE_BYTES: u64 = 8 << 20;

/// State shared by handles, the writer and background threads.
pub(crate) struct Shared {
    pub config: Config,
    pub path: PathBuf,
    pub fj: fjall::Database,
    pub ks: Keyspaces,
    pub catalog: RwLock<Catalog>,
    /// Last committed revision: everything up to it is visible.
    pub revision: AtomicU64,
    /// Oldest revision still in the change log.
    pub oldest: AtomicU64,
    /// Odd while the writer publishes a committed group (cache updates,
    /// then `read_view`), even otherwise: a multi-key read that sees it
    /// unchanged and even around its reads saw one revision (`multiget`).
    pub publishing: AtomicU64,
    /// A storage snapshot as of the last group the writer published: what
    /// the cache's misses are read from by `multiget`, since storage itself
    /// shows a commit before the cache does.
    pub read_view: Mutex<fjall::Snapshot>,
    pub cache: Cache,
    pub hub: Hub,
    /// Set once writes are refused; `fault` says why.
    pub poisoned: AtomicBool,
    pub fault: Mutex<Option<String>>,
    /// Device and inode of the lock file this process holds, to notice the
    /// data directory being removed or replaced under it.
    pub lock_id: Option<(u64, u64)>,
    pub stats: Stats,
    /// Per store, the key statistics as of the last commit (`keystats`).
    pub tallies: Mutex<crate::keystats::Tallies>,
    /// The earliest expiry staged since the TTL collector last looked
    /// (`u64::MAX`: none); see `maintenance::Collector`.
    pub expiry_pending: AtomicU64,
    /// The TTL collector's floor: every expiry index entry below it (and
    /// below `expiry_pending`) is collected.
    pub expiry_floor: AtomicU64,
    /// Store ids whose records the maintenance thread is deleting (`retire`).
    pub retired: Mutex<Vec<u32>>,
    pub queue: WriteQueue,
    /// The data directory's lock, held as long as anything (a `Db`, a
    /// `Subscription`) keeps the storage open, and let go after it (fields
    /// drop in order: `fj` first).
    _lock: File,
}

impl Shared {
    /// A store's handle by name.
    pub fn store(&self, name: &str) -> Result<Arc<StoreHandle>> {
        self.catalog
            .read()
            .by_name
            .get(name)
            .cloned()
            .ok_or_else(|| Error::UnknownStore { store: name.to_owned() })
    }
}

/// Engine counters, for metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Commands committed.
    pub commands: AtomicU64,
    /// Storage commits (each shares one fsync in `sync` mode).
    pub commits: AtomicU64,
    /// Gets answered from the read cache.
    pub cache_hits: crate::Counter,
    /// Gets that went to storage.
    pub cache_misses: crate::Counter,
    /// Multi-key reads (`Db::get_many`) that a busy writer sent to a
    /// storage snapshot instead of the cache.
    pub multiget_snapshots: crate::Counter,
    /// Keys removed by the TTL collector.
    pub expired: AtomicU64,
}

/// Owns the threads; dropping the last [`Db`] clone shuts them down.
struct Runtime {
    stop: Mutex<Option<crossbeam_channel::Sender<()>>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    shared: Arc<Shared>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Err(e) = self.shut_down() {
            tracing::error!(error = %e, "final fsync failed");
        }
    }
}

impl Runtime {
    /// Stops the threads once queued writes are applied, saves the key
    /// counts, fsyncs, and writes the memtables out. The first call does
    /// the work; later ones answer `Ok`.
    fn shut_down(&self) -> Result<()> {
        if self.stop.lock().take().is_none() {
            return Ok(());
        }
        self.shared.queue.close();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
        crate::keystats::save_on_close(&self.shared);
        self.shared.fj.persist(fjall::PersistMode::SyncAll)?;
        self.flush_memtables();
        Ok(())
    }

    fn flush_memtables(&self) {
        // Write the memtables out as tables so the journals can go: the next
        // open has nothing to replay (restart time) and the disk holds no
        // journal copies of the data. Everything is already durable above,
        // so this is best effort with a deadline: if the flush does not
        // finish in time, the next open simply replays the journal.
        let ks = &self.shared.ks;
        let all = [
            &ks.data,
            &ks.changelog,
            &ks.history,
            &ks.expiry,
            &ks.content,
            &ks.meta,
            &ks.stores,
        ];
        for k in all {
            if let Err(e) = k.rotate_memtable() {
                tracing::warn!(error = %e, "flushing memtables on close failed");
                return;
            }
        }
        // Wait while the flush makes progress: up to 10 s in all, but give up
        // after 250 ms without a memtable written out (fjall's workers may
        // not get to it, e.g. while a reader still pins the tree).
        let sealed = || all.iter().map(|k| k.sealed_memtable_count()).sum::<usize>();
        let start = std::time::Instant::now();
        let (mut last, mut since) = (sealed(), start);
        while last > 0 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(5));
            let now = sealed();
            if now < last {
                (last, since) = (now, std::time::Instant::now());
            } else if since.elapsed() > std::time::Duration::from_millis(250) {
                tracing::debug!(
                    sealed = now,
                    "memtables not flushed on close; the next open replays them"
                );
                break;
            }
        }
    }
}

/// A cairn database: one data directory, many named stores.
///
/// Cheap to clone; all clones share one engine. Dropping the last clone
/// stops the background threads and syncs to disk.
#[derive(Clone)]
pub struct Db {
    pub(crate) shared: Arc<Shared>,
    rt: Arc<Runtime>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("path", &self.shared.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn u64_at(ks: &Keyspace, key: &[u8]) -> Result<Option<u64>> {
    Ok(match ks.get(key)? {
        Some(v) => Some(u64::from_le_bytes(
            v.as_ref()
                .try_into()
                .map_err(|_| Error::CorruptRecord("meta counter".into()))?,
        )),
        None => None,
    })
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Db {
    /// Opens (or creates) a database in `path` with default options.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = cairn_core::Db::open(dir.path())?;
    /// db.put("default", "greeting", serde_json::json!("hello").into())?;
    /// assert_eq!(db.get("default", "greeting")?.unwrap().value, serde_json::json!("hello").into());
    /// # Ok::<(), cairn_core::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has it open; storage errors.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Db::open_with(path.as_ref(), Config::default())
    }

    /// A builder for opening with options.
    pub fn builder(path: impl AsRef<Path>) -> Builder {
        Builder {
            path: path.as_ref().to_owned(),
            config: Config::default(),
        }
    }

    pub(crate) fn open_with(path: &Path, config: Config) -> Result<Db> {
        let config = config.validate().map_err(Error::InvalidArgument)?;
        let lock = crate::builder::lock_dir(path)?;
        let fj = fjall::Database::builder(path.join("fjall"))
            .manual_journal_persist(true)
            .cache_size(config.block_cache_bytes)
            .max_journaling_size(config.journal_bytes)
            .open()
            .map_err(|e| match e {
                fjall::Error::Locked => Error::Locked { path: path.to_owned() },
                e => e.into(),
            })?;
        let opts = KeyspaceCreateOptions::default;
        // Written once, read rarely (watch replay, history): compressed at
        // every level, where fjall's default leaves L0 and L1 uncompressed.
        let cold = || {
            KeyspaceCreateOptions::default()
                .data_block_compression_policy(fjall::config::CompressionPolicy::all(fjall::CompressionType::Lz4))
        };
        let ks = Keyspaces {
            meta: fj.keyspace("meta", opts)?,
            stores: fj.keyspace("stores", opts)?,
            data: fj.keyspace("data", || {
                KeyspaceCreateOptions::default().max_memtable_size(DATA_MEMTABLE_BYTES)
            })?,
            changelog: fj.keyspace("changelog", cold)?,
            history: fj.keyspace("history", cold)?,
            expiry: fj.keyspace("expiry", opts)?,
            content: fj.keyspace("content", opts)?,
        };
        let revision = u64_at(&ks.meta, META_REVISION)?.unwrap_or(0);
        let oldest = u64_at(&ks.meta, META_OLDEST)?.unwrap_or(1);
        let mut catalog = Catalog {
            next_id: u64_at(&ks.meta, META_NEXT_STORE)?.unwrap_or(1) as u32,
            ..Catalog::default()
        };
        for kv in ks.stores.iter() {
            let (_, v) = kv.into_inner()?;
            let p: crate::writer::PersistedStore =
                serde_json::from_slice(&v).map_err(|e| Error::CorruptRecord(format!("store spec: {e}")))?;
            let validator = p.spec.compile()?;
            catalog.by_name.insert(
                p.spec.name.clone(),
                Arc::new(StoreHandle {
                    id: p.id,
                    spec: p.spec,
                    validator,
                }),
            );
        }
        let retired = crate::retire::at_open(&ks)?;
        let tallies = crate::keystats::load(&fj, &ks, &retired)?;
        let read_view = Mutex::new(fj.snapshot());
        let shared = Arc::new(Shared {
            cache: Cache::new(config.cache_entries, config.cache_bytes),
            hub: Hub::new(config.event_buffer, config.event_buffer_bytes, revision),
            config,
            path: path.to_owned(),
            fj,
            ks,
            catalog: RwLock::new(catalog),
            revision: AtomicU64::new(revision),
            oldest: AtomicU64::new(oldest),
            publishing: AtomicU64::new(0),
            read_view,
            poisoned: AtomicBool::new(false),
            fault: Mutex::new(None),
            lock_id: crate::fault::file_id(&lock),
            stats: Stats::default(),
            tallies: Mutex::new(tallies),
            expiry_pending: AtomicU64::new(u64::MAX),
            expiry_floor: AtomicU64::new(0),
            retired: Mutex::new(retired),
            queue: WriteQueue::new(revision),
            _lock: lock,
        });
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let writer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cairn-writer".into())
                .spawn(move || crate::queue::run(&shared, &shared.queue))?
        };
        let maint = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("cairn-maintenance".into())
                .spawn(move || crate::maintenance::run(&shared, &stop_rx))?
        };
        let rt = Arc::new(Runtime {
            stop: Mutex::new(Some(stop_tx)),
            // The maintenance thread holds a sender: join it before the writer.
            threads: Mutex::new(vec![maint, writer]),
            shared: shared.clone(),
        });
        let db = Db { shared, rt };
        if !db.shared.catalog.read().by_name.contains_key(DEFAULT_STORE) {
            db.create_store(StoreSpec::new(DEFAULT_STORE))?;
        }
        Ok(db)
    }

    /// The data directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The engine's configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Why the database refuses writes, or `None` while it takes them.
    ///
    /// Once a commit fails or the data directory is removed or replaced
    /// under the open database, every write is answered with
    /// [`Error::Unavailable`] until the database is reopened; reads go on.
    /// Front ends report this in their health checks.
    #[must_use]
    pub fn fault(&self) -> Option<String> {
        self.shared.fault.lock().clone()
    }

    /// The last committed revision.
    #[must_use]
    pub fn revision(&self) -> u64 {
        self.shared.revision.load(Ordering::Acquire)
    }

    /// The oldest revision still available in the change log.
    #[must_use]
    pub fn oldest_revision(&self) -> u64 {
        self.shared.oldest.load(Ordering::Acquire)
    }

    /// Engine counters.
    #[must_use]
    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    /// Bytes on disk.
    ///
    /// # Errors
    /// Storage errors.
    pub fn disk_space(&self) -> Result<u64> {
        Ok(self.shared.fj.disk_space()?)
    }

    pub(crate) fn store(&self, name: &str) -> Result<Arc<StoreHandle>> {
        self.shared.store(name)
    }

    /// The storage key of `raw` in store `name`, resolved under the catalog's
    /// read lock without cloning the store's handle: the read paths' lookup,
    /// which must not bounce a shared reference count between cores.
    fn resolve(&self, name: &str, raw: &[u8]) -> Result<(Key, Vec<u8>)> {
        let catalog = self.shared.catalog.read();
        let h = catalog
            .by_name
            .get(name)
            .ok_or_else(|| Error::UnknownStore { store: name.to_owned() })?;
        self.storage_key(h, raw)
    }

    /// The spec of a store.
    ///
    /// # Errors
    /// [`Error::UnknownStore`].
    pub fn store_spec(&self, name: &str) -> Result<StoreSpec> {
        Ok(self.store(name)?.spec.clone())
    }

    /// All stores, by name.
    #[must_use]
    pub fn stores(&self) -> Vec<StoreSpec> {
        let mut v: Vec<StoreSpec> = self
            .shared
            .catalog
            .read()
            .by_name
            .values()
            .map(|h| h.spec.clone())
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Parses and checks a raw key for a store, returning it and its storage key.
    pub(crate) fn storage_key(&self, h: &StoreHandle, raw: &[u8]) -> Result<(Key, Vec<u8>)> {
        storage_key(&self.shared.config, h, raw)
    }

    /// Reads a record through the cache (expired records included).
    pub(crate) fn read_record(&self, skey: &[u8]) -> Result<Option<Arc<Record>>> {
        read_record(&self.shared, skey)
    }

    /// Gets a key's entry; `None` when absent or expired.
    ///
    /// # Errors
    /// [`Error::UnknownStore`], [`Error::InvalidKey`], storage errors.
    pub fn get(&self, store: &str, key: impl AsRef<[u8]>) -> Result<Option<Entry>> {
        let (key, rec) = self.live_record(store, key.as_ref())?;
        Ok(rec.map(|r| match Arc::try_unwrap(r) {
            // Read from storage and not cached: no copy needed.
            Ok(r) => r.into_entry(key),
            Err(shared) => shared.to_entry(key),
        }))
    }

    /// Gets a key's value without its metadata, shared with the read cache
    /// (no copy): the fast path for front ends that answer with the value
    /// alone. `None` when absent or expired.
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn get_value(&self, store: &str, key: impl AsRef<[u8]>) -> Result<Option<Arc<crate::Value>>> {
        Ok(self.live_record(store, key.as_ref())?.1.map(|r| Arc::clone(&r.value)))
    }

    /// Runs `f` on a key's value in place (no copy, no extra reference);
    /// `None` when absent or expired. For answers that only serialize it.
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn with_value<R>(
        &self,
        store: &str,
        key: impl AsRef<[u8]>,
        f: impl FnOnce(&crate::Value) -> R,
    ) -> Result<Option<R>> {
        Ok(self.live_record(store, key.as_ref())?.1.map(|r| f(&r.value)))
    }

    /// The parsed key and its record, unless absent or expired: every point read.
    fn live_record(&self, store: &str, key: &[u8]) -> Result<(Key, Option<Arc<Record>>)> {
        let (key, skey) = self.resolve(store, key)?;
        Ok((key, self.read_record(&skey)?.filter(|r| !r.is_expired(now_ms()))))
    }

    /// Gets a key's value, or `default` when absent.
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn get_or(&self, store: &str, key: impl AsRef<[u8]>, default: crate::Value) -> Result<crate::Value> {
        Ok(self.get(store, key)?.map_or(default, |e| e.value))
    }

    /// True when the key exists (and has not expired).
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn contains(&self, store: &str, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.live_record(store, key.as_ref())?.1.is_some())
    }

    /// Submits a command to the writer and waits for its result.
    ///
    /// This blocks the calling thread until the command is committed (in
    /// `sync` mode, until it is on disk). From async code it works, but
    /// holds up that runtime thread meanwhile, as blocking file I/O would:
    /// prefer [`Db::execute_async`], or call it in `spawn_blocking`. The
    /// same holds for every writing method built on it (`put`, `delete`,
    /// `incr`, `batch`, `create_store`, ...).
    ///
    /// # Errors
    /// Validation errors for the command; storage errors.
    pub fn execute(&self, cmd: crate::Command) -> Result<crate::Applied> {
        let (job, rx) = Job::blocking(cmd);
        self.shared.queue.submit_sync(&self.shared, job)?;
        rx.recv().map_err(|_| Error::Closed)?
    }

    /// Submits a command to the writer; the future resolves once it is committed.
    ///
    /// # Errors
    /// As [`Db::execute`].
    pub async fn execute_async(&self, cmd: crate::Command) -> Result<crate::Applied> {
        let (job, rx) = Job::new(cmd);
        self.shared.queue.submit_async(job)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Forces everything written so far to disk.
    ///
    /// # Errors
    /// Storage errors.
    pub fn sync(&self) -> Result<()> {
        self.shared.fj.persist(fjall::PersistMode::SyncAll).map_err(|e| {
            self.shared
                .refuse_writes(format!("an fsync failed ({e}); restart once the cause is fixed"));
            Error::from(e)
        })
    }

    /// Shuts the database down now rather than when the last clone is
    /// dropped, and says whether the final fsync worked: waits for queued
    /// writes, stops the background threads, saves the key counts, fsyncs
    /// and writes the memtables out (so the next open replays nothing).
    /// Other clones can still read; their writes get [`Error::Closed`].
    /// The directory's lock is let go once every clone and subscription
    /// is dropped.
    ///
    /// # Errors
    /// The final fsync failed: writes acknowledged in `relaxed` mode since
    /// the last periodic fsync may not be on disk.
    pub fn close(self) -> Result<()> {
        self.rt.shut_down()
    }

    #[doc(hidden)]
    pub fn _runtime_alive(&self) -> bool {
        self.rt.stop.lock().is_some()
    }
}

pub(crate) fn storage_key(config: &Config, h: &StoreHandle, raw: &[u8]) -> Result<(Key, Vec<u8>)> {
    if raw.len() > config.limits.max_key_bytes {
        return Err(Error::KeyTooLarge {
            store: h.spec.name.clone(),
            len: raw.len(),
            max: config.limits.max_key_bytes,
        });
    }
    let key = Key::parse(h.spec.key_type, raw).map_err(|reason| Error::InvalidKey {
        store: h.spec.name.clone(),
        reason,
    })?;
    let enc = key.encode();
    let mut skey = Vec::with_capacity(4 + enc.len());
    skey.extend_from_slice(&h.id.to_be_bytes());
    skey.extend_from_slice(&enc);
    Ok((key, skey))
}

pub(crate) fn read_record(shared: &Shared, skey: &[u8]) -> Result<Option<Arc<Record>>> {
    if let Some(slot) = shared.cache.get(skey) {
        shared.stats.cache_hits.add(1);
        return Ok(slot);
    }
    shared.stats.cache_misses.add(1);
    let generation = shared.cache.generation(skey);
    let slot = stored_record(shared, skey)?;
    shared.cache.fill(skey, generation, slot.clone());
    Ok(slot)
}

/// The writer's read of a key it is about to change: as [`read_record`]
/// but a miss does not fill the cache, since the commit stores the key's
/// new state there anyway (filling first cost a second hash, lock and
/// insert per write).
pub(crate) fn read_record_for_write(shared: &Shared, skey: &[u8]) -> Result<Option<Arc<Record>>> {
    if let Some(slot) = shared.cache.get(skey) {
        shared.stats.cache_hits.add(1);
        return Ok(slot);
    }
    shared.stats.cache_misses.add(1);
    stored_record(shared, skey)
}

fn stored_record(shared: &Shared, skey: &[u8]) -> Result<Option<Arc<Record>>> {
    Ok(match shared.ks.data.get(skey)? {
        Some(v) => Some(Arc::new(Record::decode(&v)?)),
        None => None,
    })
}
