//! Store specs: a store's name, key and value types, schema, TTL and history.

use crate::{Error, KeyType, Result, Value, ValueType};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// The name of the store that always exists.
pub const DEFAULT_STORE: &str = "default";

/// A store's declaration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSpec {
    /// Store name: 1–128 characters of `A-Z a-z 0-9 _ - . :`.
    #[serde(default)]
    pub name: String,
    /// Key type. Default: `string`.
    #[serde(default)]
    pub key_type: KeyType,
    /// Value type. Default: `any`.
    #[serde(default)]
    pub value_type: ValueType,
    /// JSON Schema that values must satisfy (only with `value_type: json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<serde_json::Value>,
    /// TTL applied to writes that give none, in seconds (decimals allowed).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_secs")]
    pub default_ttl: Option<Duration>,
    /// Versions kept per key, current included. Default: 1.
    #[serde(default = "one")]
    pub history: u32,
}

fn one() -> u32 {
    1
}

/// The longest TTL, in seconds, a store's `default_ttl` or a request may
/// ask for (about 317 years).
pub const MAX_TTL_SECS: u64 = 10_000_000_000;

impl StoreSpec {
    /// The fields where `asked` differs from this spec, for messages:
    /// `key_type: int here, string asked; history: 1 here, 5 asked`.
    #[must_use]
    pub fn differences(&self, asked: &StoreSpec) -> String {
        let mut out = Vec::new();
        let mut field = |name: &str, here: String, there: String| {
            if here != there {
                out.push(format!("{name}: {here} here, {there} asked"));
            }
        };
        field(
            "key_type",
            self.key_type.as_str().into(),
            asked.key_type.as_str().into(),
        );
        field(
            "value_type",
            self.value_type.as_str().into(),
            asked.value_type.as_str().into(),
        );
        let ttl = |t: Option<Duration>| t.map_or_else(|| "none".to_owned(), |d| format!("{}s", d.as_secs_f64()));
        field("default_ttl", ttl(self.default_ttl), ttl(asked.default_ttl));
        field("history", self.history.to_string(), asked.history.to_string());
        let schema = |s: &Option<serde_json::Value>| s.as_ref().map_or_else(|| "none".to_owned(), |v| v.to_string());
        if self.schema != asked.schema {
            field("schema", schema(&self.schema), schema(&asked.schema));
        }
        out.join("; ")
    }

    /// A spec with default types.
    #[must_use]
    pub fn new(name: impl Into<String>) -> StoreSpec {
        StoreSpec {
            name: name.into(),
            key_type: KeyType::String,
            value_type: ValueType::Any,
            schema: None,
            default_ttl: None,
            history: 1,
        }
    }

    /// Sets the key type.
    #[must_use]
    pub fn key_type(mut self, t: KeyType) -> Self {
        self.key_type = t;
        self
    }

    /// Sets the value type.
    #[must_use]
    pub fn value_type(mut self, t: ValueType) -> Self {
        self.value_type = t;
        self
    }

    /// Sets a JSON Schema (implies `value_type: json`).
    #[must_use]
    pub fn schema(mut self, schema: serde_json::Value) -> Self {
        self.value_type = ValueType::Json;
        self.schema = Some(schema);
        self
    }

    /// Sets the default TTL.
    #[must_use]
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Sets how many versions of each key are kept.
    #[must_use]
    pub fn history(mut self, n: u32) -> Self {
        self.history = n;
        self
    }

    /// Checks the spec and compiles its schema.
    /// Limits checked when a store is created, not when an existing one is
    /// opened (a database made before a limit existed still opens).
    pub(crate) fn check_new(&self) -> Result<()> {
        // As a request's ttl: past this, now + ttl in ms no longer fits.
        match self.default_ttl.filter(|t| t.as_secs() >= MAX_TTL_SECS) {
            Some(t) => Err(Error::InvalidSpec {
                store: self.name.clone(),
                reason: format!(
                    "default_ttl is at most {MAX_TTL_SECS} seconds (about 317 years), got {}; to keep keys for good, give none",
                    t.as_secs_f64()
                ),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn compile(&self) -> Result<Option<Arc<jsonschema::Validator>>> {
        let bad = |reason: String| Error::InvalidSpec {
            store: self.name.clone(),
            reason,
        };
        validate_store_name(&self.name)?;
        if self.history == 0 {
            return Err(bad("history must be at least 1".into()));
        }
        if self.default_ttl.is_some_and(|t| t.is_zero()) {
            return Err(bad("default_ttl must be a positive number of seconds, got 0".into()));
        }

        match (&self.schema, self.value_type) {
            (None, _) => Ok(None),
            (Some(s), ValueType::Json) => jsonschema::validator_for(s)
                .map(|v| Some(Arc::new(v)))
                .map_err(|e| bad(format!("schema does not compile: {e}"))),
            (Some(_), other) => Err(bad(format!(
                "a schema needs value_type \"json\", not {:?}",
                other.as_str()
            ))),
        }
    }
}

/// Checks a store name.
///
/// # Errors
/// [`Error::InvalidSpec`] naming what is wrong.
pub fn validate_store_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidSpec {
            store: name.to_owned(),
            reason: "store names are 1-128 characters of A-Z a-z 0-9 _ - . :".into(),
        })
    }
}

/// A store as the engine holds it: id, spec and compiled schema.
#[derive(Debug, Clone)]
pub(crate) struct StoreHandle {
    pub id: u32,
    pub spec: StoreSpec,
    pub validator: Option<Arc<jsonschema::Validator>>,
}

impl StoreHandle {
    /// Checks a value against the store's type and schema.
    pub fn check_value(&self, key: &impl std::fmt::Display, v: &Value) -> Result<()> {
        let bad = |reason: String| Error::InvalidValue {
            store: self.spec.name.clone(),
            key: key.to_string(),
            reason,
        };
        if let Value::Json(j) = v {
            let depth = crate::json_depth(j);
            if depth > crate::MAX_VALUE_DEPTH {
                return Err(bad(format!(
                    "nested {depth} levels deep, over the limit of {}",
                    crate::MAX_VALUE_DEPTH
                )));
            }
        }
        self.spec.value_type.check(v).map_err(bad)?;
        if let (Some(validator), Value::Json(j)) = (&self.validator, v) {
            let errors: Vec<String> = validator
                .iter_errors(j)
                .take(3)
                .map(|e| {
                    let path = e.instance_path().to_string();
                    if path.is_empty() {
                        e.to_string()
                    } else {
                        format!("{path}: {e}")
                    }
                })
                .collect();
            if !errors.is_empty() {
                return Err(bad(format!("schema violation: {}", errors.join("; "))));
            }
        }
        Ok(())
    }
}

mod opt_secs {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let must = |got: &dyn std::fmt::Display| {
            serde::de::Error::custom(format!("default_ttl must be a positive number of seconds, got {got}"))
        };
        match Option::<serde_json::Value>::deserialize(d)? {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Number(n)) => {
                let secs = n.as_f64().ok_or_else(|| must(&n))?;
                Duration::try_from_secs_f64(secs).map(Some).map_err(|_| must(&n))
            }
            Some(other) => Err(must(&other)),
        }
    }
}
