//! The server's RESP connections, for `CLIENT LIST` and `CLIENT KILL`.
//!
//! Each connection registers itself while it is open and refreshes what
//! `CLIENT LIST` shows of it (name, database, protocol, last command) once
//! per batch of commands it reads, under its own lock: listing never
//! waits on a busy connection for more than that copy.

use super::session::Session;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What `CLIENT LIST` shows of a connection besides its address.
#[derive(Debug, Clone, Default)]
struct Shown {
    name: String,
    db: String,
    proto: u8,
    subscriptions: usize,
    in_multi: Option<usize>,
    cmd: &'static str,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Client {
    pub id: u64,
    pub peer: String,
    created: Instant,
    /// Milliseconds from `created` to the last command.
    last_ms: AtomicU64,
    shown: Mutex<Shown>,
    /// Cancelled by `CLIENT KILL`: the connection closes.
    pub kill: CancellationToken,
}

impl Client {
    /// Copies what `CLIENT LIST` shows from the connection's session.
    pub fn refresh(&self, sess: &Session, cmd: &'static str) {
        let ms = u64::try_from(self.created.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
        let mut s = self.shown.lock().unwrap_or_else(PoisonError::into_inner);
        if s.name.as_str() != sess.name.as_deref().unwrap_or("") {
            s.name = sess.name.clone().unwrap_or_default();
        }
        if s.db != sess.db_label() {
            s.db = sess.db_label().to_owned();
        }
        s.proto = sess.proto;
        s.subscriptions = sess.subscriptions;
        s.in_multi = sess.multi.as_ref().map(|m| m.queued.len());
        s.cmd = cmd;
    }

    /// This connection as one `CLIENT LIST` line (Redis 7's fields that
    /// mean something here).
    pub fn line(&self) -> String {
        let s = self.shown.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let age = self.created.elapsed();
        let idle_ms = u64::try_from(age.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_sub(self.last_ms.load(Ordering::Relaxed));
        let flags = if s.in_multi.is_some() {
            "x"
        } else if s.subscriptions > 0 {
            "P"
        } else {
            "N"
        };
        format!(
            "id={} addr={} name={} age={} idle={} flags={flags} db={} sub={} psub=0 multi={} user=default resp={} cmd={}\n",
            self.id,
            self.peer,
            s.name,
            age.as_secs(),
            idle_ms / 1000,
            s.db,
            s.subscriptions,
            s.in_multi.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            s.proto,
            if s.cmd.is_empty() { "NULL" } else { s.cmd },
        )
    }
}

/// Every open RESP connection of the server, by id.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Client>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Client>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection.
    pub fn add(&self, id: u64, peer: &str) -> Arc<Client> {
        let c = Arc::new(Client {
            id,
            peer: peer.to_owned(),
            created: Instant::now(),
            last_ms: AtomicU64::new(0),
            shown: Mutex::new(Shown {
                db: "0".into(),
                proto: 2,
                ..Shown::default()
            }),
            kill: CancellationToken::new(),
        });
        self.lock().insert(id, Arc::clone(&c));
        c
    }

    /// The open connection `id`.
    pub fn get(&self, id: u64) -> Option<Arc<Client>> {
        self.lock().get(&id).cloned()
    }

    /// Forgets a closed connection.
    pub fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Every open connection, oldest first.
    pub fn all(&self) -> Vec<Arc<Client>> {
        self.lock().values().cloned().collect()
    }

    /// Closes the connections `matches` picks (not `skip`); how many.
    pub fn kill(&self, matches: impl Fn(&Client) -> bool, skip: Option<u64>) -> usize {
        let open = self.all();
        let mut n = 0;
        for c in open.iter().filter(|c| Some(c.id) != skip && matches(c)) {
            c.kill.cancel();
            n += 1;
        }
        n
    }
}
