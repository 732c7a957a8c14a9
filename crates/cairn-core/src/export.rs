//! NDJSON export and import: one entry per line,
//! `{"store", "key", "value", "revision", "created_revision", "version",
//! "updated_at", "expires_at"?}`, bytes values as `{"$base64": ...}` and
//! keys that are not UTF-8 likewise.
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
    /// Lines written or read.
    pub lines: u64,
    /// Bytes written or read.
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
    let raw = k.to_raw();
    match String::from_utf8(raw) {
        Ok(s) => serde_json::Value::String(s),
        Err(e) => {
            serde_json::json!({"$base64": base64::engine::general_purpose::STANDARD.encode(e.as_bytes())})
        }
    }
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
        let mut out = Counting {
            w: BufWriter::new(w),
            bytes: 0,
        };
        let mut lines = 0u64;
        let now = now_ms();
        for p in &stores {
            let mut prefix = p.id.to_be_bytes().to_vec();
            if let Some(pre) = &o.prefix {
                if !p.spec.key_type.supports_prefix() {
                    // Across all stores, a prefix simply matches nothing in int and uuid stores.
                    if o.store.is_none() {
                        continue;
                    }
                    return Err(Error::InvalidArgument(format!(
                        "prefix export needs a string or bytes store; {:?} has {} keys",
                        p.spec.name,
                        p.spec.key_type.as_str()
                    )));
                }
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
                lines += 1;
                progress(lines, out.bytes);
            }
        }
        out.flush()?;
        Ok(ExportInfo {
            revision,
            lines,
            bytes: out.bytes,
        })
    }

    /// Reads NDJSON lines (as [`Db::export`] writes them) and writes them in
    /// atomic batches of at most `max_batch_ops` entries, creating missing
    /// stores with default specs (bytes keys when the first line's key is
    /// `$base64`). A line that does not parse stops the import with its line
    /// number; nothing of its batch is written (earlier batches are).
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
            let parsed: ExportLine = serde_json::from_str(&line)
                .map_err(|e| Error::InvalidArgument(format!("line {n}: not an export line: {e}")))?;
            let key = key_from_json(&parsed.key).map_err(|e| Error::InvalidArgument(format!("line {n}: {e}")))?;
            crate::validate_store_name(&parsed.store).map_err(|e| Error::InvalidArgument(format!("line {n}: {e}")))?;
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
