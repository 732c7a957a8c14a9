//! Redis-protocol front end.

pub mod frame;

use crate::AppState;
use tokio::net::TcpListener;

/// Serves RESP on `listener` until `state.shutdown` is cancelled.
pub async fn serve(listener: TcpListener, state: AppState) {
    let _ = (listener, state);
}
