//! Publish/subscribe: plain channels (`PUBLISH`) and Redis keyspace
//! notifications fed from the engine's change events.
//!
//! The hub is a registry of subscribed connections, each with a bounded
//! queue. Delivery never blocks: a subscriber whose queue is full is dropped
//! from the registry, its queue closes and its connection is closed, which is
//! what Redis does to pub/sub clients over their output buffer limit.

use super::glob::glob_match;
use crate::auth::{Principal, Role};
use cairn_core::{Db, Event, Filter};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Messages queued per subscriber before it counts as too slow.
const QUEUE: usize = 16 * 1024;

/// A message for one subscriber.
#[derive(Debug, Clone)]
pub enum Message {
    /// Matched a channel subscription.
    Message { channel: Arc<[u8]>, payload: Arc<[u8]> },
    /// Matched a pattern subscription.
    PMessage {
        pattern: Arc<[u8]>,
        channel: Arc<[u8]>,
        payload: Arc<[u8]>,
    },
}

struct Subscriber {
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
    principal: Principal,
    tx: mpsc::Sender<Message>,
}

/// Keyspace notification classes (Redis `notify-keyspace-events` letters).
pub mod flags {
    /// `K`: `__keyspace@<db>__:<key>` channels.
    pub const KEYSPACE: u32 = 1 << 0;
    /// `E`: `__keyevent@<db>__:<event>` channels.
    pub const KEYEVENT: u32 = 1 << 1;
    /// `g`: generic commands (del, expire, persist, ...).
    pub const GENERIC: u32 = 1 << 2;
    /// `$`: string commands (set, incrby, ...).
    pub const STRING: u32 = 1 << 3;
    /// `l`
    pub const LIST: u32 = 1 << 4;
    /// `s`
    pub const SET: u32 = 1 << 5;
    /// `h`
    pub const HASH: u32 = 1 << 6;
    /// `z`
    pub const ZSET: u32 = 1 << 7;
    /// `x`: expired keys.
    pub const EXPIRED: u32 = 1 << 8;
    /// `e`: evicted keys.
    pub const EVICTED: u32 = 1 << 9;
    /// `t`
    pub const STREAM: u32 = 1 << 10;
    /// `d`
    pub const MODULE: u32 = 1 << 11;
    /// `m`: key misses (not part of `A`).
    pub const MISS: u32 = 1 << 12;
    /// `n`: new keys (not part of `A`).
    pub const NEW: u32 = 1 << 13;
    /// `A`: every class but `m` and `n`.
    pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;
}

/// Parses a `notify-keyspace-events` value.
///
/// # Errors
/// The first letter Redis does not know.
pub fn parse_flags(s: &str) -> Result<u32, char> {
    let mut f = 0;
    for c in s.chars() {
        f |= match c {
            'A' => flags::ALL,
            'g' => flags::GENERIC,
            '$' => flags::STRING,
            'l' => flags::LIST,
            's' => flags::SET,
            'h' => flags::HASH,
            'z' => flags::ZSET,
            'x' => flags::EXPIRED,
            'e' => flags::EVICTED,
            't' => flags::STREAM,
            'd' => flags::MODULE,
            'm' => flags::MISS,
            'n' => flags::NEW,
            'K' => flags::KEYSPACE,
            'E' => flags::KEYEVENT,
            other => return Err(other),
        };
    }
    Ok(f)
}

/// Renders flags the way `CONFIG GET notify-keyspace-events` shows them.
#[must_use]
pub fn format_flags(f: u32) -> String {
    let mut s = String::new();
    if f & flags::ALL == flags::ALL {
        s.push('A');
    } else {
        for (bit, c) in [
            (flags::GENERIC, 'g'),
            (flags::STRING, '$'),
            (flags::LIST, 'l'),
            (flags::SET, 's'),
            (flags::HASH, 'h'),
            (flags::ZSET, 'z'),
            (flags::EXPIRED, 'x'),
            (flags::EVICTED, 'e'),
            (flags::STREAM, 't'),
            (flags::MODULE, 'd'),
        ] {
            if f & bit != 0 {
                s.push(c);
            }
        }
    }
    // Redis's order (keyspaceEventsFlagsToString): K and E before m and n.
    for (bit, c) in [
        (flags::KEYSPACE, 'K'),
        (flags::KEYEVENT, 'E'),
        (flags::MISS, 'm'),
        (flags::NEW, 'n'),
    ] {
        if f & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// The notification class of an engine operation name (`Event::op`).
fn class_of(op: &str) -> u32 {
    match op {
        "set" | "incrby" | "incrbyfloat" | "append" | "setrange" => flags::STRING,
        "expired" => flags::EXPIRED,
        "del" | "expire" | "persist" | "rename_from" | "rename_to" | "copy_to" | "move_from" | "move_to" => {
            flags::GENERIC
        }
        "new" => flags::NEW,
        _ => 0,
    }
}

/// The Redis database name of a store in channel names: `default` is `0`
/// (where plain Redis clients land), every other store its own name.
#[must_use]
pub fn db_name(store: &str) -> &str {
    if store == cairn_core::DEFAULT_STORE { "0" } else { store }
}

/// The store a keyspace notification channel (`__keyspace@<db>__:...` or
/// `__keyevent@<db>__:...`) belongs to; `None` for any other channel.
#[must_use]
pub fn notification_store(channel: &[u8]) -> Option<String> {
    let rest = channel
        .strip_prefix(b"__keyspace@")
        .or_else(|| channel.strip_prefix(b"__keyevent@"))?;
    let end = rest.windows(3).position(|w| w == b"__:")?;
    let db = std::str::from_utf8(&rest[..end]).ok()?;
    Some(if db == "0" {
        cairn_core::DEFAULT_STORE.to_owned()
    } else {
        db.to_owned()
    })
}

/// The registry of subscribers.
pub struct Hub {
    subs: std::sync::Mutex<HashMap<u64, Subscriber>>,
    notify: AtomicU32,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            subs: std::sync::Mutex::new(HashMap::new()),
            notify: AtomicU32::new(flags::KEYSPACE | flags::KEYEVENT | flags::ALL),
        }
    }
}

/// Which subscription list a (un)subscribe acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `SUBSCRIBE` channels.
    Channel,
    /// `PSUBSCRIBE` patterns.
    Pattern,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Subscriber>> {
        self.subs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Current notification flags.
    pub fn notify_flags(&self) -> u32 {
        self.notify.load(Ordering::Relaxed)
    }

    /// Replaces the notification flags.
    pub fn set_notify_flags(&self, f: u32) {
        self.notify.store(f, Ordering::Relaxed);
    }

    /// Adds a subscription for connection `id`; returns its new subscription
    /// count and, on the first subscription, the queue to read messages from.
    pub fn subscribe(
        &self,
        id: u64,
        principal: &Principal,
        kind: Kind,
        name: &[u8],
    ) -> (usize, Option<mpsc::Receiver<Message>>) {
        let mut subs = self.lock();
        let mut rx = None;
        let s = subs.entry(id).or_insert_with(|| {
            let (tx, r) = mpsc::channel(QUEUE);
            rx = Some(r);
            Subscriber {
                channels: BTreeSet::new(),
                patterns: BTreeSet::new(),
                principal: principal.clone(),
                tx,
            }
        });
        match kind {
            Kind::Channel => s.channels.insert(name.to_vec()),
            Kind::Pattern => s.patterns.insert(name.to_vec()),
        };
        (s.channels.len() + s.patterns.len(), rx)
    }

    /// Removes subscriptions (`names` empty: all of that kind). Returns the
    /// names removed (the requested ones, subscribed or not) and the count left.
    pub fn unsubscribe(&self, id: u64, kind: Kind, names: &[Vec<u8>]) -> (Vec<(Vec<u8>, usize)>, usize) {
        let mut subs = self.lock();
        let Some(s) = subs.get_mut(&id) else {
            return (names.iter().map(|n| (n.clone(), 0)).collect(), 0);
        };
        let (set, other) = match kind {
            Kind::Channel => (&mut s.channels, s.patterns.len()),
            Kind::Pattern => (&mut s.patterns, s.channels.len()),
        };
        let names: Vec<Vec<u8>> = if names.is_empty() {
            set.iter().cloned().collect()
        } else {
            names.to_vec()
        };
        // Each reply carries the count after its own removal, as Redis
        // reports them: a name not subscribed leaves the count as it is.
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            set.remove(&n);
            out.push((n, set.len() + other));
        }
        let left = s.channels.len() + s.patterns.len();
        if left == 0 {
            subs.remove(&id);
        }
        (out, left)
    }

    /// Forgets a connection.
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Connections with at least one subscription.
    pub fn subscriber_count(&self) -> usize {
        self.lock().len()
    }

    /// Channels with at least one subscriber, optionally matching a pattern.
    pub fn channels(&self, pattern: Option<&[u8]>) -> Vec<Vec<u8>> {
        let subs = self.lock();
        let mut all: BTreeSet<Vec<u8>> = BTreeSet::new();
        for s in subs.values() {
            all.extend(
                s.channels
                    .iter()
                    .filter(|c| pattern.is_none_or(|p| glob_match(p, c)))
                    .cloned(),
            );
        }
        all.into_iter().collect()
    }

    /// Subscribers of a channel (pattern subscriptions not counted, as in Redis).
    pub fn numsub(&self, channel: &[u8]) -> usize {
        self.lock().values().filter(|s| s.channels.contains(channel)).count()
    }

    /// Number of pattern subscriptions over all connections (`PUBSUB NUMPAT`).
    pub fn num_patterns(&self) -> usize {
        self.lock().values().map(|s| s.patterns.len()).sum()
    }

    /// Delivers to every matching subscriber; returns how many received it.
    /// `allowed` says whether a subscriber may see the message at all.
    fn deliver(&self, channels: &[&[u8]], payload: &[u8], allowed: impl Fn(&Principal) -> bool) -> usize {
        let mut subs = self.lock();
        if subs.is_empty() {
            return 0;
        }
        let payload: Arc<[u8]> = payload.into();
        let mut delivered = 0;
        let mut slow = Vec::new();
        for (id, s) in subs.iter() {
            if !allowed(&s.principal) {
                continue;
            }
            let mut msgs = Vec::new();
            if let Some(c) = channels.iter().find(|c| s.channels.contains(**c)) {
                msgs.push(Message::Message {
                    channel: (*c).into(),
                    payload: payload.clone(),
                });
            }
            for p in &s.patterns {
                if let Some(c) = channels.iter().find(|c| glob_match(p, c)) {
                    msgs.push(Message::PMessage {
                        pattern: p.as_slice().into(),
                        channel: (*c).into(),
                        payload: payload.clone(),
                    });
                }
            }
            // As Redis counts: one per message sent (a client subscribed to
            // the channel and to a matching pattern counts twice).
            delivered += msgs.len();
            for m in msgs {
                if s.tx.try_send(m).is_err() {
                    slow.push(*id);
                    break;
                }
            }
        }
        for id in slow {
            tracing::warn!(client = id, "closing a pub/sub client that fell too far behind");
            subs.remove(&id);
        }
        delivered
    }

    /// How many messages a `PUBLISH` on `channel` would send now.
    pub fn receivers(&self, channel: &[u8]) -> usize {
        self.lock()
            .values()
            .map(|s| {
                usize::from(s.channels.contains(channel)) + s.patterns.iter().filter(|p| glob_match(p, channel)).count()
            })
            .sum()
    }

    /// `PUBLISH`: returns how many messages were sent (per client, one for
    /// the channel and one per matching pattern).
    pub fn publish(&self, channel: &[u8], payload: &[u8]) -> usize {
        self.deliver(&[channel], payload, |_| true)
    }

    /// Turns one engine event into keyspace / keyevent notifications: one
    /// per name in `e.op` (`set+expire` is `set`, then `expire`, as Redis
    /// notifies a SET with EX).
    pub fn keyspace_event(&self, e: &Event) {
        // Redis sends `new` (class `n`, not part of `A`) when a key is
        // created, before the command's own event.
        if e.kind == cairn_core::EventKind::Created {
            self.keyspace_op(e, "new");
        }
        for op in e.op.split('+') {
            self.keyspace_op(e, op);
        }
    }

    fn keyspace_op(&self, e: &Event, op: &str) {
        let f = self.notify_flags();
        let class = class_of(op);
        if f & class == 0 || f & (flags::KEYSPACE | flags::KEYEVENT) == 0 || e.key.is_none() {
            return;
        }
        let readable = |p: &Principal| p.allow(Role::Read, Some(&e.store)).is_ok();
        // `default` is database 0; a subscriber may also name it `default`.
        let mut dbs = vec![db_name(&e.store)];
        if e.store == cairn_core::DEFAULT_STORE {
            dbs.push(cairn_core::DEFAULT_STORE);
        }
        if f & flags::KEYSPACE != 0 {
            let chans: Vec<Vec<u8>> = dbs
                .iter()
                .map(|db| [format!("__keyspace@{db}__:").as_bytes(), &e.raw_key].concat())
                .collect();
            let refs: Vec<&[u8]> = chans.iter().map(Vec::as_slice).collect();
            self.deliver(&refs, op.as_bytes(), readable);
        }
        if f & flags::KEYEVENT != 0 {
            let chans: Vec<String> = dbs.iter().map(|db| format!("__keyevent@{db}__:{op}")).collect();
            let refs: Vec<&[u8]> = chans.iter().map(String::as_bytes).collect();
            self.deliver(&refs, &e.raw_key, readable);
        }
    }
}

/// Feeds engine change events into the hub until `shutdown`.
pub async fn run_keyspace_feed(db: Db, hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut sub = match db.subscribe(Filter::default(), None) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "keyspace notifications disabled: cannot watch the engine");
            return;
        }
    };
    loop {
        tokio::select! {
            () = sub.changed() => {}
            () = shutdown.cancelled() => return,
        }
        // With notifications off or nobody subscribed there is nobody to
        // notify: skip the events instead of collecting them.
        let off = hub.notify_flags() & (flags::KEYSPACE | flags::KEYEVENT) == 0;
        if off || hub.lock().is_empty() {
            sub.skip_to_current();
            continue;
        }
        match sub.poll(4096) {
            Ok(events) => {
                for e in events {
                    hub.keyspace_event(&e);
                }
            }
            Err(e) => {
                // Fell behind the retained change log: notifications are
                // best effort in Redis too, so skip ahead to now.
                tracing::warn!(error = %e, "keyspace notifications skipped ahead");
                match db.subscribe(Filter::default(), None) {
                    Ok(s) => sub = s,
                    Err(_) => return,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_strings() {
        assert_eq!(format_flags(parse_flags("KEA").unwrap()), "AKE");
        assert_eq!(format_flags(parse_flags("Kx$").unwrap()), "$xK");
        assert_eq!(format_flags(parse_flags("").unwrap()), "");
        // As redis-server 7 answers CONFIG GET after CONFIG SET .. AKEm.
        assert_eq!(format_flags(parse_flags("AKEm").unwrap()), "AKEm");
        assert!(parse_flags("Q").is_err());
    }

    #[test]
    fn unsubscribe_counts_down() {
        let hub = Hub::default();
        let p = Principal::anonymous_admin();
        let (_, rx) = hub.subscribe(1, &p, Kind::Channel, b"a");
        assert!(rx.is_some());
        assert_eq!(hub.subscribe(1, &p, Kind::Channel, b"b").0, 2);
        assert_eq!(hub.subscribe(1, &p, Kind::Pattern, b"c*").0, 3);
        assert_eq!(hub.publish(b"cat", b"x"), 1);
        let (out, left) = hub.unsubscribe(1, Kind::Channel, &[]);
        assert_eq!(out, vec![(b"a".to_vec(), 2), (b"b".to_vec(), 1)]);
        assert_eq!(left, 1);
        assert_eq!(hub.publish(b"a", b"x"), 0);
    }

    #[test]
    fn unsubscribing_a_name_not_subscribed_keeps_the_count() {
        // SUBSCRIBE a b; PSUBSCRIBE p*; UNSUBSCRIBE a zz b: Redis answers 2, 2, 1.
        let hub = Hub::default();
        let p = Principal::anonymous_admin();
        hub.subscribe(1, &p, Kind::Channel, b"a");
        hub.subscribe(1, &p, Kind::Channel, b"b");
        hub.subscribe(1, &p, Kind::Pattern, b"p*");
        let (out, left) = hub.unsubscribe(1, Kind::Channel, &[b"a".to_vec(), b"zz".to_vec(), b"b".to_vec()]);
        let counts: Vec<usize> = out.iter().map(|o| o.1).collect();
        assert_eq!((counts, left), (vec![2, 2, 1], 1));
    }
}
