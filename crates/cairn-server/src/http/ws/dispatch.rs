//! Running decoded requests against the engine and rendering responses.
//! No socket here: [`dispatch`] maps one request object to one response object.

use super::messages::{self, Limits, Request, WsError};
use super::writes::{self, Start};
use crate::AppState;
use crate::auth::Principal;
use base64::Engine as _;
use cairn_core::Value;
use serde_json::{Map, Value as Json, json};

/// Runs one request message (a JSON value) and returns its response message.
///
/// Handles every type except `subscribe` and `unsubscribe`, which need a
/// connection to push to (see [`super::Session`]); those are answered with
/// an `unsupported` error here.
pub async fn dispatch(state: &AppState, principal: &Principal, request: Json) -> Json {
    let Json::Object(m) = request else {
        return error(
            None,
            &WsError::new(
                "invalid_message",
                "a message must be a JSON object with a \"type\" field",
            ),
        );
    };
    let limits = Limits::from_config(&state.config);
    let (id, req) = messages::decode(&m, &limits);
    let result = match req {
        Ok(req) => match authorize(principal, &req) {
            Ok(()) => execute(state, req).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    respond(id, result)
}

/// Checks the principal may make this request.
///
/// # Errors
/// `forbidden`, naming the store.
pub fn authorize(principal: &Principal, req: &Request) -> Result<(), WsError> {
    for (role, store) in req.needs() {
        if principal.allow(role, store).is_err() {
            let what = match role {
                crate::auth::Role::Read => "read",
                crate::auth::Role::Write => "write",
                crate::auth::Role::Admin => "administer",
            };
            let scope = store.map_or_else(|| "every store".to_owned(), |s| format!("store {s:?}"));
            return Err(WsError::new("forbidden", format!("token may not {what} {scope}")));
        }
    }
    Ok(())
}

/// Adds `id` (when given) to a response, or renders an error.
pub fn respond(id: Option<Json>, result: Result<Json, WsError>) -> Json {
    match result {
        Ok(mut v) => {
            if let (Some(id), Json::Object(m)) = (id, &mut v) {
                m.insert("id".into(), id);
            }
            v
        }
        Err(e) => error(id, &e),
    }
}

/// `{"type": "error", "id"?, "code", "message", "oldest_revision"?}`.
pub fn error(id: Option<Json>, e: &WsError) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), json!("error"));
    if let Some(id) = id {
        m.insert("id".into(), id);
    }
    m.insert("code".into(), json!(e.code));
    m.insert("message".into(), json!(e.message));
    if let Some(oldest) = e.oldest_revision {
        m.insert("oldest_revision".into(), json!(oldest));
    }
    Json::Object(m)
}

/// Runs a request that needs no connection state (not subscribe/unsubscribe),
/// waiting for a write to commit.
///
/// # Errors
/// Engine errors, by their code.
pub async fn execute(state: &AppState, req: Request) -> Result<Json, WsError> {
    let db = &state.db;
    Ok(match req {
        Request::Get { store, key, default } => {
            let found = db.get(&store, &key)?;
            match found {
                Some(e) => {
                    let mut v = json!({
                        "type": "get_response", "key": e.key.to_json(), "value": e.value.to_json(), "found": true,
                        "revision": e.revision, "created_revision": e.created_revision, "version": e.version,
                        "updated_at": e.updated_at,
                    });
                    if let Some(t) = e.expires_at {
                        v["expires_at"] = json!(t);
                    }
                    v
                }
                None => json!({
                    "type": "get_response", "key": cairn_core::json_key(&String::from_utf8_lossy(&key), &key), "found": false,
                    "value": default.as_ref().map_or(Json::Null, Value::to_json),
                }),
            }
        }
        Request::Contains { store, key } => {
            let exists = db.contains(&store, &key)?;
            json!({"type": "contains_response", "key": cairn_core::json_key(&String::from_utf8_lossy(&key), &key), "exists": exists})
        }
        Request::List { store, options } => {
            let db = db.clone();
            // A page can be 10,000 entries: keep it off the async workers.
            let page = tokio::task::spawn_blocking(move || db.list(&store, &options))
                .await
                .map_err(|e| WsError::new("internal", format!("list task failed: {e}")))??;
            json!({"type": "list_response", "items": page.items, "next_cursor": page.next_cursor})
        }
        Request::GetContent { hash } => {
            let db = db.clone();
            let h = hash.clone();
            // Verifying the hash of up to 8 MiB is CPU work.
            let bytes = tokio::task::spawn_blocking(move || db.get_content(&h))
                .await
                .map_err(|e| WsError::new("internal", format!("content task failed: {e}")))??;
            match bytes {
                None => json!({"type": "get_content_response", "hash": hash, "found": false, "content": null}),
                Some(b) => json!({
                    "type": "get_content_response", "hash": hash, "found": true,
                    "content": serde_json::from_slice::<Json>(&b).unwrap_or(Json::Null),
                    "content_base64": base64::engine::general_purpose::STANDARD.encode(&b),
                    "size": b.len(),
                }),
            }
        }
        Request::Subscribe { .. } | Request::Unsubscribe { .. } => {
            return Err(WsError::new("unsupported", "subscriptions need a WebSocket connection"));
        }
        write => {
            return match writes::start(state, write) {
                Start::Submitted(f) => f.await,
                Start::Failed(e) => Err(e),
                Start::NotAWrite(_) => Err(WsError::new("internal", "request is neither a read nor a write")),
            };
        }
    })
}
