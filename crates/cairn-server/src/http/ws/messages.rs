//! Decoding WebSocket requests: JSON text → [`Request`], with limits checked
//! and every bad input named in a [`WsError`].
//!
//! ```text
//! {"type": "get",     "id"?, "store"?, "key", "default"?}
//!   (everywhere: "key_base64", or "key": {"$base64": ...} as answers give it, for keys that are not UTF-8)
//! {"type": "set"|"put", "id"?, "store"?, "key", "value", "ttl"?, "if_revision"?, "if_absent"?, "if_present"?}
//! {"type": "delete",  "id"?, "store"?, "key", "if_revision"?}
//! {"type": "contains","id"?, "store"?, "key"}
//! {"type": "clear",   "id"?, "store"?}
//! {"type": "list",    "id"?, "store"?, "prefix"?, "start"?, "end"?, "limit"?, "cursor"?, "reverse"?, "keys_only"?}
//! {"type": "incr",    "id"?, "store"?, "key", "by"?}
//! {"type": "batch",   "id"?, "checks"?: [{"store"?, "key", "revision": n|null}],
//!                            "ops": [{"op": "put"|"delete"|"incr", "store"?, "key", "value"?, "by"?, "ttl"?}]}
//! {"type": "subscribe",   "id"?, "store"?, "key"?, "prefix"?, "from_revision"?}
//! {"type": "unsubscribe", "id"?, "subscription"}
//! {"type": "store_content", "id"?, "content" | "content_base64", "algorithm"?}
//! {"type": "get_content",   "id"?, "hash"}
//! ```
//!
//! Values are any JSON; `{"$base64": "..."}` stands for raw bytes, as in
//! every other cairn JSON rendering. A field a message does not take is
//! refused (`unknown_field`), naming the fields it takes.
//!
//! Content: `content` is a JSON value (the seed's `"any json value"`) and
//! the bytes stored are its JSON text, so `"content": "hi"` stores the
//! four bytes `"hi"`, quotes included; `content_base64` gives raw bytes,
//! which hash as they do through `POST /v1/content`. `get_content` answers
//! both: `content`, the bytes read as JSON (null when they are not JSON),
//! and `content_base64`, the bytes themselves.

use super::fields::Fields;
pub use super::fields::{Limits, parse_object};
use crate::auth::Role;
use base64::Engine as _;
use cairn_core::{Algorithm, Check, Cond, Filter, ListOptions, Op, PutOptions, Ttl, Value};
use serde_json::{Map, Number, Value as Json};

/// A refused or failed request: rendered as `{"type": "error", "id"?, "code",
/// "message", "oldest_revision"?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    /// Machine-readable code (`invalid_json`, `missing_field`, an engine code, ...).
    pub code: &'static str,
    /// What was wrong, for people.
    pub message: String,
    /// With `compacted`: the oldest revision a subscription can start from,
    /// as in HTTP's 410 answer.
    pub oldest_revision: Option<u64>,
}

impl WsError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> WsError {
        WsError {
            code,
            message: message.into(),
            oldest_revision: None,
        }
    }

    pub(super) fn missing(field: &str) -> WsError {
        WsError::new("missing_field", format!("field {field:?} is required"))
    }

    pub(super) fn invalid(field: &str, want: &str) -> WsError {
        WsError::new("invalid_field", format!("field {field:?} must be {want}"))
    }
}

impl From<cairn_core::Error> for WsError {
    fn from(e: cairn_core::Error) -> WsError {
        if matches!(e, cairn_core::Error::Storage(_) | cairn_core::Error::Io(_)) {
            // The cause stays in the log; clients get an opaque message.
            tracing::error!(error = %e, "engine error while serving a WebSocket request");
            return WsError::new(e.code(), "internal error");
        }
        let oldest_revision = match &e {
            cairn_core::Error::Compacted { oldest, .. } => Some(*oldest),
            _ => None,
        };
        WsError {
            oldest_revision,
            ..WsError::new(e.code(), e.to_string())
        }
    }
}

/// `set` and `put` are the same operation answered under their own names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutVerb {
    /// `set` → `set_response`.
    Set,
    /// `put` → `put_response`.
    Put,
}

/// A decoded request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Read a key.
    Get {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Returned as `value` when the key is absent.
        default: Option<Value>,
    },
    /// Write a key.
    Put {
        /// `set` or `put`.
        verb: PutVerb,
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// New value.
        value: Value,
        /// TTL and conditions.
        options: PutOptions,
    },
    /// Remove a key.
    Delete {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Only if the key has this revision.
        if_revision: Option<u64>,
    },
    /// Does a key exist?
    Contains {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
    },
    /// Remove every key of a store.
    Clear {
        /// Store name.
        store: String,
    },
    /// A page of entries.
    List {
        /// Store name.
        store: String,
        /// Prefix, range, paging.
        options: ListOptions,
    },
    /// Add to a number.
    Incr {
        /// Store name.
        store: String,
        /// Raw key.
        key: Vec<u8>,
        /// Amount.
        by: Number,
    },
    /// Atomic checks and operations.
    Batch {
        /// Conditions.
        checks: Vec<Check>,
        /// Operations.
        ops: Vec<Op>,
    },
    /// Start receiving events.
    Subscribe {
        /// Which events.
        filter: Filter,
        /// Replay from this revision (inclusive).
        from_revision: Option<u64>,
    },
    /// Stop a subscription.
    Unsubscribe {
        /// Its id.
        subscription: u64,
    },
    /// Store content by hash.
    StoreContent {
        /// The bytes.
        data: Vec<u8>,
        /// Hash algorithm.
        algorithm: Algorithm,
    },
    /// Read content by hash.
    GetContent {
        /// Hex hash.
        hash: String,
    },
}

impl Request {
    /// The message type, as sent.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Request::Get { .. } => "get",
            Request::Put { verb: PutVerb::Set, .. } => "set",
            Request::Put { verb: PutVerb::Put, .. } => "put",
            Request::Delete { .. } => "delete",
            Request::Contains { .. } => "contains",
            Request::Clear { .. } => "clear",
            Request::List { .. } => "list",
            Request::Incr { .. } => "incr",
            Request::Batch { .. } => "batch",
            Request::Subscribe { .. } => "subscribe",
            Request::Unsubscribe { .. } => "unsubscribe",
            Request::StoreContent { .. } => "store_content",
            Request::GetContent { .. } => "get_content",
        }
    }

    /// The permissions the request needs: a role on each store it touches
    /// (`None`: not store-scoped, such as content or a subscription to every store).
    #[must_use]
    pub fn needs(&self) -> Vec<(Role, Option<&str>)> {
        match self {
            Request::Get { store, .. } | Request::Contains { store, .. } | Request::List { store, .. } => {
                vec![(Role::Read, Some(store))]
            }
            Request::Put { store, .. }
            | Request::Delete { store, .. }
            | Request::Clear { store }
            | Request::Incr { store, .. } => vec![(Role::Write, Some(store))],
            Request::Batch { checks, ops } => {
                let mut v: Vec<(Role, Option<&str>)> = checks.iter().map(|c| (Role::Read, Some(&*c.store))).collect();
                v.extend(ops.iter().flat_map(Op::targets).map(|(s, _)| (Role::Write, Some(s))));
                v
            }
            Request::Subscribe { filter, .. } => vec![(Role::Read, filter.store.as_deref())],
            Request::Unsubscribe { .. } => Vec::new(),
            Request::StoreContent { .. } => vec![(Role::Write, None)],
            Request::GetContent { .. } => vec![(Role::Read, None)],
        }
    }
}

/// The message types, as sent.
pub const TYPES: [&str; 13] = [
    "get",
    "set",
    "put",
    "delete",
    "contains",
    "clear",
    "list",
    "incr",
    "batch",
    "subscribe",
    "unsubscribe",
    "store_content",
    "get_content",
];

/// The message's `type` when it is a known one (`"invalid"` otherwise), for metric labels.
#[must_use]
pub fn type_name(m: &Map<String, Json>) -> &'static str {
    let t = m.get("type").and_then(Json::as_str);
    TYPES.iter().find(|k| Some(**k) == t).copied().unwrap_or("invalid")
}

/// Decodes a message object into its optional `id` and the request.
///
/// The `id` is returned even when decoding fails, so errors can echo it.
pub fn decode(m: &Map<String, Json>, limits: &Limits) -> (Option<Json>, Result<Request, WsError>) {
    (m.get("id").cloned(), decode_request(m, limits))
}

/// The fields each message type takes besides `type` and `id`. Anything
/// else is refused: a misspelt `if_absnt` must not turn a conditional put
/// into an unconditional one.
fn allowed_fields(ty: &str) -> &'static [&'static str] {
    match ty {
        "get" => &["store", "key", "key_base64", "default"],
        "set" | "put" => &[
            "store",
            "key",
            "key_base64",
            "value",
            "ttl",
            "if_revision",
            "if_absent",
            "if_present",
        ],
        "delete" => &["store", "key", "key_base64", "if_revision"],
        "contains" => &["store", "key", "key_base64"],
        "clear" => &["store"],
        "list" => &[
            "store",
            "prefix",
            "start",
            "end",
            "limit",
            "cursor",
            "reverse",
            "keys_only",
        ],
        "incr" => &["store", "key", "key_base64", "by"],
        "batch" => &["checks", "ops"],
        "batch.checks" => &["store", "key", "key_base64", "revision"],
        "batch.ops" => &["op", "store", "key", "key_base64", "value", "ttl", "by"],
        "subscribe" => &["store", "key", "prefix", "from_revision"],
        "unsubscribe" => &["subscription"],
        "store_content" => &["content", "content_base64", "algorithm"],
        "get_content" => &["hash"],
        _ => &[],
    }
}

/// Refuses a field `ty` does not take (`top`: the message itself, which
/// also carries `type` and `id`).
fn check_fields(m: &Map<String, Json>, ty: &str, at: &str, top: bool) -> Result<(), WsError> {
    let allowed = allowed_fields(ty);
    match m
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && !(top && (*k == "type" || *k == "id")))
    {
        None => Ok(()),
        Some(k) => Err(WsError::new(
            "unknown_field",
            format!(
                "unknown field {:?}{at}; this takes {}",
                k,
                allowed.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>().join(", ")
            ),
        )),
    }
}

fn decode_request(m: &Map<String, Json>, limits: &Limits) -> Result<Request, WsError> {
    let f = Fields::new(m, String::new());
    let ty = match m.get("type") {
        None => return Err(WsError::missing("type")),
        Some(Json::String(t)) => t.as_str(),
        Some(_) => return Err(WsError::invalid("type", "a string")),
    };
    if TYPES.contains(&ty) {
        check_fields(m, ty, &format!(" in a {ty:?} message"), true)?;
    }
    Ok(match ty {
        "get" => Request::Get {
            store: f.store()?,
            key: f.key(limits)?,
            default: if m.contains_key("default") {
                Some(f.value("default", limits)?)
            } else {
                None
            },
        },
        "set" | "put" => Request::Put {
            verb: if ty == "set" { PutVerb::Set } else { PutVerb::Put },
            store: f.store()?,
            key: f.key(limits)?,
            value: f.value("value", limits)?,
            options: PutOptions {
                ttl: f.ttl()?,
                if_revision: f.u64_opt("if_revision")?,
                if_absent: f.bool_opt("if_absent")?,
                if_present: f.bool_opt("if_present")?,
                keep_ttl: false,
            },
        },
        "delete" => Request::Delete {
            store: f.store()?,
            key: f.key(limits)?,
            if_revision: f.u64_opt("if_revision")?,
        },
        "contains" => Request::Contains {
            store: f.store()?,
            key: f.key(limits)?,
        },
        "clear" => Request::Clear { store: f.store()? },
        "list" => Request::List {
            store: f.store()?,
            options: ListOptions {
                prefix: f.str_opt("prefix")?.map(String::into_bytes),
                start: f.str_opt("start")?.map(String::into_bytes),
                end: f.str_opt("end")?.map(String::into_bytes),
                limit: match f.u64_opt("limit")? {
                    Some(n) if (1..=cairn_core::MAX_LIST_LIMIT as u64).contains(&n) => Some(n as usize),
                    Some(n) => {
                        return Err(WsError::invalid(
                            "limit",
                            &format!("1..={} (got {n})", cairn_core::MAX_LIST_LIMIT),
                        ));
                    }
                    None => None,
                },
                cursor: f.str_opt("cursor")?,
                reverse: f.bool_opt("reverse")?,
                keys_only: f.bool_opt("keys_only")?,
            },
        },
        "incr" => Request::Incr {
            store: f.store()?,
            key: f.key(limits)?,
            by: f.number_opt("by")?.unwrap_or_else(|| Number::from(1)),
        },
        "batch" => decode_batch(&f, limits)?,
        "subscribe" if m.contains_key("key") && m.contains_key("prefix") => {
            return Err(WsError::new(
                "invalid_field",
                "give \"key\" or \"prefix\", not both: watch one key, or every key under a prefix",
            ));
        }
        "subscribe" => Request::Subscribe {
            filter: Filter {
                store: f.str_opt("store")?,
                // An integer names a key of an int store, as in `get`.
                key: match f.get("key") {
                    Some(Json::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
                    _ => f.str_opt("key")?,
                },
                prefix: f.str_opt("prefix")?,
            },
            from_revision: f.u64_opt("from_revision")?,
        },
        "unsubscribe" => Request::Unsubscribe {
            subscription: f
                .u64_opt("subscription")?
                .ok_or_else(|| WsError::missing("subscription"))?,
        },
        "store_content" => decode_store_content(&f, limits)?,
        "get_content" => Request::GetContent {
            hash: f.str_opt("hash")?.ok_or_else(|| WsError::missing("hash"))?,
        },
        other => {
            return Err(WsError::new(
                "unknown_type",
                format!("unknown message type {other:?}; expected one of {}", TYPES.join(", ")),
            ));
        }
    })
}

fn decode_batch(f: &Fields<'_>, limits: &Limits) -> Result<Request, WsError> {
    let objects = |name: &str| -> Result<Vec<Fields<'_>>, WsError> {
        let Some(items) = f.array(name)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Json::Object(m) => {
                    check_fields(m, &format!("batch.{name}"), &format!(" in {name}[{i}]"), false)?;
                    Ok(Fields::new(m, format!("{name}[{i}]")))
                }
                _ => Err(WsError::invalid(&format!("{name}[{i}]"), "an object")),
            })
            .collect()
    };
    if f.get("ops").is_none() {
        return Err(WsError::missing("ops"));
    }
    let mut checks = Vec::new();
    for c in objects("checks")? {
        let name = c.name("revision");
        let cond = match c.m.get("revision") {
            None => return Err(WsError::missing(&name)),
            Some(Json::Null) => Cond::Absent,
            Some(v) => Cond::Revision(
                v.as_u64()
                    .ok_or_else(|| WsError::invalid(&name, "an integer or null"))?,
            ),
        };
        checks.push(Check {
            store: c.store()?,
            key: c.key(limits)?,
            cond,
        });
    }
    let mut ops = Vec::new();
    for o in objects("ops")? {
        let (store, key) = (o.store()?, o.key(limits)?);
        let op = match o.str_opt("op")?.as_deref() {
            Some("put" | "set") => {
                let ttl = o
                    .ttl()?
                    .map_or(Ttl::Default, |d| Ttl::Millis(d.as_millis().max(1) as u64));
                Op::Put {
                    store,
                    key,
                    value: o.value("value", limits)?,
                    ttl,
                }
            }
            Some("delete") => Op::Delete { store, key },
            Some("incr") => Op::Incr {
                store,
                key,
                by: o.number_opt("by")?.unwrap_or_else(|| Number::from(1)),
                integer: false,
                text: false,
            },
            Some(other) => {
                return Err(WsError::invalid(
                    &o.name("op"),
                    &format!("\"put\", \"delete\" or \"incr\" (got {other:?})"),
                ));
            }
            None => return Err(WsError::missing(&o.name("op"))),
        };
        ops.push(op);
    }
    Ok(Request::Batch { checks, ops })
}

fn decode_store_content(f: &Fields<'_>, limits: &Limits) -> Result<Request, WsError> {
    let algorithm = match f.str_opt("algorithm")? {
        None => Algorithm::default(),
        Some(a) => a
            .parse()
            .map_err(|e: cairn_core::Error| WsError::invalid("algorithm", &e.to_string()))?,
    };
    let data = match (f.m.get("content"), f.str_opt("content_base64")?) {
        (Some(_), Some(_)) => {
            return Err(WsError::new(
                "invalid_field",
                "give either \"content\" or \"content_base64\", not both",
            ));
        }
        // The hash is over the compact JSON encoding, so equal JSON values deduplicate.
        (Some(v), None) => serde_json::to_vec(v).map_err(|e| WsError::invalid("content", &e.to_string()))?,
        (None, Some(b)) => base64::engine::general_purpose::STANDARD
            .decode(b.as_bytes())
            .map_err(|e| WsError::invalid("content_base64", &format!("standard base64 ({e})")))?,
        (None, None) => return Err(WsError::missing("content")),
    };
    if data.len() > limits.max_value_bytes {
        return Err(WsError::new(
            "value_too_large",
            format!(
                "content is {} bytes, over the limit of {}",
                data.len(),
                limits.max_value_bytes
            ),
        ));
    }
    Ok(Request::StoreContent { data, algorithm })
}

#[cfg(test)]
#[path = "messages_tests.rs"]
mod tests;
