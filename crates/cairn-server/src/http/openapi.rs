//! `/openapi.json`: the OpenAPI document, derived from the handlers'
//! `#[utoipa::path]` annotations and the request and response types.

use super::{admin, batch, content, error, keys, stores, types, watch, ws};
use axum::Json;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder};

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
    modifiers(&BearerAuth),
    components(schemas(
        error::ErrorBody,
        types::KeyJson,
        types::Base64Key,
        types::DefaultOut,
        types::GetOut,
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

/// Routes open without a token.
const OPEN: &[&str] = &["/v1/health", "/openapi.json"];

/// The bearer-token scheme, and on every route but [`OPEN`] the 401 and
/// 403 answers it brings, so generated clients know them.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .description(Some(
                "A token from --auth-token-file (when the server has one). Browsers may give \
                 ?token= on /v1/watch and /v1/ws instead.",
            ))
            .build();
        api.components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
        api.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new())]);
        let error = |what: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(what)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("ErrorBody"))))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in &mut api.paths.paths {
            if OPEN.contains(&path.as_str()) {
                // `[{}]`: no token needed, overriding the document's default.
                if let Some(op) = item.get.as_mut() {
                    op.security = Some(vec![SecurityRequirement::default()]);
                }
                continue;
            }
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.head,
            ];
            for op in ops.into_iter().flatten() {
                let r = &mut op.responses.responses;
                r.entry("401".into())
                    .or_insert_with(|| error("`unauthorized`: auth is on and the token is missing or unknown"));
                r.entry("403".into())
                    .or_insert_with(|| error("`forbidden`: the token's role or store scope does not allow this"));
            }
        }
    }
}

pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
