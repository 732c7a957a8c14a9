//! The connection task: reads messages, answers them in order, forwards
//! subscription pushes, closes on idle timeout and on shutdown.

use super::dispatch::error;
use super::messages::WsError;
use super::session::{Push, Session};
use crate::AppState;
use crate::auth::Principal;
use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use serde_json::Value as Json;
use std::time::Duration;
use tokio::time::Instant;

/// Serves one upgraded WebSocket until the client leaves, it idles out, or
/// the server shuts down.
///
/// Requests are answered one at a time in arrival order, so a client that
/// pipelines `set` then `get` reads its own write. Pushes are only sent
/// between responses; a subscribe's response therefore always precedes its
/// first event.
pub async fn serve(mut socket: WebSocket, state: AppState, principal: Principal) {
    let (session, mut pushes) = Session::new(state.clone(), principal);
    let _open = OpenConnection::new(&state.metrics);
    let idle = idle_window(state.config.idle_timeout_secs);
    let mut deadline = Instant::now() + idle;
    let close = loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break Some((close_code::AWAY, "server shutting down")),
            () = tokio::time::sleep_until(deadline) => {
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
            Some(Push { subscription, message }) = pushes.recv() => {
                if session.is_active(subscription) && !send(&mut socket, &state, message).await {
                    break None;
                }
            }
            msg = socket.recv() => {
                deadline = Instant::now() + idle;
                let text = match msg {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => match String::from_utf8(b.to_vec()) {
                        Ok(t) => t,
                        Err(_) => {
                            let e = WsError::new("invalid_message", "binary message is not UTF-8 JSON text");
                            if !send(&mut socket, &state, error(None, &e)).await {
                                break None;
                            }
                            continue;
                        }
                    },
                    // The WebSocket layer answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                let response = tokio::select! {
                    r = session.handle(&text) => r,
                    () = state.shutdown.cancelled() => break Some((close_code::AWAY, "server shutting down")),
                };
                if !send(&mut socket, &state, response).await {
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
