//! Store routes: list, create, read, drop, clear.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, NoQuery, Path, Query, check_key, parse_object};
use super::types::{ClearOut, CountOut, CreateStoreOut, DropStoreOut, StoresOut};
use crate::AppState;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use cairn_core::{Applied, Command, StoreSpec};
use serde::Deserialize;
use utoipa::IntoParams;

/// Query of `GET /v1/stores/{store}/count`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct CountParams {
    /// Only keys starting with this (string and bytes stores).
    #[allow(
        dead_code,
        reason = "read as bytes by query_bytes; here to validate the query and document it"
    )]
    pub prefix: Option<String>,
}

/// Counts a store's live keys, or those under `prefix`.
#[utoipa::path(get, path = "/v1/stores/{store}/count", params(("store" = String, Path), CountParams),
    responses((status = 200, body = CountOut), (status = 400, body = super::error::ErrorBody),
        (status = 404, body = super::error::ErrorBody)), tag = "stores")]
pub async fn count_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(store): Path<String>,
    uri: axum::http::Uri,
    Query(_params): Query<CountParams>,
) -> ApiResult<Json<CountOut>> {
    caller.allow(Role::Read, Some(&store))?;
    // As bytes, not a string: keys of bytes stores need not be UTF-8.
    let prefix = super::extract::query_bytes(&uri, "prefix");
    if let Some(p) = &prefix {
        check_key(&state, p)?;
    }
    // A count reads every key of the store: keep it off the async workers.
    let db = state.db.clone();
    let name = store.clone();
    let count = tokio::task::spawn_blocking(move || db.count(&name, prefix.as_deref()))
        .await
        .map_err(|e| ApiError::internal(&format!("count task failed: {e}")))??;
    Ok(Json(CountOut { store, count }))
}

/// Lists the stores the caller may read.
#[utoipa::path(get, path = "/v1/stores", responses((status = 200, body = StoresOut)), tag = "stores")]
pub async fn list_stores(State(state): State<AppState>, _: NoQuery, caller: Caller) -> Json<StoresOut> {
    Json(StoresOut {
        stores: state
            .db
            .stores()
            .into_iter()
            .filter(|s| caller.can_read(&s.name))
            .collect(),
    })
}

/// A store's spec.
#[utoipa::path(get, path = "/v1/stores/{store}", params(("store" = String, Path)),
    responses((status = 200, body = super::types::StoreSpecDoc), (status = 404, body = super::error::ErrorBody)), tag = "stores")]
pub async fn get_store(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<StoreSpec>> {
    caller.allow(Role::Read, Some(&store))?;
    Ok(Json(state.db.store_spec(&store)?))
}

/// Creates a store (201), or confirms an identical one (200); a different spec is a 409.
#[utoipa::path(put, path = "/v1/stores/{store}", params(("store" = String, Path)),
    request_body = super::types::StoreSpecDoc,
    responses((status = 201, body = CreateStoreOut), (status = 200, body = CreateStoreOut),
        (status = 409, body = super::error::ErrorBody)), tag = "stores")]
pub async fn create_store(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(store): Path<String>,
    Body(body): Body,
) -> ApiResult<(StatusCode, Json<CreateStoreOut>)> {
    caller.allow(Role::Admin, Some(&store))?;
    let mut spec: StoreSpec = if body.iter().all(u8::is_ascii_whitespace) {
        StoreSpec::new(store.clone())
    } else {
        let mut raw: serde_json::Value = parse_object(&body, state.config.max_json_depth)?;
        // A schema implies JSON values (StoreSpec::schema does the same).
        if let Some(obj) = raw.as_object_mut()
            && obj.contains_key("schema")
            && !obj.contains_key("value_type")
        {
            obj.insert("value_type".into(), "json".into());
        }
        serde_json::from_value(raw)
            .map_err(|e| ApiError::bad_request("invalid_spec", format!("store spec for {store:?}: {e}")))?
    };
    if spec.name.is_empty() {
        spec.name.clone_from(&store);
    } else if spec.name != store {
        return Err(ApiError::bad_request(
            "invalid_spec",
            format!(
                "spec name {:?} does not match the store {store:?} in the path",
                spec.name
            ),
        ));
    }
    match state
        .db
        .execute_async(Command::CreateStore { spec: spec.clone() })
        .await?
    {
        Applied::Store { created, revision } => {
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            Ok((
                status,
                Json(CreateStoreOut {
                    store: state.db.store_spec(&store).unwrap_or(spec),
                    created,
                    revision,
                }),
            ))
        }
        other => Err(ApiError::internal(&format!("create store answered {other:?}"))),
    }
}

/// Drops a store and all its keys.
#[utoipa::path(delete, path = "/v1/stores/{store}", params(("store" = String, Path)),
    responses((status = 200, body = DropStoreOut), (status = 404, body = super::error::ErrorBody)), tag = "stores")]
pub async fn drop_store(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<DropStoreOut>> {
    caller.allow(Role::Admin, Some(&store))?;
    match state
        .db
        .execute_async(Command::DropStore { store: store.clone() })
        .await?
    {
        Applied::Dropped { existed: false, .. } => Err(cairn_core::Error::UnknownStore { store }.into()),
        Applied::Dropped { existed, revision } => Ok(Json(DropStoreOut {
            store,
            success: existed,
            revision,
        })),
        other => Err(ApiError::internal(&format!("drop store answered {other:?}"))),
    }
}

/// Removes every key of a store.
#[utoipa::path(post, path = "/v1/stores/{store}/clear", params(("store" = String, Path)),
    responses((status = 200, body = ClearOut), (status = 404, body = super::error::ErrorBody)), tag = "stores")]
pub async fn clear_store(
    State(state): State<AppState>,
    _: NoQuery,
    caller: Caller,
    Path(store): Path<String>,
) -> ApiResult<Json<ClearOut>> {
    caller.allow(Role::Write, Some(&store))?;
    match state.db.execute_async(Command::Clear { store: store.clone() }).await? {
        Applied::Cleared { removed, revision } => Ok(Json(ClearOut {
            store,
            removed,
            revision,
        })),
        other => Err(ApiError::internal(&format!("clear answered {other:?}"))),
    }
}
