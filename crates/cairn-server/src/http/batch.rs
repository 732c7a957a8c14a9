//! `POST /v1/batch`: checks and operations applied all-or-nothing.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::{Body, NoQuery, check_key, json_error, json_kind, parse_object};
use super::keys::parse_ttl;
use crate::AppState;
use crate::auth::Role;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use cairn_core::{Applied, Check, Command, Cond, Op, Ttl, Value};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

fn default_store() -> String {
    cairn_core::DEFAULT_STORE.to_owned()
}

/// A batch request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Conditions that must all hold.
    #[serde(default)]
    pub checks: Vec<BatchCheck>,
    /// Operations applied at one revision when they do.
    #[serde(default)]
    pub ops: Vec<BatchOp>,
}

/// A condition: the key has exactly `revision`, or (`revision: null`) is absent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchCheck {
    /// Store name (default `default`).
    #[serde(default = "default_store")]
    pub store: String,
    /// The key.
    pub key: String,
    /// Required revision; null: the key must be absent.
    pub revision: Option<u64>,
}

/// One operation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchOp {
    /// Set a key.
    Put {
        /// Store name (default `default`).
        #[serde(default = "default_store")]
        store: String,
        /// The key.
        key: String,
        /// The value (any JSON; `{"$base64": ...}` for bytes).
        #[schema(value_type = Value)]
        value: serde_json::Value,
        /// Expire after this many seconds.
        ttl: Option<f64>,
    },
    /// Delete a key.
    Delete {
        /// Store name (default `default`).
        #[serde(default = "default_store")]
        store: String,
        /// The key.
        key: String,
    },
    /// Add to a number.
    Incr {
        /// Store name (default `default`).
        #[serde(default = "default_store")]
        store: String,
        /// The key.
        key: String,
        /// Amount (default 1).
        #[schema(value_type = Option<f64>)]
        by: Option<serde_json::Number>,
        /// Expire after this many seconds.
        ttl: Option<f64>,
    },
}

/// The answer: 200 with `success: true`, or 409 naming the failed check.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    /// True when all checks held and the operations were applied.
    pub success: bool,
    /// The commit's revision (on failure: the current revision).
    pub revision: u64,
    /// Index of the first failed check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_check: Option<usize>,
    /// Revision of the failed check's key now (null: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<u64>,
}

/// Parses a batch, refusing arrays where objects belong (serde would read a
/// check or the request itself from an array, by position).
fn parse_request(body: &[u8], max_depth: usize) -> Result<BatchRequest, ApiError> {
    let v: serde_json::Value = parse_object(body, max_depth)?;
    for list in ["checks", "ops"] {
        if let Some(items) = v.get(list).and_then(|l| l.as_array())
            && let Some((i, item)) = items.iter().enumerate().find(|(_, x)| !x.is_object())
        {
            return Err(ApiError::invalid_json(format!(
                "request body: {list}[{i}] must be a JSON object, got {}",
                json_kind(item)
            )));
        }
    }
    serde_json::from_value(v).map_err(|e| json_error("request body", &e))
}

/// Applies a batch atomically.
#[utoipa::path(post, path = "/v1/batch", request_body = BatchRequest,
    responses((status = 200, body = BatchOut), (status = 409, body = BatchOut, description = "a check failed"),
        (status = 400, body = super::error::ErrorBody)), tag = "keys")]
pub async fn batch(State(state): State<AppState>, _: NoQuery, caller: Caller, Body(body): Body) -> ApiResult<Response> {
    let req = parse_request(&body, state.config.max_json_depth)?;
    let max = state.config.max_batch_ops;
    let len = req.checks.len() + req.ops.len();
    if len > max {
        return Err(cairn_core::Error::BatchTooLarge { len, max }.into());
    }
    let mut checks = Vec::with_capacity(req.checks.len());
    for c in req.checks {
        caller.allow(Role::Read, Some(&c.store))?;
        check_key(&state, c.key.as_bytes())?;
        let cond = c.revision.map_or(Cond::Absent, Cond::Revision);
        checks.push(Check {
            store: c.store,
            key: c.key.into_bytes(),
            cond,
        });
    }
    let mut ops = Vec::with_capacity(req.ops.len());
    for (i, op) in req.ops.into_iter().enumerate() {
        let ttl = |t: Option<f64>| -> Result<Ttl, ApiError> {
            t.map(parse_ttl)
                .transpose()
                .map_err(|e| ApiError::bad_request("invalid_ttl", format!("ops[{i}]: {}", e.message())))
                .map(|d| d.map_or(Ttl::Default, |d| Ttl::Millis(d.as_millis() as u64)))
        };
        let op = match op {
            BatchOp::Put {
                store,
                key,
                value,
                ttl: t,
            } => Op::Put {
                store,
                key: key.into_bytes(),
                value: Value::from_json(value),
                ttl: ttl(t)?,
            },
            BatchOp::Delete { store, key } => Op::Delete {
                store,
                key: key.into_bytes(),
            },
            BatchOp::Incr { store, key, by, ttl: t } => {
                let by = by.unwrap_or_else(|| 1.into());
                if t.is_some() {
                    // The engine's incr has no TTL: express it as a touch in the same batch.
                    let touch = Op::Touch {
                        store: store.clone(),
                        key: key.clone().into_bytes(),
                        ttl: ttl(t)?,
                    };
                    ops.push(Op::Incr {
                        store,
                        key: key.into_bytes(),
                        by,
                        integer: false,
                        text: false,
                    });
                    touch
                } else {
                    Op::Incr {
                        store,
                        key: key.into_bytes(),
                        by,
                        integer: false,
                        text: false,
                    }
                }
            }
        };
        let (store, key) = op.target();
        caller.allow(Role::Write, Some(store))?;
        check_key(&state, key)?;
        ops.push(op);
    }
    match state.db.execute_async(Command::Write { checks, ops }).await? {
        Applied::Write(w) => {
            let status = if w.success {
                StatusCode::OK
            } else {
                StatusCode::CONFLICT
            };
            let out = BatchOut {
                success: w.success,
                revision: w.revision,
                failed_check: w.failed_check,
                current_revision: if w.success { None } else { w.current_revision },
            };
            Ok((status, Json(out)).into_response())
        }
        other => Err(ApiError::internal(&format!("batch answered {other:?}"))),
    }
}
