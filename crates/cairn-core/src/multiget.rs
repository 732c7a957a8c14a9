//! Reading several keys as of one revision (Redis `MGET`): a batch or a
//! `MULTI` that wrote them shows whole or not at all.
//!
//! The fast path reads the cache, and for keys it does not hold the
//! writer's last published storage snapshot (`Shared::read_view`; storage
//! itself shows a commit before the cache does), and checks
//! `Shared::publishing` around the reads (a sequence lock): even and
//! unchanged means the writer published nothing meanwhile, so what was
//! read is one revision's state. Reading anything a commit published
//! synchronizes with the writer (the cache's and the view's locks), which
//! made the sequence odd first, so a torn read always sees it moved. The
//! window spans the commit, fsync included, since a plain get that misses
//! fills the cache from storage once the batch is visible there. After a few
//! tries lost to a busy writer the keys are read from a fresh storage
//! snapshot instead: slower (no cache) but consistent by construction.

use crate::db::{Shared, now_ms, storage_key};
use crate::entry::Record;
use crate::{Db, Result, Value};
use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};

/// Tries of the cached path before falling back to a snapshot.
const CACHED_TRIES: usize = 3;

/// One key's answer: its value, `None` when absent or expired, or why the
/// key is not valid for the store (the others are still read).
pub type ManyValue = Result<Option<Arc<Value>>>;

impl Db {
    /// Gets several keys' values as of one revision: a batch that wrote
    /// some of them shows whole or not at all. Each key has its own answer,
    /// so one invalid key does not fail the rest.
    ///
    /// # Errors
    /// [`crate::Error::UnknownStore`]; storage errors. A key that is not
    /// valid for the store gets its error in its own slot.
    pub fn get_many<K: AsRef<[u8]>>(&self, store: &str, keys: &[K]) -> Result<Vec<ManyValue>> {
        let mut invalid = Vec::new();
        let skeys: Vec<Option<Vec<u8>>> = {
            let catalog = self.shared.catalog.read();
            let h = catalog.by_name.get(store).ok_or_else(|| crate::Error::UnknownStore {
                store: store.to_owned(),
            })?;
            keys.iter()
                .enumerate()
                .map(|(i, k)| match storage_key(&self.shared.config, h, k.as_ref()) {
                    Ok((_, s)) => Some(s),
                    Err(e) => {
                        invalid.push((i, e));
                        None
                    }
                })
                .collect()
        };
        let values = self.read_consistent(&skeys)?;
        let mut out: Vec<ManyValue> = values.into_iter().map(Ok).collect();
        for (i, e) in invalid {
            out[i] = Err(e);
        }
        Ok(out)
    }

    fn read_consistent(&self, skeys: &[Option<Vec<u8>>]) -> Result<Vec<Option<Arc<Value>>>> {
        let seq = &self.shared.publishing;
        for _ in 0..CACHED_TRIES {
            let before = seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                std::thread::yield_now();
                continue;
            }
            let view = self.shared.read_view.lock().clone();
            let read = read_all(skeys, |s| match self.shared.cache.get(s) {
                Some(slot) => {
                    self.shared.stats.cache_hits.add(1);
                    Ok(slot)
                }
                None => {
                    self.shared.stats.cache_misses.add(1);
                    stored_at(&self.shared, &view, s)
                }
            })?;
            fence(Ordering::Acquire);
            if seq.load(Ordering::Acquire) == before {
                return Ok(read);
            }
        }
        self.shared.stats.multiget_snapshots.add(1);
        let snap = self.shared.fj.snapshot();
        read_all(skeys, |s| stored_at(&self.shared, &snap, s))
    }
}

fn read_all(
    skeys: &[Option<Vec<u8>>],
    mut read: impl FnMut(&[u8]) -> Result<Option<Arc<Record>>>,
) -> Result<Vec<Option<Arc<Value>>>> {
    let now = now_ms();
    let mut out = Vec::with_capacity(skeys.len());
    for skey in skeys {
        out.push(match skey {
            Some(s) => read(s)?.filter(|r| !r.is_expired(now)).map(|r| Arc::clone(&r.value)),
            None => None,
        });
    }
    Ok(out)
}

fn stored_at(shared: &Shared, snap: &fjall::Snapshot, skey: &[u8]) -> Result<Option<Arc<Record>>> {
    Ok(match fjall::Readable::get(snap, &shared.ks.data, skey)? {
        Some(v) => Some(Arc::new(Record::decode(&v)?)),
        None => None,
    })
}
