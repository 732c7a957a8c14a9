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

/// A key: a JSON string, or `{"$base64": ...}` for bytes that are not UTF-8
/// (keys of `bytes` stores, as `export` writes them).
#[derive(Debug)]
pub struct BatchKey(Vec<u8>);

impl<'de> Deserialize<'de> for BatchKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<BatchKey, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        cairn_core::key_from_json(&v)
            .map(BatchKey)
            .map_err(serde::de::Error::custom)
    }
}

/// The latest `expires_at` a batch put takes: 9999-12-31T23:59:59.999Z.
const MAX_EXPIRES_AT: u64 = 253_402_300_799_999;

/// A field that must be present but may be `null` (serde treats a
/// missing `Option` as `None` unless told otherwise).
fn nullable<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(d)
}

/// `Some(None)` for an explicit `null`, `None` when the field is absent.
fn explicit<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
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
    /// The key: a string, or `{"$base64": ...}` for bytes.
    #[schema(value_type = super::types::KeyJson)]
    pub key: BatchKey,
    /// Required revision; null: the key must be absent. Not optional: a
    /// forgotten `revision` would otherwise silently mean "absent".
    #[serde(deserialize_with = "nullable")]
    #[schema(required = true)]
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
        /// The key: a string, or `{"$base64": ...}` for bytes.
        #[schema(value_type = super::types::KeyJson)]
        key: BatchKey,
        /// The value (any JSON; `{"$base64": ...}` for bytes).
        #[schema(value_type = Value)]
        value: serde_json::Value,
        /// Expire after this many seconds.
        ttl: Option<f64>,
        /// Expire at this time (ms since the Unix epoch); `null`: never,
        /// whatever the store's `default_ttl`. Not together with `ttl`.
        #[serde(default, deserialize_with = "explicit")]
        #[schema(value_type = Option<u64>)]
        expires_at: Option<Option<u64>>,
    },
    /// Delete a key.
    Delete {
        /// Store name (default `default`).
        #[serde(default = "default_store")]
        store: String,
        /// The key: a string, or `{"$base64": ...}` for bytes.
        #[schema(value_type = super::types::KeyJson)]
        key: BatchKey,
    },
    /// Add to a number.
    Incr {
        /// Store name (default `default`).
        #[serde(default = "default_store")]
        store: String,
        /// The key: a string, or `{"$base64": ...}` for bytes.
        #[schema(value_type = super::types::KeyJson)]
        key: BatchKey,
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
    /// With a failed check: its key's revision now (null: absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>)]
    pub current_revision: Option<Option<u64>>,
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
        check_key(&state, &c.key.0)?;
        let cond = c.revision.map_or(Cond::Absent, Cond::Revision);
        checks.push(Check {
            store: c.store,
            key: c.key.0,
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
                expires_at,
            } => Op::Put {
                store,
                key: key.0,
                value: Value::from_json(value),
                ttl: match (t, expires_at) {
                    (Some(_), Some(_)) => {
                        return Err(ApiError::bad_request(
                            "invalid_ttl",
                            format!("ops[{i}]: give ttl or expires_at, not both"),
                        ));
                    }
                    (_, Some(None)) => Ttl::Persist,
                    (_, Some(Some(at))) if at > MAX_EXPIRES_AT => {
                        return Err(ApiError::bad_request(
                            "invalid_ttl",
                            format!(
                                "ops[{i}]: expires_at is ms since the Unix epoch, at most {MAX_EXPIRES_AT} (year 9999), got {at}"
                            ),
                        ));
                    }
                    (_, Some(Some(at))) => Ttl::At(at),
                    (t, None) => ttl(t)?,
                },
            },
            BatchOp::Delete { store, key } => Op::Delete { store, key: key.0 },
            BatchOp::Incr { store, key, by, ttl: t } => {
                let by = by.unwrap_or_else(|| 1.into());
                if t.is_some() {
                    // The engine's incr has no TTL: express it as a touch in the same batch.
                    let touch = Op::Touch {
                        store: store.clone(),
                        key: key.0.clone(),
                        ttl: ttl(t)?,
                    };
                    ops.push(Op::Incr {
                        store,
                        key: key.0,
                        by,
                        integer: false,
                        text: false,
                    });
                    touch
                } else {
                    Op::Incr {
                        store,
                        key: key.0,
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
                current_revision: (!w.success).then_some(w.current_revision),
            };
            Ok((status, Json(out)).into_response())
        }
        other => Err(ApiError::internal(&format!("batch answered {other:?}"))),
    }
}
