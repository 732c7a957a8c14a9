//! The one write path: a single writer thread drains pending commands,
//! applies them in order, commits them as ONE fjall batch with one fsync
//! (group commit), then updates the cache, publishes events and answers.
//!
//! Invariants:
//! - Revisions are assigned only here, in order, +1 per command that changes
//!   something, and persisted in the same batch as the data they describe.
//! - A fjall batch gives all its items one seqno, so the same storage key must
//!   appear at most once per batch: every change goes through the group's maps
//!   (`data`, `expiry`, `history`, `content`) and the batch is built from them.
//! - Nothing is visible (cache, events, revision, replies) before the commit.

mod savepoint;
mod stores;
pub(crate) mod tx;

use crate::apply::Change;
use crate::db::{META_NEXT_STORE, META_REVISION, Shared, now_ms, read_record_for_write, storage_key};
use crate::entry::Record;
use crate::spec::StoreHandle;
use crate::{Command, ContentHash, ContentInfo, Durability, Error, Event, EventKind, Result, StoreSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::oneshot;

/// Most commands committed in one group.
pub(crate) const MAX_GROUP: usize = 1024;

pub(crate) struct Job {
    work: Work,
    reply: Replier,
}

/// What a job asks the writer to do.
enum Work {
    Command(Command),
    /// Code run as the writer, staging into the group being built
    /// ([`crate::Db::transaction_async`]).
    Transaction(Box<dyn FnOnce(&mut tx::Tx<'_, '_>) + Send>),
}

/// Where a job's result goes: an async caller's future, or a thread
/// waiting in a blocking call. The latter is a plain channel rather than
/// tokio's `blocking_recv`, which panics when the blocking API is called
/// from inside an async runtime (it then blocks that thread, as any
/// blocking I/O would).
enum Replier {
    Async(oneshot::Sender<Result<Applied>>),
    Blocking(crossbeam_channel::Sender<Result<Applied>>),
    /// A transaction's caller, handed its result after the commit.
    Finish(Box<dyn FnOnce(Result<Applied>) + Send>),
}

impl Replier {
    /// A caller that went away no longer wants the answer: not an error.
    fn send(self, r: Result<Applied>) {
        match self {
            Replier::Async(tx) => drop(tx.send(r)),
            Replier::Blocking(tx) => drop(tx.send(r)),
            Replier::Finish(f) => f(r),
        }
    }
}

impl Job {
    /// A job whose result an async caller awaits.
    pub fn new(cmd: Command) -> (Job, oneshot::Receiver<Result<Applied>>) {
        let (tx, rx) = oneshot::channel();
        let reply = Replier::Async(tx);
        (
            Job {
                work: Work::Command(cmd),
                reply,
            },
            rx,
        )
    }

    /// A transaction job: `work` runs as the writer, `finish` gets the
    /// result once the group it staged into has committed.
    pub fn transaction(
        work: Box<dyn FnOnce(&mut tx::Tx<'_, '_>) + Send>,
        finish: Box<dyn FnOnce(Result<Applied>) + Send>,
    ) -> Job {
        Job {
            work: Work::Transaction(work),
            reply: Replier::Finish(finish),
        }
    }

    /// A job whose result a blocked thread receives.
    pub fn blocking(cmd: Command) -> (Job, crossbeam_channel::Receiver<Result<Applied>>) {
        let (tx, rx) = crossbeam_channel::bounded(1);
        let reply = Replier::Blocking(tx);
        (
            Job {
                work: Work::Command(cmd),
                reply,
            },
            rx,
        )
    }
}

/// A store as persisted in the `stores` keyspace.
#[derive(Serialize, Deserialize)]
pub(crate) struct PersistedStore {
    pub id: u32,
    pub spec: StoreSpec,
}

/// What a committed command did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "applied", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Applied {
    /// A [`Command::Write`].
    Write(crate::WriteOutcome),
    /// A [`Command::CreateStore`]; `created` is false when it already existed.
    Store {
        /// True when the store is new.
        created: bool,
        /// Revision after the command.
        revision: u64,
    },
    /// A [`Command::DropStore`].
    Dropped {
        /// True when the store existed.
        existed: bool,
        /// Revision after the command.
        revision: u64,
    },
    /// A [`Command::Clear`].
    Cleared {
        /// Number of keys removed.
        removed: u64,
        /// Revision after the command.
        revision: u64,
    },
    /// A [`Command::PutContent`].
    Content {
        /// Hash, size and dedup flag.
        info: ContentInfo,
        /// Revision after the command.
        revision: u64,
    },
    /// A [`Command::DeleteContent`].
    ContentDeleted {
        /// True when the content existed.
        existed: bool,
        /// Revision after the command.
        revision: u64,
    },
    /// A [`Command::Expire`].
    Expired {
        /// True when the key was expired and removed.
        expired: bool,
        /// Revision after the command.
        revision: u64,
    },
}

enum CatalogOp {
    Add(Arc<StoreHandle>),
    Remove(String),
}

/// The group's maps are private to the writer and bounded by
/// [`MAX_GROUP`] commands, so they hash with foldhash rather than SipHash
/// (which was ~10% of the writer's instructions).
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Changes staged by the commands of one group, keyed so that each storage
/// key is written once.
#[derive(Default)]
pub(crate) struct Group {
    pub data: FastMap<Vec<u8>, Option<Arc<Record>>>,
    pub expiry: FastMap<Vec<u8>, bool>,
    /// The earliest expiry this group adds to the index.
    pub min_expiry: Option<u64>,
    pub history: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    content: FastMap<Vec<u8>, Option<Vec<u8>>>,
    stores: Vec<(String, Option<Vec<u8>>)>,
    pub events: Vec<Event>,
    /// The encoded size of each of `events`.
    event_sizes: Vec<usize>,
    /// The change-log chunks of `events`, made while staging.
    log: crate::changelog::Chunks,
    catalog: Vec<CatalogOp>,
    next_store_id: Option<u32>,
    clear_cache: bool,
    changed: bool,
    /// Per store id: how this group changes its key statistics.
    key_stats: crate::keystats::Deltas,
    /// Store ids this group retires (stores dropped or cleared): their
    /// statistics go, their records are deleted in the background.
    retired: Vec<u32>,
    replies: Vec<(Replier, Result<Applied>)>,
    /// Open while a transaction job stages into the group.
    undo: Option<Box<savepoint::Savepoint>>,
}

impl Group {
    /// A group sized for `commands` commands of about one key each.
    fn with_capacity(commands: usize) -> Group {
        Group {
            data: FastMap::with_capacity_and_hasher(commands, Default::default()),
            events: Vec::with_capacity(commands),
            event_sizes: Vec::with_capacity(commands),
            replies: Vec::with_capacity(commands),
            ..Group::default()
        }
    }

    fn push_event(&mut self, e: Event, old: Option<&[u8]>, new: Option<&[u8]>) {
        let enc = e.encode_with(old, new);
        self.event_sizes.push(enc.len());
        self.log.push(e.revision, &enc);
        self.events.push(e);
    }
}

pub(crate) struct Writer<'a> {
    pub shared: &'a Shared,
    /// The revision the next changing command gets.
    pub next_rev: u64,
}

fn is_barrier(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::CreateStore { .. } | Command::DropStore { .. } | Command::Clear { .. }
    )
}

impl Writer<'_> {
    pub fn process(&mut self, jobs: Vec<Job>) {
        let mut group = Group::with_capacity(jobs.len());
        if self.shared.config.durability == crate::Durability::Sync {
            // A stat per group, next to an fsync per group: no write is
            // acknowledged as durable into a directory that is already gone.
            // (`relaxed` leaves this to the maintenance thread's tick.)
            self.shared.check_data_dir();
        }
        for job in jobs {
            if self.shared.poisoned.load(Ordering::Acquire) {
                job.reply.send(Err(self.shared.unavailable()));
                continue;
            }
            match job.work {
                Work::Command(cmd) if is_barrier(&cmd) => {
                    // Store-level commands run alone so the catalog and the cache
                    // are settled before and after them.
                    self.commit(std::mem::take(&mut group));
                    let mut alone = Group::default();
                    let r = self.apply(&mut alone, cmd);
                    alone.replies.push((job.reply, r));
                    self.commit(alone);
                }
                Work::Command(cmd) => {
                    let r = self.apply(&mut group, cmd);
                    group.replies.push((job.reply, r));
                }
                Work::Transaction(work) => {
                    let r = tx::run_in_group(self, &mut group, work);
                    group.replies.push((job.reply, r));
                }
            }
        }
        self.commit(group);
    }

    /// The latest state of a storage key: staged in this group, else stored.
    pub fn current(&self, g: &Group, skey: &[u8]) -> Result<Option<Arc<Record>>> {
        match g.data.get(skey) {
            Some(slot) => Ok(slot.clone()),
            None => read_record_for_write(self.shared, skey),
        }
    }

    pub fn revision(&self) -> u64 {
        self.next_rev - 1
    }

    fn apply(&mut self, g: &mut Group, cmd: Command) -> Result<Applied> {
        match cmd {
            Command::Write { checks, ops } => self.apply_write(g, checks, ops).map(Applied::Write),
            Command::CreateStore { spec } => self.create_store(g, spec),
            Command::DropStore { store } => self.drop_store(g, &store),
            Command::Clear { store } => {
                let h = self.store(&store)?;
                let removed = self.clear(g, &h)?;
                Ok(Applied::Cleared {
                    removed,
                    revision: self.revision(),
                })
            }
            Command::Expire { store, key } => self.expire(g, &store, &key),
            Command::PutContent { algorithm, data } => self.put_content(g, algorithm, data),
            Command::DeleteContent { hash } => {
                let h = ContentHash::parse(&hash)?;
                let k = h.storage_key();
                let exists = match g.content.get(&k) {
                    Some(v) => v.is_some(),
                    None => self.shared.ks.content.contains_key(&k)?,
                };
                if exists {
                    g.content.insert(k, None);
                    self.bump(g);
                }
                Ok(Applied::ContentDeleted {
                    existed: exists,
                    revision: self.revision(),
                })
            }
        }
    }

    pub fn store(&self, name: &str) -> Result<Arc<StoreHandle>> {
        self.shared.store(name)
    }

    /// Consumes a revision for the command being applied.
    pub fn bump(&mut self, g: &mut Group) -> u64 {
        let r = self.next_rev;
        self.next_rev += 1;
        g.changed = true;
        r
    }

    fn expire(&mut self, g: &mut Group, store: &str, raw: &[u8]) -> Result<Applied> {
        let Ok(h) = self.store(store) else {
            return Ok(Applied::Expired {
                expired: false,
                revision: self.revision(),
            });
        };
        let (key, skey) = storage_key(&self.shared.config, &h, raw)?;
        let now = now_ms();
        match self.current(g, &skey)? {
            Some(old) if old.is_expired(now) => {
                let revision = self.bump(g);
                let change = Change {
                    handle: h,
                    key,
                    skey,
                    old_raw: Some(old),
                    new: None,
                    op: "expired",
                };
                self.stage(g, vec![change], revision, now);
                self.shared.stats.expired.fetch_add(1, Ordering::Relaxed);
                Ok(Applied::Expired {
                    expired: true,
                    revision,
                })
            }
            _ => Ok(Applied::Expired {
                expired: false,
                revision: self.revision(),
            }),
        }
    }

    fn put_content(&mut self, g: &mut Group, algorithm: crate::Algorithm, data: Vec<u8>) -> Result<Applied> {
        let max = self.shared.config.limits.max_value_bytes;
        if data.len() > max {
            return Err(Error::ValueTooLarge {
                what: "content".into(),
                len: data.len(),
                max,
            });
        }
        let hash = ContentHash::of(algorithm, &data);
        let k = hash.storage_key();
        let exists = match g.content.get(&k) {
            Some(v) => v.is_some(),
            None => self.shared.ks.content.contains_key(&k)?,
        };
        let size = data.len() as u64;
        if !exists {
            g.content.insert(k, Some(data));
            self.bump(g);
        }
        Ok(Applied::Content {
            info: ContentInfo {
                hash: hash.to_hex(),
                algorithm,
                size,
                stored: !exists,
            },
            revision: self.revision(),
        })
    }

    /// Stages the changes of one command (all at `revision`) into the group.
    pub fn stage(&mut self, g: &mut Group, changes: Vec<Change>, revision: u64, now: u64) {
        for c in changes {
            let old_live = c.old_raw.as_ref().filter(|r| !r.is_expired(now));
            let old_expired = c.old_raw.as_ref().filter(|r| r.is_expired(now));
            // Usually one event per change; the names are built per event
            // rather than built once and cloned.
            let mut emit = |kind, old: Option<&Record>, new: Option<&Record>, op| {
                let e = Event {
                    revision,
                    store: c.handle.spec.name.clone(),
                    key: Some(c.key.to_string()),
                    kind,
                    old_value: old.map(|r| r.value.clone()),
                    new_value: new.map(|r| r.value.clone()),
                    timestamp: now,
                    raw_key: c.key.to_raw(),
                    op,
                };
                g.push_event(e, old.map(|r| r.enc.as_slice()), new.map(|r| r.enc.as_slice()));
            };
            // A key whose TTL passed but was not yet collected expires first.
            if let Some(o) = old_expired {
                emit(EventKind::Expired, Some(o), None, "expired");
            }
            match (&c.new, old_live) {
                (Some(n), None) => emit(EventKind::Created, None, Some(n), c.op),
                (Some(n), Some(o)) => emit(EventKind::Updated, Some(o), Some(n), c.op),
                (None, Some(o)) => {
                    let kind = if c.op == "expired" {
                        EventKind::Expired
                    } else {
                        EventKind::Deleted
                    };
                    emit(kind, Some(o), None, c.op);
                }
                (None, None) => {}
            }
            // Expiry index.
            let old_t = c.old_raw.as_ref().and_then(|r| r.expires_at);
            let new_t = c.new.as_ref().and_then(|r| r.expires_at);
            if old_t != new_t {
                if let Some(t) = old_t {
                    g.set_expiry(expiry_key(t, &c.skey), false);
                }
                if let Some(t) = new_t {
                    g.set_expiry(expiry_key(t, &c.skey), true);
                    self.shared.expiry_pending.fetch_min(t, Ordering::AcqRel);
                    g.min_expiry = Some(g.min_expiry.map_or(t, |m| m.min(t)));
                }
            }
            g.key_stats.of(c.handle.id).change(
                c.old_raw.as_ref().map(|r| r.expires_at),
                c.new.as_ref().map(|r| r.expires_at),
            );
            // History.
            if c.handle.spec.history > 1
                && let Some(n) = &c.new
            {
                self.stage_history(g, &c.handle, &c.skey, revision, n);
            }
            g.set_data(c.skey, c.new.map(Arc::new));
        }
    }

    fn stage_history(&self, g: &mut Group, h: &StoreHandle, skey: &[u8], revision: u64, rec: &Record) {
        let prefix = history_prefix(skey);
        let mut hkey = prefix.clone();
        hkey.extend_from_slice(&revision.to_be_bytes());
        g.set_history(hkey, Some(rec.encode()));
        // Versions now: stored ones, plus staged ones, minus staged removals.
        let mut versions: Vec<Vec<u8>> = self
            .shared
            .ks
            .history
            .prefix(&prefix)
            .filter_map(|kv| kv.key().ok().map(|k| k.to_vec()))
            .filter(|k| !matches!(g.history.get(k), Some(None)))
            .collect();
        for (k, v) in g.history.range(prefix.clone()..) {
            if !k.starts_with(&prefix) {
                break;
            }
            if v.is_some() && !versions.contains(k) {
                versions.push(k.clone());
            }
        }
        versions.sort();
        let keep = h.spec.history as usize;
        if versions.len() > keep {
            for k in &versions[..versions.len() - keep] {
                g.set_history(k.clone(), None);
            }
        }
    }

    fn commit(&mut self, mut g: Group) {
        if g.changed {
            // Held from the commit until the tallies describe it (readers
            // take their snapshot under it).
            let mut tallies = self.shared.tallies.lock();
            let plan = tallies.plan(&g.key_stats, &g.retired);
            // From the batch becoming visible in storage until the read view
            // moves on, what readers see changes key by key (`multiget`).
            // It starts before the commit, fsync included: a plain get that
            // misses fills the cache from storage as soon as the batch is
            // visible there, before the writer publishes it.
            let publishing = Publishing::start(&self.shared.publishing);
            if let Err(e) = self.write_batch(&g, |b, ks, revision| tallies.stage(&plan, &g.retired, b, ks, revision)) {
                self.shared
                    .refuse_writes(format!("a commit failed ({e}); restart once the cause is fixed"));
                // Part of the batch may have reached the journal before the
                // error (a full disk fails mid-write), so say so instead of
                // promising it was not stored.
                let reason = format!("this write's commit failed ({e}); it may or may not be found after a restart");
                for (tx, _) in g.replies.drain(..) {
                    tx.send(Err(Error::Unavailable { reason: reason.clone() }));
                }
                return;
            }
            // Lowered again now the entries are visible: a collector round
            // between staging and this point took the first lowering, found
            // nothing yet to scan, and moved its floor past them.
            if let Some(t) = g.min_expiry {
                self.shared.expiry_pending.fetch_min(t, Ordering::AcqRel);
            }
            tallies.apply(plan, &g.retired);
            drop(tallies);
            self.shared.retired.lock().extend(&g.retired);
            self.shared.stats.commits.fetch_add(1, Ordering::Relaxed);
            let mut catalog = self.shared.catalog.write();
            for op in g.catalog.drain(..) {
                match op {
                    CatalogOp::Add(h) => {
                        catalog.next_id = catalog.next_id.max(h.id + 1);
                        catalog.by_name.insert(h.spec.name.clone(), h);
                    }
                    CatalogOp::Remove(name) => {
                        catalog.by_name.remove(&name);
                    }
                }
            }
            drop(catalog);
            if g.clear_cache {
                self.shared.cache.clear();
            }
            for (k, slot) in g.data.drain() {
                self.shared.cache.store(k, slot);
            }
            let old_view = std::mem::replace(&mut *self.shared.read_view.lock(), self.shared.fj.snapshot());
            drop(publishing);
            drop(old_view);
            let revision = self.revision();
            self.shared.hub.publish(std::mem::take(&mut g.events), &g.event_sizes);
            self.shared.revision.store(revision, Ordering::Release);
            self.shared.hub.notify(revision);
        }
        let n = g.replies.len() as u64;
        self.shared.stats.commands.fetch_add(n, Ordering::Relaxed);
        for (tx, r) in g.replies {
            tx.send(r);
        }
    }

    fn write_batch(
        &self,
        g: &Group,
        stats: impl FnOnce(&mut fjall::OwnedWriteBatch, &crate::db::Keyspaces, u64),
    ) -> Result<()> {
        let ks = &self.shared.ks;
        let mode = match self.shared.config.durability {
            Durability::Sync => fjall::PersistMode::SyncData,
            Durability::Relaxed => fjall::PersistMode::Buffer,
        };
        let mut b = self.shared.fj.batch().durability(Some(mode));
        for (k, v) in &g.data {
            match v {
                Some(r) => b.insert(&ks.data, k.as_slice(), r.encode()),
                None => b.remove(&ks.data, k.as_slice()),
            }
        }
        for (k, present) in &g.expiry {
            if *present {
                b.insert(&ks.expiry, k.as_slice(), b"".as_slice());
            } else {
                b.remove(&ks.expiry, k.as_slice());
            }
        }
        for (k, v) in &g.history {
            match v {
                Some(v) => b.insert(&ks.history, k.as_slice(), v.as_slice()),
                None => b.remove(&ks.history, k.as_slice()),
            }
        }
        for (k, v) in &g.content {
            match v {
                Some(v) => b.insert(&ks.content, k.as_slice(), v.as_slice()),
                None => b.remove(&ks.content, k.as_slice()),
            }
        }
        for (name, v) in &g.stores {
            match v {
                Some(v) => b.insert(&ks.stores, name.as_bytes(), v.as_slice()),
                None => b.remove(&ks.stores, name.as_bytes()),
            }
        }
        stats(&mut b, ks, self.revision());
        for id in &g.retired {
            b.insert(&ks.meta, crate::retire::meta_key(*id), b"".as_slice());
        }
        if let Some(id) = g.next_store_id {
            b.insert(&ks.meta, META_NEXT_STORE, u64::from(id).to_le_bytes());
        }
        for (k, chunk) in g.log.entries() {
            b.insert(&ks.changelog, k, chunk);
        }
        b.insert(&ks.meta, META_REVISION, self.revision().to_le_bytes());
        b.commit()?;
        Ok(())
    }
}

/// Marks a commit being published to readers (`Shared::publishing` odd:
/// the cache and the read view changing) until dropped.
struct Publishing<'a>(&'a AtomicU64);

impl<'a> Publishing<'a> {
    fn start(seq: &'a AtomicU64) -> Self {
        seq.fetch_add(1, Ordering::AcqRel);
        Publishing(seq)
    }
}

impl Drop for Publishing<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

/// Moves the read view (`multiget`) to storage's latest state between
/// groups. Deletions made outside the writer (a cleared store's records,
/// the trimmed change log) would otherwise stay pinned under the view until
/// the next write, keeping their disk space on an idle server. They touch
/// nothing a key read can reach, so the view stays consistent with the cache.
pub(crate) fn refresh_read_view(shared: &Shared) {
    let old = shared.queue.between_groups(|| {
        let _publishing = Publishing::start(&shared.publishing);
        std::mem::replace(&mut *shared.read_view.lock(), shared.fj.snapshot())
    });
    drop(old);
}

pub(crate) fn expiry_key(t: u64, skey: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + skey.len());
    k.extend_from_slice(&t.to_be_bytes());
    k.extend_from_slice(skey);
    k
}

/// `store id ++ key len (u16 BE) ++ encoded key`: the length keeps one key's
/// versions from mixing with a longer key that shares its prefix.
pub(crate) fn history_prefix(skey: &[u8]) -> Vec<u8> {
    let (id, enc) = skey.split_at(4.min(skey.len()));
    let mut p = Vec::with_capacity(skey.len() + 2);
    p.extend_from_slice(id);
    p.extend_from_slice(&(enc.len() as u16).to_be_bytes());
    p.extend_from_slice(enc);
    p
}
