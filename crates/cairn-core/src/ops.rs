//! The data API on [`Db`]: convenience wrappers that build [`Command`]s,
//! and the list, count and history queries.

use crate::db::{now_ms, storage_key};
use crate::entry::Record;
use crate::writer::history_prefix;
use crate::{
    Algorithm, Applied, Check, Command, Cond, ContentHash, ContentInfo, Db, Entry, Error, Key, Op, OpOutcome, Result,
    StoreSpec, Ttl, Value, WriteOutcome,
};
use base64::Engine as _;
use serde::Serialize;
use std::time::Duration;

/// Options for [`Db::put_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// Expire after this long (`None`: the store's default TTL).
    pub ttl: Option<Duration>,
    /// Only if the key's current revision is this (compare-and-set).
    pub if_revision: Option<u64>,
    /// Only if the key does not exist.
    pub if_absent: bool,
    /// Only if the key exists.
    pub if_present: bool,
    /// Keep the key's current expiry instead of setting one (a key that did
    /// not exist gets the store's default TTL). Not together with `ttl`.
    pub keep_ttl: bool,
}

/// A request's TTL in milliseconds: more than zero and at most
/// [`crate::MAX_TTL_SECS`], as a store's `default_ttl` (a huge one would
/// wrap around and expire the key at once).
fn request_ttl_ms(d: Duration) -> Result<u64> {
    if d.is_zero() {
        return Err(Error::InvalidArgument("ttl must be more than zero".into()));
    }
    if d.as_secs() > crate::MAX_TTL_SECS {
        return Err(Error::InvalidArgument(format!(
            "ttl of {} s is over the limit of {} s",
            d.as_secs(),
            crate::MAX_TTL_SECS
        )));
    }
    Ok(u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1))
}

/// The result of a put.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PutResult {
    /// The key (text form).
    pub key: String,
    /// False when a condition failed.
    pub success: bool,
    /// The commit's revision, or on failure the key's current revision (`None`: absent).
    pub revision: Option<u64>,
    /// True when the key did not exist before.
    pub created: bool,
}

/// The result of a delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteResult {
    /// The key (text form).
    pub key: String,
    /// True when the key existed and was deleted.
    pub success: bool,
    /// The commit's revision, the current database revision when there was
    /// nothing to delete, or on a failed condition the key's revision.
    pub revision: Option<u64>,
}

/// The result of an increment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncrResult {
    /// The key (text form).
    pub key: String,
    /// The value after the increment.
    pub value: serde_json::Number,
    /// The commit's revision.
    pub revision: u64,
}

/// Options for [`Db::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Only keys starting with this (string and bytes stores).
    pub prefix: Option<Vec<u8>>,
    /// First key (inclusive), raw form.
    pub start: Option<Vec<u8>>,
    /// Last key (exclusive), raw form.
    pub end: Option<Vec<u8>>,
    /// Most items returned: 1 to [`MAX_LIST_LIMIT`] (a value outside is
    /// brought into that range). Default: 100.
    pub limit: Option<usize>,
    /// Descending key order (lists are in the key type's order, not by time).
    pub reverse: bool,
    /// Continue after a previous page.
    pub cursor: Option<String>,
    /// Leave values out (`value` is `null`).
    pub keys_only: bool,
}

/// A page of entries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListPage {
    /// The entries.
    pub items: Vec<Entry>,
    /// Pass as `cursor` to get the next page; `None` at the end.
    pub next_cursor: Option<String>,
}

/// Largest page a list returns.
pub const MAX_LIST_LIMIT: usize = 10_000;

impl Db {
    /// Creates a store (`Ok(false)` when an identical one exists).
    ///
    /// # Errors
    /// [`Error::InvalidSpec`], [`Error::StoreExists`] for a different spec.
    pub fn create_store(&self, spec: StoreSpec) -> Result<bool> {
        match self.execute(Command::CreateStore { spec })? {
            Applied::Store { created, .. } => Ok(created),
            other => Err(unexpected(&other)),
        }
    }

    /// Drops a store and all its keys (`Ok(false)` when it did not exist).
    ///
    /// # Errors
    /// Refuses to drop `default`.
    pub fn drop_store(&self, name: &str) -> Result<bool> {
        match self.execute(Command::DropStore { store: name.to_owned() })? {
            Applied::Dropped { existed, .. } => Ok(existed),
            other => Err(unexpected(&other)),
        }
    }

    /// Sets a key.
    ///
    /// # Errors
    /// Unknown store, bad key, value of the wrong type or too large.
    pub fn put(&self, store: &str, key: impl AsRef<[u8]>, value: Value) -> Result<PutResult> {
        self.put_with(store, key, value, PutOptions::default())
    }

    /// Sets a key with a TTL and/or conditions.
    ///
    /// # Errors
    /// As [`Db::put`]; a failed condition is `Ok` with `success: false`.
    pub fn put_with(&self, store: &str, key: impl AsRef<[u8]>, value: Value, o: PutOptions) -> Result<PutResult> {
        let (cmd, key_text) = self.put_command(store, key.as_ref(), value, o)?;
        put_result(key_text, self.execute(cmd)?)
    }

    /// Builds the command for a put (for async callers using [`Db::execute_async`]).
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn put_command(&self, store: &str, key: &[u8], value: Value, o: PutOptions) -> Result<(Command, String)> {
        // Conditions no key can meet are a mistake in the request, not a
        // failed condition to report as a 409 with success: false.
        if o.if_absent && (o.if_present || o.if_revision.is_some()) {
            let other = if o.if_present { "if_present" } else { "if_revision" };
            return Err(Error::InvalidArgument(format!(
                "if_absent and {other} cannot both be set: no key can be absent and present"
            )));
        }
        let h = self.store(store)?;
        let (k, _) = storage_key(&self.shared.config, &h, key)?;
        let cond = |c| Check {
            store: store.to_owned(),
            key: key.to_vec(),
            cond: c,
        };
        let mut checks = Vec::new();
        if let Some(r) = o.if_revision {
            checks.push(cond(Cond::Revision(r)));
        }
        if o.if_absent {
            checks.push(cond(Cond::Absent));
        }
        if o.if_present {
            checks.push(cond(Cond::Present));
        }
        let ttl = match (o.ttl, o.keep_ttl) {
            (Some(_), true) => {
                return Err(Error::InvalidArgument(
                    "ttl and keep_ttl cannot both be set: set an expiry, or keep the current one".into(),
                ));
            }
            (Some(d), false) => Ttl::Millis(request_ttl_ms(d)?),
            (None, true) => Ttl::Keep,
            (None, false) => Ttl::Default,
        };
        let op = Op::Put {
            store: store.to_owned(),
            key: key.to_vec(),
            value,
            ttl,
        };
        Ok((Command::Write { checks, ops: vec![op] }, k.to_string()))
    }

    /// Deletes a key.
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn delete(&self, store: &str, key: impl AsRef<[u8]>) -> Result<DeleteResult> {
        self.delete_if(store, key, None)
    }

    /// Deletes a key if its revision is `if_revision`.
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn delete_if(&self, store: &str, key: impl AsRef<[u8]>, if_revision: Option<u64>) -> Result<DeleteResult> {
        let (cmd, key_text) = self.delete_command(store, key.as_ref(), if_revision)?;
        delete_result(key_text, self.execute(cmd)?)
    }

    /// Builds the command for a delete.
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn delete_command(&self, store: &str, key: &[u8], if_revision: Option<u64>) -> Result<(Command, String)> {
        let h = self.store(store)?;
        let (k, _) = storage_key(&self.shared.config, &h, key)?;
        let checks = if_revision
            .map(|r| {
                vec![Check {
                    store: store.to_owned(),
                    key: key.to_vec(),
                    cond: Cond::Revision(r),
                }]
            })
            .unwrap_or_default();
        let op = Op::Delete {
            store: store.to_owned(),
            key: key.to_vec(),
        };
        Ok((Command::Write { checks, ops: vec![op] }, k.to_string()))
    }

    /// Removes every key of a store; returns how many.
    ///
    /// # Errors
    /// Unknown store.
    pub fn clear(&self, store: &str) -> Result<u64> {
        match self.execute(Command::Clear {
            store: store.to_owned(),
        })? {
            Applied::Cleared { removed, .. } => Ok(removed),
            other => Err(unexpected(&other)),
        }
    }

    /// Adds `by` to a numeric value (a missing key counts as 0).
    ///
    /// # Errors
    /// [`Error::NotANumber`], [`Error::Overflow`], unknown store, bad key.
    pub fn incr(&self, store: &str, key: impl AsRef<[u8]>, by: serde_json::Number) -> Result<IncrResult> {
        let (cmd, key_text) = self.incr_command(store, key.as_ref(), by)?;
        incr_result(key_text, self.execute(cmd)?)
    }

    /// Builds the command for an increment.
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn incr_command(&self, store: &str, key: &[u8], by: serde_json::Number) -> Result<(Command, String)> {
        let h = self.store(store)?;
        let (k, _) = storage_key(&self.shared.config, &h, key)?;
        Ok((
            Command::Write {
                checks: vec![],
                ops: vec![Op::Incr {
                    store: store.to_owned(),
                    key: key.to_vec(),
                    by,
                    integer: false,
                    text: false,
                }],
            },
            k.to_string(),
        ))
    }

    /// Applies checks and operations atomically.
    ///
    /// # Errors
    /// Validation errors; a failed check is `Ok` with `success: false`.
    pub fn batch(&self, checks: Vec<Check>, ops: Vec<Op>) -> Result<WriteOutcome> {
        match self.execute(Command::Write { checks, ops })? {
            Applied::Write(w) => Ok(w),
            other => Err(unexpected(&other)),
        }
    }

    /// Lists entries in key order.
    ///
    /// # Errors
    /// Unknown store, [`Error::InvalidCursor`], prefix on a non-prefix key type.
    pub fn list(&self, store: &str, o: &ListOptions) -> Result<ListPage> {
        let h = self.store(store)?;
        let limit = o.limit.unwrap_or(100).clamp(1, MAX_LIST_LIMIT);
        let id = h.id.to_be_bytes();
        let mut lo: Vec<u8> = id.to_vec();
        let mut hi: Vec<u8> = (h.id + 1).to_be_bytes().to_vec();
        if let Some(p) = &o.prefix {
            if !h.spec.key_type.supports_prefix() {
                return Err(Error::InvalidArgument(format!(
                    "prefix queries need a string or bytes store; {store:?} has {} keys",
                    h.spec.key_type.as_str()
                )));
            }
            lo.extend_from_slice(p);
            hi = prefix_end(&lo).unwrap_or(hi);
        }
        if let Some(s) = &o.start {
            let (_, k) = storage_key(&self.shared.config, &h, s)?;
            lo = lo.max(k);
        }
        if let Some(e) = &o.end {
            let (_, k) = storage_key(&self.shared.config, &h, e)?;
            hi = hi.min(k);
        }
        if let Some(c) = &o.cursor {
            let (rev, last) = decode_cursor(c)?;
            if rev != o.reverse || !last.starts_with(&id) {
                return Err(Error::InvalidCursor {
                    reason: "cursor belongs to another query".into(),
                });
            }
            if o.reverse {
                hi = hi.min(last);
            } else {
                let mut after = last;
                after.push(0);
                lo = lo.max(after);
            }
        }
        let mut items = Vec::new();
        let mut next_cursor = None;
        if lo < hi {
            let now = now_ms();
            // One snapshot: a page shows every batch whole or not at all
            // (a batch commits at one seqno), never half of one.
            let iter = fjall::Readable::range(&self.shared.fj.snapshot(), &self.shared.ks.data, lo..hi);
            let iter: Box<dyn Iterator<Item = fjall::Guard>> = if o.reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            };
            for kv in iter {
                let (k, v) = kv.into_inner()?;
                let rec = if o.keys_only {
                    Record::decode_without_value(&v)?
                } else {
                    Record::decode(&v)?
                };
                if rec.is_expired(now) {
                    continue;
                }
                if items.len() == limit {
                    next_cursor = Some(encode_cursor(o.reverse, &last_key(&items, &h)));
                    break;
                }
                let key = Key::decode(h.spec.key_type, &k[4..]).map_err(Error::CorruptRecord)?;
                items.push(rec.into_entry(key));
            }
        }
        Ok(ListPage { items, next_cursor })
    }

    /// Counts live keys, optionally under a prefix. A whole store is
    /// counted from its key statistics ([`Db::key_stats`]); a prefix walks
    /// the keys under it.
    ///
    /// # Errors
    /// Unknown store; prefix on a non-prefix key type.
    pub fn count(&self, store: &str, prefix: Option<&[u8]>) -> Result<u64> {
        let h = self.store(store)?;
        let mut p = h.id.to_be_bytes().to_vec();
        if prefix.is_none() {
            return Ok(crate::keystats::read(&self.shared, h.id)?.keys);
        }
        if let Some(x) = prefix {
            if !h.spec.key_type.supports_prefix() {
                return Err(Error::InvalidArgument(
                    "prefix queries need a string or bytes store".into(),
                ));
            }
            p.extend_from_slice(x);
        }
        let now = now_ms();
        let mut n = 0;
        // One snapshot, as in `list`: a batch counts whole or not at all.
        for kv in fjall::Readable::prefix(&self.shared.fj.snapshot(), &self.shared.ks.data, &p) {
            let (_, v) = kv.into_inner()?;
            if !Record::stored_is_expired(&v, now)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The versions kept for a key, newest first: with `history` n in the
    /// store's spec, the last n values written to it, the current one first
    /// while the key exists. Versions stay until newer writes push them
    /// out, also across a delete or an expiry (so after a delete this
    /// lists what the key held; [`Db::get`] says whether it exists now),
    /// and a key deleted and created again lists both lives. With
    /// `history` 1 only the live value is kept, and a deleted key lists
    /// nothing.
    ///
    /// # Errors
    /// Unknown store or bad key.
    pub fn history(&self, store: &str, key: impl AsRef<[u8]>) -> Result<Vec<Entry>> {
        let h = self.store(store)?;
        let (key, skey) = storage_key(&self.shared.config, &h, key.as_ref())?;
        if h.spec.history <= 1 {
            return Ok(self.get(store, key.to_raw())?.into_iter().collect());
        }
        let mut out = Vec::new();
        for kv in self.shared.ks.history.prefix(history_prefix(&skey)).rev() {
            let (_, v) = kv.into_inner()?;
            out.push(Record::decode(&v)?.into_entry(key.clone()));
        }
        Ok(out)
    }

    /// Stores content under its hash (deduplicated: content already stored
    /// under that hash is not written again, nor read back to compare).
    ///
    /// # Errors
    /// [`Error::ValueTooLarge`].
    pub fn put_content(&self, data: Vec<u8>, algorithm: Algorithm) -> Result<ContentInfo> {
        match self.execute(Command::PutContent { algorithm, data })? {
            Applied::Content { info, .. } => Ok(info),
            other => Err(unexpected(&other)),
        }
    }

    /// Reads content, verifying it against its hash.
    ///
    /// # Errors
    /// [`Error::InvalidHash`]; [`Error::Corrupted`] when the bytes do not
    /// match (damage on disk: never returned silently). To repair it,
    /// [`Db::delete_content`] then put the content again, which dedup would
    /// otherwise skip.
    pub fn get_content(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let h = ContentHash::parse(hash)?;
        let Some(v) = self.shared.ks.content.get(h.storage_key())? else {
            return Ok(None);
        };
        let actual = ContentHash::of(h.algorithm, &v);
        if actual != h {
            tracing::error!(hash = %h.to_hex(), actual = %actual.to_hex(), "content corrupted");
            return Err(Error::Corrupted {
                hash: h.to_hex(),
                actual: actual.to_hex(),
            });
        }
        Ok(Some(v.to_vec()))
    }

    /// Test hook: overwrites stored content bypassing the write path, to
    /// simulate on-disk corruption. Never use outside tests.
    ///
    /// # Errors
    /// [`Error::InvalidHash`]; storage errors.
    #[doc(hidden)]
    pub fn corrupt_content_for_tests(&self, hash: &str, bytes: &[u8]) -> Result<()> {
        let h = ContentHash::parse(hash)?;
        self.shared.ks.content.insert(h.storage_key(), bytes)?;
        Ok(())
    }

    /// True when content with this hash is stored.
    ///
    /// # Errors
    /// [`Error::InvalidHash`].
    pub fn has_content(&self, hash: &str) -> Result<bool> {
        let h = ContentHash::parse(hash)?;
        Ok(self.shared.ks.content.contains_key(h.storage_key())?)
    }

    /// Deletes content; true when it existed.
    ///
    /// # Errors
    /// [`Error::InvalidHash`].
    pub fn delete_content(&self, hash: &str) -> Result<bool> {
        match self.execute(Command::DeleteContent { hash: hash.to_owned() })? {
            Applied::ContentDeleted { existed, .. } => Ok(existed),
            other => Err(unexpected(&other)),
        }
    }
}

/// Turns a put command's result into a [`PutResult`].
///
/// # Errors
/// When `applied` is not a write.
pub fn put_result(key: String, applied: Applied) -> Result<PutResult> {
    match applied {
        Applied::Write(w) if w.success => Ok(PutResult {
            key,
            success: true,
            revision: Some(w.revision),
            created: matches!(w.ops.first(), Some(OpOutcome::Put { created: true })),
        }),
        Applied::Write(w) => Ok(PutResult {
            key,
            success: false,
            revision: w.current_revision,
            created: false,
        }),
        other => Err(unexpected(&other)),
    }
}

/// Turns a delete command's result into a [`DeleteResult`].
///
/// # Errors
/// When `applied` is not a write.
pub fn delete_result(key: String, applied: Applied) -> Result<DeleteResult> {
    match applied {
        Applied::Write(w) if w.success => Ok(DeleteResult {
            key,
            success: matches!(w.ops.first(), Some(OpOutcome::Delete { existed: true })),
            revision: Some(w.revision),
        }),
        Applied::Write(w) => Ok(DeleteResult {
            key,
            success: false,
            revision: w.current_revision,
        }),
        other => Err(unexpected(&other)),
    }
}

/// Turns an increment command's result into an [`IncrResult`].
///
/// # Errors
/// When `applied` is not an increment.
pub fn incr_result(key: String, applied: Applied) -> Result<IncrResult> {
    match applied {
        Applied::Write(WriteOutcome {
            success: true,
            revision,
            ops,
            ..
        }) => match ops.into_iter().next() {
            Some(OpOutcome::Incr { value }) => Ok(IncrResult { key, value, revision }),
            _ => Err(Error::InvalidArgument("increment produced no value".into())),
        },
        other => Err(unexpected(&other)),
    }
}

fn unexpected(a: &Applied) -> Error {
    Error::InvalidArgument(format!("unexpected engine result {a:?}"))
}

fn last_key(items: &[Entry], h: &crate::spec::StoreHandle) -> Vec<u8> {
    let mut k = h.id.to_be_bytes().to_vec();
    if let Some(e) = items.last() {
        k.extend_from_slice(&e.key.encode());
    }
    k
}

/// The smallest key greater than every key starting with `p`.
fn prefix_end(p: &[u8]) -> Option<Vec<u8>> {
    let mut e = p.to_vec();
    while let Some(last) = e.pop() {
        if last < 0xff {
            e.push(last + 1);
            return Some(e);
        }
    }
    None
}

fn encode_cursor(reverse: bool, last: &[u8]) -> String {
    let mut b = vec![1u8, u8::from(reverse)];
    b.extend_from_slice(last);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

fn decode_cursor(c: &str) -> Result<(bool, Vec<u8>)> {
    let bad = |r: &str| Error::InvalidCursor { reason: r.to_owned() };
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(c)
        .map_err(|_| bad("not base64url"))?;
    match b.as_slice() {
        [1, r @ (0 | 1), rest @ ..] if rest.len() >= 4 => Ok((*r == 1, rest.to_vec())),
        _ => Err(bad("unrecognized cursor")),
    }
}
