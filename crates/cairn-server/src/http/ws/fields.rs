//! The wire layer of the message protocol: size and depth limits on raw
//! text, and typed field access whose errors name the offending field.

use super::messages::WsError;
use crate::config::ServerConfig;
use base64::Engine as _;
use cairn_core::{DEFAULT_STORE, Value};
use serde_json::{Map, Number, Value as Json};
use std::time::Duration;

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
    if let Some(depth) = crate::json_scan::depth_over(text.as_bytes(), limits.max_json_depth) {
        return Err(WsError::new(
            "too_deep",
            format!(
                "JSON nesting exceeds the limit of {} levels (reached {depth})",
                limits.max_json_depth
            ),
        ));
    }
    if let Some(tok) = crate::json_scan::wide_integer(text.as_bytes()) {
        return Err(WsError::new(
            "invalid_value",
            crate::json_scan::wide_integer_message(tok),
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
pub(super) struct Fields<'a> {
    pub(super) m: &'a Map<String, Json>,
    /// Field names are reported with this prefix (`ops[2].key`).
    at: String,
}

impl<'a> Fields<'a> {
    pub(super) fn new(m: &'a Map<String, Json>, at: String) -> Fields<'a> {
        Fields { m, at }
    }

    pub(super) fn name(&self, f: &str) -> String {
        if self.at.is_empty() {
            f.to_owned()
        } else {
            format!("{}.{f}", self.at)
        }
    }

    /// A field that is absent or `null` counts as missing.
    pub(super) fn get(&self, f: &str) -> Option<&'a Json> {
        self.m.get(f).filter(|v| !v.is_null())
    }

    pub(super) fn str_opt(&self, f: &str) -> Result<Option<String>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(WsError::invalid(&self.name(f), "a string")),
        }
    }

    pub(super) fn store(&self) -> Result<String, WsError> {
        let s = self.str_opt("store")?.unwrap_or_else(|| DEFAULT_STORE.to_owned());
        if s.is_empty() {
            return Err(WsError::invalid(&self.name("store"), "a non-empty store name"));
        }
        Ok(s)
    }

    /// A key: `key` as a string (or an integer, for int-keyed stores), or
    /// for bytes that are not UTF-8 `key_base64`, or `key` as
    /// `{"$base64": ...}` (the form answers and events use).
    pub(super) fn key(&self, limits: &Limits) -> Result<Vec<u8>, WsError> {
        let name = self.name("key");
        let k = match (self.get("key"), self.get("key_base64")) {
            (Some(_), Some(_)) => {
                return Err(WsError::new(
                    "invalid_field",
                    format!("give either {name:?} or \"{name}_base64\", not both"),
                ));
            }
            (None, None) => return Err(WsError::missing(&name)),
            (Some(Json::String(s)), None) => s.clone().into_bytes(),
            (Some(Json::Number(n)), None) if n.is_i64() || n.is_u64() => n.to_string().into_bytes(),
            // The form answers and events give such keys in.
            (Some(k @ Json::Object(_)), None) => {
                cairn_core::key_from_json(k).map_err(|e| WsError::invalid(&name, &e))?
            }
            (Some(_), None) => return Err(WsError::invalid(&name, "a string or {\"$base64\": ...}")),
            (None, Some(Json::String(b))) => base64::engine::general_purpose::STANDARD
                .decode(b.as_bytes())
                .map_err(|e| WsError::invalid(&format!("{name}_base64"), &format!("standard base64 ({e})")))?,
            (None, Some(_)) => return Err(WsError::invalid(&format!("{name}_base64"), "a base64 string")),
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

    pub(super) fn value(&self, f: &str, limits: &Limits) -> Result<Value, WsError> {
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

    pub(super) fn u64_opt(&self, f: &str) -> Result<Option<u64>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| WsError::invalid(&self.name(f), "a non-negative integer")),
        }
    }

    pub(super) fn bool_opt(&self, f: &str) -> Result<bool, WsError> {
        match self.get(f) {
            None => Ok(false),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(WsError::invalid(&self.name(f), "true or false")),
        }
    }

    pub(super) fn number_opt(&self, f: &str) -> Result<Option<Number>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::Number(n)) => Ok(Some(n.clone())),
            Some(_) => Err(WsError::invalid(&self.name(f), "a number")),
        }
    }

    /// A TTL in seconds (decimals allowed).
    pub(super) fn ttl(&self) -> Result<Option<Duration>, WsError> {
        match self.get("ttl") {
            None => Ok(None),
            Some(v) => v
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s < 1e12)
                .map(|s| Some(Duration::from_secs_f64(s)))
                .ok_or_else(|| WsError::invalid(&self.name("ttl"), "a positive number of seconds")),
        }
    }

    pub(super) fn array(&self, f: &str) -> Result<Option<&'a Vec<Json>>, WsError> {
        match self.get(f) {
            None => Ok(None),
            Some(Json::Array(a)) => Ok(Some(a)),
            Some(_) => Err(WsError::invalid(&self.name(f), "an array")),
        }
    }
}
