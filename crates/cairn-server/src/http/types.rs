//! The JSON answers of the HTTP API. Handlers return these types and the
//! OpenAPI document is derived from them, so the two cannot drift.

use cairn_core::{DeleteResult, Entry, IncrResult, ListPage, PutResult, Value};
use serde::Serialize;
use utoipa::ToSchema;

/// A key in JSON (documentation only): its text, or `{"$base64": ...}`
/// for bytes that are not UTF-8.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the key field for /openapi.json")]
#[serde(untagged)]
#[derive(Serialize)]
pub enum KeyJson {
    /// The key's text.
    Text(String),
    /// Bytes that are not UTF-8.
    Bytes(Base64Key),
}

/// Bytes that are not UTF-8, in standard base64.
#[derive(Serialize, ToSchema)]
#[allow(dead_code, reason = "describes the key field for /openapi.json")]
pub struct Base64Key {
    /// Standard base64 of the key's bytes.
    #[serde(rename = "$base64")]
    pub base64: String,
}

/// `GET .../keys/{key}?default=...` for an absent key: the default, not
/// stored, and `found: false`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DefaultOut {
    /// The key as asked for.
    #[schema(value_type = KeyJson)]
    pub key: serde_json::Value,
    /// The `default` query parameter's JSON value.
    #[schema(value_type = Value)]
    pub value: serde_json::Value,
    /// Always false: the key is absent.
    pub found: bool,
}

/// What `GET .../keys/{key}` answers: the entry, or with `?default=` for an
/// absent key, the default.
#[derive(ToSchema)]
#[allow(dead_code, reason = "describes the answer for /openapi.json")]
#[serde(untagged)]
#[derive(Serialize)]
pub enum GetOut {
    /// The key's entry.
    Entry(EntryOut),
    /// The default, for an absent key.
    Default(DefaultOut),
}

/// A key's value with its metadata.
#[derive(Debug, Serialize, ToSchema)]
pub struct EntryOut {
    /// The key: its text, or `{"$base64": ...}` for bytes that are not UTF-8.
    #[schema(value_type = KeyJson)]
    pub key: serde_json::Value,
    /// The value: any JSON; bytes appear as `{"$base64": "..."}`.
    #[schema(value_type = Value)]
    pub value: Value,
    /// Revision of the last write.
    pub revision: u64,
    /// Revision that created the key.
    pub created_revision: u64,
    /// Writes since creation, from 1.
    pub version: u64,
    /// Time of the last write, ms since the Unix epoch.
    pub updated_at: u64,
    /// Expiry, ms since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

impl From<Entry> for EntryOut {
    fn from(e: Entry) -> EntryOut {
        EntryOut {
            key: e.key.to_json(),
            value: e.value,
            revision: e.revision,
            created_revision: e.created_revision,
            version: e.version,
            updated_at: e.updated_at,
            expires_at: e.expires_at,
        }
    }
}

/// The result of a put (409 when a condition failed).
#[derive(Debug, Serialize, ToSchema)]
pub struct PutOut {
    /// The key: its text, or `{"$base64": ...}` for bytes that are not UTF-8.
    #[schema(value_type = KeyJson)]
    pub key: serde_json::Value,
    /// False when a condition failed.
    pub success: bool,
    /// The commit's revision; on failure the key's current revision (null: absent).
    pub revision: Option<u64>,
    /// True when the key did not exist before.
    pub created: bool,
}

impl From<PutResult> for PutOut {
    fn from(r: PutResult) -> PutOut {
        PutOut {
            key: serde_json::Value::String(r.key),
            success: r.success,
            revision: r.revision,
            created: r.created,
        }
    }
}

/// The result of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteOut {
    /// The key: its text, or `{"$base64": ...}` for bytes that are not UTF-8.
    #[schema(value_type = KeyJson)]
    pub key: serde_json::Value,
    /// True when the key existed and was deleted.
    pub success: bool,
    /// The commit's revision; on a failed condition the key's current revision.
    pub revision: Option<u64>,
}

impl From<DeleteResult> for DeleteOut {
    fn from(r: DeleteResult) -> DeleteOut {
        DeleteOut {
            key: serde_json::Value::String(r.key),
            success: r.success,
            revision: r.revision,
        }
    }
}

/// The result of an increment.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncrOut {
    /// The key: its text, or `{"$base64": ...}` for bytes that are not UTF-8.
    #[schema(value_type = KeyJson)]
    pub key: serde_json::Value,
    /// The value after the increment.
    #[schema(value_type = f64)]
    pub value: serde_json::Number,
    /// The commit's revision.
    pub revision: u64,
}

impl From<IncrResult> for IncrOut {
    fn from(r: IncrResult) -> IncrOut {
        IncrOut {
            key: serde_json::Value::String(r.key),
            value: r.value,
            revision: r.revision,
        }
    }
}

/// The answers that echo a key, whose engine result carries the key's text:
/// [`json_key`](cairn_core::json_key) from the key as the request gave it.
pub trait RawKey: Sized {
    /// The key field.
    fn key_mut(&mut self) -> &mut serde_json::Value;

    /// Replaces a lossy text key with `{"$base64": ...}` of `raw` when
    /// `raw` is not UTF-8.
    #[must_use]
    fn with_raw_key(mut self, raw: &[u8]) -> Self {
        let k = self.key_mut();
        *k = cairn_core::json_key(k.as_str().unwrap_or_default(), raw);
        self
    }
}

impl RawKey for PutOut {
    fn key_mut(&mut self) -> &mut serde_json::Value {
        &mut self.key
    }
}

impl RawKey for DeleteOut {
    fn key_mut(&mut self) -> &mut serde_json::Value {
        &mut self.key
    }
}

impl RawKey for IncrOut {
    fn key_mut(&mut self) -> &mut serde_json::Value {
        &mut self.key
    }
}

/// A page of entries (list and history).
#[derive(Debug, Serialize, ToSchema)]
pub struct ListOut {
    /// The entries.
    pub items: Vec<EntryOut>,
    /// Pass as `cursor` for the next page; null at the end.
    pub next_cursor: Option<String>,
}

impl From<ListPage> for ListOut {
    fn from(p: ListPage) -> ListOut {
        ListOut {
            items: p.items.into_iter().map(EntryOut::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

/// A store's declaration (the `PUT /v1/stores/{store}` body and the `GET` answer).
///
/// Documentation mirror of `cairn_core::StoreSpec`, which handlers parse and
/// render directly; `spec_schema_matches_engine` in the tests keeps them equal.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreSpecDoc {
    /// Store name (optional in a PUT body; must match the path).
    pub name: String,
    /// `string` (default), `uuid`, `int` or `bytes`.
    pub key_type: Option<String>,
    /// `any` (default), `json`, `string`, `int`, `float`, `bool` or `bytes`.
    pub value_type: Option<String>,
    /// JSON Schema for values (implies `value_type: json`).
    #[schema(value_type = Option<Object>)]
    pub schema: Option<serde_json::Value>,
    /// TTL applied to writes without one, seconds.
    pub default_ttl: Option<f64>,
    /// Versions kept per key (default 1).
    pub history: Option<u32>,
}

/// The stores the caller may read.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoresOut {
    /// Store specs, by name.
    #[schema(value_type = Vec<StoreSpecDoc>)]
    pub stores: Vec<cairn_core::StoreSpec>,
}

/// The answer to `PUT /v1/stores/{store}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreateStoreOut {
    /// The store's spec.
    #[schema(value_type = StoreSpecDoc)]
    pub store: cairn_core::StoreSpec,
    /// False when an identical store already existed.
    pub created: bool,
    /// Revision after the command.
    pub revision: u64,
}

/// The answer to `DELETE /v1/stores/{store}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DropStoreOut {
    /// Store name.
    pub store: String,
    /// True when the store existed.
    pub success: bool,
    /// Revision after the command.
    pub revision: u64,
}

/// The answer to `GET /v1/stores/{store}/count`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountOut {
    /// Store name.
    pub store: String,
    /// Live keys (under `prefix` when given); expired keys not yet removed
    /// do not count.
    pub count: u64,
}

/// The answer to `POST /v1/stores/{store}/clear`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClearOut {
    /// Store name.
    pub store: String,
    /// Keys removed.
    pub removed: u64,
    /// Revision after the command.
    pub revision: u64,
}

/// Stored content.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentOut {
    /// Hex digest.
    pub hash: String,
    /// `sha256` or `sha1`.
    pub algorithm: String,
    /// Size in bytes.
    pub size: u64,
    /// False when identical content was already stored.
    pub stored: bool,
}

/// The answer to `DELETE /v1/content/{hash}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContentDeletedOut {
    /// Hex digest.
    pub hash: String,
    /// Always true (an unknown hash is a 404).
    pub success: bool,
    /// Revision after the command.
    pub revision: u64,
}

/// Liveness, and whether the engine takes writes.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthOut {
    /// `ok`, or `unavailable` (status 503) while the engine refuses writes.
    pub status: &'static str,
    /// The database's current revision.
    pub revision: u64,
    /// Why writes are refused (only when `unavailable`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
