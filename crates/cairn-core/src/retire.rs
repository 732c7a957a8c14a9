//! Retired store ids: how clearing or dropping a store costs the same
//! whatever its size.
//!
//! Records are keyed by store id. Clearing a store gives it a new id and
//! dropping one removes it from the catalog, in one small commit; the old
//! id is *retired*: a `dead/<id>` marker in `meta`, written in that same
//! commit. Nothing reads under a retired id again, and the maintenance
//! thread deletes its records and history in chunks in the background,
//! then the marker. Clearing used to stage a delete per record in one
//! commit, which held the single writer (every store's writes) for 37 s
//! and 450 MB on a 2.5M-key store.
//!
//! The expiry index is ordered by time, not store: its entries under a
//! retired id are dropped by the TTL collector when their time comes.

use crate::db::{Keyspaces, Shared};
use crate::{Error, Result};
use std::ops::Bound;
use std::time::{Duration, Instant};

/// `dead/` ++ store id (u32 BE) → empty.
const PREFIX: &[u8] = b"dead/";
/// Records deleted per batch.
const CHUNK: usize = 10_000;

pub(crate) fn meta_key(id: u32) -> Vec<u8> {
    let mut k = PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// True for the `meta` keys this module owns.
pub(crate) fn is_own_meta(k: &[u8]) -> bool {
    k.starts_with(PREFIX)
}

/// The retired ids in `meta` (at open, or at a snapshot).
pub(crate) fn load(meta: impl IntoIterator<Item = fjall::Guard>) -> Result<Vec<u32>> {
    let mut ids = Vec::new();
    for kv in meta {
        let k = kv.key()?;
        let id = k[PREFIX.len()..]
            .try_into()
            .map(u32::from_be_bytes)
            .map_err(|_| Error::CorruptRecord("retired store id: not 4 bytes".into()))?;
        ids.push(id);
    }
    Ok(ids)
}

/// The retired ids recorded in `meta` at open.
pub(crate) fn at_open(ks: &Keyspaces) -> Result<Vec<u32>> {
    load(ks.meta.prefix(PREFIX))
}

/// The retired ids at a snapshot.
pub(crate) fn at_snapshot(snap: &fjall::Snapshot, ks: &Keyspaces) -> Result<Vec<u32>> {
    load(fjall::Readable::prefix(snap, &ks.meta, PREFIX))
}

/// The store id a data or history key starts with.
pub(crate) fn id_of(k: &[u8]) -> Option<u32> {
    k.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes)
}

/// Where the background deletion of one retired id has got to.
struct Progress {
    id: u32,
    /// 0: records, 1: history.
    keyspace: usize,
    after: Option<Vec<u8>>,
}

/// The maintenance thread's deleter of retired ids' records.
#[derive(Default)]
pub(crate) struct Collector {
    at: Option<Progress>,
    /// An id was finished since the memtables were last flushed.
    flush_due: bool,
    last_flush: Option<Instant>,
}

/// At most one flush of the memtables per this long, however many small
/// stores are cleared (a test suite's FLUSHDB before every case).
const FLUSH_EVERY: Duration = Duration::from_secs(10);

impl Collector {
    /// Deletes retired records for up to `budget`. Each batch is plain
    /// deletes of keys nothing reads any more (no revision, no events); a
    /// crash part way leaves the marker, and the next open goes on.
    pub fn run(&mut self, shared: &Shared, budget: Duration) -> Result<()> {
        let start = Instant::now();
        while start.elapsed() < budget {
            let p = match self.at.take() {
                Some(p) => p,
                None => match shared.retired.lock().first() {
                    Some(&id) => Progress {
                        id,
                        keyspace: 0,
                        after: None,
                    },
                    None => break,
                },
            };
            self.at = step(shared, p)?;
            self.flush_due |= self.at.is_none();
        }
        if self.flush_due && self.at.is_none() && self.last_flush.is_none_or(|t| t.elapsed() >= FLUSH_EVERY) {
            self.flush_due = false;
            self.last_flush = Some(Instant::now());
            // The read view would otherwise hold the versions from before
            // the deletions, and the flush's GC could drop none of them.
            crate::writer::refresh_read_view(shared);
            flush_memtables(&shared.ks)?;
        }
        Ok(())
    }
}

/// One chunk of `p`'s deletion; what is left of it.
fn step(shared: &Shared, mut p: Progress) -> Result<Option<Progress>> {
    let ks = &shared.ks;
    let keyspace = if p.keyspace == 0 { &ks.data } else { &ks.history };
    let prefix = p.id.to_be_bytes();
    let hi = match p.id.checked_add(1) {
        Some(next) => Bound::Excluded(next.to_be_bytes().to_vec()),
        None => Bound::Unbounded,
    };
    let lo = match p.after.take() {
        Some(k) => Bound::Excluded(k),
        None => {
            // First, table files holding nothing but this id's records go
            // whole (a store's records are contiguous, so for a big store
            // that is nearly all of them); what is left is deleted below.
            // Deleting record by record alone left the space held by
            // tombstones that compaction never got to. (`tree` is fjall's
            // hidden access to its LSM-tree; `drop_range` is lsm-tree's.)
            use fjall::AbstractTree as _;
            keyspace
                .tree
                .drop_range::<Vec<u8>, _>((Bound::Included(prefix.to_vec()), hi.clone()))
                .map_err(fjall::Error::from)?;
            Bound::Included(prefix.to_vec())
        }
    };
    let keys: Vec<fjall::Slice> = keyspace
        .range((lo, hi))
        .take(CHUNK)
        .map(|kv| kv.key())
        .collect::<std::result::Result<_, _>>()?;
    if let Some(last) = keys.last() {
        p.after = Some(last.to_vec());
        let mut b = shared.fj.batch();
        for k in keys {
            b.remove(keyspace, k);
        }
        b.commit()?;
        return Ok(Some(p));
    }
    if p.keyspace == 0 {
        return Ok(Some(Progress {
            id: p.id,
            keyspace: 1,
            after: None,
        }));
    }
    ks.meta.remove(meta_key(p.id))?;
    shared.retired.lock().retain(|&id| id != p.id);
    Ok(None)
}

/// Flushes what the deletions left in memory, so the journals holding the
/// deleted records can go, and the flushes' version GC drops the tables
/// `drop_range` emptied (`drop_range` itself runs without a GC watermark).
/// An idle server otherwise kept both until a restart: 500K keys flushed,
/// 144 MB on disk for 45 s idle, 26 MB once this runs. (`rotate_memtable`
/// is fjall's hidden API; an empty memtable is left alone.)
fn flush_memtables(ks: &crate::db::Keyspaces) -> Result<()> {
    for k in [&ks.data, &ks.history, &ks.changelog, &ks.expiry, &ks.meta] {
        k.rotate_memtable()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Config, Db, Op, StoreSpec, Ttl, Value};

    /// Records and history versions stored under `id`.
    fn under(db: &Db, id: u32) -> (usize, usize) {
        let ks = &db.shared.ks;
        let p = id.to_be_bytes();
        (ks.data.prefix(p).count(), ks.history.prefix(p).count())
    }

    fn fill(db: &Db, store: &str, n: usize) {
        for b in 0..n / 1000 {
            let ops = (0..1000)
                .map(|i| Op::Put {
                    store: store.into(),
                    key: format!("k{b}-{i}").into_bytes(),
                    value: Value::from(1),
                    ttl: if i % 2 == 0 {
                        Ttl::Millis(3_600_000)
                    } else {
                        Ttl::Default
                    },
                })
                .collect();
            db.batch(vec![], ops).unwrap();
        }
    }

    fn wait_gone(db: &Db, id: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while under(db, id) != (0, 0) || !db.shared.retired.lock().is_empty() {
            assert!(Instant::now() < deadline, "left: {:?}", under(db, id));
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            !db.shared.ks.meta.contains_key(meta_key(id)).unwrap(),
            "marker gone too"
        );
    }

    #[test]
    fn clearing_retires_the_old_id_and_its_records_go_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.create_store(StoreSpec::new("h").history(3)).unwrap();
        fill(&db, "h", 25_000);
        for v in 0..3 {
            db.put("h", "k0-1", Value::from(v)).unwrap();
        }
        let old = db.store("h").unwrap().id;
        assert_eq!(
            under(&db, old),
            (25_000, 25_002),
            "history keeps the current version too"
        );
        assert_eq!(db.clear("h").unwrap(), 25_000);
        assert_ne!(db.store("h").unwrap().id, old, "a new id");
        assert_eq!(db.count("h", None).unwrap(), 0);
        assert!(db.get("h", "k0-1").unwrap().is_none());
        assert!(db.history("h", "k0-1").unwrap().is_empty());
        db.put("h", "k0-1", Value::from(9)).unwrap();
        assert_eq!(db.count("h", None).unwrap(), 1);
        wait_gone(&db, old);
        let rep = db.check(|_| ()).unwrap();
        assert_eq!(rep.problems, Vec::<String>::new());
        assert_eq!((rep.entries, rep.history), (1, 1));
        assert_eq!(db.clear("h").unwrap(), 1);
        assert_eq!(db.clear("h").unwrap(), 0, "an empty store keeps its id");
    }

    #[test]
    fn a_reopen_goes_on_deleting_and_backups_leave_retired_records_out() {
        let dir = tempfile::tempdir().unwrap();
        // No maintenance ticks: the records stay until the reopen.
        let idle = Config {
            expiry_interval_ms: 3_600_000,
            ..Config::default()
        };
        let db = Db::builder(dir.path()).config(idle).open().unwrap();
        db.create_store(StoreSpec::new("s")).unwrap();
        fill(&db, "s", 3_000);
        db.put("default", "kept", Value::from(1)).unwrap();
        let old = db.store("s").unwrap().id;
        assert!(db.drop_store("s").unwrap());
        assert_eq!(under(&db, old).0, 3_000, "not deleted yet");
        let rep = db.check(|_| ()).unwrap();
        assert_eq!(rep.problems, Vec::<String>::new(), "retired records are not problems");
        assert_eq!(rep.entries, 1);
        let file = dir.path().join("b.cairnbak");
        db.backup_to_file(&file, |_, _| ()).unwrap();
        drop(db);

        let restored = dir.path().join("restored");
        crate::restore(&file, &restored, false, |_, _| ()).unwrap();
        let r = Db::open(&restored).unwrap();
        assert_eq!(under(&r, old), (0, 0), "the backup has no retired records");
        assert!(r.shared.retired.lock().is_empty());
        assert_eq!(r.check(|_| ()).unwrap().problems, Vec::<String>::new());
        drop(r);

        let db = Db::open(dir.path()).unwrap();
        assert_eq!(*db.shared.retired.lock(), [old], "the marker survived the close");
        wait_gone(&db, old);
        assert_eq!(db.count("default", None).unwrap(), 1);
    }
}
