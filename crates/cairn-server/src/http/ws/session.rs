//! One client's protocol state: its principal and subscriptions. Usable
//! without a socket: [`Session::handle`] answers a message, and subscription
//! pushes arrive on the receiver [`Session::new`] returns. The connection
//! loop uses the two halves of `handle`: [`Session::prepare`] (decode,
//! authorize, queue a write on the engine) and [`Session::finish`].

use super::dispatch::{authorize, error, execute, respond};
use super::messages::{self, Limits, Request, WsError};
use super::writes::{self, InFlight, Start};
use crate::AppState;
use crate::auth::Principal;
use cairn_core::{Event, Filter, Subscription};
use serde_json::{Value as Json, json};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Most subscriptions one connection may hold.
pub const MAX_SUBSCRIPTIONS: usize = 1024;

/// Events read from the engine per poll (whole revisions are never split).
const POLL_BATCH: usize = 256;

/// Pushes queued per connection before subscription tasks stop polling.
const PUSH_QUEUE: usize = 16;

/// A decoded request on its way to a response.
pub enum Prepared {
    /// Already answered: malformed, refused, or a write the engine turned down.
    Done(Json),
    /// A write already queued on the engine; finish it to get the response.
    /// Writes finish in the order they were prepared.
    Write(Pending),
    /// Anything else; finish it (after earlier writes, so it sees them).
    Other(Pending),
}

/// A request started but not answered.
pub struct Pending {
    id: Option<Json>,
    name: &'static str,
    started: std::time::Instant,
    work: Work,
}

enum Work {
    Write(InFlight),
    /// `None` once run.
    Other(Option<Request>),
}

/// A message a subscription sends without being asked.
#[derive(Debug, Clone, PartialEq)]
pub struct Push {
    /// The subscription it belongs to.
    pub subscription: u64,
    /// `value_changed`, `progress`, or an `error` that ended the subscription.
    pub message: Json,
}

/// A client's protocol state.
pub struct Session {
    state: AppState,
    principal: Principal,
    limits: Limits,
    heartbeat: Duration,
    push: mpsc::Sender<Push>,
    subs: Mutex<HashMap<u64, JoinHandle<()>>>,
    next_id: AtomicU64,
}

impl Session {
    /// A session for `principal`, and the receiver of its subscriptions' pushes.
    ///
    /// The receiver is bounded: when its reader stops, subscriptions stop
    /// polling the engine (a subscription is only a cursor, so nothing piles
    /// up in the engine and writers are never slowed).
    #[must_use]
    pub fn new(state: AppState, principal: Principal) -> (Session, mpsc::Receiver<Push>) {
        let (push, rx) = mpsc::channel(PUSH_QUEUE);
        let limits = Limits::from_config(&state.config);
        let heartbeat = state.config.heartbeat();
        let s = Session {
            state,
            principal,
            limits,
            heartbeat,
            push,
            subs: Mutex::default(),
            next_id: AtomicU64::new(0),
        };
        (s, rx)
    }

    /// Answers one text message, waiting for a write to commit. Pushes for
    /// a new subscription go to the receiver; send the response before
    /// draining it to keep their order.
    pub async fn handle(&self, text: &str) -> Json {
        match self.prepare(text) {
            Prepared::Done(j) => j,
            Prepared::Write(mut p) | Prepared::Other(mut p) => self.finish(&mut p).await,
        }
    }

    /// Decodes and authorizes a message and, when it is a write, queues it
    /// on the engine's writer right away (see [`writes::start`]).
    pub fn prepare(&self, text: &str) -> Prepared {
        let started = std::time::Instant::now();
        let m = match messages::parse_object(text, &self.limits) {
            Ok(m) => m,
            Err(e) => {
                self.observe("invalid", Err(&e), started);
                return Prepared::Done(error(None, &e));
            }
        };
        let (id, req) = messages::decode(&m, &self.limits);
        let refused = |name, e: WsError| {
            self.observe(name, Err(&e), started);
            Prepared::Done(respond(id.clone(), Err(e)))
        };
        let req = match req {
            Ok(req) => req,
            Err(e) => return refused(messages::type_name(&m), e),
        };
        let name = req.name();
        if let Err(e) = authorize(&self.principal, &req) {
            return refused(name, e);
        }
        match writes::start(&self.state, req) {
            Start::Submitted(f) => Prepared::Write(Pending {
                id,
                name,
                started,
                work: Work::Write(f),
            }),
            Start::Failed(e) => refused(name, e),
            Start::NotAWrite(req) => Prepared::Other(Pending {
                id,
                name,
                started,
                work: Work::Other(Some(req)),
            }),
        }
    }

    /// Runs or completes a prepared request and renders its response.
    ///
    /// Cancel-safe for writes: if dropped before it completes, calling it
    /// again on the same `Pending` picks up where it left off. Call it once
    /// more after it completed and it answers an `internal` error.
    pub async fn finish(&self, p: &mut Pending) -> Json {
        let result = match &mut p.work {
            Work::Write(f) => f.as_mut().await,
            Work::Other(req) => match req.take() {
                Some(req) => self.run(req).await,
                None => Err(WsError::new("internal", "request already answered")),
            },
        };
        p.work = Work::Other(None);
        self.observe(p.name, result.as_ref().map(|_| ()), p.started);
        respond(p.id.take(), result)
    }

    /// Counts the message in the server metrics (front end `ws`, route = message
    /// type), with an HTTP-like status so dashboards can treat all front ends alike.
    fn observe(&self, name: &'static str, result: Result<(), &WsError>, started: std::time::Instant) {
        let status = match result {
            Ok(()) => 200,
            Err(e) if e.code == "forbidden" => 403,
            Err(e) if e.code == "internal" || e.code == "corrupted" || e.code == "closed" => 500,
            Err(_) => 400,
        };
        self.state.metrics.observe("ws", name, status, started.elapsed());
    }

    async fn run(&self, req: Request) -> Result<Json, WsError> {
        match req {
            Request::Subscribe { filter, from_revision } => self.subscribe(filter, from_revision),
            Request::Unsubscribe { subscription } => {
                let task = self.lock().remove(&subscription);
                let found = task.is_some();
                if let Some(t) = task {
                    t.abort();
                    // Once joined, the task can push nothing more.
                    let _ = t.await;
                }
                Ok(json!({"type": "unsubscribe_response", "subscription": subscription, "success": found}))
            }
            other => execute(&self.state, other).await,
        }
    }

    fn subscribe(&self, filter: Filter, from_revision: Option<u64>) -> Result<Json, WsError> {
        let mut subs = self.lock();
        subs.retain(|_, t| !t.is_finished());
        if subs.len() >= MAX_SUBSCRIPTIONS {
            return Err(WsError::new(
                "too_many_subscriptions",
                format!("a connection may hold at most {MAX_SUBSCRIPTIONS} subscriptions"),
            ));
        }
        let sub = self.state.db.subscribe(filter, from_revision)?;
        let revision = sub.current_revision();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let task = tokio::spawn(forward(sub, id, self.push.clone(), self.heartbeat));
        subs.insert(id, task);
        Ok(json!({"type": "subscribe_response", "subscription": id, "revision": revision}))
    }

    /// True while `subscription` has not been unsubscribed (pushes of
    /// unsubscribed ones still queued are to be dropped).
    #[must_use]
    pub fn is_active(&self, subscription: u64) -> bool {
        self.lock().contains_key(&subscription)
    }

    /// True when some subscription is still running.
    #[must_use]
    pub fn has_subscriptions(&self) -> bool {
        self.lock().values().any(|t| !t.is_finished())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, JoinHandle<()>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.subs.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for (_, t) in self.lock().drain() {
            t.abort();
        }
    }
}

/// `{"type": "value_changed", "subscription", "event", ...}`: the event's own
/// `type` (created, updated, ...) is under `event`, since `type` names the
/// message. `value` repeats `new_value` (null after a delete) for clients of
/// the key/value/timestamp notification shape.
fn value_changed(subscription: u64, e: &Event) -> Json {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!("value_changed"));
    m.insert("subscription".into(), json!(subscription));
    m.insert("event".into(), json!(e.kind.as_str()));
    m.insert("revision".into(), json!(e.revision));
    m.insert("store".into(), json!(e.store));
    m.insert("key".into(), json!(e.key_json()));
    m.insert(
        "value".into(),
        e.new_value.as_deref().map_or(Json::Null, cairn_core::Value::to_json),
    );
    if let Some(v) = &e.old_value {
        m.insert("old_value".into(), v.to_json());
    }
    if let Some(v) = &e.new_value {
        m.insert("new_value".into(), v.to_json());
    }
    m.insert("timestamp".into(), json!(e.timestamp));
    Json::Object(m)
}

/// Forwards a subscription's events, and a `progress` heartbeat when nothing
/// was sent for `heartbeat`. Ends when the receiver is gone or the
/// subscription fell behind the retained change log.
async fn forward(mut sub: Subscription, id: u64, push: mpsc::Sender<Push>, heartbeat: Duration) {
    let send = |message: Json| {
        push.send(Push {
            subscription: id,
            message,
        })
    };
    let mut last_sent = Instant::now();
    loop {
        match sub.poll(POLL_BATCH) {
            Ok(events) if !events.is_empty() => {
                for e in events {
                    // Awaiting here is the backpressure: no polling while the client is slow.
                    if send(value_changed(id, &e)).await.is_err() {
                        return;
                    }
                }
                last_sent = Instant::now();
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                let mut msg = error(None, &WsError::from(e));
                msg["subscription"] = json!(id);
                let _ = send(msg).await;
                return;
            }
        }
        if last_sent.elapsed() >= heartbeat {
            // Caught up: every matching event up to here has been sent.
            let revision = sub.next_revision().saturating_sub(1);
            if send(json!({"type": "progress", "subscription": id, "revision": revision}))
                .await
                .is_err()
            {
                return;
            }
            last_sent = Instant::now();
        }
        tokio::select! {
            () = sub.changed() => {}
            () = tokio::time::sleep_until(last_sent + heartbeat) => {}
        }
    }
}
