//! Watching changes: an in-memory ring of recent events in front of the
//! durable change log, and subscriptions that read from either.
//!
//! A subscription is only a cursor (`next` revision) and a filter: it holds
//! no buffer the writer must fill, so a subscriber that stops reading never
//! slows writers and never loses events; when it comes back it reads what it
//! missed from the ring, or from the change log if the ring moved on.

use crate::changelog;
use crate::db::Shared;
use crate::{Error, Event, Result};
use parking_lot::{Condvar, Mutex, RwLock};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

struct Ring {
    events: VecDeque<Arc<Event>>,
    /// The size of each event in `events` (its change-log encoding).
    sizes: VecDeque<usize>,
    /// Sum of `sizes`.
    bytes: usize,
    /// Every event with revision >= `start` is in `events`.
    start: u64,
}

pub(crate) struct Hub {
    ring: RwLock<Ring>,
    /// Most events kept.
    cap: usize,
    /// Most bytes of events kept: with large values, a count alone would
    /// let the ring hold gigabytes.
    byte_cap: usize,
    tx: tokio::sync::watch::Sender<u64>,
    sync_wait: (Mutex<u64>, Condvar),
}

impl Hub {
    pub fn new(cap: usize, byte_cap: usize, revision: u64) -> Hub {
        Hub {
            ring: RwLock::new(Ring {
                events: VecDeque::with_capacity(cap.min(4096)),
                sizes: VecDeque::with_capacity(cap.min(4096)),
                bytes: 0,
                start: revision + 1,
            }),
            cap,
            byte_cap,
            tx: tokio::sync::watch::Sender::new(revision),
            sync_wait: (Mutex::new(revision), Condvar::new()),
        }
    }

    /// Appends committed events, each with its size in bytes (called by
    /// the writer before it publishes the revision), then drops the oldest
    /// while the ring holds more events or bytes than its caps. Watchers
    /// behind the ring read the change log instead.
    pub fn publish(&self, events: Vec<Event>, sizes: &[usize]) {
        if events.is_empty() {
            return;
        }
        let mut ring = self.ring.write();
        for (e, &size) in events.into_iter().zip(sizes) {
            ring.events.push_back(Arc::new(e));
            ring.sizes.push_back(size);
            ring.bytes += size;
        }
        while ring.events.len() > self.cap || ring.bytes > self.byte_cap {
            let Some(e) = ring.events.pop_front() else { break };
            let size = ring.sizes.pop_front().unwrap_or(0);
            ring.bytes -= size.min(ring.bytes);
            ring.start = ring.start.max(e.revision + 1);
        }
    }

    /// Events and bytes held in memory.
    #[cfg(test)]
    fn held(&self) -> (usize, usize) {
        let r = self.ring.read();
        (r.events.len(), r.bytes)
    }

    /// Wakes waiters after the revision became visible.
    pub fn notify(&self, revision: u64) {
        self.tx.send_replace(revision);
        let (m, cv) = &self.sync_wait;
        *m.lock() = revision;
        cv.notify_all();
    }
}

/// Which events a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this store (all stores when `None`).
    pub store: Option<String>,
    /// Only this exact key (text form).
    pub key: Option<String>,
    /// Only keys starting with this prefix.
    pub prefix: Option<String>,
}

impl Filter {
    /// True when the event passes the filter. `cleared` events pass any key
    /// or prefix filter of their store: every key of it was removed.
    #[must_use]
    pub fn matches(&self, e: &Event) -> bool {
        if self.store.as_ref().is_some_and(|s| *s != e.store) {
            return false;
        }
        let Some(k) = &e.key else { return true };
        if self.key.as_ref().is_some_and(|want| want != k) {
            return false;
        }
        if self.prefix.as_ref().is_some_and(|p| !k.starts_with(p.as_str())) {
            return false;
        }
        true
    }
}

/// A cursor over committed events matching a filter.
pub struct Subscription {
    shared: Arc<Shared>,
    filter: Filter,
    next: u64,
    rx: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("filter", &self.filter)
            .field("next", &self.next)
            .finish()
    }
}

impl crate::Db {
    /// Subscribes to changes matching `filter`, starting at `from_revision`
    /// (inclusive; `None`: only changes after now).
    ///
    /// # Errors
    /// [`Error::Compacted`] when `from_revision` is older than the change log
    /// keeps; [`Error::InvalidArgument`] when it is beyond the next revision;
    /// [`Error::UnknownStore`] for a filter on a missing store;
    /// [`Error::InvalidKey`] for a key its store's key type refuses, and
    /// [`Error::InvalidArgument`] for a prefix on an `int` or `uuid` store.
    ///
    /// With a store, a key filter is read as that store's writes read it, so
    /// `007` watches int key 7 and an upper-case UUID its lower-case form.
    pub fn subscribe(&self, mut filter: Filter, from_revision: Option<u64>) -> Result<Subscription> {
        if let Some(s) = &filter.store {
            let h = self.store(s)?;
            if let Some(k) = &filter.key {
                let key = crate::Key::parse(h.spec.key_type, k.as_bytes()).map_err(|reason| Error::InvalidKey {
                    store: s.clone(),
                    reason: format!("watch key {k:?}: {reason}"),
                })?;
                filter.key = Some(key.to_string());
            }
            if filter.prefix.is_some() && !h.spec.key_type.supports_prefix() {
                return Err(Error::InvalidArgument(format!(
                    "a prefix filter needs a string or bytes store; store {s:?} has {} keys",
                    h.spec.key_type.as_str()
                )));
            }
        }
        let rx = self.shared.hub.tx.subscribe();
        let current = self.revision();
        let next = match from_revision {
            None | Some(0) => current + 1,
            Some(r) if r > current + 1 => {
                // Waiting for revisions that do not exist yet would skip the
                // ones written before them (a client holding a revision from
                // another database, or from before a restore).
                return Err(Error::InvalidArgument(format!(
                    "from_revision {r} is beyond the current revision {current}: resume from a revision this \
                     database has given out, or leave it out to watch from now"
                )));
            }
            Some(r) => {
                let oldest = self.oldest_revision();
                if r < oldest {
                    return Err(Error::Compacted { requested: r, oldest });
                }
                r
            }
        };
        Ok(Subscription {
            shared: self.shared.clone(),
            filter,
            next,
            rx,
        })
    }
}

impl Subscription {
    /// The revision the next event will have at least.
    #[must_use]
    pub fn next_revision(&self) -> u64 {
        self.next
    }

    /// The last committed revision of the database.
    #[must_use]
    pub fn current_revision(&self) -> u64 {
        self.shared.revision.load(Ordering::Acquire)
    }

    /// Skips every committed event not yet seen, without reading them: for
    /// a subscriber that has nobody to pass them to right now.
    pub fn skip_to_current(&mut self) {
        self.next = self.next.max(self.current_revision() + 1);
    }

    /// Returns committed events not yet seen (up to about `max`; whole
    /// revisions are never split), without blocking. Empty when caught up.
    ///
    /// # Errors
    /// [`Error::Compacted`] if the subscriber fell behind the retained log.
    pub fn poll(&mut self, max: usize) -> Result<Vec<Arc<Event>>> {
        let current = self.current_revision();
        if self.next > current {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        {
            let ring = self.shared.hub.ring.read();
            if self.next >= ring.start {
                let from = ring.events.partition_point(|e| e.revision < self.next);
                let mut last = self.next - 1;
                let mut stopped = false;
                for e in ring.events.range(from..) {
                    if e.revision > current {
                        break;
                    }
                    if out.len() >= max && e.revision != last {
                        stopped = true;
                        break;
                    }
                    last = e.revision;
                    if self.filter.matches(e) {
                        out.push(e.clone());
                    }
                }
                self.next = if stopped { last + 1 } else { current + 1 };
                return Ok(out);
            }
        }
        self.poll_log(max, current, &mut out)?;
        Ok(out)
    }

    fn poll_log(&mut self, max: usize, current: u64, out: &mut Vec<Arc<Event>>) -> Result<()> {
        let log = &self.shared.ks.changelog;
        let start = changelog::seek(log, self.next)?;
        let end = changelog::key(current, u32::MAX);
        let mut last = self.next - 1;
        let mut stopped = false;
        'entries: for kv in log.range(start..=end) {
            let (k, v) = kv.into_inner()?;
            let first = changelog::key_revision(&k)?;
            for (rev, bytes) in changelog::events(first, &v)? {
                if rev < self.next {
                    continue;
                }
                if rev > current || (out.len() >= max && rev != last) {
                    stopped = true;
                    break 'entries;
                }
                last = rev;
                let e = Event::decode(rev, bytes)?;
                if self.filter.matches(&e) {
                    out.push(Arc::new(e));
                }
            }
        }
        // Retention may have removed what we were reading: never hand out a gap.
        let oldest = self.shared.oldest.load(Ordering::Acquire);
        if self.next < oldest {
            return Err(Error::Compacted {
                requested: self.next,
                oldest,
            });
        }
        self.next = if stopped { last + 1 } else { current + 1 };
        Ok(())
    }

    /// Waits (async) until a revision at or after [`Subscription::next_revision`] is committed.
    pub async fn changed(&mut self) {
        let next = self.next;
        let _ = self.rx.wait_for(|r| *r >= next).await;
    }

    /// Blocks until a new revision is committed or `timeout` passes; true if one was.
    pub fn wait_timeout(&mut self, timeout: Duration) -> bool {
        let (m, cv) = &self.shared.hub.sync_wait;
        let mut rev = m.lock();
        if *rev >= self.next {
            return true;
        }
        let _ = cv.wait_for(&mut rev, timeout);
        *rev >= self.next
    }
}

#[cfg(test)]
mod tests {
    use super::Hub;
    use crate::{Event, EventKind};

    fn event(revision: u64) -> Event {
        Event {
            revision,
            store: "default".into(),
            key: Some(format!("k{revision}")),
            kind: EventKind::Created,
            old_value: None,
            new_value: None,
            timestamp: 0,
            raw_key: Vec::new(),
            op: "set",
        }
    }

    #[test]
    fn the_ring_is_capped_by_bytes_as_well_as_by_count() {
        let hub = Hub::new(100, 1000, 0);
        for r in 1..=10 {
            hub.publish(vec![event(r)], &[300]);
        }
        assert_eq!(hub.held(), (3, 900), "bytes cap: 3 events of 300");
        assert_eq!(hub.ring.read().start, 8, "events before 8 are left to the change log");
        let hub = Hub::new(4, 1 << 20, 0);
        hub.publish((1..=10).map(event).collect(), &[10; 10]);
        assert_eq!(hub.held(), (4, 40), "count cap");
        // One event above the whole cap is not kept either.
        hub.publish(vec![event(11)], &[2 << 20]);
        assert_eq!(hub.held(), (0, 0));
        assert_eq!(hub.ring.read().start, 12);
    }
}
