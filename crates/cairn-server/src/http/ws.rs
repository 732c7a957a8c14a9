//! `GET /v1/ws`: the JSON message protocol over WebSocket.
//!
//! One JSON object per text message; a request's `"id"` is echoed in its
//! response; subscriptions push `value_changed` and `progress` messages; bad
//! messages get `{"type": "error", "id"?, "code", "message"}` and the
//! connection stays open. See [`messages`] for the request shapes.
//!
//! Responses and pushes (`value_changed`, `progress`):
//!
//! ```text
//! {"type": "get_response", "id"?, "key", "value" (null when absent), "found", "revision"?, ...}
//! {"type": "set_response"|"put_response", "id"?, "key", "success", "revision", "created"}
//! {"type": "delete_response", "id"?, "key", "success", "revision"}
//! {"type": "contains_response", "id"?, "key", "exists"}
//! {"type": "clear_response", "id"?, "store", "removed", "revision"}
//! {"type": "list_response", "id"?, "items": [entry, ...], "next_cursor"}
//! {"type": "incr_response", "id"?, "key", "value", "revision"}
//! {"type": "batch_response", "id"?, "success": true, "revision"} | {"success": false, "failed_check", "revision"}
//! {"type": "subscribe_response", "id"?, "subscription", "revision"}
//! {"type": "unsubscribe_response", "id"?, "subscription", "success"}
//! {"type": "store_content_response", "id"?, "hash", "algorithm", "size", "stored"}
//! {"type": "get_content_response", "id"?, "hash", "found", "content", "content_base64"?, "size"?}
//! {"type": "value_changed", "subscription", "event": "created"|"updated"|..., "revision", "store",
//!  "key", "value", "old_value"?, "new_value"?, "timestamp"}
//! {"type": "progress", "subscription", "revision"}
//! {"type": "error", "id"?, "subscription"?, "code", "message", "oldest_revision"? (with "compacted")}
//! ```
//!
//! - [`messages`]: a message object → [`messages::Request`], with field errors.
//! - `fields`: size and depth limits on raw text; typed field access.
//! - [`dispatch`](mod@dispatch): a request → its response, against the engine; no socket.
//! - [`writes`]: writes queued on the engine in arrival order, finished later.
//! - [`session`]: a client's subscriptions ([`Session`]), usable without a socket.
//! - [`conn`]: the socket loop: ordering, pipelining, pushes, idle timeout, shutdown.

pub mod conn;
pub mod dispatch;
mod fields;
pub mod messages;
pub mod session;
pub mod writes;

pub use dispatch::dispatch;
pub use session::{Push, Session};

use crate::AppState;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::HashMap;

/// Frames and messages above this are refused by the WebSocket layer itself
/// (the connection closes with 1009). Below it, messages over
/// `max_body_bytes` get an `error` reply and the connection stays open.
fn hard_message_cap(max_body_bytes: usize) -> usize {
    max_body_bytes.saturating_mul(2).max(1 << 20)
}

/// The WebSocket route: `GET /v1/ws`.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/ws", get(upgrade))
}

/// Authenticates the upgrade (`Authorization: Bearer TOKEN`, or `?token=TOKEN`
/// since browsers cannot set headers on a WebSocket), then hands the socket
/// to [`conn::serve`]. With auth off, browser pages from other origins than
/// localhost are refused (403).
#[utoipa::path(get, path = "/v1/ws",
    params(("token" = Option<String>, Query, description = "bearer token, for browsers that cannot set headers on a WebSocket")),
    responses(
        (status = 101, description = "Switching Protocols: a WebSocket carrying one JSON object per text message. \
            Requests: get, set, put, delete, contains, clear, list, incr, batch, subscribe, unsubscribe, \
            store_content, get_content (each with an optional \"id\" echoed in its \"<type>_response\"); \
            pushes: value_changed, progress; bad messages get {\"type\": \"error\", \"code\", \"message\"} \
            and the connection stays open."),
        (status = 401, body = super::error::ErrorBody, description = "auth is on and the token is missing or wrong"),
        (status = 403, body = super::error::ErrorBody, description = "a browser page from another origin, with auth off")),
    tag = "websocket")]
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let principal = match super::Caller::from_headers_or_query(&state, &headers, query.get("token").map(String::as_str))
    {
        Ok(c) => c.0,
        Err(e) => return e.into_response(),
    };
    // A foreign browser origin, with auth off, was refused before this
    // handler (`super::origin`).
    let cap = hard_message_cap(state.config.max_body_bytes);
    ws.max_message_size(cap).max_frame_size(cap).on_upgrade(move |socket| {
        // Upgraded connections outlive the HTTP server's own connection
        // tracking; this token makes `Server::shutdown` wait for them.
        let alive = state.sessions.token();
        async move {
            conn::serve(socket, state, principal).await;
            drop(alive);
        }
    })
}
