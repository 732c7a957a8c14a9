//! Per-connection state: protocol version, selected store, auth,
//! transaction, watched keys, scan cursors and subscriptions.

use super::cmd::multi::Queued;
use super::pubsub::Message;
use crate::auth::Principal;
use cairn_core::{DEFAULT_STORE, ValueType};
use std::collections::{HashMap, VecDeque};
use tokio::sync::mpsc;

/// Most SCAN cursors a connection keeps; the oldest is forgotten first.
const MAX_SCAN_CURSORS: usize = 1024;

/// A key a `WATCH` recorded: its revision then (`None`: absent).
#[derive(Debug, Clone)]
pub(crate) struct Watched {
    pub store: String,
    pub key: Vec<u8>,
    pub revision: Option<u64>,
}

/// An open `MULTI`.
#[derive(Debug, Default)]
pub(crate) struct Multi {
    pub queued: Vec<Queued>,
    /// A command was refused while queueing: `EXEC` aborts.
    pub dirty: bool,
}

/// Numeric SCAN cursors handed to the client, mapped to engine list cursors.
#[derive(Debug, Default)]
pub(crate) struct Scans {
    next: u64,
    map: HashMap<u64, (String, String)>,
    order: VecDeque<u64>,
}

impl Scans {
    /// Remembers an engine cursor for `store`; returns the number for the client.
    pub fn put(&mut self, store: &str, cursor: String) -> u64 {
        self.next += 1;
        let id = self.next;
        self.map.insert(id, (store.to_owned(), cursor));
        self.order.push_back(id);
        while self.order.len() > MAX_SCAN_CURSORS {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        id
    }

    /// The engine cursor behind a client cursor (consumed).
    pub fn take(&mut self, id: u64) -> Option<(String, String)> {
        self.order.retain(|x| *x != id);
        self.map.remove(&id)
    }
}

/// One connection's state.
pub(crate) struct Session {
    pub id: u64,
    pub peer: String,
    /// 2 or 3 (`HELLO`).
    pub proto: u8,
    /// The selected store.
    pub store: String,
    /// The selected store's value type (how RESP strings are parsed).
    pub value_type: ValueType,
    /// `None` until `AUTH` when tokens are configured.
    pub principal: Option<Principal>,
    pub name: Option<String>,
    pub multi: Option<Multi>,
    pub watched: Vec<Watched>,
    pub scans: Scans,
    /// Channel plus pattern subscriptions.
    pub subscriptions: usize,
    pub messages: Option<mpsc::Receiver<Message>>,
    pub created: std::time::Instant,
}

impl Session {
    pub fn new(id: u64, peer: String, auth_enabled: bool) -> Session {
        Session {
            id,
            peer,
            proto: 2,
            store: DEFAULT_STORE.to_owned(),
            value_type: ValueType::Any,
            principal: (!auth_enabled).then(Principal::anonymous_admin),
            name: None,
            multi: None,
            watched: Vec::new(),
            scans: Scans::default(),
            subscriptions: 0,
            messages: None,
            created: std::time::Instant::now(),
        }
    }

    /// In RESP2 a subscribed connection only takes (un)subscribe, PING, QUIT, RESET.
    pub fn subscribed_resp2(&self) -> bool {
        self.proto == 2 && self.subscriptions > 0
    }

    /// The Redis db number or name shown for the selected store.
    pub fn db_label(&self) -> &str {
        super::pubsub::db_name(&self.store)
    }
}
