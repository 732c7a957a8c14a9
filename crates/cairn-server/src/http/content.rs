//! Content-addressed storage: `POST /v1/content`, `GET|HEAD|DELETE /v1/content/{hash}`.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, NoQuery, Path, Query};
use super::types::{ContentDeletedOut, ContentOut};
use crate::AppState;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::{Algorithm, Applied, Command, ContentHash};
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of `POST /v1/content`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PutContentParams {
    /// `sha256` (default) or `sha1`.
    pub algorithm: Option<String>,
}

/// Stores the raw body under its hash: 201 when stored, 200 when it was already there.
#[utoipa::path(post, path = "/v1/content", params(PutContentParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = ContentOut), (status = 200, body = ContentOut, description = "deduplicated")), tag = "content")]
pub async fn put_content(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<PutContentParams>,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<ContentOut>)> {
    caller.allow(Role::Write, None)?;
    let algorithm: Algorithm = q.algorithm.as_deref().unwrap_or("sha256").parse()?;
    match state
        .db
        .execute_async(Command::PutContent {
            algorithm,
            data: body.to_vec(),
        })
        .await?
    {
        Applied::Content { info, .. } => {
            let status = if info.stored {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let out = ContentOut {
                hash: info.hash,
                algorithm: info.algorithm.as_str().to_owned(),
                size: info.size,
                stored: info.stored,
            };
            Ok((status, Json(out)))
        }
        other => Err(ApiError::internal(&format!("put content answered {other:?}"))),
    }
}

fn parse_hash(hash: &str) -> ApiResult<String> {
    Ok(ContentHash::parse(&hash.to_ascii_lowercase())?.to_hex())
}

fn unknown(hash: &str) -> ApiError {
    ApiError::not_found(format!("no content with hash {hash}"))
}

/// The content's bytes, verified against the hash (500 `corrupted` on a mismatch).
#[utoipa::path(get, path = "/v1/content/{hash}", params(("hash" = String, Path, description = "40 (sha1) or 64 (sha256) hex digits")),
    responses((status = 200, content_type = "application/octet-stream", description = "the content's bytes, verified against the hash"), (status = 404, body = super::error::ErrorBody),
        (status = 400, body = super::error::ErrorBody), (status = 500, body = super::error::ErrorBody)), tag = "content")]
pub async fn get_content(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Response> {
    caller.allow(Role::Read, None)?;
    let hash = parse_hash(&hash)?;
    let db = state.db.clone();
    let h = hash.clone();
    // Up to a full value's worth of bytes is read and hashed: not on an async worker.
    let data = tokio::task::spawn_blocking(move || db.get_content(&h))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    match data {
        Some(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "application/octet-stream"),
                (header::ETAG, &format!("\"{hash}\"")),
            ],
            bytes,
        )
            .into_response()),
        None => Err(unknown(&hash)),
    }
}

/// GET's status and headers (`content-length`, `content-type`, `etag`)
/// without the body; 404 when not stored. The bytes are read and verified
/// as for GET, so a HEAD also reports corruption.
#[utoipa::path(head, path = "/v1/content/{hash}", params(("hash" = String, Path)),
    responses((status = 200), (status = 404), (status = 400)), tag = "content")]
pub async fn head_content(
    state: State<AppState>,
    query: NoQuery,
    caller: Caller,
    hash: Path<String>,
) -> ApiResult<Response> {
    // hyper sends a HEAD answer's headers and drops its body.
    get_content(state, query, caller, hash).await
}

/// Deletes content (404 when unknown).
#[utoipa::path(delete, path = "/v1/content/{hash}", params(("hash" = String, Path)),
    responses((status = 200, body = ContentDeletedOut), (status = 404, body = super::error::ErrorBody)), tag = "content")]
pub async fn delete_content(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(hash): Path<String>,
) -> ApiResult<Json<ContentDeletedOut>> {
    caller.allow(Role::Write, None)?;
    let hash = parse_hash(&hash)?;
    match state
        .db
        .execute_async(Command::DeleteContent { hash: hash.clone() })
        .await?
    {
        Applied::ContentDeleted {
            existed: true,
            revision,
        } => Ok(Json(ContentDeletedOut {
            hash,
            success: true,
            revision,
        })),
        Applied::ContentDeleted { existed: false, .. } => Err(unknown(&hash)),
        other => Err(ApiError::internal(&format!("delete content answered {other:?}"))),
    }
}
