//! NDJSON export and import: one entry per line,
//! `{"store", "key", "value", "revision", "created_revision", "version",
//! "updated_at", "expires_at"?}`, bytes values as `{"$base64": ...}` and
//! keys that are not UTF-8 likewise. Before its entries, each exported
//! store has a store line `{"store", "spec": {"key_type", "value_type",
//! "schema"?, "default_ttl"?, "history"}}`, so that an import recreates it
//! as it was (int keys sort as ints, schemas keep holding).
//!
//! Export reads one fjall snapshot, so the lines are the state at one
//! revision. Import writes through the normal write path in atomic batches
//! of at most `max_batch_ops` lines; revisions and versions are assigned
//! anew, expiry times are kept.

use crate::db::{META_REVISION, now_ms};
use crate::entry::Record;
use crate::writer::PersistedStore;
use crate::{Cond, Db, Error, Key, Op, Result, StoreSpec, Ttl, Value};
use base64::Engine as _;
use fjall::Readable;
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufWriter, Write};

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// Only this store (default: all stores).
    pub store: Option<String>,
    /// Only keys with this prefix (string and bytes stores).
    pub prefix: Option<Vec<u8>>,
}

/// What an export or import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ExportInfo {
    /// Revision the export is consistent at, or the last revision an import wrote.
    pub revision: u64,
    /// Lines written: store lines and entries.
    pub lines: u64,
    /// Entries written.
    pub entries: u64,
    /// Store lines written.
    pub stores: u64,
    /// Bytes written.
    pub bytes: u64,
}

/// What import does with a key that already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    /// Keep the existing value.
    Skip,
    /// Replace it (default).
    #[default]
    Overwrite,
    /// Stop with an error naming the line; earlier batches stay written.
    Fail,
}

impl std::str::FromStr for OnConflict {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "skip" => Ok(OnConflict::Skip),
            "overwrite" => Ok(OnConflict::Overwrite),
            "fail" => Ok(OnConflict::Fail),
            _ => Err(Error::InvalidArgument(format!(
                "on-conflict must be skip, overwrite or fail, not {s:?}"
            ))),
        }
    }
}

/// What [`Db::import`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ImportInfo {
    /// Lines read (blank lines included).
    pub lines: u64,
    /// Entries written.
    pub written: u64,
    /// Stores created from store lines (or, for files without them, from
    /// the first entry of a store that did not exist).
    pub stores_created: u64,
    /// Entries skipped because the key existed (`OnConflict::Skip`).
    pub skipped: u64,
    /// Entries skipped because their `expires_at` had passed.
    pub expired: u64,
    /// Revision of the last batch written.
    pub revision: u64,
}

/// One NDJSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    /// Store name.
    pub store: String,
    /// Key: text, or `{"$base64": ...}` for bytes that are not UTF-8.
    pub key: serde_json::Value,
    /// Value (bytes as `{"$base64": ...}`).
    pub value: Value,
    /// Revision of the last write (ignored by import).
    #[serde(default)]
    pub revision: u64,
    /// Revision that created the key (ignored by import).
    #[serde(default)]
    pub created_revision: u64,
    /// Writes since creation (ignored by import).
    #[serde(default)]
    pub version: u64,
    /// Last write time, ms since the epoch (ignored by import).
    #[serde(default)]
    pub updated_at: u64,
    /// Expiry time, ms since the epoch (kept by import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

/// One line of an export file.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportItem {
    /// A store line: the store's spec.
    Store(StoreSpec),
    /// An entry.
    Entry(ExportLine),
}

/// Any line, before it is told apart.
#[derive(Deserialize)]
struct RawLine {
    store: String,
    #[serde(default)]
    spec: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    key: Option<serde_json::Value>,
    /// `Some(null)` when the value is JSON null, `None` when missing.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    #[serde(default)]
    revision: u64,
    #[serde(default)]
    created_revision: u64,
    #[serde(default)]
    version: u64,
    #[serde(default)]
    updated_at: u64,
    #[serde(default)]
    expires_at: Option<u64>,
}

fn present<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl ExportItem {
    /// Parses one line of an export file.
    ///
    /// # Errors
    /// A message naming what is wrong: not JSON, no `store`, an entry
    /// without `key` or `value`, a store line with them, a bad spec.
    pub fn parse(line: &str) -> std::result::Result<ExportItem, String> {
        let raw: RawLine = serde_json::from_str(line).map_err(|e| format!("not an export line: {e}"))?;
        crate::validate_store_name(&raw.store).map_err(|e| e.to_string())?;
        if let Some(mut spec) = raw.spec {
            if raw.key.is_some() || raw.value.is_some() {
                return Err("a store line (with \"spec\") takes no \"key\" or \"value\"".into());
            }
            spec.insert("name".into(), serde_json::Value::String(raw.store));
            let spec: StoreSpec = serde_json::from_value(serde_json::Value::Object(spec))
                .map_err(|e| format!("store line: bad spec: {e}"))?;
            return Ok(ExportItem::Store(spec));
        }
        let key = raw
            .key
            .ok_or("an entry needs a \"key\" (or a \"spec\", for a store line)")?;
        let value = raw.value.ok_or("an entry needs a \"value\"")?;
        Ok(ExportItem::Entry(ExportLine {
            store: raw.store,
            key,
            value,
            revision: raw.revision,
            created_revision: raw.created_revision,
            version: raw.version,
            updated_at: raw.updated_at,
            expires_at: raw.expires_at,
        }))
    }

    /// The store line of `spec`.
    #[must_use]
    pub fn store_line(spec: &StoreSpec) -> serde_json::Value {
        let mut v = serde_json::to_value(spec).unwrap_or_default();
        if let Some(m) = v.as_object_mut() {
            m.remove("name");
        }
        serde_json::json!({"store": spec.name, "spec": v})
    }
}

/// The raw key bytes of a JSON key: a string as UTF-8, `{"$base64": ...}` decoded.
///
/// # Errors
/// A message when the key is neither.
pub fn key_from_json(k: &serde_json::Value) -> std::result::Result<Vec<u8>, String> {
    match k {
        serde_json::Value::String(s) => Ok(s.as_bytes().to_vec()),
        serde_json::Value::Object(m) if m.len() == 1 => match m.get("$base64") {
            Some(serde_json::Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("key $base64 does not decode: {e}")),
            _ => Err("key must be a string or {\"$base64\": ...}".into()),
        },
        _ => Err("key must be a string or {\"$base64\": ...}".into()),
    }
}

fn key_to_json(k: &Key) -> serde_json::Value {
    k.to_json()
}

struct Counting<W: Write> {
    w: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.w.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

impl Db {
    /// Writes live entries as NDJSON, consistent at one revision.
    /// `progress(lines, bytes)` is called as lines are written.
    ///
    /// # Errors
    /// [`Error::UnknownStore`]; a prefix on an int or uuid store; storage and I/O errors.
    pub fn export(&self, w: impl Write, o: &ExportOptions, mut progress: impl FnMut(u64, u64)) -> Result<ExportInfo> {
        let snap = self.shared.fj.snapshot();
        let ks = &self.shared.ks;
        let revision = match snap.get(&ks.meta, META_REVISION)? {
            Some(v) => u64::from_le_bytes(
                v.as_ref()
                    .try_into()
                    .map_err(|_| Error::CorruptRecord("meta revision".into()))?,
            ),
            None => 0,
        };
        let mut stores = Vec::new();
        for kv in snap.iter(&ks.stores) {
            let (_, v) = kv.into_inner()?;
            let p: PersistedStore =
                serde_json::from_slice(&v).map_err(|e| Error::CorruptRecord(format!("store spec: {e}")))?;
            if o.store.as_deref().is_none_or(|s| s == p.spec.name) {
                stores.push(p);
            }
        }
        if let Some(s) = &o.store
            && stores.is_empty()
        {
            return Err(Error::UnknownStore { store: s.clone() });
        }
        if let Some(p) = stores.first()
            && o.store.is_some()
            && o.prefix.is_some()
            && !p.spec.key_type.supports_prefix()
        {
            return Err(Error::InvalidArgument(format!(
                "prefix export needs a string or bytes store; {:?} has {} keys",
                p.spec.name,
                p.spec.key_type.as_str()
            )));
        }
        // Across all stores, a prefix simply matches nothing in int and uuid stores.
        stores.retain(|p| o.prefix.is_none() || p.spec.key_type.supports_prefix());
        let mut out = Counting {
            w: BufWriter::new(w),
            bytes: 0,
        };
        let (mut entries, mut store_lines) = (0u64, 0u64);
        for p in &stores {
            serde_json::to_writer(&mut out, &ExportItem::store_line(&p.spec)).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
            store_lines += 1;
        }
        let now = now_ms();
        for p in &stores {
            let mut prefix = p.id.to_be_bytes().to_vec();
            if let Some(pre) = &o.prefix {
                prefix.extend_from_slice(pre);
            }
            for kv in snap.prefix(&ks.data, &prefix) {
                let (k, v) = kv.into_inner()?;
                let r = Record::decode(&v)?;
                if r.is_expired(now) {
                    continue;
                }
                let key = Key::decode(p.spec.key_type, &k[4..]).map_err(Error::CorruptRecord)?;
                let line = ExportLine {
                    store: p.spec.name.clone(),
                    key: key_to_json(&key),
                    value: std::sync::Arc::unwrap_or_clone(r.value),
                    revision: r.revision,
                    created_revision: r.created_revision,
                    version: r.version,
                    updated_at: r.updated_at,
                    expires_at: r.expires_at,
                };
                serde_json::to_writer(&mut out, &line).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                entries += 1;
                progress(store_lines + entries, out.bytes);
            }
        }
        out.flush()?;
        Ok(ExportInfo {
            revision,
            lines: store_lines + entries,
            entries,
            stores: store_lines,
            bytes: out.bytes,
        })
    }

    /// Reads NDJSON lines (as [`Db::export`] writes them) and writes them in
    /// atomic batches of at most `max_batch_ops` entries. A store line
    /// creates its store with the spec it gives, or checks that the existing
    /// store has that spec (a different one stops the import: its entries
    /// would sort or validate differently). Entries of a store that has no
    /// store line and does not exist create it with default specs (bytes
    /// keys when the first line's key is `$base64`). A line that does not
    /// parse stops the import with its line number; nothing of its batch is
    /// written (earlier batches are).
    /// `progress(lines, bytes)` is called per batch.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the line; engine errors for a batch, naming its lines.
    pub fn import(
        &self,
        r: impl BufRead,
        on_conflict: OnConflict,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportInfo> {
        // Skip and fail add one absence check per put, and checks count toward the limit.
        let max = match on_conflict {
            OnConflict::Overwrite => self.shared.config.limits.max_batch_ops,
            _ => self.shared.config.limits.max_batch_ops / 2,
        }
        .max(1);
        let mut info = ImportInfo::default();
        let mut bytes = 0u64;
        let mut batch: Vec<(u64, ExportLine, Vec<u8>)> = Vec::with_capacity(max);
        for (i, line) in r.lines().enumerate() {
            let n = i as u64 + 1;
            let line = line.map_err(|e| Error::InvalidArgument(format!("line {n}: cannot read: {e}")))?;
            info.lines = n;
            bytes += line.len() as u64 + 1;
            if line.trim().is_empty() {
                continue;
            }
            let parsed = match ExportItem::parse(&line).map_err(|e| Error::InvalidArgument(format!("line {n}: {e}")))? {
                ExportItem::Entry(e) => e,
                ExportItem::Store(spec) => {
                    // Entries before this line go in first, in file order.
                    self.import_batch(&mut batch, on_conflict, &mut info)?;
                    self.import_store(n, spec, &mut info)?;
                    continue;
                }
            };
            let key = key_from_json(&parsed.key).map_err(|e| Error::InvalidArgument(format!("line {n}: {e}")))?;
            batch.push((n, parsed, key));
            if batch.len() == max {
                self.import_batch(&mut batch, on_conflict, &mut info)?;
                progress(info.lines, bytes);
            }
        }
        self.import_batch(&mut batch, on_conflict, &mut info)?;
        progress(info.lines, bytes);
        Ok(info)
    }

    /// A store line: create the store, or confirm it has this spec.
    fn import_store(&self, n: u64, spec: StoreSpec, info: &mut ImportInfo) -> Result<()> {
        if let Ok(existing) = self.store_spec(&spec.name) {
            if existing == spec {
                return Ok(());
            }
            return Err(Error::InvalidArgument(format!(
                "line {n}: store {:?} exists with a different spec ({}) than the file's ({}); \
                 its entries would not import as they were exported: drop the store or import into another database",
                spec.name,
                ExportItem::store_line(&existing)["spec"],
                ExportItem::store_line(&spec)["spec"],
            )));
        }
        let name = spec.name.clone();
        self.create_store(spec)
            .map_err(|e| Error::InvalidArgument(format!("line {n}: cannot create store {name:?}: {e}")))?;
        info.stores_created += 1;
        Ok(())
    }

    fn import_batch(
        &self,
        batch: &mut Vec<(u64, ExportLine, Vec<u8>)>,
        on_conflict: OnConflict,
        info: &mut ImportInfo,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let mut checks = Vec::new();
        let mut ops = Vec::with_capacity(batch.len());
        for (n, line, key) in batch.iter() {
            if self.store(&line.store).is_err() {
                // A `$base64` key only fits a bytes-keyed store; otherwise keys are text.
                let key_type = if line.key.is_string() {
                    crate::KeyType::String
                } else {
                    crate::KeyType::Bytes
                };
                self.create_store(StoreSpec::new(line.store.clone()).key_type(key_type))?;
                info.stores_created += 1;
            }
            if line.expires_at.is_some_and(|t| t <= now) {
                info.expired += 1;
                continue;
            }
            let ctx = |e: Error| Error::InvalidArgument(format!("line {n}: {e}"));
            if on_conflict != OnConflict::Overwrite && self.contains(&line.store, key).map_err(ctx)? {
                if on_conflict == OnConflict::Fail {
                    return Err(Error::InvalidArgument(format!(
                        "line {n}: key {} already exists in store {:?} (use --on-conflict skip or overwrite)",
                        line.key, line.store
                    )));
                }
                info.skipped += 1;
                continue;
            }
            if on_conflict != OnConflict::Overwrite {
                // Keeps the import from clobbering a key written since the check.
                checks.push(crate::Check {
                    store: line.store.clone(),
                    key: key.clone(),
                    cond: Cond::Absent,
                });
            }
            let ttl = line.expires_at.map_or(Ttl::Persist, Ttl::At);
            ops.push(Op::Put {
                store: line.store.clone(),
                key: key.clone(),
                value: line.value.clone(),
                ttl,
            });
        }
        let first = batch.first().map_or(0, |b| b.0);
        let last = batch.last().map_or(0, |b| b.0);
        batch.clear();
        if ops.is_empty() {
            return Ok(());
        }
        let n_ops = ops.len() as u64;
        let out = self
            .batch(checks, ops)
            .map_err(|e| Error::InvalidArgument(format!("lines {first}-{last} not written: {e}")))?;
        if !out.success {
            return Err(Error::InvalidArgument(format!(
                "lines {first}-{last} not written: a key was created concurrently"
            )));
        }
        info.written += n_ops;
        info.revision = out.revision;
        Ok(())
    }
}
