//! HTTP front end: REST/JSON, SSE, WebSocket, metrics, OpenAPI.

use crate::AppState;
use tokio::net::TcpListener;

/// Serves HTTP on `listener` until `state.shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: AppState) {
    let _ = (listener, state);
}
