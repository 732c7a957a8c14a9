//! HTTP front end: REST/JSON, Server-Sent Events, WebSocket, `/metrics`
//! and `/openapi.json` (axum).
//!
//! Handlers parse requests into engine calls and render the results; the
//! edge limits (body size, key size, JSON depth, connections, idle time)
//! are enforced here before anything reaches the engine.
//!
//! | route | module | role |
//! | --- | --- | --- |
//! | `GET /v1/health`, `GET /openapi.json` | here, `openapi` | none |
//! | `GET /metrics` | here | read, all stores |
//! | `GET /v1/stores`, `GET\|PUT\|DELETE /v1/stores/{store}`, `POST .../clear`, `GET .../count` | `stores` | read / admin / write / read |
//! | `GET\|PUT\|DELETE\|HEAD /v1/stores/{store}/keys/{key}`, `.../history`, `.../incr`, `GET .../keys` | `keys` | read / write |
//! | `POST /v1/batch` | `batch` | read on checked stores, write on written ones |
//! | `GET /v1/watch` (Server-Sent Events) | `watch` | read (all stores without `store=`) |
//! | `POST /v1/content`, `GET\|HEAD\|DELETE /v1/content/{hash}` | `content` | write / read, all stores |
//! | `GET /v1/ws` | [`ws`] | per message |
//! | `POST /v1/admin/backup` | [`admin`] | admin, all stores |
//!
//! Errors are `{"error": {"code", "message"}}` ([`ApiError`]); connections are
//! capped and timed out in `listener`; HTTPS is in [`tls`].

pub mod admin;
mod auth;
mod batch;
mod content;
mod error;
mod extract;
mod keys;
mod listener;
mod openapi;
mod origin;
mod stores;
pub mod tls;
mod types;
mod watch;
pub mod ws;

pub use auth::Caller;
pub use error::{ApiError, ApiResult, ErrorBody};
pub use openapi::ApiDoc;

use crate::AppState;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::collections::HashSet;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;

/// Serves HTTP on `listener` until `state.shutdown` is cancelled, then
/// stops accepting and waits for in-flight requests (watch streams end on
/// shutdown) before returning.
pub async fn serve(listener: TcpListener, state: AppState) {
    let idle = Duration::from_secs(state.config.idle_timeout_secs.max(1));
    let listener = listener::Limited::new(listener, state.config.max_connections, idle, state.metrics.clone());
    let shutdown = state.shutdown.clone();
    let tls = match (&state.config.tls_cert, &state.config.tls_key) {
        (Some(cert), Some(key)) => match tls::load(cert, key) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(error = %e, "HTTP not started: TLS configuration is unusable");
                return;
            }
        },
        _ => None,
    };
    let app = router(state);
    match tls {
        Some(config) => match tls::TlsListener::new(listener, config) {
            Ok(l) => listener::serve(l, app, idle, shutdown).await,
            Err(e) => tracing::error!(error = %e, "HTTP server failed"),
        },
        None => listener::serve(listener, app, idle, shutdown).await,
    }
}

/// The whole HTTP API as an axum router.
pub fn router(state: AppState) -> Router {
    let router = Router::new()
        .route("/v1/health", get(health))
        .route("/v1/stores", get(stores::list_stores))
        .route(
            "/v1/stores/{store}",
            get(stores::get_store)
                .put(stores::create_store)
                .delete(stores::drop_store),
        )
        .route("/v1/stores/{store}/clear", post(stores::clear_store))
        .route("/v1/stores/{store}/count", get(stores::count_keys))
        .route("/v1/stores/{store}/keys", get(keys::list_keys))
        .route(
            "/v1/stores/{store}/keys/{key}",
            get(keys::get_key)
                .put(keys::put_key)
                .delete(keys::delete_key)
                .head(keys::head_key),
        )
        .route("/v1/stores/{store}/keys/{key}/history", get(keys::key_history))
        .route("/v1/stores/{store}/keys/{key}/incr", post(keys::incr_key))
        .route("/v1/batch", post(batch::batch))
        .route("/v1/watch", get(watch::watch))
        .route("/v1/content", post(content::put_content))
        .route(
            "/v1/content/{hash}",
            get(content::get_content)
                .head(content::head_content)
                .delete(content::delete_content),
        )
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(ws::router())
        .merge(admin::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(middleware::from_fn_with_state(state.clone(), edge));
    // Per-request spans and logs only when the log filter asks for them
    // (`CAIRN_LOG=tower_http=debug`): building spans even to discard them
    // cost 3–10% of a small PUT at 64 connections.
    let router = if tracing::enabled!(target: "tower_http::trace::make_span", tracing::Level::DEBUG) {
        router.layer(TraceLayer::new_for_http())
    } else {
        router
    };
    router.with_state(state)
}

/// Liveness and the current revision; open even when auth is on. `503`
/// while the engine refuses writes (a failed commit, a removed data
/// directory), with the reason, so a load balancer or orchestrator sees it.
#[utoipa::path(get, path = "/v1/health", responses(
    (status = 200, body = types::HealthOut),
    (status = 503, body = types::HealthOut, description = "The engine refuses writes; `reason` says why"),
), tag = "server")]
async fn health(State(state): State<AppState>) -> (StatusCode, axum::Json<types::HealthOut>) {
    let reason = state.db.fault();
    let (code, status) = match reason {
        None => (StatusCode::OK, "ok"),
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    };
    let revision = state.db.revision();
    (
        code,
        axum::Json(types::HealthOut {
            status,
            revision,
            reason,
        }),
    )
}

/// Prometheus metrics (needs a read token for all stores when auth is on).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "text/plain")), tag = "server")]
async fn metrics(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.allow(crate::auth::Role::Read, None)?;
    let text = state.metrics.render(&state.db);
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response())
}

/// 404 `no_route`, not `not_found`: a client must be able to tell a
/// mistyped URL from a missing key.
async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

/// The one middleware every request passes: the browser guard
/// ([`origin::refusal`]), the declared body size
/// ([`extract::declared_length_refusal`]), then metrics of the route pattern,
/// status and latency (refusals included). One layer rather than three:
/// each axum `from_fn` layer cost ~3–4K instructions per request (callgrind,
/// small PUTs), about a fifth of the connection threads' work.
async fn edge(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| intern(m.as_str()));
    let refused =
        origin::refusal(&state, req.headers()).or_else(|| extract::declared_length_refusal(&state, req.headers()));
    let resp = match refused {
        Some(resp) => resp,
        None => next.run(req).await,
    };
    state
        .metrics
        .observe("http", route, resp.status().as_u16(), start.elapsed());
    resp
}

/// Route patterns as `&'static str` for metric labels. Patterns come from
/// the router, a fixed set, so this leaks a bounded amount, once each.
fn intern(s: &str) -> &'static str {
    static SEEN: RwLock<Option<HashSet<&'static str>>> = RwLock::new(None);
    if let Some(hit) = SEEN
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(|set| set.get(s))
    {
        return hit;
    }
    let mut seen = SEEN.write().unwrap_or_else(PoisonError::into_inner);
    let set = seen.get_or_insert_with(HashSet::new);
    if let Some(hit) = set.get(s) {
        return hit;
    }
    let leaked: &'static str = Box::leak(s.to_owned().into_boxed_str());
    set.insert(leaked);
    leaked
}
