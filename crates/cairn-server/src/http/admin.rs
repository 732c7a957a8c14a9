//! Admin routes: `POST /v1/admin/backup` streams an online backup file.
//!
//! The engine writes the backup synchronously from one storage snapshot;
//! here it runs on a blocking thread whose output is chunked into the
//! response body, so the server never holds the whole file in memory. A
//! client that disconnects stops the backup (its writes fail); a backup
//! that fails midway ends the body early, and the truncated file fails
//! verification (`cairn backup` verifies before keeping it).

use super::extract::NoQuery;
use super::{ApiResult, Caller};
use crate::AppState;
use crate::auth::Role;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use bytes::Bytes;
use std::io::Write;
use tokio::sync::mpsc;

/// The admin routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/v1/admin/backup", post(backup))
}

const CHUNK: usize = 256 * 1024;

type Chunk = Result<Bytes, std::io::Error>;

/// Forwards written bytes to the response body in chunks.
struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send_buf(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "backup client disconnected"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send_buf()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send_buf()
    }
}

/// Streams a consistent backup of the whole database (admin token for all stores).
#[utoipa::path(post, path = "/v1/admin/backup",
    responses((status = 200, content_type = "application/octet-stream",
        description = "the backup file (docs/backup-format.md), streamed; `cairn backup` verifies it before keeping it"),
        (status = 401, body = super::error::ErrorBody), (status = 403, body = super::error::ErrorBody)), tag = "admin")]
pub(crate) async fn backup(State(state): State<AppState>, _: NoQuery, caller: Caller) -> ApiResult<Response> {
    caller.allow(Role::Admin, None)?;
    let (tx, rx) = mpsc::channel::<Chunk>(8);
    let db = state.db.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let r = db.backup(&mut w, |_, _| {}).and_then(|info| {
            w.flush()?;
            Ok(info)
        });
        match r {
            Ok(info) => tracing::info!(
                revision = info.revision,
                records = info.records,
                bytes = info.bytes,
                "backup streamed"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "backup failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"cairn.backup\""),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
