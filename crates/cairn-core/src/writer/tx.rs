//! Transactions: a caller's code run as the writer.
//!
//! The code reads and writes through a [`Tx`]: each write sees the ones
//! before it, as staged in the group, and no other command is applied
//! while the code runs. Nothing is visible to other readers before the
//! group commits (one fjall batch, one fsync, events after it). This is
//! what a front end needs for code that must read and write without anyone
//! else writing in between (Redis's scripts); a plain batch with checks
//! does not need it.
//!
//! - [`Db::transaction_async`] queues the code as a job: the leader runs it
//!   in order with the other jobs, in the group it is building, so
//!   transactions share group commits (and fsyncs) with everything else.
//!   A savepoint lets [`Tx::discard`] take back only the transaction's
//!   part of the group.
//! - [`Db::transaction`] takes the leader's lock from the calling thread
//!   and commits the code's writes as a group of their own.
//!
//! Each [`Tx::write`] is one command and gets its own revision when it
//! changes something. The code holds up every writer while it runs, so it
//! must be short; a transaction that gives up ([`Tx::discard`]) leaves
//! nothing behind.

use super::{Group, Job, Replier, Writer};
use crate::{Applied, Check, Db, Entry, Error, Op, OpOutcome, Result, WriteOutcome};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Reads and writes of one transaction.
pub struct Tx<'t, 's> {
    w: &'t mut Writer<'s>,
    g: &'t mut Group,
    discard: bool,
}

/// Runs a transaction job in the group being built (see the module docs).
pub(super) fn run_in_group(
    w: &mut Writer<'_>,
    g: &mut Group,
    work: Box<dyn FnOnce(&mut Tx<'_, '_>) + Send>,
) -> Result<Applied> {
    g.savepoint(w.next_rev);
    let mut tx = Tx { w, g, discard: false };
    work(&mut tx);
    let Tx { w, g, discard } = tx;
    if discard {
        if let Some(next) = g.rollback() {
            w.next_rev = next;
        }
    } else {
        g.release();
    }
    Ok(Applied::Expired {
        expired: false,
        revision: w.revision(),
    })
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
        self.w.apply_write(self.g, checks, ops)
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
    /// Queues `f` to run as the writer, in order with other commands, and
    /// resolves with its result once what it wrote is committed (with the
    /// group it joined: see the module docs of `writer::tx`). Other readers
    /// see all of the transaction's writes at once, after the commit, or
    /// none of them. `f` runs on the writer's thread.
    ///
    /// # Errors
    /// [`Error::Closed`] after [`Db::close`]; [`Error::Unavailable`] when
    /// writes are refused or the commit fails (then `f`'s result is lost
    /// with its writes).
    pub async fn transaction_async<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Tx<'_, '_>) -> R + Send + 'static,
    ) -> Result<R> {
        let slot = Arc::new(parking_lot::Mutex::new(None));
        let filled = slot.clone();
        let (done, rx) = tokio::sync::oneshot::channel();
        let job = Job::transaction(
            Box::new(move |tx| *filled.lock() = Some(f(tx))),
            Box::new(move |r: Result<Applied>| {
                let out = r.and_then(|_| slot.lock().take().ok_or(Error::Closed));
                drop(done.send(out));
            }),
        );
        self.shared.queue.submit_async(job)?;
        rx.await.map_err(|_| Error::Closed)?
    }

    /// Runs `f` as the only writer, on this thread, and commits what it
    /// wrote as a group of its own (see the module docs of `writer::tx`). Other readers see all of the
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
            let mut g = Group::default();
            let mut tx = Tx {
                w: &mut *w,
                g: &mut g,
                discard: false,
            };
            let r = f(&mut tx);
            let discard = tx.discard;
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
