//! Online backup to one checksummed file, restore into a data directory, and
//! an offline consistency check. The file format is documented in
//! `docs/backup-format.md`.
//!
//! Invariants:
//! - A backup reads every keyspace through ONE fjall snapshot, so it holds
//!   exactly the state at the revision stored in that snapshot's meta
//!   keyspace, whatever the writer commits meanwhile.
//! - Restore writes into `<dir>.tmp-restore` and renames it into place only
//!   after every record checksum and the trailer verified; on any error the
//!   temporary directory is removed and the target is left as it was.

use crate::db::{META_OLDEST, META_REVISION};
use crate::entry::Record;
use crate::writer::PersistedStore;
use crate::{Algorithm, ContentHash, Db, Error, Key, Result};
use fjall::Readable;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

mod check;
mod format;

pub use check::CheckReport;
use format::{BackupReader, BackupWriter, Item};

/// The first 8 bytes of every backup file.
pub const BACKUP_MAGIC: &[u8; 8] = b"CAIRNBAK";
/// The format version this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

const HEADER_LEN: u64 = 8 + 4 + 8 + 8 + 4;
/// Largest record payload accepted when reading; anything bigger is corruption.
const MAX_PAYLOAD: u32 = 1 << 30;

pub(crate) const KIND_META: u8 = 1;
pub(crate) const KIND_STORE: u8 = 2;
pub(crate) const KIND_ENTRY: u8 = 3;
pub(crate) const KIND_HISTORY: u8 = 4;
pub(crate) const KIND_EXPIRY: u8 = 5;
pub(crate) const KIND_CONTENT: u8 = 6;
const KIND_END: u8 = 0xFF;

/// Keyspace names as `db.rs` opens them; restore writes a fresh fjall
/// database with the same layout.
const KS_NAMES: [&str; 7] = ["meta", "stores", "data", "changelog", "history", "expiry", "content"];

/// What a backup (or a verified backup file) holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BackupInfo {
    /// The revision the backup is consistent at.
    pub revision: u64,
    /// Records written (trailer excluded).
    pub records: u64,
    /// Bytes of the whole file.
    pub bytes: u64,
}

fn corrupt(msg: String) -> Error {
    Error::CorruptRecord(msg)
}

fn u64_le(b: &[u8], what: &str) -> Result<u64> {
    let a: [u8; 8] = b.try_into().map_err(|_| corrupt(format!("{what} is not 8 bytes")))?;
    Ok(u64::from_le_bytes(a))
}

impl Db {
    /// Writes a consistent backup of the whole database to `w` while writes
    /// continue. `progress(records, bytes)` is called as records are written.
    ///
    /// # Errors
    /// Storage and I/O errors.
    pub fn backup(&self, w: impl Write, mut progress: impl FnMut(u64, u64)) -> Result<BackupInfo> {
        let snap = self.shared.fj.snapshot();
        let ks = &self.shared.ks;
        let revision = match snap.get(&ks.meta, META_REVISION)? {
            Some(v) => u64_le(&v, "meta revision")?,
            None => 0,
        };
        let mut out = BackupWriter {
            w: BufWriter::new(w),
            file_crc: crc32fast::Hasher::new(),
            bytes: 0,
            records: 0,
        };
        out.header(revision)?;
        let sections = [
            (KIND_META, &ks.meta),
            (KIND_STORE, &ks.stores),
            (KIND_ENTRY, &ks.data),
            (KIND_HISTORY, &ks.history),
            (KIND_EXPIRY, &ks.expiry),
            (KIND_CONTENT, &ks.content),
        ];
        let retired = crate::retire::at_snapshot(&snap, ks)?;
        for (kind, keyspace) in sections {
            for kv in snap.iter(keyspace) {
                let (k, v) = kv.into_inner()?;
                // Records of cleared or dropped stores, not yet deleted.
                let id = match kind {
                    KIND_ENTRY | KIND_HISTORY => crate::retire::id_of(&k),
                    KIND_EXPIRY => k.get(8..).and_then(crate::retire::id_of),
                    _ => None,
                };
                if id.is_some_and(|id| retired.contains(&id)) {
                    continue;
                }
                // The change log is not backed up: the restored db's log starts
                // after the backup's revision.
                if kind == KIND_META && &*k == META_OLDEST {
                    continue;
                }
                // Nor are the key statistics: the restored db counts its
                // records when first opened (and the format stays the one
                // older versions read: meta records are u64 counters).
                if kind == KIND_META && (crate::keystats::is_own_meta(&k) || crate::retire::is_own_meta(&k)) {
                    continue;
                }
                // Copying corrupt content would make a backup that cannot be restored: refuse it here.
                if kind == KIND_CONTENT && verify_content(&k, &v).is_err() {
                    let hash = hex::encode(k.get(1..).unwrap_or_default());
                    let actual = k.first().map_or_else(String::new, |t| {
                        let alg = if *t == 1 { Algorithm::Sha1 } else { Algorithm::Sha256 };
                        ContentHash::of(alg, &v).to_hex()
                    });
                    return Err(Error::Corrupted { hash, actual });
                }
                out.record(kind, &k, &v)?;
                progress(out.records, out.bytes);
            }
        }
        let records = out.records;
        let bytes = out.trailer()?;
        progress(records, bytes);
        Ok(BackupInfo {
            revision,
            records,
            bytes,
        })
    }

    /// Writes a backup to a file, atomically: into `<path>.tmp`, fsynced, then renamed.
    ///
    /// # Errors
    /// As [`Db::backup`].
    pub fn backup_to_file(&self, path: &Path, progress: impl FnMut(u64, u64)) -> Result<BackupInfo> {
        let tmp = sibling(path, ".tmp");
        let f = std::fs::File::create(&tmp)?;
        let r = self.backup(&f, progress).and_then(|info| {
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            Ok(info)
        });
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    }
}

/// Checks that a record's contents decode (beyond its checksum).
fn validate_item(item: &Item, stores: &mut HashMap<u32, PersistedStore>) -> std::result::Result<(), String> {
    match item.kind {
        KIND_META => u64_le(&item.value, "meta counter")
            .map(|_| ())
            .map_err(|e| e.to_string()),
        KIND_STORE => {
            let p: PersistedStore =
                serde_json::from_slice(&item.value).map_err(|e| format!("store spec does not parse: {e}"))?;
            p.spec.compile().map_err(|e| e.to_string())?;
            stores.insert(p.id, p);
            Ok(())
        }
        KIND_ENTRY => {
            Record::decode(&item.value).map_err(|e| e.to_string())?;
            if item.key.len() < 4 {
                return Err("entry key is shorter than a store id".into());
            }
            let id = u32::from_be_bytes([item.key[0], item.key[1], item.key[2], item.key[3]]);
            // Stores precede entries in the file, so the owner must be known.
            let p = stores
                .get(&id)
                .ok_or_else(|| format!("entry belongs to unknown store id {id}"))?;
            Key::decode(p.spec.key_type, &item.key[4..]).map(|_| ())
        }
        KIND_HISTORY => Record::decode(&item.value).map(|_| ()).map_err(|e| e.to_string()),
        KIND_EXPIRY => Ok(()),
        KIND_CONTENT => verify_content(&item.key, &item.value),
        _ => Err(format!("unknown record kind {}", item.kind)),
    }
}

/// Checks content bytes against the hash in their storage key.
pub(crate) fn verify_content(skey: &[u8], data: &[u8]) -> std::result::Result<(), String> {
    let (tag, digest) = skey.split_first().ok_or("empty content key")?;
    let algorithm = match tag {
        1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        t => return Err(format!("unknown content algorithm tag {t}")),
    };
    let actual = ContentHash::of(algorithm, data);
    if actual.digest != digest {
        return Err(format!("content {} hashes to {}", hex::encode(digest), actual.to_hex()));
    }
    Ok(())
}

/// Reads a whole backup file, verifying every checksum, the trailer and
/// that every record decodes. Nothing is written.
///
/// # Errors
/// [`Error::CorruptRecord`] naming the record and byte offset; I/O errors.
pub fn verify_backup(path: &Path, progress: impl FnMut(u64, u64)) -> Result<BackupInfo> {
    read_backup(path, progress, |_| Ok(()))
}

fn read_backup(
    path: &Path,
    mut progress: impl FnMut(u64, u64),
    mut sink: impl FnMut(&Item) -> Result<()>,
) -> Result<BackupInfo> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::InvalidArgument(format!("cannot open backup file {}: {e}", path.display())))?;
    let mut r = BackupReader::new(BufReader::with_capacity(1 << 20, f))?;
    let mut stores = HashMap::new();
    loop {
        let at = r.offset();
        let Some(item) = r.next_item()? else { break };
        validate_item(&item, &mut stores)
            .map_err(|why| corrupt(format!("backup record {} at byte offset {at}: {why}", r.records())))?;
        sink(&item)?;
        progress(r.records(), r.offset());
    }
    Ok(BackupInfo {
        revision: r.revision,
        records: r.records(),
        bytes: r.offset(),
    })
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn is_empty_dir(dir: &Path) -> Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut it) => Ok(it.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// Restores a backup file into data directory `dir`.
///
/// The target must be absent or empty unless `force` (then it is replaced,
/// provided no process holds its lock). Everything is verified before the
/// restored directory becomes visible; on error the target is untouched.
/// The restored db opens at the backup's revision; its change log starts
/// at the next revision.
///
/// # Errors
/// [`Error::InvalidArgument`] for a non-empty target without `force`;
/// [`Error::Locked`] when a process has the target open;
/// [`Error::CorruptRecord`] naming the bad record and byte offset.
pub fn restore(file: &Path, dir: &Path, force: bool, progress: impl FnMut(u64, u64)) -> Result<BackupInfo> {
    // Without a trailing slash, so that the siblings below are next to `dir`, not in it.
    let dir: PathBuf = dir.components().collect();
    let dir = dir.as_path();
    if dir.as_os_str().is_empty() || dir.parent().is_none() {
        return Err(Error::InvalidArgument(format!("cannot restore into {}", dir.display())));
    }
    let existing = !is_empty_dir(dir)?;
    if existing && !force {
        return Err(Error::InvalidArgument(format!(
            "data directory {} is not empty; restore into an empty directory or pass --force to replace it",
            dir.display()
        )));
    }
    // --force replaces a data directory, never an arbitrary one (a mistyped path).
    if existing && !dir.join("fjall").is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is not empty and is not a cairn data directory; refusing to replace it",
            dir.display()
        )));
    }
    // Hold the target's lock until it is swapped, so a server cannot open it meanwhile.
    let _lock = if existing { Some(lock_existing(dir)?) } else { None };
    let tmp = sibling(dir, ".tmp-restore");
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp)?;
    }
    let r = restore_into(file, &tmp, progress);
    let info = match r {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    if existing {
        let old = sibling(dir, ".old-restore");
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(dir, &old)?;
        std::fs::rename(&tmp, dir)?;
        std::fs::remove_dir_all(&old)?;
    } else {
        if dir.exists() {
            std::fs::remove_dir(dir)?;
        }
        std::fs::rename(&tmp, dir)?;
    }
    // Make the renames durable.
    if let Some(Ok(d)) = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(std::fs::File::open)
    {
        let _ = d.sync_all();
    }
    Ok(info)
}

fn lock_existing(dir: &Path) -> Result<std::fs::File> {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("cairn.lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path: dir.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn restore_into(file: &Path, tmp: &Path, progress: impl FnMut(u64, u64)) -> Result<BackupInfo> {
    std::fs::create_dir_all(tmp)?;
    let fj = fjall::Database::builder(tmp.join("fjall"))
        .manual_journal_persist(true)
        .open()?;
    let mut ks = HashMap::new();
    for name in KS_NAMES {
        ks.insert(name, fj.keyspace(name, fjall::KeyspaceCreateOptions::default)?);
    }
    let target = |kind: u8| match kind {
        KIND_META => "meta",
        KIND_STORE => "stores",
        KIND_ENTRY => "data",
        KIND_HISTORY => "history",
        KIND_EXPIRY => "expiry",
        _ => "content",
    };
    let mut batch = fj.batch();
    let mut pending = 0usize;
    let mut saw_revision = None;
    let info = read_backup(file, progress, |item| {
        if item.kind == KIND_META && item.key == META_REVISION {
            saw_revision = Some(u64_le(&item.value, "meta revision")?);
        }
        batch.insert(&ks[target(item.kind)], item.key.as_slice(), item.value.as_slice());
        pending += item.key.len() + item.value.len();
        if pending >= 16 << 20 {
            std::mem::replace(&mut batch, fj.batch()).commit()?;
            pending = 0;
        }
        Ok(())
    })?;
    if saw_revision.unwrap_or(0) != info.revision {
        return Err(corrupt(format!(
            "backup header revision {} does not match its meta revision {:?}",
            info.revision, saw_revision
        )));
    }
    batch.insert(&ks["meta"], META_OLDEST, (info.revision + 1).to_le_bytes());
    batch.commit()?;
    fj.persist(fjall::PersistMode::SyncAll)?;
    Ok(info)
}
