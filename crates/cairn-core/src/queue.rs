//! The write queue: pending commands and who applies them (group commit).

use crate::db::Shared;
use crate::writer::{Job, MAX_GROUP, Writer};
use crate::{Error, Result};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Pending commands and the right to apply them.
///
/// Whoever holds `next_rev` is the leader: it drains the queue, applies and
/// commits one group, and after letting go re-checks the queue, so a job
/// pushed while the lock was held is never stranded. A synchronous caller
/// leads itself when the lock is free (no thread hand-off on the
/// uncontended path); async callers and leftovers wake the writer thread.
pub(crate) struct WriteQueue {
    jobs_tx: crossbeam_channel::Sender<Job>,
    jobs_rx: crossbeam_channel::Receiver<Job>,
    wake_tx: crossbeam_channel::Sender<()>,
    wake_rx: crossbeam_channel::Receiver<()>,
    /// The revision the next changing command gets; the leader's lock.
    next_rev: parking_lot::Mutex<u64>,
    closed: std::sync::atomic::AtomicBool,
}

impl WriteQueue {
    pub fn new(revision: u64) -> WriteQueue {
        let (jobs_tx, jobs_rx) = crossbeam_channel::unbounded();
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        WriteQueue {
            jobs_tx,
            jobs_rx,
            wake_tx,
            wake_rx,
            next_rev: parking_lot::Mutex::new(revision + 1),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn push(&self, job: Job) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        self.jobs_tx.send(job).map_err(|_| Error::Closed)
    }

    fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// Queues a job for the writer thread.
    pub fn submit_async(&self, job: Job) -> Result<()> {
        self.push(job)?;
        self.wake();
        Ok(())
    }

    /// Queues a job and, if nobody is leading, leads one round itself.
    pub fn submit_sync(&self, shared: &Shared, job: Job) -> Result<()> {
        self.push(job)?;
        if let Some(mut next) = self.next_rev.try_lock() {
            self.round(shared, &mut next);
            drop(next);
            if !self.jobs_rx.is_empty() {
                self.wake();
            }
        }
        Ok(())
    }

    /// Drains up to a group's worth of jobs and applies them.
    fn round(&self, shared: &Shared, next: &mut u64) {
        let mut jobs = Vec::new();
        while jobs.len() < MAX_GROUP {
            match self.jobs_rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        if jobs.is_empty() {
            return;
        }
        let mut w = Writer {
            shared,
            next_rev: *next,
        };
        w.process(jobs);
        *next = w.next_rev;
    }

    /// Runs `f` as the leader (a transaction): no group is applied
    /// meanwhile; queued jobs are led once it lets go.
    pub fn exclusive<R>(&self, shared: &Shared, f: impl FnOnce(&mut Writer<'_>) -> R) -> Result<R> {
        let mut next = self.next_rev.lock();
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let mut w = Writer {
            shared,
            next_rev: *next,
        };
        let r = f(&mut w);
        *next = w.next_rev;
        drop(next);
        if !self.jobs_rx.is_empty() {
            self.wake();
        }
        Ok(r)
    }

    /// Runs `f` while no group is being applied or published (holding the
    /// leader's lock).
    pub fn between_groups<R>(&self, f: impl FnOnce() -> R) -> R {
        let _leader = self.next_rev.lock();
        f()
    }

    /// Stops the writer thread once the queue is empty.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }
}

/// The writer thread: leads rounds whenever woken until closed.
pub(crate) fn run(shared: &Arc<Shared>, queue: &WriteQueue) {
    loop {
        // The timeout is a safety net only; every push that needs this thread wakes it.
        let _ = queue.wake_rx.recv_timeout(std::time::Duration::from_millis(100));
        loop {
            let mut next = queue.next_rev.lock();
            queue.round(shared, &mut next);
            drop(next);
            if queue.jobs_rx.is_empty() {
                break;
            }
        }
        if queue.closed.load(Ordering::Acquire) && queue.jobs_rx.is_empty() {
            return;
        }
    }
}
