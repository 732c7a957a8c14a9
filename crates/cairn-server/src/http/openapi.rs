//! `/openapi.json`: the OpenAPI document, derived from the handlers'
//! `#[utoipa::path]` annotations and the request and response types.

use super::{admin, batch, content, error, keys, stores, types, watch, ws};
use axum::Json;
use utoipa::OpenApi;

/// The OpenAPI description of the HTTP API.
#[derive(OpenApi)]
#[openapi(
    info(title = "cairn", description = "cairn's HTTP/JSON API"),
    paths(
        super::health,
        super::metrics,
        stores::list_stores,
        stores::get_store,
        stores::create_store,
        stores::drop_store,
        stores::clear_store,
        stores::count_keys,
        keys::get_key,
        keys::head_key,
        keys::put_key,
        keys::delete_key,
        keys::incr_key,
        keys::list_keys,
        keys::key_history,
        batch::batch,
        watch::watch,
        content::put_content,
        content::get_content,
        content::head_content,
        content::delete_content,
        ws::upgrade,
        admin::backup,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        types::EntryOut,
        types::PutOut,
        types::DeleteOut,
        types::IncrOut,
        types::ListOut,
        types::StoreSpecDoc,
        types::StoresOut,
        types::CreateStoreOut,
        types::DropStoreOut,
        types::ClearOut,
        types::CountOut,
        types::ContentOut,
        types::ContentDeletedOut,
        types::HealthOut,
        keys::IncrBody,
        batch::BatchRequest,
        batch::BatchCheck,
        batch::BatchOp,
        batch::BatchOut,
    ))
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
