//! The framing of a backup file: header, length-prefixed records each with
//! a CRC32, and a trailer with the record count and a whole-file CRC32.

use super::{
    BACKUP_FORMAT_VERSION, BACKUP_MAGIC, HEADER_LEN, KIND_CONTENT, KIND_END, KIND_META, MAX_PAYLOAD, corrupt, u64_le,
};
use crate::db::now_ms;
use crate::{Error, Result};
use std::io::{Read, Write};

/// Writes the framing: header, checksummed records, trailer.
pub(super) struct BackupWriter<W: Write> {
    pub w: W,
    pub file_crc: crc32fast::Hasher,
    pub bytes: u64,
    pub records: u64,
}

impl<W: Write> BackupWriter<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b)?;
        self.file_crc.update(b);
        self.bytes += b.len() as u64;
        Ok(())
    }

    pub fn header(&mut self, revision: u64) -> Result<()> {
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
    pub fn record(&mut self, kind: u8, key: &[u8], value: &[u8]) -> Result<()> {
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
    pub fn trailer(mut self) -> Result<u64> {
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
        // Grow with the data actually read: a corrupt length must not allocate up front.
        let mut payload = Vec::with_capacity((len as usize).min(1 << 20));
        (&mut self.r).take(u64::from(len)).read_to_end(&mut payload)?;
        self.offset += payload.len() as u64;
        if payload.len() < len as usize {
            return Err(corrupt(format!(
                "backup file is truncated: record {n} starting at byte offset {at} is incomplete"
            )));
        }
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
