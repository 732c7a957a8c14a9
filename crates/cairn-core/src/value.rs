//! Values: any JSON value or raw bytes, and the value types a store may require.

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A stored value.
///
/// In JSON renderings (events, NDJSON) bytes appear as `{"$base64": "..."}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Any JSON value.
    Json(serde_json::Value),
    /// Raw bytes.
    Bytes(Vec<u8>),
}

/// The deepest a JSON value may nest (arrays and objects in one another).
/// Stored values are read back with serde_json, which refuses more than
/// 128 levels: a deeper value would be stored and then never readable.
pub const MAX_VALUE_DEPTH: usize = 100;

/// How deeply a JSON value nests arrays and objects (a scalar: 0), counted
/// without recursion.
#[must_use]
pub fn json_depth(v: &serde_json::Value) -> usize {
    use serde_json::Value as J;
    if !matches!(v, J::Array(_) | J::Object(_)) {
        return 0;
    }
    let mut deepest = 0;
    let mut stack = vec![(v, 0usize)];
    while let Some((v, d)) = stack.pop() {
        match v {
            J::Array(a) => {
                deepest = deepest.max(d + 1);
                stack.extend(a.iter().map(|c| (c, d + 1)));
            }
            J::Object(o) => {
                deepest = deepest.max(d + 1);
                stack.extend(o.values().map(|c| (c, d + 1)));
            }
            _ => {}
        }
    }
    deepest
}

/// A float result as the JSON number cairn stores: a whole number within
/// f64's exact integers is kept as an integer (10, not 10.0), which is also
/// what Redis's INCRBYFLOAT leaves, so a later integer INCR works on it.
/// `None` for NaN and infinities.
#[must_use]
pub fn number_from_f64(f: f64) -> Option<serde_json::Number> {
    if f.fract() == 0.0 && f.abs() < 9_007_199_254_740_992.0 {
        return Some(serde_json::Number::from(f as i64));
    }
    serde_json::Number::from_f64(f)
}

/// Counts bytes written (sizes a JSON value without allocating).
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const TAG_JSON: u8 = 0;
const TAG_BYTES: u8 = 1;

impl Value {
    /// Appends the storage encoding (tag byte + payload).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Json(v) => {
                out.push(TAG_JSON);
                // Writing a serde_json::Value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut *out, v);
            }
            Value::Bytes(b) => {
                out.push(TAG_BYTES);
                out.extend_from_slice(b);
            }
        }
    }

    /// The storage encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let cap = match self {
            Value::Bytes(b) => b.len() + 1,
            Value::Json(serde_json::Value::String(s)) => s.len() + 3,
            // Growing is cheaper than serializing twice to size it.
            Value::Json(_) => 128,
        };
        let mut out = Vec::with_capacity(cap);
        self.encode_into(&mut out);
        out
    }

    /// Decodes a storage encoding.
    ///
    /// # Errors
    /// A message when the bytes are not a value encoding.
    pub fn decode(enc: &[u8]) -> Result<Value, String> {
        match enc.split_first() {
            Some((&TAG_JSON, rest)) => serde_json::from_slice(rest)
                .map(Value::Json)
                .map_err(|e| format!("stored JSON value does not parse: {e}")),
            Some((&TAG_BYTES, rest)) => Ok(Value::Bytes(rest.to_vec())),
            Some((t, _)) => Err(format!("unknown value tag {t}")),
            None => Err("empty value record".into()),
        }
    }

    /// Rough encoded size, used for limits before encoding.
    #[must_use]
    pub fn size_hint(&self) -> usize {
        match self {
            Value::Bytes(b) => b.len(),
            Value::Json(serde_json::Value::String(s)) => s.len() + 2,
            Value::Json(v) => {
                let mut n = Counter(0);
                // Writing into a counter cannot fail.
                let _ = serde_json::to_writer(&mut n, v);
                n.0
            }
        }
    }

    /// The value as raw text: a JSON string's contents, other JSON as JSON text,
    /// bytes as they are. This is how RESP reads values.
    #[must_use]
    pub fn to_raw(&self) -> Vec<u8> {
        match self {
            Value::Bytes(b) => b.clone(),
            Value::Json(serde_json::Value::String(s)) => s.as_bytes().to_vec(),
            Value::Json(v) => serde_json::to_vec(v).unwrap_or_default(),
        }
    }

    /// The value as a JSON value (bytes as `{"$base64": ...}`).
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Json(v) => v.clone(),
            Value::Bytes(b) => serde_json::json!({
                "$base64": base64::engine::general_purpose::STANDARD.encode(b)
            }),
        }
    }

    /// Inverse of [`Value::to_json`].
    #[must_use]
    pub fn from_json(v: serde_json::Value) -> Value {
        if let serde_json::Value::Object(m) = &v
            && m.len() == 1
            && let Some(serde_json::Value::String(s)) = m.get("$base64")
            && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(s)
        {
            return Value::Bytes(b);
        }
        Value::Json(v)
    }

    /// The text of a JSON string value, if it is one.
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Json(serde_json::Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The number this value holds, if any.
    #[must_use]
    pub fn as_number(&self) -> Option<&serde_json::Number> {
        match self {
            Value::Json(serde_json::Value::Number(n)) => Some(n),
            _ => None,
        }
    }
}

impl From<serde_json::Value> for Value {
    fn from(v: serde_json::Value) -> Self {
        Value::Json(v)
    }
}

/// A JSON string.
impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Json(serde_json::Value::String(s.to_owned()))
    }
}

/// A JSON string.
impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Json(serde_json::Value::String(s))
    }
}

/// A JSON number.
impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Json(n.into())
    }
}

/// A JSON boolean.
impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Json(serde_json::Value::Bool(b))
    }
}

/// Raw bytes.
impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Json(v) => v.serialize(s),
            Value::Bytes(_) => self.to_json().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(d).map(Value::from_json)
    }
}

/// The type of a store's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// Any JSON value or bytes (default).
    #[default]
    Any,
    /// Any JSON value, optionally checked against the store's JSON Schema.
    Json,
    /// A JSON string.
    String,
    /// A 64-bit signed integer.
    Int,
    /// A number.
    Float,
    /// `true` or `false`.
    Bool,
    /// Raw bytes.
    Bytes,
}

impl ValueType {
    /// The name used in store specs.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Any => "any",
            ValueType::Json => "json",
            ValueType::String => "string",
            ValueType::Int => "int",
            ValueType::Float => "float",
            ValueType::Bool => "bool",
            ValueType::Bytes => "bytes",
        }
    }

    /// Checks that `v` is of this type; floats given as integers stay as they are.
    ///
    /// # Errors
    /// A message naming what was expected and what was given.
    pub fn check(self, v: &Value) -> Result<(), String> {
        let ok = match (self, v) {
            (ValueType::Any, _) => true,
            (ValueType::Bytes, Value::Bytes(_)) => true,
            (ValueType::Json, Value::Json(_)) => true,
            (ValueType::String, Value::Json(serde_json::Value::String(_))) => true,
            (ValueType::Int, Value::Json(serde_json::Value::Number(n))) => n.is_i64(),
            (ValueType::Float, Value::Json(serde_json::Value::Number(_))) => true,
            (ValueType::Bool, Value::Json(serde_json::Value::Bool(_))) => true,
            _ => false,
        };
        if ok {
            Ok(())
        } else if let (ValueType::Int, Value::Json(serde_json::Value::Number(n))) = (self, v)
            && n.is_u64()
        {
            Err(format!(
                "integer {n} is out of range for type int (64-bit signed, at most {})",
                i64::MAX
            ))
        } else {
            Err(format!(
                "expected a value of type {}, got {}",
                self.as_str(),
                describe(v)
            ))
        }
    }

    /// Parses raw text (as RESP sends it) into a value of this type:
    /// `any` keeps UTF-8 as a JSON string and other bytes as bytes; `int`,
    /// `float`, `bool` and `json` parse the text; `string` needs UTF-8.
    ///
    /// # Errors
    /// A message when the text does not parse as this type.
    pub fn parse_text(self, raw: &[u8]) -> Result<Value, String> {
        let text = || std::str::from_utf8(raw).map_err(|_| "value is not valid UTF-8".to_string());
        match self {
            ValueType::Any => Ok(match std::str::from_utf8(raw) {
                Ok(s) => Value::Json(serde_json::Value::String(s.to_owned())),
                Err(_) => Value::Bytes(raw.to_vec()),
            }),
            ValueType::Bytes => Ok(Value::Bytes(raw.to_vec())),
            ValueType::String => Ok(Value::Json(serde_json::Value::String(text()?.to_owned()))),
            ValueType::Int => text()?
                .trim()
                .parse::<i64>()
                .map(|i| Value::Json(i.into()))
                .map_err(|_| "value is not an integer".to_string()),
            ValueType::Float => {
                let f = text()?
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| "value is not a number".to_string())?;
                serde_json::Number::from_f64(f)
                    .map(|n| Value::Json(serde_json::Value::Number(n)))
                    .ok_or_else(|| "value is not a finite number".to_string())
            }
            ValueType::Bool => match text()?.trim() {
                "true" | "1" => Ok(Value::Json(true.into())),
                "false" | "0" => Ok(Value::Json(false.into())),
                _ => Err("value is not a boolean".into()),
            },
            ValueType::Json => serde_json::from_slice(raw)
                .map(Value::Json)
                .map_err(|e| format!("value is not JSON: {e}")),
        }
    }
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Bytes(_) => "bytes",
        Value::Json(serde_json::Value::Null) => "null",
        Value::Json(serde_json::Value::Bool(_)) => "a boolean",
        Value::Json(serde_json::Value::Number(n)) if n.is_i64() || n.is_u64() => "an integer",
        Value::Json(serde_json::Value::Number(_)) => "a float",
        Value::Json(serde_json::Value::String(_)) => "a string",
        Value::Json(serde_json::Value::Array(_)) => "an array",
        Value::Json(serde_json::Value::Object(_)) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_from_plain_rust_types() {
        assert_eq!(Value::from("hi"), Value::Json(json!("hi")));
        assert_eq!(Value::from(String::from("hi")).as_str(), Some("hi"));
        assert_eq!(Value::from(-5i64), Value::Json(json!(-5)));
        assert_eq!(Value::from(true), Value::Json(json!(true)));
        assert_eq!(Value::from(vec![0u8, 255]), Value::Bytes(vec![0, 255]));
        assert_eq!(Value::from(7i64).as_str(), None);
    }

    #[test]
    fn depth_counts_nested_containers_only() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!([])), 1);
        assert_eq!(json_depth(&json!({"a": [1, {"b": []}], "c": 2})), 4);
    }

    #[test]
    fn codec_round_trips() {
        for v in [
            Value::Json(json!({"a": [1, 2.5, "x"]})),
            Value::Bytes(vec![0, 255, 7]),
            Value::Json(json!(null)),
        ] {
            assert_eq!(Value::decode(&v.encode()).unwrap(), v);
        }
        assert!(Value::decode(&[9, 1]).is_err());
    }

    #[test]
    fn type_checks() {
        assert!(ValueType::Int.check(&Value::Json(json!(5))).is_ok());
        assert!(ValueType::Int.check(&Value::Json(json!(5.5))).is_err());
        assert!(ValueType::String.check(&Value::Json(json!(5))).is_err());
        assert!(ValueType::Bytes.check(&Value::Json(json!("x"))).is_err());
        assert!(ValueType::Json.check(&Value::Bytes(vec![1])).is_err());
    }

    #[test]
    fn text_parsing() {
        assert_eq!(ValueType::Int.parse_text(b"5").unwrap(), Value::Json(json!(5)));
        assert!(ValueType::Int.parse_text(b"five").is_err());
        assert_eq!(ValueType::Any.parse_text(b"hi").unwrap(), Value::Json(json!("hi")));
        assert_eq!(ValueType::Any.parse_text(&[0xff]).unwrap(), Value::Bytes(vec![0xff]));
        assert_eq!(
            ValueType::Json.parse_text(b"{\"a\":1}").unwrap(),
            Value::Json(json!({"a":1}))
        );
    }
}
