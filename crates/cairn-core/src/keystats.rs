//! Per-store key statistics, kept by the write path: how many records a
//! store holds, how many of them carry an expiry, and the sum of those
//! expiry times. They make counting a whole store (`Db::count` without a
//! prefix, RESP `DBSIZE`, `INFO keyspace`) cost a lookup plus a walk over
//! the keys whose TTL has passed but that the background collector has not
//! removed yet, instead of a walk over every record.
//!
//! The writer keeps them in memory, exact after every commit. Writing them
//! with every commit cost a memtable insert per commit (+27% instructions
//! for a lone put, measured with callgrind), so they are saved into a
//! commit's batch at most once a second, with the revision they describe,
//! and on close. An open whose saved revision is not the database's
//! (a crash since the last save, or a directory from before they were kept)
//! counts the records once instead.

use crate::db::{Keyspaces, META_REVISION, Shared, now_ms, u64_at};
use crate::entry::Record;
use crate::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::Ordering;

/// Tallies by store id.
pub(crate) type Map = HashMap<u32, Tally, foldhash::fast::RandomState>;
use std::time::{Duration, Instant};

/// The revision the saved tallies describe (u64 LE).
const SAVED_AT: &[u8] = b"stats_revision";
/// `stats/` ++ store id (u32 BE) → [`Tally`].
const PREFIX: &[u8] = b"stats/";
/// How often a commit also saves the tallies.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// A store's keys: what a count of the whole store answers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyStats {
    /// Live keys.
    pub keys: u64,
    /// Live keys with an expiry.
    pub expiring: u64,
    /// Mean time left of the keys with an expiry, in milliseconds (0 when
    /// none has one).
    pub mean_ttl_ms: u64,
}

/// What is stored for one store: every record, whether its TTL passed or
/// not (an expired record is stored until the collector removes it).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub records: u64,
    pub expiring: u64,
    pub expiry_sum: u128,
}

/// The change a group of writes makes to one store's [`Tally`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delta {
    records: i64,
    expiring: i64,
    expiry_sum: i128,
}

impl Delta {
    /// A stored record replaced: `old` and `new` are `Some(expires_at)`
    /// when a record is stored before and after.
    pub fn change(&mut self, old: Option<Option<u64>>, new: Option<Option<u64>>) {
        if let Some(t) = old {
            self.records -= 1;
            if let Some(t) = t {
                self.expiring -= 1;
                self.expiry_sum -= i128::from(t);
            }
        }
        if let Some(t) = new {
            self.records += 1;
            if let Some(t) = t {
                self.expiring += 1;
                self.expiry_sum += i128::from(t);
            }
        }
    }
}

/// The deltas of one group, by store id: a group touches a store or a
/// few, so a short list searched in place (no hashing per write).
#[derive(Default, Clone)]
pub(crate) struct Deltas(Vec<(u32, Delta)>);

impl Deltas {
    pub fn of(&mut self, id: u32) -> &mut Delta {
        let i = match self.0.iter().position(|(s, _)| *s == id) {
            Some(i) => i,
            None => {
                self.0.push((id, Delta::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }
}

impl Tally {
    pub fn encode(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&self.records.to_le_bytes());
        b[8..16].copy_from_slice(&self.expiring.to_le_bytes());
        b[16..].copy_from_slice(&self.expiry_sum.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Result<Tally> {
        if b.len() != 32 {
            return Err(Error::CorruptRecord(format!(
                "key statistics: {} bytes, expected 32",
                b.len()
            )));
        }
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
        Ok(Tally {
            records: u64_at(0),
            expiring: u64_at(8),
            expiry_sum: u128::from_le_bytes(b[16..].try_into().unwrap_or_default()),
        })
    }

    /// This tally after `d`. A result below zero means the figures were
    /// already wrong; it stops at zero rather than wrapping.
    pub fn apply(self, d: Delta) -> Tally {
        let add = |v: u64, d: i64| u64::try_from(i128::from(v) + i128::from(d)).unwrap_or(0);
        Tally {
            records: add(self.records, d.records),
            expiring: add(self.expiring, d.expiring),
            expiry_sum: u128::try_from(i128::try_from(self.expiry_sum).unwrap_or(i128::MAX) + d.expiry_sum)
                .unwrap_or(0),
        }
    }

    pub fn add_record(&mut self, expires_at: Option<u64>) {
        self.records += 1;
        if let Some(t) = expires_at {
            self.expiring += 1;
            self.expiry_sum += u128::from(t);
        }
    }
}

/// True for the `meta` keys this module owns.
pub(crate) fn is_own_meta(k: &[u8]) -> bool {
    k == SAVED_AT || k.starts_with(PREFIX)
}

/// The `meta` key of a store's tally.
pub(crate) fn meta_key(id: u32) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Every store's tally, as of the last commit. The writer holds the lock
/// from its commit until the tallies describe it, and readers take their
/// storage snapshot under it, so the two always agree.
pub(crate) struct Tallies {
    by_store: Map,
    saved_at: Instant,
    /// Changed since last saved.
    dirty: bool,
}

/// What one commit does to the tallies.
pub(crate) struct Plan {
    changed: Vec<(u32, Tally)>,
    save: bool,
}

impl Tallies {
    /// The tallies after `deltas` (zero ones dropped), and whether this
    /// commit saves them.
    pub fn plan(&self, deltas: &Deltas, retired: &[u32]) -> Plan {
        let changed: Vec<(u32, Tally)> = deltas
            .0
            .iter()
            .filter(|(id, d)| *d != Delta::default() && !retired.contains(id))
            .map(|(id, d)| (*id, self.by_store.get(id).copied().unwrap_or_default().apply(*d)))
            .collect();
        let dirty = self.dirty || !changed.is_empty();
        Plan {
            save: dirty && self.saved_at.elapsed() >= SAVE_EVERY,
            changed,
        }
    }

    /// Adds the plan's writes to a commit at `revision`: a retired
    /// store's tally goes at once, the others when the plan saves.
    pub fn stage(&self, plan: &Plan, retired: &[u32], b: &mut fjall::OwnedWriteBatch, ks: &Keyspaces, revision: u64) {
        for id in retired {
            b.remove(&ks.meta, meta_key(*id));
        }
        if plan.save {
            let changed = |id: &u32| plan.changed.iter().any(|(c, _)| c == id);
            for (id, t) in &self.by_store {
                if !changed(id) && !retired.contains(id) {
                    b.insert(&ks.meta, meta_key(*id), t.encode());
                }
            }
            for (id, t) in &plan.changed {
                b.insert(&ks.meta, meta_key(*id), t.encode());
            }
            b.insert(&ks.meta, SAVED_AT, revision.to_le_bytes());
        }
    }

    /// The plan's commit succeeded.
    pub fn apply(&mut self, plan: Plan, retired: &[u32]) {
        self.dirty |= !plan.changed.is_empty();
        self.by_store.extend(plan.changed);
        for id in retired {
            self.by_store.remove(id);
        }
        if plan.save {
            self.dirty = false;
            self.saved_at = Instant::now();
        }
    }

    /// Saves every tally, and removes saved ones of stores that have none
    /// now (a store emptied since the last save: a count made at open has
    /// no entry for it, and the old figure must not come back).
    fn save(&self, fj: &fjall::Database, ks: &Keyspaces, revision: u64) -> Result<()> {
        let mut b = fj.batch().durability(Some(fjall::PersistMode::SyncAll));
        for kv in ks.meta.prefix(PREFIX) {
            let k = kv.key()?;
            let id = k[PREFIX.len()..].try_into().map(u32::from_be_bytes).ok();
            if id.is_none_or(|id| !self.by_store.contains_key(&id)) {
                b.remove(&ks.meta, k);
            }
        }
        for (id, t) in &self.by_store {
            b.insert(&ks.meta, meta_key(*id), t.encode());
        }
        b.insert(&ks.meta, SAVED_AT, revision.to_le_bytes());
        Ok(b.commit()?)
    }
}

/// The tallies at open: the saved ones when they describe the current
/// revision; otherwise every record is counted (headers only) and the
/// result saved, before any write can change it.
pub(crate) fn load(fj: &fjall::Database, ks: &Keyspaces, retired: &[u32]) -> Result<Tallies> {
    let revision = u64_at(&ks.meta, META_REVISION)?.unwrap_or(0);
    let mut by_store = Map::default();
    if u64_at(&ks.meta, SAVED_AT)? == Some(revision) {
        for kv in ks.meta.prefix(PREFIX) {
            let (k, v) = kv.into_inner()?;
            let id = k[PREFIX.len()..]
                .try_into()
                .map(u32::from_be_bytes)
                .map_err(|_| Error::CorruptRecord("key statistics: bad store id".into()))?;
            by_store.insert(id, Tally::decode(&v)?);
        }
        return Ok(Tallies {
            by_store,
            saved_at: Instant::now(),
            dirty: false,
        });
    }
    let started = Instant::now();
    for kv in ks.data.iter() {
        let (k, v) = kv.into_inner()?;
        let Some(id) = crate::retire::id_of(&k) else {
            continue; // `cairn check` reports it
        };
        if retired.contains(&id) {
            continue;
        }
        // A header that does not decode is counted without an expiry
        // (`cairn check` reports it) rather than failing the open.
        let expires_at = Record::stored_expires_at(&v).unwrap_or(None);
        by_store.entry(id).or_insert_with(Tally::default).add_record(expires_at);
    }
    let t = Tallies {
        by_store,
        saved_at: Instant::now(),
        dirty: false,
    };
    t.save(fj, ks, revision)?;
    let records: u64 = t.by_store.values().map(|t| t.records).sum();
    tracing::info!(
        records,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "counted the stored keys (no saved count for this revision)"
    );
    Ok(t)
}

/// Saves the tallies at close, once the writer has stopped. Not after a
/// failed commit: what reached the journal is unknown, so the next open
/// counts.
pub(crate) fn save_on_close(shared: &Shared) {
    if shared.poisoned.load(Ordering::Acquire) {
        return;
    }
    let t = shared.tallies.lock();
    let revision = shared.revision.load(Ordering::Acquire);
    if let Err(e) = t.save(&shared.fj, &shared.ks, revision) {
        tracing::warn!(error = %e, "saving key statistics on close failed; the next open counts the keys");
    }
}

/// A storage snapshot and the tallies of that same moment.
pub(crate) fn snapshot(shared: &Shared) -> (fjall::Snapshot, Map) {
    let t = shared.tallies.lock();
    (shared.fj.snapshot(), t.by_store.clone())
}

fn snapshot_of(shared: &Shared, id: u32) -> (fjall::Snapshot, Tally) {
    let t = shared.tallies.lock();
    (shared.fj.snapshot(), t.by_store.get(&id).copied().unwrap_or_default())
}

/// Where the kept tallies differ from `counted` (every store's records,
/// counted at the snapshot the kept ones were taken with):
/// `(store id, kept, counted)`.
pub(crate) fn compare(kept: &Map, counted: &Map) -> Vec<(u32, Tally, Tally)> {
    let mut ids: Vec<u32> = kept.keys().chain(counted.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    ids.into_iter()
        .filter_map(|id| {
            let (a, b) = (
                kept.get(&id).copied().unwrap_or_default(),
                counted.get(&id).copied().unwrap_or_default(),
            );
            (a != b).then_some((id, a, b))
        })
        .collect()
}

/// A store's live keys: its tally, less the records whose TTL has passed
/// (they are in the expiry index until collected), at one snapshot.
pub(crate) fn read(shared: &Shared, id: u32) -> Result<KeyStats> {
    let (snap, tally) = snapshot_of(shared, id);
    let now = now_ms();
    let id_be = id.to_be_bytes();
    let (mut expired, mut expired_sum) = (0u64, 0u128);
    // Index keys are expires_at (u64 BE) ++ store id ++ key: every key
    // below `now + 1` has passed its TTL (`t <= now`, as `Record` says).
    // Below the collector's floor everything is collected: starting there
    // skips the tombstones it left (a walk from the start went through
    // every key it had ever collected).
    let start = shared
        .expiry_floor
        .load(Ordering::Acquire)
        .min(shared.expiry_pending.load(Ordering::Acquire));
    let end = now.saturating_add(1).to_be_bytes();
    for kv in fjall::Readable::range(&snap, &shared.ks.expiry, start.to_be_bytes().as_slice()..end.as_slice()) {
        let k = kv.key()?;
        if k.get(8..12) == Some(id_be.as_slice()) {
            expired += 1;
            expired_sum += u128::from(u64::from_be_bytes(k[..8].try_into().unwrap_or_default()));
        }
    }
    let expiring = tally.expiring.saturating_sub(expired);
    let sum = tally.expiry_sum.saturating_sub(expired_sum);
    let mean_ttl_ms = if expiring == 0 {
        0
    } else {
        u64::try_from(sum / u128::from(expiring))
            .unwrap_or(u64::MAX)
            .saturating_sub(now)
    };
    Ok(KeyStats {
        keys: tally.records.saturating_sub(expired),
        expiring,
        mean_ttl_ms,
    })
}

impl crate::Db {
    /// A store's live keys, how many have an expiry and their mean time
    /// left, at one snapshot. Costs a lookup plus a walk over the keys
    /// whose TTL has passed but that are not collected yet (the collector
    /// runs every `expiry_interval_ms`), whatever the store's size.
    ///
    /// # Errors
    /// Unknown store; storage errors.
    pub fn key_stats(&self, store: &str) -> Result<KeyStats> {
        let h = self.store(store)?;
        read(&self.shared, h.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_add_up_and_stop_at_zero() {
        let mut d = Delta::default();
        d.change(None, Some(None));
        d.change(None, Some(Some(100)));
        d.change(Some(Some(100)), Some(Some(300)));
        let t = Tally::default().apply(d);
        assert_eq!(
            t,
            Tally {
                records: 2,
                expiring: 1,
                expiry_sum: 300
            }
        );
        let mut gone = Delta::default();
        gone.change(Some(None), None);
        gone.change(Some(Some(300)), None);
        assert_eq!(t.apply(gone), Tally::default());
        assert_eq!(Tally::default().apply(gone), Tally::default(), "no wrap below zero");
        assert_eq!(Tally::decode(&t.encode()).unwrap(), t);
        assert!(Tally::decode(&[0; 31]).is_err());
    }

    fn put_ttl(db: &crate::Db, store: &str, key: &str, ttl: Option<std::time::Duration>) {
        let o = crate::PutOptions {
            ttl,
            ..crate::PutOptions::default()
        };
        db.put_with(store, key, crate::Value::from(1), o).unwrap();
    }

    #[test]
    fn passed_ttls_count_out_before_the_collector_runs() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = crate::Config {
            expiry_interval_ms: 3_600_000,
            ..crate::Config::default()
        };
        let db = crate::Db::builder(dir.path()).config(cfg).open().unwrap();
        let ms = std::time::Duration::from_millis;
        for k in ["a", "b", "c"] {
            put_ttl(&db, "default", k, Some(ms(20)));
        }
        put_ttl(&db, "default", "d", None);
        put_ttl(&db, "default", "e", Some(ms(3_600_000)));
        std::thread::sleep(ms(60));
        let s = db.key_stats("default").unwrap();
        assert_eq!((s.keys, s.expiring), (2, 1));
        assert!((3_500_000..=3_600_000).contains(&s.mean_ttl_ms), "{s:?}");
        assert_eq!(db.count("default", None).unwrap(), 2);
        // Still stored: a write over an expired key replaces its record.
        put_ttl(&db, "default", "a", None);
        assert_eq!(db.key_stats("default").unwrap().keys, 3);
        assert_eq!(db.clear("default").unwrap(), 3, "clear reports live keys");
        assert_eq!(db.key_stats("default").unwrap(), KeyStats::default());
    }

    #[test]
    fn dropped_stores_start_again_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        db.create_store(crate::StoreSpec::new("s")).unwrap();
        let id = db.store("s").unwrap().id;
        put_ttl(&db, "s", "x", None);
        put_ttl(&db, "default", "x", None);
        assert!(db.shared.tallies.lock().by_store.contains_key(&id));
        db.drop_store("s").unwrap();
        assert!(db.key_stats("s").is_err(), "unknown store");
        db.create_store(crate::StoreSpec::new("s")).unwrap();
        assert_eq!(db.key_stats("s").unwrap().keys, 0);
        assert_eq!(db.key_stats("default").unwrap().keys, 1);
        assert!(
            !db.shared.tallies.lock().by_store.contains_key(&id),
            "dropped store's tally is gone"
        );
        assert!(!db.shared.ks.meta.contains_key(meta_key(id)).unwrap());
    }

    #[test]
    fn check_reports_statistics_that_disagree_with_the_records() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        put_ttl(&db, "default", "a", None);
        put_ttl(&db, "default", "b", Some(std::time::Duration::from_secs(60)));
        assert_eq!(db.check(|_| ()).unwrap().problems, Vec::<String>::new());
        let id = db.store("default").unwrap().id;
        let wrong = Tally {
            records: 7,
            ..Tally::default()
        };
        db.shared.tallies.lock().by_store.insert(id, wrong);
        let problems = db.check(|_| ()).unwrap().problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("\"default\": key statistics say"), "{problems:?}");
    }

    fn saved(db: &crate::Db) -> (Option<u64>, HashMap<u32, Tally>) {
        let ks = &db.shared.ks;
        let tallies = ks
            .meta
            .prefix(PREFIX)
            .map(|kv| {
                let (k, v) = kv.into_inner().unwrap();
                let id = u32::from_be_bytes(k[PREFIX.len()..].try_into().unwrap());
                (id, Tally::decode(&v).unwrap())
            })
            .collect();
        (u64_at(&ks.meta, SAVED_AT).unwrap(), tallies)
    }

    #[test]
    fn a_commit_saves_them_at_most_once_a_second_and_close_always() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        let id = db.store("default").unwrap().id;
        let before = saved(&db).0;
        put_ttl(&db, "default", "a", None);
        put_ttl(&db, "default", "b", None);
        assert!(before < Some(db.revision()));
        assert_eq!(saved(&db).0, before, "not saved by every commit");
        std::thread::sleep(SAVE_EVERY + Duration::from_millis(50));
        put_ttl(&db, "default", "c", None);
        let (at, tallies) = saved(&db);
        assert_eq!(at, Some(db.revision()));
        assert_eq!(tallies[&id].records, 3);
        put_ttl(&db, "default", "d", None);
        drop(db);
        let db = crate::Db::open(dir.path()).unwrap();
        let (at, tallies) = saved(&db);
        assert_eq!(at, Some(db.revision()), "saved on close");
        assert_eq!(tallies[&id].records, 4);
        assert_eq!(db.count("default", None).unwrap(), 4);
    }

    /// Rewrites a closed directory's meta keyspace with raw fjall.
    fn edit_meta(dir: &std::path::Path, f: impl FnOnce(&fjall::Keyspace)) {
        let fj = fjall::Database::builder(dir.join("fjall")).open().unwrap();
        let meta = fj.keyspace("meta", fjall::KeyspaceCreateOptions::default).unwrap();
        f(&meta);
        fj.persist(fjall::PersistMode::SyncAll).unwrap();
    }

    #[test]
    fn a_count_made_at_open_drops_saved_figures_of_stores_now_empty() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        let id = db.store("default").unwrap().id;
        for k in ["a", "b", "c"] {
            put_ttl(&db, "default", k, None);
        }
        for k in ["a", "b", "c"] {
            db.delete("default", k).unwrap();
        }
        let revision = db.revision();
        drop(db);
        // As after a crash: the figures saved before the deletes, at an
        // older revision.
        edit_meta(dir.path(), |meta| {
            meta.insert(SAVED_AT, (revision - 1).to_le_bytes()).unwrap();
            let three = Tally {
                records: 3,
                ..Tally::default()
            };
            meta.insert(meta_key(id), three.encode()).unwrap();
        });
        let db = crate::Db::open(dir.path()).unwrap();
        assert_eq!(db.count("default", None).unwrap(), 0);
        assert!(!saved(&db).1.contains_key(&id), "the stale figure is gone");
        drop(db);
        let db = crate::Db::open(dir.path()).unwrap();
        assert_eq!(db.count("default", None).unwrap(), 0, "also when loaded");
        assert_eq!(db.check(|_| ()).unwrap().problems, Vec::<String>::new());
    }

    #[test]
    fn stale_or_missing_statistics_are_counted_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(dir.path()).unwrap();
        db.create_store(crate::StoreSpec::new("s")).unwrap();
        for i in 0..50 {
            put_ttl(&db, "default", &format!("k{i}"), None);
        }
        put_ttl(&db, "s", "x", Some(std::time::Duration::from_secs(600)));
        let revision = db.revision();
        drop(db);
        // As after a crash: saved at an older revision, with other figures.
        edit_meta(dir.path(), |meta| {
            meta.insert(SAVED_AT, (revision - 1).to_le_bytes()).unwrap();
            meta.insert(meta_key(1), Tally::default().encode()).unwrap();
        });
        let db = crate::Db::open(dir.path()).unwrap();
        assert_eq!(db.key_stats("default").unwrap().keys, 50);
        let s = db.key_stats("s").unwrap();
        assert_eq!((s.keys, s.expiring), (1, 1));
        assert_eq!(saved(&db).0, Some(revision), "the count is saved at once");
        drop(db);
        // As a directory written before the statistics were kept.
        edit_meta(dir.path(), |meta| {
            let keys: Vec<Vec<u8>> = meta.prefix(PREFIX).map(|kv| kv.key().unwrap().to_vec()).collect();
            assert_eq!(keys.len(), 2);
            for k in keys {
                meta.remove(k).unwrap();
            }
            meta.remove(SAVED_AT).unwrap();
        });
        let db = crate::Db::open(dir.path()).unwrap();
        assert_eq!(db.count("default", None).unwrap(), 50);
        assert_eq!(db.key_stats("s").unwrap().expiring, 1);
    }
}
