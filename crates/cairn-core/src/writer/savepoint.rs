//! Savepoints: what one transaction staged in a group it shares with other
//! commands, so that dropping the transaction ([`super::tx::Tx::discard`])
//! leaves the rest of the group as it was.
//!
//! While a savepoint is open, every change to the group's maps records the
//! slot it replaced; rolling back puts those back in reverse order and cuts
//! the events and the change log back to where they were.

use super::Group;
use crate::entry::Record;
use std::sync::Arc;

/// A map entry as it was before a change: `None` when the key was absent.
type Before<K, V> = Vec<(K, Option<V>)>;

pub(crate) struct Savepoint {
    next_rev: u64,
    events: usize,
    log: crate::changelog::Mark,
    key_stats: crate::keystats::Deltas,
    min_expiry: Option<u64>,
    changed: bool,
    data: Before<Vec<u8>, Option<Arc<Record>>>,
    expiry: Before<Vec<u8>, bool>,
    history: Before<Vec<u8>, Option<Vec<u8>>>,
}

impl Group {
    /// Stages a record (or a deletion) for a storage key.
    pub(crate) fn set_data(&mut self, k: Vec<u8>, v: Option<Arc<Record>>) {
        match &mut self.undo {
            None => {
                self.data.insert(k, v);
            }
            Some(u) => {
                let before = self.data.insert(k.clone(), v);
                u.data.push((k, before));
            }
        }
    }

    /// Stages an expiry-index entry (`true`) or its removal.
    pub(crate) fn set_expiry(&mut self, k: Vec<u8>, present: bool) {
        match &mut self.undo {
            None => {
                self.expiry.insert(k, present);
            }
            Some(u) => {
                let before = self.expiry.insert(k.clone(), present);
                u.expiry.push((k, before));
            }
        }
    }

    /// Stages a history version (or its removal).
    pub(crate) fn set_history(&mut self, k: Vec<u8>, v: Option<Vec<u8>>) {
        match &mut self.undo {
            None => {
                self.history.insert(k, v);
            }
            Some(u) => {
                let before = self.history.insert(k.clone(), v);
                u.history.push((k, before));
            }
        }
    }

    /// Opens a savepoint; `next_rev` is the revision the next command gets.
    pub(crate) fn savepoint(&mut self, next_rev: u64) {
        self.undo = Some(Box::new(Savepoint {
            next_rev,
            events: self.events.len(),
            log: self.log.mark(),
            key_stats: self.key_stats.clone(),
            min_expiry: self.min_expiry,
            changed: self.changed,
            data: Vec::new(),
            expiry: Vec::new(),
            history: Vec::new(),
        }));
    }

    /// Keeps what was staged since the savepoint.
    pub(crate) fn release(&mut self) {
        self.undo = None;
    }

    /// Undoes what was staged since the savepoint; returns the revision
    /// the next command gets again (nobody saw the ones in between).
    pub(crate) fn rollback(&mut self) -> Option<u64> {
        let u = self.undo.take()?;
        for (k, before) in u.data.into_iter().rev() {
            match before {
                Some(v) => self.data.insert(k, v),
                None => self.data.remove(&k),
            };
        }
        for (k, before) in u.expiry.into_iter().rev() {
            match before {
                Some(v) => self.expiry.insert(k, v),
                None => self.expiry.remove(&k),
            };
        }
        for (k, before) in u.history.into_iter().rev() {
            match before {
                Some(v) => self.history.insert(k, v),
                None => self.history.remove(&k),
            };
        }
        self.events.truncate(u.events);
        self.event_sizes.truncate(u.events);
        self.log.rewind(u.log);
        self.key_stats = u.key_stats;
        self.min_expiry = u.min_expiry;
        self.changed = u.changed;
        Some(u.next_rev)
    }
}
