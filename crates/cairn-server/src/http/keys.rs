//! Key routes: get, put, delete, head, list, history, incr.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{
    Body, KeyPath, NoQuery, Path, Query, check_depth, check_key, flag, json_error, parse_json, parse_object,
};
use super::types::{DeleteOut, EntryOut, IncrOut, ListOut, PutOut, RawKey};
use crate::AppState;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cairn_core::{Applied, ListOptions, MAX_LIST_LIMIT, PutOptions, Value};
use serde::Deserialize;
use std::time::Duration;
use utoipa::IntoParams;

const OCTET: &str = "application/octet-stream";

/// Query of `GET /v1/stores/{store}/keys/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// JSON value answered (200) when the key is absent, instead of 404.
    pub default: Option<String>,
}

/// Query of `PUT /v1/stores/{store}/keys/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PutParams {
    /// Expire after this many seconds (decimals allowed).
    pub ttl: Option<f64>,
    /// Only if the key's current revision is this (compare-and-set).
    pub if_revision: Option<u64>,
    /// Only if the key does not exist.
    #[serde(default, deserialize_with = "flag")]
    #[param(value_type = Option<bool>)]
    pub if_absent: bool,
    /// Only if the key exists.
    #[serde(default, deserialize_with = "flag")]
    #[param(value_type = Option<bool>)]
    pub if_present: bool,
}

/// Query of `DELETE /v1/stores/{store}/keys/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeleteParams {
    /// Only if the key's current revision is this.
    pub if_revision: Option<u64>,
}

/// Query of `GET /v1/stores/{store}/keys`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only keys starting with this (string and bytes stores).
    #[allow(
        dead_code,
        reason = "read as bytes by query_bytes; here to validate the query and document it"
    )]
    pub prefix: Option<String>,
    /// First key, inclusive.
    #[allow(
        dead_code,
        reason = "read as bytes by query_bytes; here to validate the query and document it"
    )]
    pub start: Option<String>,
    /// Last key, exclusive.
    #[allow(
        dead_code,
        reason = "read as bytes by query_bytes; here to validate the query and document it"
    )]
    pub end: Option<String>,
    /// Most items (1..=10000, default 100).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Descending key order.
    #[serde(default, deserialize_with = "flag")]
    #[param(value_type = Option<bool>)]
    pub reverse: bool,
    /// Leave values out (`value` is null).
    #[serde(default, deserialize_with = "flag")]
    #[param(value_type = Option<bool>)]
    pub keys_only: bool,
}

/// Body of `POST /v1/stores/{store}/keys/{key}/incr`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncrBody {
    /// Amount to add (default 1; negative to decrement).
    #[schema(value_type = Option<f64>)]
    pub by: Option<serde_json::Number>,
}

fn wants_octets(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains(OCTET))
}

fn is_octets(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.trim().to_ascii_lowercase().starts_with(OCTET))
}

/// Reads one key; `Accept: application/octet-stream` answers the raw bytes.
#[utoipa::path(get, path = "/v1/stores/{store}/keys/{key}", params(("store" = String, Path), ("key" = String, Path), GetParams),
    responses((status = 200, body = super::types::GetOut, description = "the entry; with `default` for an absent key, `{key, value, found: false}`"),
        (status = 404, body = super::error::ErrorBody, description = "`not_found` (the key) or `unknown_store`"),
        (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn get_key(
    State(state): State<AppState>,
    caller: Caller,
    kp: KeyPath,
    Query(q): Query<GetParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Read, Some(&store))?;
    let default = match &q.default {
        Some(d) => Some(Value::from_json(
            check_depth(d.as_bytes(), state.config.max_json_depth).and_then(|()| {
                serde_json::from_str::<serde_json::Value>(d).map_err(|e| json_error("query parameter `default`", &e))
            })?,
        )),
        None => None,
    };
    let entry = state.db.get(&store, &key)?;
    let octets = wants_octets(&headers);
    match (entry, default) {
        (Some(e), _) => Ok(found(e, octets)),
        (None, Some(d)) if octets => Ok(([(header::CONTENT_TYPE, OCTET)], d.to_raw()).into_response()),
        (None, Some(d)) => Ok(Json(super::types::DefaultOut {
            key: cairn_core::json_key(&String::from_utf8_lossy(&key), &key),
            value: d.to_json(),
            found: false,
        })
        .into_response()),
        (None, None) => Err(ApiError::not_found(format!(
            "key {} not found in store {store:?}",
            cairn_core::json_key(&String::from_utf8_lossy(&key), &key)
        ))),
    }
}

/// A found entry as GET answers it: JSON, or the raw bytes when
/// `octets`; either way with its revision in `x-cairn-revision` (for
/// `if_revision` without parsing the body).
fn found(e: cairn_core::Entry, octets: bool) -> Response {
    let revision = e.revision;
    let mut resp = if octets {
        ([(header::CONTENT_TYPE, OCTET)], e.value.to_raw()).into_response()
    } else {
        Json(EntryOut::from(e)).into_response()
    };
    resp.headers_mut()
        .insert("x-cairn-revision", HeaderValue::from(revision));
    resp
}

/// 200 when the key exists, with the headers GET would send (type, length,
/// `x-cairn-revision`) and no body; 404 when not.
#[utoipa::path(head, path = "/v1/stores/{store}/keys/{key}", params(("store" = String, Path), ("key" = String, Path)),
    responses((status = 200, headers(("x-cairn-revision" = u64, description = "the entry's revision"))), (status = 404)), tag = "keys")]
pub async fn head_key(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    kp: KeyPath,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Read, Some(&store))?;
    Ok(match state.db.get(&store, &key)? {
        Some(e) => found(e, wants_octets(&headers)),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// Sets a key. The body is a JSON value, or raw bytes with `Content-Type: application/octet-stream`.
#[utoipa::path(put, path = "/v1/stores/{store}/keys/{key}", params(("store" = String, Path), ("key" = String, Path), PutParams),
    request_body(content = serde_json::Value, description = "the JSON value (or raw bytes as application/octet-stream). An object that is exactly {\"$base64\": \"<standard base64>\"} stores those bytes: the form bytes take in every JSON answer, so what GET returns can be PUT back."),
    responses((status = 200, body = PutOut), (status = 409, body = PutOut, description = "a condition failed"),
        (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn put_key(
    State(state): State<AppState>,
    caller: Caller,
    kp: KeyPath,
    Query(q): Query<PutParams>,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult<Response> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Write, Some(&store))?;
    let ttl = q.ttl.map(parse_ttl).transpose()?;
    let value = if is_octets(&headers) {
        Value::Bytes(body.to_vec())
    } else {
        Value::from_json(parse_json(&body, state.config.max_json_depth)?)
    };
    let opts = PutOptions {
        ttl,
        if_revision: q.if_revision,
        if_absent: q.if_absent,
        if_present: q.if_present,
        keep_ttl: false,
    };
    let (cmd, key_text) = state.db.put_command(&store, &key, value, opts)?;
    let r = cairn_core::put_result(key_text, state.db.execute_async(cmd).await?)?;
    let status = if r.success {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok((status, Json(PutOut::from(r).with_raw_key(&key))).into_response())
}

/// A page size of a list or history: 1..=[`MAX_LIST_LIMIT`].
fn check_limit(limit: usize) -> Result<(), ApiError> {
    if (1..=MAX_LIST_LIMIT).contains(&limit) {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            "invalid_argument",
            format!("limit must be 1..={MAX_LIST_LIMIT}, got {limit}"),
        ))
    }
}

/// A TTL in seconds (decimals allowed) as a duration; at least 1 ms.
pub fn parse_ttl(secs: f64) -> Result<Duration, ApiError> {
    if !secs.is_finite() || secs <= 0.0 {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!("ttl must be a positive number of seconds, got {secs}"),
        ));
    }
    if secs > cairn_core::MAX_TTL_SECS as f64 {
        return Err(ApiError::bad_request(
            "invalid_ttl",
            format!(
                "ttl is at most {} seconds (about 317 years), got {secs}; to keep a key for good, give no ttl",
                cairn_core::MAX_TTL_SECS
            ),
        ));
    }
    Ok(Duration::from_secs_f64(secs).max(Duration::from_millis(1)))
}

/// Deletes a key (`success: false` when it did not exist; 409 when `if_revision` failed).
#[utoipa::path(delete, path = "/v1/stores/{store}/keys/{key}", params(("store" = String, Path), ("key" = String, Path), DeleteParams),
    responses((status = 200, body = DeleteOut), (status = 409, body = DeleteOut)), tag = "keys")]
pub async fn delete_key(
    State(state): State<AppState>,
    caller: Caller,
    kp: KeyPath,
    Query(q): Query<DeleteParams>,
) -> ApiResult<Response> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Write, Some(&store))?;
    let (cmd, key_text) = state.db.delete_command(&store, &key, q.if_revision)?;
    let applied = state.db.execute_async(cmd).await?;
    let failed = matches!(&applied, Applied::Write(w) if !w.success);
    let r = cairn_core::delete_result(key_text, applied)?;
    let status = if failed { StatusCode::CONFLICT } else { StatusCode::OK };
    Ok((status, Json(DeleteOut::from(r).with_raw_key(&key))).into_response())
}

/// Adds `by` (default 1) to a numeric value; a missing key counts as 0.
#[utoipa::path(post, path = "/v1/stores/{store}/keys/{key}/incr", params(("store" = String, Path), ("key" = String, Path)),
    request_body = IncrBody, responses((status = 200, body = IncrOut), (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn incr_key(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    kp: KeyPath,
    Body(body): Body,
) -> ApiResult<Json<IncrOut>> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Write, Some(&store))?;
    let b: IncrBody = if body.iter().all(u8::is_ascii_whitespace) {
        IncrBody::default()
    } else {
        parse_object(&body, state.config.max_json_depth)?
    };
    let by = b.by.unwrap_or_else(|| 1.into());
    let (cmd, key_text) = state.db.incr_command(&store, &key, by)?;
    let r = cairn_core::incr_result(key_text, state.db.execute_async(cmd).await?)?;
    Ok(Json(IncrOut::from(r).with_raw_key(&key)))
}

/// Lists entries in key order, a page at a time.
#[utoipa::path(get, path = "/v1/stores/{store}/keys", params(("store" = String, Path), ListParams),
    responses((status = 200, body = ListOut), (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn list_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(store): Path<String>,
    uri: axum::http::Uri,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<ListOut>> {
    caller.allow(Role::Read, Some(&store))?;
    if let Some(l) = q.limit {
        check_limit(l)?;
    }
    // As bytes, not strings: keys of bytes stores need not be UTF-8.
    let [prefix, start, end] = ["prefix", "start", "end"].map(|n| super::extract::query_bytes(&uri, n));
    for k in [&prefix, &start, &end].into_iter().flatten() {
        check_key(&state, k)?;
    }
    let opts = ListOptions {
        prefix,
        start,
        end,
        limit: q.limit,
        reverse: q.reverse,
        cursor: q.cursor,
        keys_only: q.keys_only,
    };
    // A page can hold 10,000 entries: keep the scan off the async workers.
    let db = state.db.clone();
    let page = tokio::task::spawn_blocking(move || db.list(&store, &opts))
        .await
        .map_err(|e| ApiError::internal(&e))??;
    Ok(Json(ListOut::from(page)))
}

/// Query of `GET /v1/stores/{store}/keys/{key}/history`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Most versions in one page (1..=10000, default 1000).
    #[param(minimum = 1, maximum = 10000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page: versions older than it.
    pub cursor: Option<String>,
}

/// Versions in one history page when no limit is given.
const HISTORY_PAGE: usize = 1000;

/// The versions kept for a key, newest first (the store's `history` setting),
/// a page at a time.
#[utoipa::path(get, path = "/v1/stores/{store}/keys/{key}/history",
    params(("store" = String, Path), ("key" = String, Path), HistoryParams),
    responses((status = 200, body = ListOut), (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn key_history(
    State(state): State<AppState>,
    caller: Caller,
    kp: KeyPath,
    Query(q): Query<HistoryParams>,
) -> ApiResult<Json<ListOut>> {
    let KeyPath { store, key } = kp;
    caller.allow(Role::Read, Some(&store))?;
    let limit = q.limit.unwrap_or(HISTORY_PAGE);
    check_limit(limit)?;
    let below = match q.cursor.as_deref() {
        None => u64::MAX,
        Some(c) => c.parse::<u64>().map_err(|_| {
            ApiError::bad_request(
                "invalid_cursor",
                format!("cursor {c:?} is not a history cursor (give the next_cursor of a previous page)"),
            )
        })?,
    };
    let mut items: Vec<EntryOut> = state
        .db
        .history(&store, &key)?
        .into_iter()
        .filter(|e| e.revision < below)
        .take(limit + 1)
        .map(EntryOut::from)
        .collect();
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|e| e.revision.to_string())
    } else {
        None
    };
    Ok(Json(ListOut { items, next_cursor }))
}
