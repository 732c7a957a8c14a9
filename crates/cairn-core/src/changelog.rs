//! The durable change log's storage layout.
//!
//! A commit stores its events as *chunks*: one fjall entry per run of whole
//! revisions, keyed by the chunk's first revision (`revision BE ++ 0u32`),
//! valued `CHUNK ++ (varint revision − first, varint len, event)*`. One
//! entry per commit instead of one per event keeps the writer's memtable
//! inserts, and the trimmer's tombstones, per group rather than per write.
//!
//! Databases written before chunks hold one event per entry (key `revision
//! BE ++ index BE`, value an event, whose format byte is 1). Both are read.
//!
//! Invariants: a revision's events are never split across entries, and an
//! entry's revisions are non-decreasing and all below the next entry's key.

use crate::varint::{get_varint, put_varint};
use crate::{Error, Result};
use fjall::Keyspace;

/// First byte of a chunk (a single version-1 event starts with 1).
const CHUNK: u8 = 2;
/// A chunk is closed at the first revision boundary past this size.
const CHUNK_TARGET: usize = 64 << 10;

/// The key of the entry starting at `revision` (`idx` > 0 only in old logs).
pub(crate) fn key(revision: u64, idx: u32) -> [u8; 12] {
    let mut k = [0u8; 12];
    k[..8].copy_from_slice(&revision.to_be_bytes());
    k[8..].copy_from_slice(&idx.to_be_bytes());
    k
}

fn corrupt(what: &str) -> Error {
    Error::CorruptRecord(format!("change log: {what}"))
}

/// The revision an entry's key starts at.
pub(crate) fn key_revision(k: &[u8]) -> Result<u64> {
    let b: [u8; 8] = k
        .get(..8)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| corrupt("short key"))?;
    Ok(u64::from_be_bytes(b))
}

/// True when a stored value is a chunk (not a single old-format event).
pub(crate) fn is_chunk(v: &[u8]) -> bool {
    v.first() == Some(&CHUNK)
}

/// A position in [`Chunks`].
pub(crate) struct Mark {
    chunks: usize,
    bytes: usize,
    last_rev: u64,
}

/// Packs one commit's encoded events, in revision order, into chunks.
#[derive(Default)]
pub(crate) struct Chunks {
    /// `(first revision, chunk bytes)`.
    done: Vec<(u64, Vec<u8>)>,
    last_rev: u64,
}

impl Chunks {
    pub fn push(&mut self, revision: u64, event: &[u8]) {
        let full = self
            .done
            .last()
            .is_none_or(|(_, buf)| buf.len() >= CHUNK_TARGET && revision != self.last_rev);
        if full {
            let mut buf = Vec::with_capacity((event.len() + 8).min(CHUNK_TARGET) * 2);
            buf.push(CHUNK);
            self.done.push((revision, buf));
        }
        if let Some((first, buf)) = self.done.last_mut() {
            debug_assert!(revision >= *first && revision >= self.last_rev);
            put_varint(buf, revision - *first);
            put_varint(buf, event.len() as u64);
            buf.extend_from_slice(event);
        }
        self.last_rev = revision;
    }

    /// Where the log is now, to [`Chunks::rewind`] to.
    pub fn mark(&self) -> Mark {
        Mark {
            chunks: self.done.len(),
            bytes: self.done.last().map_or(0, |(_, b)| b.len()),
            last_rev: self.last_rev,
        }
    }

    /// Drops the events pushed since `m` (chunks only grow at their end).
    pub fn rewind(&mut self, m: Mark) {
        self.done.truncate(m.chunks);
        if let Some((_, b)) = self.done.last_mut() {
            b.truncate(m.bytes);
        }
        self.last_rev = m.last_rev;
    }

    /// `(key, value)` for each chunk.
    pub fn entries(&self) -> impl Iterator<Item = ([u8; 12], &[u8])> {
        self.done.iter().map(|(first, buf)| (key(*first, 0), buf.as_slice()))
    }
}

/// The events of one stored entry as `(revision, encoded event)`.
pub(crate) fn events(key_rev: u64, v: &[u8]) -> Result<Vec<(u64, &[u8])>> {
    if !is_chunk(v) {
        return if v.is_empty() {
            Err(corrupt("empty entry"))
        } else {
            Ok(vec![(key_rev, v)])
        };
    }
    let mut out = Vec::new();
    let mut pos = 1;
    while pos < v.len() {
        let bad = || corrupt(&format!("chunk at revision {key_rev} is truncated"));
        let delta = get_varint(v, &mut pos).ok_or_else(bad)?;
        let len = usize::try_from(get_varint(v, &mut pos).ok_or_else(bad)?).map_err(|_| bad())?;
        let end = pos.checked_add(len).filter(|&e| e <= v.len()).ok_or_else(bad)?;
        let rev = key_rev.checked_add(delta).ok_or_else(bad)?;
        if out.last().is_some_and(|&(r, _)| rev < r) {
            return Err(corrupt(&format!("chunk at revision {key_rev} goes backwards")));
        }
        out.push((rev, &v[pos..end]));
        pos = end;
    }
    if out.is_empty() {
        return Err(corrupt(&format!("chunk at revision {key_rev} holds no event")));
    }
    Ok(out)
}

/// The first key to read (or keep) to see every event at or after `from`:
/// the chunk holding `from` may start before it.
pub(crate) fn seek(ks: &Keyspace, from: u64) -> Result<[u8; 12]> {
    let start = key(from, 0);
    if let Some(kv) = ks.range(..start).next_back() {
        let (k, v) = kv.into_inner()?;
        let first = key_revision(&k)?;
        if is_chunk(&v) && events(first, &v)?.last().is_some_and(|&(r, _)| r >= from) {
            return Ok(key(first, 0));
        }
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_and_split_only_between_revisions() {
        let mut c = Chunks::default();
        let big = vec![7u8; CHUNK_TARGET];
        c.push(5, b"a");
        c.push(5, &big); // past the target, but revision 5 is not finished
        c.push(5, b"b");
        c.push(6, b"c"); // a new revision: a new chunk
        c.push(8, b"d");
        let entries: Vec<_> = c.entries().collect();
        assert_eq!(entries.len(), 2);
        assert_eq!(key_revision(&entries[0].0).unwrap(), 5);
        let first = events(5, entries[0].1).unwrap();
        assert_eq!(first.iter().map(|e| e.0).collect::<Vec<_>>(), [5, 5, 5]);
        assert_eq!(
            (first[0].1, first[1].1.len(), first[2].1),
            (&b"a"[..], CHUNK_TARGET, &b"b"[..])
        );
        assert_eq!(key_revision(&entries[1].0).unwrap(), 6);
        assert_eq!(events(6, entries[1].1).unwrap(), [(6, &b"c"[..]), (8, &b"d"[..])]);
    }

    #[test]
    fn old_single_events_and_bad_chunks() {
        assert_eq!(events(9, &[1, 2, 3]).unwrap(), [(9, &[1u8, 2, 3][..])]);
        assert!(events(9, &[]).is_err());
        assert!(events(9, &[CHUNK]).is_err(), "empty chunk");
        assert!(events(9, &[CHUNK, 0, 5, 1]).is_err(), "length past the end");
        assert!(events(9, &[CHUNK, 2, 1, 0, 0, 1, 0]).is_err(), "revisions go backwards");
    }
}
