//! Decoding WebSocket requests: JSON text → [`Request`], with limits checked
//! and every bad input named in a [`WsError`].
//!
//! ```text
//! {"type": "get",     "id"?, "store"?, "key", "default"?}
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
//! every other cairn JSON rendering. Unknown fields are ignored so that
//! clients may send fields newer servers understand.

use crate::auth::Role;
use crate::config::ServerConfig;
use base64::Engine as _;
use cairn_core::{Algorithm, Check, Cond, DEFAULT_STORE, Filter, ListOptions, Op, PutOptions, Ttl, Value};
use serde_json::{Map, Number, Value as Json};
use std::time::Duration;

/// A refused or failed request: rendered as `{"type": "error", "id"?, "code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsError {
    /// Machine-readable code (`invalid_json`, `missing_field`, an engine code, ...).
    pub code: &'static str,
    /// What was wrong, for people.
    pub message: String,
}

impl WsError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> WsError {
        WsError {
            code,
            message: message.into(),
        }
    }

    fn missing(field: &str) -> WsError {
        WsError::new("missing_field", format!("field {field:?} is required"))
    }

    fn invalid(field: &str, want: &str) -> WsError {
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
        WsError::new(e.code(), e.to_string())
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
        /// Key.
        key: String,
        /// Returned as `value` when the key is absent.
        default: Option<Value>,
    },
    /// Write a key.
    Put {
        /// `set` or `put`.
        verb: PutVerb,
        /// Store name.
        store: String,
        /// Key.
        key: String,
        /// New value.
        value: Value,
        /// TTL and conditions.
        options: PutOptions,
    },
    /// Remove a key.
    Delete {
        /// Store name.
        store: String,
        /// Key.
        key: String,
        /// Only if the key has this revision.
        if_revision: Option<u64>,
    },
    /// Does a key exist?
    Contains {
        /// Store name.
        store: String,
        /// Key.
        key: String,
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
        /// Key.
        key: String,
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
                v.extend(ops.iter().map(|o| (Role::Write, Some(o.target().0))));
                v
            }
            Request::Subscribe { filter, .. } => vec![(Role::Read, filter.store.as_deref())],
            Request::Unsubscribe { .. } => Vec::new(),
            Request::StoreContent { .. } => vec![(Role::Write, None)],
            Request::GetContent { .. } => vec![(Role::Read, None)],
        }
    }
}

/// The limits decoding enforces, taken from the server options.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest message, bytes.
    pub max_message_bytes: usize,
    /// Largest key, bytes.
    pub max_key_bytes: usize,
    /// Largest value, bytes (as the engine measures it).
    pub max_value_bytes: usize,
    /// Deepest JSON nesting.
    pub max_json_depth: usize,
}

impl Limits {
    /// The limits `config` sets.
    #[must_use]
    pub fn from_config(c: &ServerConfig) -> Limits {
        Limits {
            max_message_bytes: c.max_body_bytes,
            max_key_bytes: c.max_key_bytes,
            max_value_bytes: c.max_value_bytes,
            max_json_depth: c.max_json_depth,
        }
    }
}

/// Parses a text message into a JSON object, enforcing size and depth limits
/// before building any value.
///
/// # Errors
/// `message_too_large`, `too_deep`, `invalid_json`, `invalid_message` (not an object).
pub fn parse_object(text: &str, limits: &Limits) -> Result<Map<String, Json>, WsError> {
    if text.len() > limits.max_message_bytes {
        return Err(WsError::new(
            "message_too_large",
            format!(
                "message is {} bytes, over the limit of {}",
                text.len(),
                limits.max_message_bytes
            ),
        ));
    }
    if let Some(depth) = depth_over(text.as_bytes(), limits.max_json_depth) {
        return Err(WsError::new(
            "too_deep",
            format!(
                "JSON nesting exceeds the limit of {} levels (reached {depth})",
                limits.max_json_depth
            ),
        ));
    }
    match serde_json::from_str::<Json>(text) {
        Ok(Json::Object(m)) => Ok(m),
        Ok(other) => Err(WsError::new(
            "invalid_message",
            format!(
                "a message must be a JSON object with a \"type\" field, got {}",
                kind_of(&other)
            ),
        )),
        Err(e) => Err(WsError::new("invalid_json", format!("message is not valid JSON: {e}"))),
    }
}

/// The nesting depth reached when it goes over `max`, scanning raw JSON text
/// (brackets inside strings do not count). Malformed text is left to the parser.
fn depth_over(b: &[u8], max: usize) -> Option<usize> {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for &c in b {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return Some(depth);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Typed access to a message's fields, producing errors that name the field.
struct Fields<'a> {
    m: &'a Map<String, Json>,
    /// Field names are reported with this prefix (`ops[2].key`).
    at: String,
}

impl<'a> Fields<'a> {
    fn new(m: &'a Map<String, Json>, at: String) -> Fields<'a> {
        Fields { m, at }
    }

    fn name(&self, f: &str) -> String {
        if self.at.is_empty() {
            f.to_owned()
        } else {
            format!("{}.{f}", self.at)
        }
    }

    /// A field that is absent or `null` counts as missing.
    fn get(&self, f: &str) -> Option<&'a Json> {
        self.m.get(f).filter(|v| !v.is_null())
    }

    fn str_opt(&self, f: &str) -> Result<Option<String>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WsError::invalid(&self.name(f), "a string")),
        }
    }

    fn store(&self) -> Result<String, WsError> {
        let s = self.str_opt("store")?.unwrap_or_else(|| DEFAULT_STORE.to_owned());
        if s.is_empty() {
            return Err(WsError::invalid(&self.name("store"), "a non-empty store name"));
        }
        Ok(s)
    }

    /// A key: a string, or an integer (for int-keyed stores).
    fn key(&self, limits: &Limits) -> Result<String, WsError> {
        let name = self.name("key");
        let k = match self.get("key") {
            None => return Err(WsError::missing(&name)),
            Some(Json::String(s)) => s.clone(),
            Some(Json::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
            Some(_) => return Err(WsError::invalid(&name, "a string")),
        };
        if k.len() > limits.max_key_bytes {
            return Err(WsError::new(
                "key_too_large",
                format!(
                    "{name} is {} bytes, over the limit of {}",
                    k.len(),
                    limits.max_key_bytes
                ),
            ));
        }
        Ok(k)
    }

    fn value(&self, f: &str, limits: &Limits) -> Result<Value, WsError> {
        // `null` is a legitimate value, so presence is checked on the raw map.
        let v = self.m.get(f).ok_or_else(|| WsError::missing(&self.name(f)))?;
        let v = Value::from_json(v.clone());
        let len = v.size_hint();
        if len > limits.max_value_bytes {
            return Err(WsError::new(
                "value_too_large",
                format!(
                    "{} is {len} bytes, over the limit of {}",
                    self.name(f),
                    limits.max_value_bytes
                ),
            ));
        }
        Ok(v)
    }

    fn u64_opt(&self, f: &str) -> Result<Option<u64>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| WsError::invalid(&self.name(f), "a non-negative integer")),
        }
    }

    fn bool_opt(&self, f: &str) -> Result<bool, WsError> {
        match self.get(f) {
            None => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(WsError::invalid(&self.name(f), "true or false")),
        }
    }

    fn number_opt(&self, f: &str) -> Result<Option<Number>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(Some(n.clone())),
            Some(_) => Err(WsError::invalid(&self.name(f), "a number")),
        }
    }

    /// A TTL in seconds (decimals allowed).
    fn ttl(&self) -> Result<Option<Duration>, WsError> {
        match self.get("ttl") {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e12)
                .map(|s| Some(Duration::from_secs_f64(s)))
                .ok_or_else(|| WsError::invalid(&self.name("ttl"), "a positive number of seconds")),
        }
    }

    fn array(&self, f: &str) -> Result<Option<&'a Vec<Json>>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::Array(a)) => Ok(Some(a)),
            Some(_) => Err(WsError::invalid(&self.name(f), "an array")),
        }
    }
}

/// Decodes a message object into its optional `id` and the request.
///
/// The `id` is returned even when decoding fails, so errors can echo it.
pub fn decode(m: &Map<String, Json>, limits: &Limits) -> (Option<Json>, Result<Request, WsError>) {
    (m.get("id").cloned(), decode_request(m, limits))
}

fn decode_request(m: &Map<String, Json>, limits: &Limits) -> Result<Request, WsError> {
    let f = Fields::new(m, String::new());
    let ty = match m.get("type") {
        None => return Err(WsError::missing("type")),
        Some(Json::String(t)) => t.as_str(),
        Some(_) => return Err(WsError::invalid("type", "a string")),
    };
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
                limit: f.u64_opt("limit")?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
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
        "subscribe" => Request::Subscribe {
            filter: Filter {
                store: f.str_opt("store")?,
                key: f.str_opt("key")?,
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
                format!(
                    "unknown message type {other:?}; expected one of get, set, put, delete, contains, clear, list, \
                     incr, batch, subscribe, unsubscribe, store_content, get_content"
                ),
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
                Json::Object(m) => Ok(Fields::new(m, format!("{name}[{i}]"))),
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
            key: c.key(limits)?.into_bytes(),
            cond,
        });
    }
    let mut ops = Vec::new();
    for o in objects("ops")? {
        let (store, key) = (o.store()?, o.key(limits)?.into_bytes());
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
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_message_bytes: 1000,
        max_key_bytes: 8,
        max_value_bytes: 32,
        max_json_depth: 4,
    };

    fn code(text: &str) -> &'static str {
        match parse_object(text, &LIMITS) {
            Err(e) => e.code,
            Ok(m) => decode(&m, &LIMITS).1.err().map_or("ok", |e| e.code),
        }
    }

    #[test]
    fn bad_messages_get_named_codes() {
        assert_eq!(code("nope"), "invalid_json");
        assert_eq!(code("[1]"), "invalid_message");
        assert_eq!(code(r#"{"key":"a"}"#), "missing_field");
        assert_eq!(code(r#"{"type":"fly"}"#), "unknown_type");
        assert_eq!(code(r#"{"type":"get"}"#), "missing_field");
        assert_eq!(code(r#"{"type":"get","key":[1]}"#), "invalid_field");
        assert_eq!(code(r#"{"type":"get","key":"123456789"}"#), "key_too_large");
        assert_eq!(code(r#"{"type":"set","key":"a"}"#), "missing_field");
        assert_eq!(
            code(r#"{"type":"set","key":"a","value":"0123456789012345678901234567890123"}"#),
            "value_too_large"
        );
        assert_eq!(code(r#"{"type":"set","key":"a","value":[[[[1]]]]}"#), "too_deep");
        assert_eq!(
            code(&format!(r#"{{"type":"set","key":"a","value":"{}"}}"#, "x".repeat(1000))),
            "message_too_large"
        );
        assert_eq!(code(r#"{"type":"set","key":"a","value":1,"ttl":-1}"#), "invalid_field");
        assert_eq!(
            code(r#"{"type":"batch","ops":[{"op":"fly","key":"a"}]}"#),
            "invalid_field"
        );
        assert_eq!(code(r#"{"type":"store_content"}"#), "missing_field");
        assert_eq!(
            code(r#"{"type":"store_content","content_base64":"!!"}"#),
            "invalid_field"
        );
    }

    #[test]
    fn depth_ignores_brackets_in_strings() {
        assert_eq!(depth_over(br#"{"a":"[[[[[[[["}"#, 2), None);
        assert_eq!(depth_over(br#"{"a":"\"[[[[","b":[[1]]}"#, 2), Some(3));
    }

    #[test]
    fn decodes_set_with_options_and_null_value() {
        let m = parse_object(
            r#"{"type":"set","id":7,"key":"k","value":null,"ttl":1.5,"if_absent":true}"#,
            &LIMITS,
        )
        .unwrap();
        let (id, req) = decode(&m, &LIMITS);
        assert_eq!(id, Some(serde_json::json!(7)));
        let Request::Put {
            verb,
            store,
            value,
            options,
            ..
        } = req.unwrap()
        else {
            panic!("not a put")
        };
        assert_eq!(
            (verb, store.as_str(), value),
            (PutVerb::Set, "default", Value::Json(Json::Null))
        );
        assert_eq!(options.ttl, Some(Duration::from_millis(1500)));
        assert!(options.if_absent);
    }
}
