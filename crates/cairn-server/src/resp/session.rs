//! Per-connection state: protocol version, selected store, auth,
//! transaction, watched keys and subscriptions. (SCAN cursors are
//! server-wide: `super::cursors`.)

use super::cmd::multi::Queued;
use super::pubsub::Message;
use crate::auth::Principal;
use cairn_core::{DEFAULT_STORE, ValueType};
use tokio::sync::mpsc;

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
    /// Channel plus pattern subscriptions.
    pub subscriptions: usize,
    pub messages: Option<mpsc::Receiver<Message>>,
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
            subscriptions: 0,
            messages: None,
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
