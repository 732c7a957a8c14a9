//! The read cache: hot records kept exact by the write path.
//!
//! Invariant: the cache never holds a record older than what storage holds.
//! The writer updates the cache *after* committing, under the key's stripe
//! lock, bumping the stripe's generation. A reader that misses records the
//! generation before reading storage and only fills the cache if the
//! generation is unchanged; otherwise a write raced it and its read may be
//! stale, so it does not cache it.

use crate::entry::Record;
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::sync::Arc;

/// A cached slot: `Some(record)` or `None` for a key known to be absent.
pub(crate) type Slot = Option<Arc<Record>>;

/// Values above this size are not cached (they would crowd out hot keys).
const MAX_CACHED_VALUE: usize = 64 << 10;
const STRIPES: usize = 256;

/// What an entry costs the cache's budget: its key, its value twice (the
/// parsed value and its encoding) and bookkeeping, but at least
/// `floor` = budget / entries, so the cache also holds at most `entries`
/// entries. A budget in entries alone let 60 KB values take 2.7 GB.
#[derive(Clone)]
struct Weigh {
    floor: u64,
}

impl quick_cache::Weighter<Vec<u8>, Slot> for Weigh {
    fn weight(&self, key: &Vec<u8>, slot: &Slot) -> u64 {
        let value = slot.as_ref().map_or(0, |r| 2 * r.value_len());
        ((key.len() + value + 96) as u64).max(self.floor)
    }
}

pub(crate) struct Cache {
    map: Option<quick_cache::sync::Cache<Vec<u8>, Slot, Weigh>>,
    stripes: Box<[Mutex<u64>]>,
    hasher: foldhash::fast::RandomState,
}

impl Cache {
    /// A cache of at most `entries` entries and about `bytes` bytes (see
    /// [`Weigh`]); either 0 disables it.
    pub fn new(entries: usize, bytes: u64) -> Cache {
        let on = entries > 0 && bytes > 0;
        Cache {
            map: on.then(|| {
                let floor = (bytes / entries as u64).max(1);
                quick_cache::sync::Cache::with_weighter(entries, bytes, Weigh { floor })
            }),
            stripes: (0..STRIPES).map(|_| Mutex::new(0)).collect(),
            hasher: foldhash::fast::RandomState::default(),
        }
    }

    fn stripe(&self, key: &[u8]) -> &Mutex<u64> {
        &self.stripes[(self.hasher.hash_one(key) as usize) % STRIPES]
    }

    pub fn get(&self, key: &[u8]) -> Option<Slot> {
        self.map.as_ref()?.get(key)
    }

    /// The generation to pass to [`Cache::fill`] after reading storage.
    pub fn generation(&self, key: &[u8]) -> u64 {
        if self.map.is_none() {
            return 0;
        }
        *self.stripe(key).lock()
    }

    /// Caches what a reader found in storage, unless a write raced it.
    pub fn fill(&self, key: &[u8], generation: u64, slot: Slot) {
        let Some(map) = &self.map else { return };
        if slot.as_ref().is_some_and(|r| r.value_len() > MAX_CACHED_VALUE) {
            return;
        }
        let g = self.stripe(key).lock();
        if *g == generation {
            map.insert(key.to_vec(), slot);
        }
    }

    /// Records a committed write (called by the writer only).
    pub fn store(&self, key: Vec<u8>, slot: Slot) {
        let mut g = self.stripe(&key).lock();
        *g += 1;
        if let Some(map) = &self.map {
            if slot.as_ref().is_some_and(|r| r.value_len() > MAX_CACHED_VALUE) {
                map.remove(&key);
            } else {
                map.insert(key, slot);
            }
        }
    }

    /// Bytes held, as [`Weigh`] counts them.
    #[cfg(test)]
    pub fn weight(&self) -> u64 {
        self.map.as_ref().map_or(0, quick_cache::sync::Cache::weight)
    }

    /// Forgets everything (after clearing or dropping a store).
    pub fn clear(&self) {
        let guards: Vec<_> = self.stripes.iter().map(|s| s.lock()).collect();
        if let Some(map) = &self.map {
            map.clear();
        }
        for mut g in guards {
            *g += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Value;

    fn record(len: usize) -> Slot {
        let value = Value::Bytes(vec![7; len]);
        let enc = value.encode();
        Some(Arc::new(Record {
            value: Arc::new(value),
            enc,
            revision: 1,
            created_revision: 1,
            version: 1,
            updated_at: 0,
            expires_at: None,
        }))
    }

    #[test]
    fn the_budget_bounds_bytes_and_entries() {
        // 1 MB and 1,000 entries: 50 KB values fit about 10 at a time.
        let c = Cache::new(1_000, 1 << 20);
        for i in 0..100u32 {
            c.store(i.to_be_bytes().to_vec(), record(50_000));
        }
        assert!(c.weight() <= 1 << 20, "{}", c.weight());
        let held = (0..100u32).filter(|i| c.get(&i.to_be_bytes()).is_some()).count();
        assert!((5..=21).contains(&held), "{held}");
        // Small entries: the entry count binds (each weighs at least 1 MB / 1,000).
        let c = Cache::new(1_000, 1 << 20);
        for i in 0..5_000u32 {
            c.store(i.to_be_bytes().to_vec(), record(10));
        }
        let held = (0..5_000u32).filter(|i| c.get(&i.to_be_bytes()).is_some()).count();
        assert!((500..=1_000).contains(&held), "{held}");
        assert!(Cache::new(0, 1 << 20).map.is_none());
        assert!(Cache::new(1_000, 0).map.is_none());
    }
}
