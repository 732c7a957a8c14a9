//! Transactions: a caller's code run as the writer, between groups.
//!
//! [`Db::transaction`] takes the leader's lock (so no other command is
//! applied meanwhile), lets the caller read and write through a [`Tx`]
//! (each write sees the ones before it, as staged in the group), and then
//! commits everything the closure wrote as ONE group: one fjall batch, one
//! fsync, events published after it. Nothing is visible to other readers
//! before that commit. This is what a front end needs for code that must
//! read and write without anyone else writing in between (Redis's
//! scripts); a plain batch with checks does not need it.
//!
//! Each [`Tx::write`] is one command of the group and gets its own
//! revision when it changes something. The closure holds up every writer
//! while it runs, so it must be short; a caller that gives up
//! ([`Tx::discard`]) leaves nothing behind.

use super::{Group, Replier, Writer};
use crate::{Applied, Check, Db, Entry, Error, Op, OpOutcome, Result, WriteOutcome};
use std::sync::atomic::Ordering;

/// Reads and writes of one [`Db::transaction`].
pub struct Tx<'t, 's> {
    w: &'t mut Writer<'s>,
    g: Group,
    discard: bool,
}

impl Tx<'_, '_> {
    /// Applies one write (checks, then operations) on top of what this
    /// transaction wrote before. As [`Db::batch`], a failed check is an
    /// outcome with `success: false`, and an error changes nothing.
    ///
    /// # Errors
    /// As [`Db::batch`].
    pub fn write(&mut self, checks: Vec<Check>, ops: Vec<Op>) -> Result<WriteOutcome> {
        if self.w.shared.poisoned.load(Ordering::Acquire) {
            return Err(self.w.shared.unavailable());
        }
        self.w.apply_write(&mut self.g, checks, ops)
    }

    /// A key's entry as this transaction sees it (its own writes included).
    ///
    /// # Errors
    /// An unknown store or an invalid key.
    pub fn get(&mut self, store: &str, key: &[u8]) -> Result<Option<Entry>> {
        let op = Op::Get {
            store: store.to_owned(),
            key: key.to_vec(),
        };
        let out = self.write(Vec::new(), vec![op])?;
        Ok(match out.ops.into_iter().next() {
            Some(OpOutcome::Get { entry }) => entry.map(|e| *e),
            _ => None,
        })
    }

    /// The latest revision, this transaction's writes included.
    pub fn revision(&self) -> u64 {
        self.w.revision()
    }

    /// Drops everything this transaction wrote: nothing is committed.
    pub fn discard(&mut self) {
        self.discard = true;
    }
}

impl Db {
    /// Runs `f` as the only writer and commits what it wrote as one group
    /// (see the module docs of `writer::tx`). Other readers see all of the
    /// transaction's writes at once, after the commit, or none of them.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Db::close`]; [`Error::Unavailable`] when
    /// writes are refused or the commit fails (then `f`'s result is lost
    /// with its writes).
    pub fn transaction<R>(&self, f: impl FnOnce(&mut Tx<'_, '_>) -> R) -> Result<R> {
        let shared = &*self.shared;
        shared.queue.exclusive(shared, |w| {
            if shared.poisoned.load(Ordering::Acquire) {
                return Err(shared.unavailable());
            }
            if shared.config.durability == crate::Durability::Sync {
                shared.check_data_dir();
            }
            let first = w.next_rev;
            let mut tx = Tx {
                w,
                g: Group::default(),
                discard: false,
            };
            let r = f(&mut tx);
            let Tx { w, mut g, discard } = tx;
            if discard {
                // Never committed: nobody can have seen these revisions.
                w.next_rev = first;
                return Ok(r);
            }
            // The commit answers its callers; this one waits on a channel.
            let (done, rx) = crossbeam_channel::bounded(1);
            let revision = w.revision();
            g.replies.push((
                Replier::Blocking(done),
                Ok(Applied::Expired {
                    expired: false,
                    revision,
                }),
            ));
            w.commit(g);
            match rx.try_recv() {
                Ok(Ok(_)) => Ok(r),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(Error::Closed),
            }
        })?
    }
}
