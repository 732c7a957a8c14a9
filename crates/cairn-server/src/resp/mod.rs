//! Redis-protocol (RESP2 / RESP3) front end.
//!
//! # Layout
//! - [`frame`]: parsing requests from byte slices, with size limits.
//! - [`reply`]: replies and their RESP2 / RESP3 encodings.
//! - `cmd`: the command table and one file per family of commands.
//! - `conn`: one connection's loop (generic over the stream), pipelining.
//! - [`pubsub`]: channels and keyspace notifications.
//! - [`glob`]: Redis glob patterns.
//! - `cursors`: SCAN cursors, shared by all connections.
//! - `script`: Lua scripts (EVAL, EVALSHA, SCRIPT) and the Lua states.
//! - `clients`: the open connections, for CLIENT LIST and CLIENT KILL.
//!
//! This module owns the accept loop: a connection limit, and graceful
//! shutdown on `state.shutdown` (stop accepting, let connections finish the
//! commands they have read, then close them).
//!
//! # Where cairn differs from Redis
//! - `SELECT 0` is the `default` store, `SELECT 1`..`15` stores named `"1"`..
//!   `"15"` (created on first use), `SELECT name` any existing store.
//! - Values are typed by the store: in an `any` store a UTF-8 string is a
//!   JSON string; typed stores parse it and refuse with `-WRONGTYPE`.
//!   `INCR` on a numeric string stores the result as a JSON number.
//! - `EXEC` is one atomic engine batch. As in Redis, a command that fails
//!   while applying (`INCR` on a non-number, `APPEND` past the size limit)
//!   answers its error in EXEC's reply, changes nothing, and the others
//!   apply; only a failure of the engine itself (or a transaction over the
//!   batch limit) aborts the whole transaction (`-EXECABORT ... nothing was
//!   written`). Conditional commands (`SET NX`,
//!   `SETNX`, `MSETNX`, `EXPIRE GT`, `RENAMENX`, ...) behave as in Redis:
//!   a failed condition answers nil or 0 and the rest applies. Reads of keys
//!   see the commands queued before them; other reads and server commands
//!   (`DBSIZE`, `KEYS`, `SCAN`, `RANDOMKEY`, `INFO`, `CONFIG`, `CLIENT`,
//!   `COMMAND`, `PUBLISH`) run after the commit. `SELECT` moves the
//!   commands queued after it to its store, as in Redis. `FLUSHDB`,
//!   `FLUSHALL`, `HELLO`, `AUTH` and the `SUBSCRIBE` family are refused
//!   inside `MULTI` (the transaction is then discarded at `EXEC`).
//! - A value is at most the engine's `max_value_bytes` (8 MiB by default),
//!   not `proto-max-bulk-len` (512 MB): `SETRANGE` and `APPEND` past it fail.
//!   A key is at most `max_key_bytes` (4 KiB), and one command writes at
//!   most `max_batch_ops` keys (1,000: `MSET` of 1,000 pairs, `DEL` of 1,000
//!   keys, `MSETNX` of 500); past that, an error and nothing written.
//! - Database 0 is the `default` store, whose keys are UTF-8 text and not
//!   empty (its `key_type` is `string`): a key of other bytes is refused
//!   there. Create a store with `key_type` `bytes` for binary keys.
//! - SCAN cursors stand for a position kept by the server (the last
//!   100,000 handed out, by any connection): any connection may continue a
//!   scan or send a cursor again, but a cursor the server never gave (or
//!   gave before a restart) is an error, not the end of a scan.
//! - `INCRBYFLOAT` computes in 64-bit floats (Redis: long double), so
//!   `0.1 + 0.2` answers `0.30000000000000004`.
//! - `RANDOMKEY` walks the store's keys to a random position (O(n); `DBSIZE`
//!   is O(1) from kept counts); `TOUCH` only counts keys
//!   (cairn keeps no access times); `COPY .. DB` and `MOVE` also take a
//!   store name (an unknown one: `-ERR store .. does not exist`).
//! - `OBJECT IDLETIME` is the time since the key's last write (cairn keeps
//!   no access times); `MEMORY USAGE` is the size of the key's stored
//!   record; `WAIT` answers 0 at once (no replicas); `SAVE` / `BGSAVE`
//!   fsync what is written (every acknowledged write is already in the
//!   journal, durable in `sync` mode).
//! - Connections never time out when idle (Redis's `timeout 0`).
//! - Users are tokens: with a token file, `AUTH user token` and `HELLO ..
//!   AUTH user token` check the token and ignore the user name.
//! - With tokens, `CLIENT LIST` shows other connections, and `CLIENT KILL`
//!   closes them, only for an admin token on all stores; its lines carry
//!   Redis's fields that mean something here (no `fd`, memory or buffers).
//! - Pub/sub subscribers that fall 16k messages behind are disconnected.
//! - Keyspace notifications: `keymiss` events are not sent, so `CONFIG SET
//!   notify-keyspace-events` refuses `m`; `new` (`n`) is sent as in Redis.
//! - Lua scripts (`EVAL`, `EVALSHA`, `EVAL_RO`, `EVALSHA_RO`, `SCRIPT`)
//!   run as in Redis, with nothing else writing meanwhile; the differences
//!   (a killed script keeps no writes, `cmsgpack` and `struct` missing,
//!   ...) are listed in `script`. A `MULTI` holding a script runs its
//!   commands one by one in one engine transaction (`Db::transaction`)
//!   instead of as one batch; a command's error is its reply there too.
//! - Not there (`-ERR unknown command` naming it): functions (`FUNCTION`,
//!   `FCALL`), lists, hashes, sets, sorted sets, streams and the blocking commands,
//!   client-side caching (`CLIENT TRACKING`), sharded pub/sub
//!   (`SSUBSCRIBE`, `SPUBLISH`), `MONITOR`, `SLOWLOG`, `LATENCY`, `ACL`,
//!   `CLIENT PAUSE` / `REPLY`, `DUMP` / `RESTORE`, `SWAPDB`. `ROLE` answers
//!   a primary without replicas.
//! - `INFO stats` counts `keyspace_hits` / `keyspace_misses` for `GET`,
//!   `MGET` and `STRLEN` only; `evicted_keys` is always 0 (nothing is
//!   evicted: `maxmemory` is 0, the policy `noeviction`). A client that
//!   writes more keys in one command or `MULTI` than `max_batch_ops`
//!   (Django's `set_many` of over 500 keys with a timeout) needs the server
//!   started with a larger `--max-batch-ops`.

mod clients;
mod cmd;
mod conn;
mod cursors;
pub mod frame;
pub mod glob;
pub mod pubsub;
pub mod reply;
mod script;
mod session;

pub use conn::serve_connection;

use crate::AppState;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

/// Counters shown by INFO.
#[derive(Debug)]
pub(crate) struct Stats {
    pub started: Instant,
    pub connections: AtomicU64,
    pub closed: AtomicU64,
    pub commands: AtomicU64,
    pub next_id: AtomicU64,
    /// Unix seconds of the last SAVE / BGSAVE that finished (LASTSAVE);
    /// the server's start until then.
    pub last_save: AtomicU64,
    /// Key lookups of GET, MGET and STRLEN that found the key, and that did not.
    pub keyspace_hits: cairn_core::Counter,
    pub keyspace_misses: cairn_core::Counter,
    /// Connections refused at `--max-connections`.
    pub rejected: AtomicU64,
    /// `commands` sampled every 100 ms, for `instantaneous_ops_per_sec`.
    pub ops: std::sync::Mutex<OpsSamples>,
    /// The counters as of the last `CONFIG RESETSTAT`: INFO shows what
    /// came since (the counters themselves never go back, for metrics).
    pub reset_at: std::sync::Mutex<Totals>,
}

/// The counters `INFO stats` shows, at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Totals {
    pub connections: u64,
    pub commands: u64,
    pub rejected: u64,
    pub expired: u64,
    pub hits: u64,
    pub misses: u64,
}

impl Totals {
    /// What `self` counted beyond `base`.
    #[must_use]
    pub fn since(self, base: Totals) -> Totals {
        Totals {
            connections: self.connections.saturating_sub(base.connections),
            commands: self.commands.saturating_sub(base.commands),
            rejected: self.rejected.saturating_sub(base.rejected),
            expired: self.expired.saturating_sub(base.expired),
            hits: self.hits.saturating_sub(base.hits),
            misses: self.misses.saturating_sub(base.misses),
        }
    }
}

impl Stats {
    /// The counters now (`expired` is the engine's).
    pub fn totals(&self, expired: u64) -> Totals {
        Totals {
            connections: self.connections.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            expired,
            hits: self.keyspace_hits.load(Ordering::Relaxed),
            misses: self.keyspace_misses.load(Ordering::Relaxed),
        }
    }
}

/// The last 16 samples of the command count, 100 ms apart (as Redis keeps
/// them for `instantaneous_ops_per_sec`).
#[derive(Debug, Default)]
pub(crate) struct OpsSamples {
    samples: std::collections::VecDeque<(Instant, u64)>,
}

impl OpsSamples {
    const KEEP: usize = 16;

    fn record(&mut self, at: Instant, commands: u64) {
        if self.samples.len() == Self::KEEP {
            self.samples.pop_front();
        }
        self.samples.push_back((at, commands));
    }

    /// Commands per second over the samples held (0 before two exist).
    pub fn per_sec(&self) -> u64 {
        match (self.samples.front(), self.samples.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                ((c1 - c0) as f64 / t1.duration_since(*t0).as_secs_f64()).round() as u64
            }
            _ => 0,
        }
    }
}

impl Stats {
    pub fn connected(&self) -> u64 {
        self.connections
            .load(Ordering::Relaxed)
            .saturating_sub(self.closed.load(Ordering::Relaxed))
    }
}

/// What every RESP connection of one server shares.
#[derive(Clone)]
pub struct Shared {
    pub(crate) app: AppState,
    pub(crate) hub: Arc<pubsub::Hub>,
    pub(crate) stats: Arc<Stats>,
    /// SCAN cursors: any connection may continue a scan another started.
    pub(crate) cursors: Arc<cursors::Cursors>,
    /// Open connections, for CLIENT LIST and CLIENT KILL.
    pub(crate) clients: Arc<clients::Registry>,
    pub(crate) limits: frame::Limits,
    /// The script cache and Lua states (EVAL, EVALSHA).
    pub(crate) scripts: Arc<script::Scripts>,
}

impl Shared {
    /// State for the RESP connections of `app` (starts nothing).
    #[must_use]
    pub fn new(app: AppState) -> Shared {
        let limits = frame::Limits {
            // Room for a key and some framing beside the largest value.
            max_bulk: app
                .config
                .max_value_bytes
                .saturating_add(app.config.max_key_bytes)
                .saturating_add(1024),
            ..frame::Limits::default()
        };
        Shared {
            app,
            hub: Arc::new(pubsub::Hub::default()),
            stats: Arc::new(Stats {
                started: Instant::now(),
                connections: AtomicU64::new(0),
                closed: AtomicU64::new(0),
                commands: AtomicU64::new(0),
                next_id: AtomicU64::new(1),
                last_save: AtomicU64::new(cmd::unix_secs()),
                keyspace_hits: cairn_core::Counter::default(),
                keyspace_misses: cairn_core::Counter::default(),
                rejected: AtomicU64::new(0),
                ops: std::sync::Mutex::new(OpsSamples::default()),
                reset_at: std::sync::Mutex::new(Totals::default()),
            }),
            cursors: Arc::new(cursors::Cursors::default()),
            clients: Arc::new(clients::Registry::default()),
            limits,
            scripts: Arc::new(script::Scripts::default()),
        }
    }
}

/// Samples the command count every 100 ms until shutdown.
async fn sample_ops(stats: Arc<Stats>, shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            at = tick.tick() => {
                let n = stats.commands.load(Ordering::Relaxed);
                stats.ops.lock().unwrap_or_else(std::sync::PoisonError::into_inner).record(at.into_std(), n);
            }
        }
    }
}

/// Serves RESP on `listener` until `state.shutdown` is cancelled, then waits
/// for open connections to finish what they were doing.
pub async fn serve(listener: TcpListener, state: AppState) {
    let shared = Shared::new(state);
    let shutdown = shared.app.shutdown.clone();
    let tracker = TaskTracker::new();
    tracker.spawn(pubsub::run_keyspace_feed(
        shared.app.db.clone(),
        shared.hub.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(sample_ops(shared.stats.clone(), shutdown.clone()));
    let slots = Arc::new(Semaphore::new(shared.app.config.max_connections.max(1)));
    // When the connection limit was last reported in the log.
    let mut warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(error = %e, "RESP accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            if warned.is_none_or(|t: Instant| t.elapsed() >= std::time::Duration::from_secs(10)) {
                warned = Some(Instant::now());
                tracing::warn!("RESP connection limit reached (--max-connections): refusing new clients");
            }
            tracker.spawn(async move {
                use tokio::io::AsyncWriteExt as _;
                let mut stream = stream;
                let _ = stream.write_all(b"-ERR max number of clients reached\r\n").await;
            });
            continue;
        };
        let sh = shared.clone();
        tracker.spawn(async move {
            serve_connection(stream, peer.to_string(), sh).await;
            drop(permit);
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

#[cfg(test)]
mod tests {
    use super::OpsSamples;
    use std::time::{Duration, Instant};

    #[test]
    fn ops_per_second_is_the_rate_over_the_last_sixteen_samples() {
        let mut s = OpsSamples::default();
        let t0 = Instant::now();
        assert_eq!(s.per_sec(), 0, "no samples");
        s.record(t0, 1_000);
        assert_eq!(s.per_sec(), 0, "one sample has no rate");
        // 500 commands per 100 ms for 20 samples, then a burst: only the
        // last 16 samples (1.5 s) count.
        for i in 1..20u64 {
            s.record(t0 + Duration::from_millis(100 * i), 1_000 + 500 * i);
        }
        assert_eq!(s.per_sec(), 5_000);
        s.record(t0 + Duration::from_millis(2_000), 1_000 + 500 * 19 + 15_500);
        // Samples 5..=20: 14 steps of 500 and the burst, over 1.5 s.
        assert_eq!(s.per_sec(), (500 * 14 + 15_500) * 1_000 / 1_500);
    }
}
