//! SCAN cursors shared by every RESP connection of a server.
//!
//! Redis cursors do not depend on the connection: pooled clients (redis-py's
//! `scan_iter`, ioredis, ...) send the next `SCAN` on whichever connection is
//! free, and clients reconnect mid-scan. So the numeric cursor handed to the
//! client maps, in one server-wide table, to the engine's list cursor and
//! the store being scanned.
//!
//! - The table is bounded ([`MAX_CURSORS`]); the oldest cursor is forgotten
//!   first.
//! - Ids start at a random offset and count up, staying below 2^53 (exact in
//!   JavaScript numbers): an id from a previous run of the server is very
//!   unlikely to name a live cursor of this one.
//! - An id not in the table (never handed out, forgotten, used already, or
//!   from before a restart) is refused, never taken for the end of a scan.
//! - A cursor may be sent again (a client retrying after a timeout): the
//!   same page, and the same next id, come back; it is forgotten only as
//!   the oldest once the table is full.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

/// Most live cursors the server keeps; the oldest is forgotten first.
pub(crate) const MAX_CURSORS: usize = 100_000;

/// Ids stay below this (2^53: exact as a JavaScript number).
const ID_LIMIT: u64 = 1 << 53;

/// Where a scan stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScanCursor {
    /// The store the scan runs over.
    pub store: String,
    /// The engine's list cursor for the next page.
    pub engine: String,
}

#[derive(Debug)]
struct Inner {
    /// The next id to hand out.
    next_id: u64,
    /// Insertion counter: orders cursors by age for eviction.
    next_seq: u64,
    /// id → (seq, cursor, the id handed out for the page after it: `Some(0)`
    /// when that page ended the scan).
    by_id: HashMap<u64, (u64, ScanCursor, Option<u64>)>,
    /// seq → id, oldest first.
    by_age: BTreeMap<u64, u64>,
}

/// The server-wide table of SCAN cursors.
#[derive(Debug)]
pub(crate) struct Cursors {
    inner: Mutex<Inner>,
    max: usize,
}

impl Default for Cursors {
    fn default() -> Cursors {
        Cursors::new(MAX_CURSORS, random_start())
    }
}

/// A random first id in [2^32, 2^52): far from 0 and from the ids another
/// run started at, with 2^52 ids to go before the limit.
fn random_start() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    (1 << 32) + h.finish() % ((1 << 52) - (1 << 32))
}

impl Cursors {
    /// A table keeping at most `max` cursors, handing out ids from `start`.
    pub fn new(max: usize, start: u64) -> Cursors {
        Cursors {
            inner: Mutex::new(Inner {
                next_id: start.clamp(1, ID_LIMIT - 1),
                next_seq: 0,
                by_id: HashMap::new(),
                by_age: BTreeMap::new(),
            }),
            max: max.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The critical sections cannot leave the table inconsistent.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cursor behind client id `id`, if it is live.
    pub fn get(&self, id: u64) -> Option<ScanCursor> {
        self.lock().by_id.get(&id).map(|(_, c, _)| c.clone())
    }

    /// Records that the page after `used` (a live id, or 0 for a new scan)
    /// was read and led to `next` (`None`: the scan ended); returns the id
    /// for the client (0 when the scan ended). Sending `used` again and
    /// reaching the same `next` gives the same id back.
    pub fn advance(&self, used: u64, next: Option<ScanCursor>) -> u64 {
        let mut g = self.lock();
        let cached = g.by_id.get(&used).and_then(|(_, _, n)| *n);
        match (cached, &next) {
            (Some(0), None) => return 0,
            (Some(n), Some(c)) if n != 0 && g.by_id.get(&n).is_some_and(|(_, had, _)| had == c) => return n,
            _ => {}
        }
        let id = match next {
            None => 0,
            Some(c) => Self::insert(&mut g, c),
        };
        if let Some(entry) = g.by_id.get_mut(&used) {
            entry.2 = Some(id);
        }
        while g.by_id.len() > self.max {
            let Some((_, old)) = g.by_age.pop_first() else { break };
            g.by_id.remove(&old);
        }
        id
    }

    fn insert(g: &mut Inner, c: ScanCursor) -> u64 {
        let mut id = g.next_id;
        // Skips ids still live after a wrap (2^52 ids later: not in practice).
        while g.by_id.contains_key(&id) {
            id = if id + 1 >= ID_LIMIT { 1 } else { id + 1 };
        }
        g.next_id = if id + 1 >= ID_LIMIT { 1 } else { id + 1 };
        let seq = g.next_seq;
        g.next_seq += 1;
        g.by_id.insert(id, (seq, c, None));
        g.by_age.insert(seq, id);
        id
    }

    /// Live cursors.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(store: &str, engine: &str) -> Option<ScanCursor> {
        Some(ScanCursor {
            store: store.into(),
            engine: engine.into(),
        })
    }

    #[test]
    fn ids_are_random_nonzero_and_below_2_pow_53() {
        let (a, b) = (Cursors::default(), Cursors::default());
        let (x, y) = (a.advance(0, cur("s", "c")), b.advance(0, cur("s", "c")));
        assert!((1 << 32..ID_LIMIT).contains(&x), "{x}");
        assert!((1 << 32..ID_LIMIT).contains(&y), "{y}");
        assert_ne!(x, y, "two tables started at the same id");
    }

    #[test]
    fn a_cursor_sent_again_gives_the_same_next_id() {
        let t = Cursors::new(10, 100);
        let a = t.advance(0, cur("s", "c1"));
        assert_eq!(t.get(a), cur("s", "c1"));
        let b = t.advance(a, cur("s", "c2"));
        assert_ne!(a, b);
        assert_eq!(t.get(b), cur("s", "c2"));
        // A retry of `a` reaching the same page: the same id, nothing new.
        assert_eq!(t.advance(a, cur("s", "c2")), b);
        assert_eq!(t.len(), 2);
        // A retry with other options (another page): a new id.
        let b2 = t.advance(a, cur("s", "c3"));
        assert_ne!(b2, b);
        assert_eq!(t.get(b2), cur("s", "c3"));
        assert_eq!(t.advance(b, None), 0);
        assert_eq!(t.advance(b, None), 0, "the last page, again");
        assert_eq!(t.get(12345), None);
    }

    #[test]
    fn oldest_is_evicted_first() {
        let t = Cursors::new(3, 1);
        let ids: Vec<u64> = (0..4).map(|i| t.advance(0, cur("s", &i.to_string()))).collect();
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(ids[0]), None);
        for (i, id) in ids.iter().enumerate().skip(1) {
            assert_eq!(t.get(*id), cur("s", &i.to_string()));
        }
        // A used cursor's successor is the newest.
        let n = t.advance(ids[1], cur("s", "x"));
        let _ = t.advance(0, cur("s", "y"));
        assert_eq!(t.get(ids[2]), None);
        assert!(t.get(n).is_some());
    }

    #[test]
    fn ids_wrap_below_the_limit() {
        let t = Cursors::new(10, ID_LIMIT - 2);
        let ids: Vec<u64> = (0..3).map(|_| t.advance(0, cur("s", "c"))).collect();
        assert_eq!(ids, [ID_LIMIT - 2, ID_LIMIT - 1, 1]);
        // A start out of range is brought into it.
        assert_eq!(Cursors::new(10, u64::MAX).advance(0, cur("s", "c")), ID_LIMIT - 1);
        assert_eq!(Cursors::new(10, 0).advance(0, cur("s", "c")), 1);
    }
}
