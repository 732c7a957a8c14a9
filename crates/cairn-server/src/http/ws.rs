//! `GET /v1/ws`: the JSON message protocol over WebSocket.
//!
//! One JSON object per text message; a request's `"id"` is echoed in its
//! response; subscriptions push `value_changed` and `progress` messages; bad
//! messages get `{"type": "error", "id"?, "code", "message"}` and the
//! connection stays open. See [`messages`] for the request shapes.
//!
//! - [`messages`]: text → [`messages::Request`], limits, field errors.
//! - [`dispatch`]: a request → its response, against the engine; no socket.
//! - [`session`]: a client's subscriptions ([`Session`]), usable without a socket.
//! - [`conn`]: the socket loop: ordering, pushes, idle timeout, shutdown.

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
use axum::http::{HeaderMap, StatusCode, header};
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
/// to [`conn::serve`].
async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .or_else(|| query.get("token").map(String::as_str));
    let principal = match state.auth.authenticate(token) {
        Ok(p) => p,
        Err(e) => {
            let body = serde_json::json!({"error": {"code": "unauthorized", "message": e.to_string()}});
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                axum::Json(body),
            )
                .into_response();
        }
    };
    let cap = hard_message_cap(state.config.max_body_bytes);
    ws.max_message_size(cap)
        .max_frame_size(cap)
        .on_upgrade(move |socket| conn::serve(socket, state, principal))
}

fn bearer(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
