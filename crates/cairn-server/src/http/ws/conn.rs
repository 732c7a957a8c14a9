//! The connection task: reads messages, answers them in order, forwards
//! subscription pushes, closes on idle timeout and on shutdown.

use super::dispatch::error;
use super::messages::WsError;
use super::session::{Pending, Prepared, Push, Session};
use crate::AppState;
use crate::auth::Principal;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use serde_json::Value as Json;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;

/// Writes a connection may have in flight before it stops reading.
pub const MAX_PIPELINE: usize = 64;

/// A response owed to the client, in request order.
enum Owed {
    /// Answered already (an error).
    Ready(Json),
    /// A write queued on the engine, and the size of its message.
    Write(Pending, usize),
}

/// The responses owed, and the message bytes of the writes among them: the
/// engine holds those writes' values until they commit, so both are bounded.
#[derive(Default)]
struct Owing {
    queue: VecDeque<Owed>,
    bytes: usize,
}

impl Owing {
    fn push(&mut self, o: Owed) {
        if let Owed::Write(_, n) = &o {
            self.bytes += n;
        }
        self.queue.push_back(o);
    }

    fn pop(&mut self) {
        if let Some(Owed::Write(_, n)) = self.queue.pop_front() {
            self.bytes -= n;
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Room to read another message.
    fn has_room(&self, max_bytes: usize) -> bool {
        self.queue.len() < MAX_PIPELINE && self.bytes < max_bytes
    }
}

/// Serves one upgraded WebSocket until the client leaves, it idles out, or
/// the server shuts down.
///
/// Responses go out in request order. Writes are queued on the engine as
/// they arrive (up to [`MAX_PIPELINE`] at once, holding at most twice
/// `max_body_bytes` of messages), so a client pipelining
/// writes shares commits between them; any other request first waits for
/// the writes before it, so a client that pipelines `set` then `get` reads
/// its own write. Pushes are only sent while no response is owed; a
/// subscribe's response therefore always precedes its first event.
pub async fn serve(mut socket: WebSocket, state: AppState, principal: Principal) {
    let (session, mut pushes) = Session::new(state.clone(), principal);
    let _open = OpenConnection::new(&state.metrics);
    let idle = idle_window(state.config.idle_timeout_secs);
    let mut deadline = Instant::now() + idle;
    let mut owed = Owing::default();
    let max_owed_bytes = state.config.max_body_bytes.saturating_mul(2);
    const AWAY: Option<(u16, &str)> = Some((close_code::AWAY, "server shutting down"));
    let close = 'conn: loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break AWAY,
            () = tokio::time::sleep_until(deadline), if owed.is_empty() => {
                if session.has_subscriptions() {
                    // Keeps a quiet subscribed connection alive (and proves the client is there);
                    // any reply, the pong included, moves the deadline on.
                    if !send_message(&mut socket, &state, Message::Ping(Default::default())).await {
                        break None;
                    }
                    deadline = Instant::now() + idle;
                    continue;
                }
                break Some((close_code::NORMAL, "idle timeout"));
            }
            r = resolve(&session, owed.queue.front_mut()), if !owed.is_empty() => {
                owed.pop();
                if !send(&mut socket, &state, r).await {
                    break None;
                }
            }
            Some(Push { subscription, message }) = pushes.recv(), if owed.is_empty() => {
                if session.is_active(subscription) && !send(&mut socket, &state, message).await {
                    break None;
                }
            }
            msg = socket.recv(), if owed.has_room(max_owed_bytes) => {
                deadline = Instant::now() + idle;
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t,
                        Err(_) => {
                            let e = WsError::new("invalid_message", "binary message is not UTF-8 JSON text");
                            owed.push(Owed::Ready(error(None, &e)));
                            continue;
                        }
                    },
                    // The WebSocket layer answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) => {
                        // The WebSocket layer queued the closing reply; reading once more sends it.
                        let _ = tokio::time::timeout(Duration::from_secs(1), socket.recv()).await;
                        break None;
                    }
                    None => break None,
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "WebSocket read failed");
                        // Over the hard cap (see `hard_message_cap`): say so before closing.
                        let too_big = e.to_string().contains("Space limit exceeded");
                        break too_big.then_some((close_code::SIZE, "message too large"));
                    }
                };
                let mut p = match session.prepare(&text) {
                    Prepared::Done(j) => {
                        owed.push(Owed::Ready(j));
                        continue;
                    }
                    Prepared::Write(p) => {
                        owed.push(Owed::Write(p, text.len()));
                        continue;
                    }
                    Prepared::Other(p) => p,
                };
                // Everything before it is answered first, so it sees those writes.
                while !owed.is_empty() {
                    let r = tokio::select! {
                        r = resolve(&session, owed.queue.front_mut()) => r,
                        () = state.shutdown.cancelled() => break 'conn AWAY,
                    };
                    owed.pop();
                    if !send(&mut socket, &state, r).await {
                        break 'conn None;
                    }
                }
                let r = tokio::select! {
                    r = session.finish(&mut p) => r,
                    () = state.shutdown.cancelled() => break AWAY,
                };
                if !send(&mut socket, &state, r).await {
                    break None;
                }
            }
        }
    };
    drop(session);
    let close = close.or_else(|| {
        state
            .shutdown
            .is_cancelled()
            .then_some((close_code::AWAY, "server shutting down"))
    });
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(Message::Close(Some(frame)))).await;
    }
}

/// How long a connection may go without a client message. The HTTP
/// transport drops connections with no traffic for `idle_timeout_secs`; this
/// fires a little earlier so that the client gets a close frame
/// (1000, "idle timeout") instead of a reset, and so that the keepalive ping
/// of a subscribed connection goes out before the transport gives up.
fn idle_window(idle_timeout_secs: u64) -> Duration {
    let idle = Duration::from_secs(idle_timeout_secs.max(1));
    idle - (idle / 10).min(Duration::from_secs(5))
}

/// The response owed first. Cancel-safe: the write stays in `owed` until
/// this completes.
async fn resolve(session: &Session, first: Option<&mut Owed>) -> Json {
    match first {
        Some(Owed::Ready(j)) => std::mem::take(j),
        Some(Owed::Write(p, _)) => session.finish(p).await,
        None => Json::Null,
    }
}

/// Sends one JSON message; false when the connection is gone or shutting down.
async fn send(socket: &mut WebSocket, state: &AppState, message: Json) -> bool {
    send_message(socket, state, Message::Text(message.to_string().into())).await
}

async fn send_message(socket: &mut WebSocket, state: &AppState, message: Message) -> bool {
    tokio::select! {
        r = socket.send(message) => r.is_ok(),
        () = state.shutdown.cancelled() => false,
    }
}

/// Counts an open WebSocket in the `cairn_connections{frontend="ws"}` gauge
/// for as long as it lives, however the connection task ends.
struct OpenConnection<'a>(&'a crate::metrics::Metrics);

impl<'a> OpenConnection<'a> {
    fn new(m: &'a crate::metrics::Metrics) -> Self {
        m.connection("ws", 1);
        OpenConnection(m)
    }
}

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.connection("ws", -1);
    }
}
