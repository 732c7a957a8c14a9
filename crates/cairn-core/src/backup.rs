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

use crate::db::{META_NEXT_STORE, META_OLDEST, META_REVISION, now_ms};
use crate::entry::Record;
use crate::writer::PersistedStore;
use crate::{Algorithm, ContentHash, Db, Error, Key, Result};
use fjall::Readable;
use std::collections::HashMap;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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

/// Writes the framing: header, checksummed records, trailer.
struct BackupWriter<W: Write> {
    w: W,
    file_crc: crc32fast::Hasher,
    bytes: u64,
    records: u64,
}

impl<W: Write> BackupWriter<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.file_crc.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    fn header(&mut self, revision: u64) -> Result<()> {
        let mut h = Vec::with_capacity(HEADER_LEN as usize);
        h.extend_from_slice(BACKUP_MAGIC);
        h.extend_from_slice(&BACKUP_FORMAT_VERSION.to_le_bytes());
        h.extend_from_slice(&revision.to_le_bytes());
        h.extend_from_slice(&now_ms().to_le_bytes());
        let crc = crc32fast::hash(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        self.put(&h)
    }

    /// `kind u8 | len u32 | key_len u32 | key | value | crc32 u32` where len
    /// counts `key_len | key | value` and the CRC covers everything before it.
    fn record(&mut self, kind: u8, key: &[u8], value: &[u8]) -> Result<()> {
        let len = 4 + key.len() + value.len();
        let len = u32::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_PAYLOAD)
            .ok_or_else(|| Error::InvalidArgument(format!("record of {len} bytes is too large for a backup")))?;
        let mut head = [0u8; 9];
        head[0] = kind;
        head[1..5].copy_from_slice(&len.to_le_bytes());
        head[5..9].copy_from_slice(&(key.len() as u32).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(key);
        crc.update(value);
        self.put(&head)?;
        self.put(key)?;
        self.put(value)?;
        self.put(&crc.finalize().to_le_bytes())?;
        self.records += 1;
        Ok(())
    }

    /// `0xFF | len=12 | records u64 | file crc32 u32 | crc32 u32`; the file CRC
    /// covers every byte before the trailer.
    fn trailer(mut self) -> Result<u64> {
        let file_crc = self.file_crc.clone().finalize();
        let mut t = Vec::with_capacity(21);
        t.push(KIND_END);
        t.extend_from_slice(&12u32.to_le_bytes());
        t.extend_from_slice(&self.records.to_le_bytes());
        t.extend_from_slice(&file_crc.to_le_bytes());
        let crc = crc32fast::hash(&t);
        t.extend_from_slice(&crc.to_le_bytes());
        self.put(&t)?;
        self.w.flush()?;
        Ok(self.bytes)
    }
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
        for (kind, keyspace) in sections {
            for kv in snap.iter(keyspace) {
                let (k, v) = kv.into_inner()?;
                // The change log is not backed up: the restored db's log starts
                // after the backup's revision.
                if kind == KIND_META && &*k == META_OLDEST {
                    continue;
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

/// One decoded record of a backup file.
pub(crate) struct Item {
    pub kind: u8,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Reads and verifies the framing of a backup file.
pub(crate) struct BackupReader<R: Read> {
    r: R,
    offset: u64,
    file_crc: crc32fast::Hasher,
    records: u64,
    /// The revision from the header.
    pub revision: u64,
    done: bool,
}

impl<R: Read> BackupReader<R> {
    pub fn new(mut r: R) -> Result<Self> {
        let mut h = [0u8; HEADER_LEN as usize];
        r.read_exact(&mut h).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt("backup file is truncated inside its header".into()),
            _ => e.into(),
        })?;
        if &h[..8] != BACKUP_MAGIC {
            return Err(corrupt("not a cairn backup file (bad magic bytes)".into()));
        }
        let crc = u32::from_le_bytes([h[28], h[29], h[30], h[31]]);
        if crc32fast::hash(&h[..28]) != crc {
            return Err(corrupt("backup header checksum mismatch at byte offset 0".into()));
        }
        let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
        if version != BACKUP_FORMAT_VERSION {
            return Err(corrupt(format!(
                "backup format version {version} is not supported (this build reads version {BACKUP_FORMAT_VERSION})"
            )));
        }
        let revision = u64_le(&h[12..20], "header revision")?;
        let mut file_crc = crc32fast::Hasher::new();
        file_crc.update(&h);
        Ok(BackupReader {
            r,
            offset: HEADER_LEN,
            file_crc,
            records: 0,
            revision,
            done: false,
        })
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    fn read(&mut self, buf: &mut [u8], at: u64) -> Result<()> {
        self.r.read_exact(buf).map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => corrupt(format!(
                "backup file is truncated: record {} starting at byte offset {at} is incomplete",
                self.records + 1
            )),
            _ => e.into(),
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    /// The next record, or `None` once the trailer verified (and nothing follows it).
    pub fn next_item(&mut self) -> Result<Option<Item>> {
        if self.done {
            return Ok(None);
        }
        let at = self.offset;
        let n = self.records + 1;
        let bad = |why: &str| corrupt(format!("backup record {n} at byte offset {at}: {why}"));
        let mut head = [0u8; 5];
        self.read(&mut head, at)?;
        let kind = head[0];
        let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]);
        if kind == KIND_END {
            let file_crc = self.file_crc.clone().finalize();
            if len != 12 {
                return Err(bad("trailer has a wrong length"));
            }
            let mut t = [0u8; 16];
            self.read(&mut t, at)?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&head);
            crc.update(&t[..12]);
            if crc.finalize() != u32::from_le_bytes([t[12], t[13], t[14], t[15]]) {
                return Err(bad("trailer checksum mismatch"));
            }
            let count = u64_le(&t[..8], "trailer count")?;
            if count != self.records {
                return Err(bad(&format!(
                    "trailer says {count} records, the file holds {}",
                    self.records
                )));
            }
            if file_crc != u32::from_le_bytes([t[8], t[9], t[10], t[11]]) {
                return Err(bad("whole-file checksum mismatch"));
            }
            let mut extra = [0u8; 1];
            if self.r.read(&mut extra)? != 0 {
                return Err(corrupt(format!(
                    "unexpected data after the trailer at byte offset {}",
                    self.offset
                )));
            }
            self.done = true;
            return Ok(None);
        }
        if !(KIND_META..=KIND_CONTENT).contains(&kind) {
            return Err(bad(&format!("unknown record kind {kind}")));
        }
        if !(4..=MAX_PAYLOAD).contains(&len) {
            return Err(bad(&format!("implausible record length {len}")));
        }
        let mut payload = vec![0u8; len as usize];
        self.read(&mut payload, at)?;
        let mut c = [0u8; 4];
        self.read(&mut c, at)?;
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&payload);
        if crc.finalize() != u32::from_le_bytes(c) {
            return Err(bad("checksum mismatch"));
        }
        self.file_crc.update(&head);
        self.file_crc.update(&payload);
        self.file_crc.update(&c);
        let key_len = u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) as usize;
        if key_len > payload.len() - 4 {
            return Err(bad("key length exceeds the record"));
        }
        let value = payload.split_off(4 + key_len);
        payload.drain(..4);
        self.records += 1;
        Ok(Some(Item {
            kind,
            key: payload,
            value,
        }))
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
    let existing = !is_empty_dir(dir)?;
    if existing && !force {
        return Err(Error::InvalidArgument(format!(
            "data directory {} is not empty; restore into an empty directory or pass --force to replace it",
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
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(parent) {
            let _ = d.sync_all();
        }
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

/// What [`Db::check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Revision checked at.
    pub revision: u64,
    /// Oldest revision in the change log.
    pub oldest: u64,
    /// Stores.
    pub stores: u64,
    /// Live entries (expired ones not yet collected included).
    pub entries: u64,
    /// Older versions kept by history.
    pub history: u64,
    /// Content objects, each verified against its hash.
    pub content: u64,
    /// Bytes of content.
    pub content_bytes: u64,
    /// Change-log events.
    pub events: u64,
    /// Everything wrong, one line each; empty when the db is sound.
    pub problems: Vec<String>,
}

const MAX_PROBLEMS: usize = 100;

impl CheckReport {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems.push("(further problems not listed)".into());
        }
    }
}

impl Db {
    /// Reads every record of the database at one snapshot and reports what
    /// does not decode or verify: entries (key and value against the store's
    /// types), history, content (against its hash), the expiry index and the
    /// change log (ordered, within `oldest..=revision`, event indices dense).
    ///
    /// # Errors
    /// Storage errors that stop the scan; problems found are in the report.
    pub fn check(&self, mut progress: impl FnMut(u64)) -> Result<CheckReport> {
        let snap = self.shared.fj.snapshot();
        let ks = &self.shared.ks;
        let mut rep = CheckReport::default();
        let meta = |k: &[u8]| -> Result<Option<u64>> {
            snap.get(&ks.meta, k)?.map(|v| u64_le(&v, "meta counter")).transpose()
        };
        rep.revision = meta(META_REVISION)?.unwrap_or(0);
        rep.oldest = meta(META_OLDEST)?.unwrap_or(1);
        let next_store = meta(META_NEXT_STORE)?.unwrap_or(1);
        let mut stores: HashMap<u32, PersistedStore> = HashMap::new();
        for kv in snap.iter(&ks.stores) {
            let (k, v) = kv.into_inner()?;
            rep.stores += 1;
            match serde_json::from_slice::<PersistedStore>(&v) {
                Ok(p) => {
                    if p.spec.name.as_bytes() != &*k {
                        rep.problem(format!(
                            "store {:?} is filed under {:?}",
                            p.spec.name,
                            String::from_utf8_lossy(&k)
                        ));
                    }
                    if u64::from(p.id) >= next_store {
                        rep.problem(format!(
                            "store {:?} has id {} >= next store id {next_store}",
                            p.spec.name, p.id
                        ));
                    }
                    stores.insert(p.id, p);
                }
                Err(e) => rep.problem(format!(
                    "store {:?}: spec does not parse: {e}",
                    String::from_utf8_lossy(&k)
                )),
            }
        }
        let mut n = 0u64;
        for kv in snap.iter(&ks.data) {
            let (k, v) = kv.into_inner()?;
            rep.entries += 1;
            n += 1;
            if n % 4096 == 0 {
                progress(n);
            }
            if let Err(p) = check_entry(&stores, &k, &v, rep.revision, &snap, ks) {
                rep.problem(p);
            }
        }
        for kv in snap.iter(&ks.history) {
            let (_, v) = kv.into_inner()?;
            rep.history += 1;
            if let Err(e) = Record::decode(&v) {
                rep.problem(format!("history record: {e}"));
            }
        }
        for kv in snap.iter(&ks.expiry) {
            let (k, _) = kv.into_inner()?;
            if k.len() < 12 {
                rep.problem("expiry index key is too short".into());
                continue;
            }
            let at = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
            let matches = match snap.get(&ks.data, &k[8..])? {
                Some(v) => Record::decode(&v).is_ok_and(|r| r.expires_at == Some(at)),
                None => false,
            };
            if !matches {
                rep.problem(format!("expiry index entry at {at} points at no entry expiring then"));
            }
        }
        for kv in snap.iter(&ks.content) {
            let (k, v) = kv.into_inner()?;
            rep.content += 1;
            rep.content_bytes += v.len() as u64;
            n += 1;
            if let Err(p) = verify_content(&k, &v) {
                rep.problem(p);
            }
        }
        check_changelog(&snap, ks, &mut rep)?;
        progress(n);
        Ok(rep)
    }
}

fn check_entry(
    stores: &HashMap<u32, PersistedStore>,
    k: &[u8],
    v: &[u8],
    revision: u64,
    snap: &fjall::Snapshot,
    ks: &crate::db::Keyspaces,
) -> std::result::Result<(), String> {
    let Some(id) = k.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])) else {
        return Err("data key shorter than a store id".into());
    };
    let p = stores
        .get(&id)
        .ok_or_else(|| format!("entry under unknown store id {id}"))?;
    let name = &p.spec.name;
    let key = Key::decode(p.spec.key_type, &k[4..]).map_err(|e| format!("store {name:?}: {e}"))?;
    let r = Record::decode(v).map_err(|e| format!("store {name:?} key {key}: {e}"))?;
    p.spec
        .value_type
        .check(&r.value)
        .map_err(|e| format!("store {name:?} key {key}: {e}"))?;
    if r.revision > revision || r.created_revision > r.revision || r.version == 0 {
        return Err(format!(
            "store {name:?} key {key}: inconsistent metadata (revision {}, created {}, version {}, db revision {revision})",
            r.revision, r.created_revision, r.version
        ));
    }
    if let Some(at) = r.expires_at {
        let ek = crate::writer::expiry_key(at, k);
        if !snap.contains_key(&ks.expiry, ek).map_err(|e| e.to_string())? {
            return Err(format!(
                "store {name:?} key {key}: expires at {at} but is missing from the expiry index"
            ));
        }
    }
    Ok(())
}

fn check_changelog(snap: &fjall::Snapshot, ks: &crate::db::Keyspaces, rep: &mut CheckReport) -> Result<()> {
    let mut last: Option<(u64, u32)> = None;
    for kv in snap.iter(&ks.changelog) {
        let (k, v) = kv.into_inner()?;
        rep.events += 1;
        if k.len() != 12 {
            rep.problem("change-log key is not 12 bytes".into());
            continue;
        }
        let rev = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
        let idx = u32::from_be_bytes(k[8..].try_into().unwrap_or_default());
        if rev > rep.revision {
            rep.problem(format!(
                "change log holds revision {rev}, after the db revision {}",
                rep.revision
            ));
        }
        let expected_idx = match last {
            Some((r, i)) if r == rev => i + 1,
            _ => 0,
        };
        if idx != expected_idx {
            rep.problem(format!(
                "change log revision {rev}: event index {idx}, expected {expected_idx}"
            ));
        }
        if rev >= rep.oldest {
            if let Err(e) = crate::Event::decode(rev, &v) {
                rep.problem(format!("change log revision {rev}: {e}"));
            }
        }
        last = Some((rev, idx));
    }
    Ok(())
}
