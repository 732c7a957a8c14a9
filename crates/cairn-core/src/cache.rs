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

pub(crate) struct Cache {
    map: Option<quick_cache::sync::Cache<Vec<u8>, Slot>>,
    stripes: Box<[Mutex<u64>]>,
    hasher: foldhash::fast::RandomState,
}

impl Cache {
    pub fn new(entries: usize) -> Cache {
        Cache {
            map: (entries > 0).then(|| quick_cache::sync::Cache::new(entries)),
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
