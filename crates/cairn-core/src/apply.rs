//! Applying [`Command::Write`]: checks, then operations, all at one revision.
//!
//! Operations see the keys as the operations before them in the same write
//! left them. An [`Op::If`] group is skipped, not failed, when its checks do
//! not hold there; an [`Op::Try`] group that meets a client error is undone
//! and reported, not failed; copies and renames write a second key.

use crate::db::now_ms;
use crate::entry::Record;
use crate::spec::StoreHandle;
use crate::writer::{Group, Writer};
use crate::{Check, Cond, Error, Key, Op, OpOutcome, Result, Ttl, Value, WriteOutcome};
use std::collections::HashMap;
use std::sync::Arc;

/// One key's change within a command.
pub(crate) struct Change {
    pub handle: Arc<StoreHandle>,
    pub key: Key,
    pub skey: Vec<u8>,
    /// The record before the command, expired or not.
    pub old_raw: Option<Arc<Record>>,
    pub new: Option<Record>,
    /// Operation name for keyspace notifications.
    pub op: &'static str,
}

/// The expiry a write leaves on a key.
pub(crate) fn resolve_ttl(
    ttl: Ttl,
    old: Option<&Record>,
    default: Option<std::time::Duration>,
    now: u64,
) -> Option<u64> {
    match ttl {
        Ttl::Default => default.map(|d| now.saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))),
        Ttl::Millis(ms) => Some(now.saturating_add(ms)),
        Ttl::At(t) => Some(t),
        Ttl::Keep => old.and_then(|r| r.expires_at),
        Ttl::Persist => None,
    }
}

fn failed(e: Error) -> OpOutcome {
    OpOutcome::Failed {
        error: crate::OpError(Arc::new(e)),
    }
}

/// A copy's or rename's destination store, key and storage key.
type Dest = (Arc<StoreHandle>, Key, Vec<u8>);

/// An operation resolved against its store, ready to apply.
enum Resolved {
    One(One),
    If {
        checks: Vec<(Vec<u8>, Cond)>,
        ops: Vec<Resolved>,
    },
    /// Its operations, or the client error found resolving them.
    Try(Result<Vec<Resolved>>),
}

/// One operation resolved against its store.
struct One {
    h: Arc<StoreHandle>,
    key: Key,
    skey: Vec<u8>,
    op: Op,
    /// A put's value, encoded.
    enc: Option<Vec<u8>>,
    /// A copy's or rename's destination.
    dest: Option<Box<Dest>>,
}

/// A write being applied: its revision, time and the changes so far.
struct Batch {
    rev: u64,
    now: u64,
    max_value: usize,
    changes: Vec<Change>,
    /// Latest state of keys this command already changed: index into `changes`.
    latest: HashMap<Vec<u8>, usize>,
    /// False for a single operation: nothing can read its changes back.
    track: bool,
}

impl Batch {
    /// Undoes the changes after the first `to` (an [`Op::Try`] that failed).
    fn rollback(&mut self, to: usize) {
        if self.changes.len() <= to {
            return;
        }
        let undone: Vec<Vec<u8>> = self.changes.drain(to..).map(|c| c.skey).collect();
        if self.track {
            for skey in undone {
                match self.changes.iter().rposition(|c| c.skey == skey) {
                    Some(i) => self.latest.insert(skey, i),
                    None => self.latest.remove(&skey),
                };
            }
        }
    }

    fn push(&mut self, c: Change) {
        // A key written twice in one command yields two changes; the
        // second starts from the first's result, so events chain.
        if self.track {
            self.latest.insert(c.skey.clone(), self.changes.len());
        }
        self.changes.push(c);
    }

    /// A new version of a key whose live record was `old`.
    fn fresh(&self, old: Option<&Record>, value: Arc<Value>, enc: Vec<u8>, expires_at: Option<u64>) -> Record {
        Record {
            value,
            enc,
            revision: self.rev,
            created_revision: old.map_or(self.rev, |o| o.created_revision),
            version: old.map_or(1, |o| o.version + 1),
            updated_at: self.now,
            expires_at,
        }
    }
}

/// Whether `cond` holds for a key whose live record is `cur`.
fn holds(cond: Cond, cur: Option<&Record>) -> bool {
    match cond {
        Cond::Revision(r) => cur.is_some_and(|c| c.revision == r),
        Cond::Absent => cur.is_none(),
        Cond::Present => cur.is_some(),
        Cond::Persistent => cur.is_some_and(|c| c.expires_at.is_none()),
        Cond::Expiring => cur.is_some_and(|c| c.expires_at.is_some()),
        Cond::ExpiresBefore(t) => cur.is_some_and(|c| c.expires_at.is_some_and(|e| e < t)),
        Cond::ExpiresAfter(t) => cur.is_some_and(|c| c.expires_at.is_none_or(|e| e > t)),
    }
}

/// Operations in `ops` that write (nested ones and `If` checks included),
/// and reads (`Op::Get`). Reads do not count toward `max_batch_ops`, a
/// limit on writes: a transaction of 1,001 GETs is fine in Redis.
fn count(ops: &[Op]) -> (usize, usize) {
    ops.iter().fold((0, 0), |(w, r), o| match o {
        Op::If { checks, ops } => {
            let (w2, r2) = count(ops);
            (w + checks.len() + w2, r + r2)
        }
        Op::Try { ops } => {
            let (w2, r2) = count(ops);
            (w + w2, r + r2)
        }
        Op::Get { .. } => (w, r + 1),
        _ => (w + 1, r),
    })
}

/// Reads one write command may carry, per unit of `max_batch_ops`.
const READS_PER_OP: usize = 100;

impl Writer<'_> {
    pub(crate) fn apply_write(&mut self, g: &mut Group, checks: Vec<Check>, ops: Vec<Op>) -> Result<WriteOutcome> {
        let limits = self.shared.config.limits;
        let (writes, reads) = count(&ops);
        let n = checks.len() + writes;
        if n > limits.max_batch_ops {
            return Err(Error::BatchTooLarge {
                len: n,
                max: limits.max_batch_ops,
            });
        }
        let max_reads = limits.max_batch_ops.saturating_mul(READS_PER_OP);
        if reads > max_reads {
            return Err(Error::BatchTooLarge {
                len: reads,
                max: max_reads,
            });
        }
        let now = now_ms();
        // Validate everything before looking at state, so bad input changes nothing.
        let resolved_checks = self.resolve_checks(&checks)?;
        let mut resolved_ops = Vec::with_capacity(ops.len());
        for op in ops {
            resolved_ops.push(self.resolve(op)?);
        }
        for (i, (skey, cond)) in resolved_checks.iter().enumerate() {
            let cur = self.current(g, skey)?.filter(|r| !r.is_expired(now));
            if !holds(*cond, cur.as_deref()) {
                return Ok(WriteOutcome {
                    success: false,
                    revision: self.revision(),
                    failed_check: Some(i),
                    current_revision: cur.map(|c| c.revision),
                    ops: Vec::new(),
                });
            }
        }
        let mut b = Batch {
            rev: self.next_rev,
            now,
            max_value: limits.max_value_bytes,
            changes: Vec::new(),
            latest: HashMap::new(),
            // Later operations (reads included) see earlier ones.
            track: writes + reads > 1,
        };
        let outcomes = self.apply_ops(g, &mut b, resolved_ops)?;
        if b.changes.is_empty() {
            return Ok(WriteOutcome {
                success: true,
                revision: self.revision(),
                failed_check: None,
                current_revision: None,
                ops: outcomes,
            });
        }
        let revision = self.bump(g);
        debug_assert_eq!(revision, b.rev);
        self.stage(g, b.changes, revision, now);
        Ok(WriteOutcome {
            success: true,
            revision,
            failed_check: None,
            current_revision: None,
            ops: outcomes,
        })
    }

    fn resolve_checks(&self, checks: &[Check]) -> Result<Vec<(Vec<u8>, Cond)>> {
        let mut out = Vec::with_capacity(checks.len());
        for c in checks {
            let h = self.store(&c.store)?;
            let (_, skey) = crate::db::storage_key(&self.shared.config, &h, &c.key)?;
            out.push((skey, c.cond));
        }
        Ok(out)
    }

    /// Checks an operation's store, key and value before anything is applied.
    fn resolve(&self, op: Op) -> Result<Resolved> {
        let limits = self.shared.config.limits;
        if let Op::If { checks, ops } = op {
            let checks = self.resolve_checks(&checks)?;
            let ops = ops.into_iter().map(|o| self.resolve(o)).collect::<Result<_>>()?;
            return Ok(Resolved::If { checks, ops });
        }
        if let Op::Try { ops } = op {
            // A client error here (unknown store, bad key or value) is
            // the group's outcome, found before anything is applied.
            let ops = match ops.into_iter().map(|o| self.resolve(o)).collect::<Result<_>>() {
                Ok(ops) => Ok(ops),
                Err(e) if e.is_client_error() => Err(e),
                Err(e) => return Err(e),
            };
            return Ok(Resolved::Try(ops));
        }
        let (store, raw) = op.target();
        let h = self.store(store)?;
        let (key, skey) = crate::db::storage_key(&self.shared.config, &h, raw)?;
        let mut enc = None;
        let mut dest = None;
        match &op {
            Op::Put { value, .. } => {
                let e = value.encode();
                // A string counts its own bytes, not its JSON escaping (a
                // RESP value of NUL bytes would count six times over).
                let len = match value {
                    Value::Json(serde_json::Value::String(s)) => s.len(),
                    _ => e.len() - 1,
                };
                if len > limits.max_value_bytes {
                    return Err(Error::ValueTooLarge {
                        what: value_of(&h, &key),
                        len,
                        max: limits.max_value_bytes,
                    });
                }
                h.check_value(&key, value)?;
                enc = Some(e);
            }
            Op::Incr { .. } => {
                let vt = h.spec.value_type;
                if !matches!(
                    vt,
                    crate::ValueType::Any | crate::ValueType::Int | crate::ValueType::Float | crate::ValueType::Json
                ) {
                    return Err(Error::InvalidValue {
                        store: h.spec.name.clone(),
                        key: key.to_string(),
                        reason: format!("cannot increment in a store of {} values", vt.as_str()),
                    });
                }
            }
            Op::SetRange { offset, data, .. } if !data.is_empty() => {
                let end = usize::try_from(*offset)
                    .ok()
                    .and_then(|o| o.checked_add(data.len()))
                    .unwrap_or(usize::MAX);
                if end > limits.max_value_bytes {
                    return Err(Error::ValueTooLarge {
                        what: value_of(&h, &key),
                        len: end,
                        max: limits.max_value_bytes,
                    });
                }
            }
            Op::Copy { to_store, to, .. } => {
                let dh = self.store(to_store)?;
                let (dkey, dskey) = crate::db::storage_key(&self.shared.config, &dh, to)?;
                dest = Some(Box::new((dh, dkey, dskey)));
            }
            Op::Rename { to, .. } => {
                let (dkey, dskey) = crate::db::storage_key(&self.shared.config, &h, to)?;
                dest = Some(Box::new((Arc::clone(&h), dkey, dskey)));
            }
            Op::Move { to_store, key: raw, .. } => {
                let dh = self.store(to_store)?;
                let (dkey, dskey) = crate::db::storage_key(&self.shared.config, &dh, raw)?;
                dest = Some(Box::new((dh, dkey, dskey)));
            }
            _ => {}
        }
        Ok(Resolved::One(One {
            h,
            key,
            skey,
            op,
            enc,
            dest,
        }))
    }

    /// A key's record as the changes so far left it, expired or not.
    fn state(&self, g: &Group, b: &Batch, skey: &[u8]) -> Result<Option<Arc<Record>>> {
        match b.latest.get(skey) {
            Some(&i) => Ok(b.changes[i].new.clone().map(Arc::new)),
            None => self.current(g, skey),
        }
    }

    fn apply_ops(&mut self, g: &mut Group, b: &mut Batch, ops: Vec<Resolved>) -> Result<Vec<OpOutcome>> {
        let mut outcomes = Vec::with_capacity(ops.len());
        for r in ops {
            match r {
                Resolved::If { checks, ops } => {
                    let mut held = true;
                    for (skey, cond) in &checks {
                        let cur = self.state(g, b, skey)?;
                        if !holds(*cond, cur.as_deref().filter(|r| !r.is_expired(b.now))) {
                            held = false;
                            break;
                        }
                    }
                    let ops = if held { self.apply_ops(g, b, ops)? } else { Vec::new() };
                    outcomes.push(OpOutcome::If { held, ops });
                }
                Resolved::Try(Err(e)) => outcomes.push(failed(e)),
                Resolved::Try(Ok(ops)) => {
                    let mark = b.changes.len();
                    match self.apply_ops(g, b, ops) {
                        Ok(ops) => outcomes.push(OpOutcome::Tried { ops }),
                        Err(e) if e.is_client_error() => {
                            b.rollback(mark);
                            outcomes.push(failed(e));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Resolved::One(one) => outcomes.push(self.apply_one(g, b, one)?),
            }
        }
        Ok(outcomes)
    }

    fn apply_one(&mut self, g: &mut Group, b: &mut Batch, one: One) -> Result<OpOutcome> {
        let One {
            h,
            key,
            skey,
            op,
            enc,
            dest,
        } = one;
        let now = b.now;
        let old_raw = self.state(g, b, &skey)?;
        let old = old_raw.as_deref().filter(|r| !r.is_expired(now));
        let (new, op_name, outcome) = match op {
            Op::Put { value, ttl, .. } => {
                let exp = resolve_ttl(ttl, old, h.spec.default_ttl, now);
                let name = if matches!(ttl, Ttl::Millis(_) | Ttl::At(_)) {
                    "set+expire"
                } else {
                    "set"
                };
                (
                    Some(b.fresh(old, Arc::new(value), enc.unwrap_or_default(), exp)),
                    name,
                    OpOutcome::Put { created: old.is_none() },
                )
            }
            Op::Delete { .. } => {
                if old_raw.is_none() {
                    return Ok(OpOutcome::Delete { existed: false });
                }
                (None, "del", OpOutcome::Delete { existed: old.is_some() })
            }
            Op::Incr { by, integer, text, .. } => {
                let int_only = h.spec.value_type == crate::ValueType::Int;
                let sum = crate::incr::add(&h.spec.name, &key, old.map(|o| &*o.value), &by, int_only, integer, text)?;
                let value = Value::Json(serde_json::Value::Number(sum.clone()));
                h.check_value(&key, &value)?;
                let exp = match old {
                    Some(o) => o.expires_at,
                    None => resolve_ttl(Ttl::Default, None, h.spec.default_ttl, now),
                };
                let name = if sum.is_f64() { "incrbyfloat" } else { "incrby" };
                let enc = value.encode();
                (
                    Some(b.fresh(old, Arc::new(value), enc, exp)),
                    name,
                    OpOutcome::Incr { value: sum },
                )
            }
            Op::Get { .. } => {
                return Ok(OpOutcome::Get {
                    entry: old.map(|o| Box::new(o.to_entry(key.clone()))),
                });
            }
            Op::Touch { ttl, .. } => {
                let Some(o) = old else {
                    return Ok(OpOutcome::Touch { existed: false });
                };
                let ttl = if ttl == Ttl::Default { Ttl::Keep } else { ttl };
                let exp = resolve_ttl(ttl, Some(o), None, now);
                let name = if exp.is_some() { "expire" } else { "persist" };
                (
                    Some(b.fresh(Some(o), Arc::clone(&o.value), o.enc.clone(), exp)),
                    name,
                    OpOutcome::Touch { existed: true },
                )
            }
            Op::Append { data, .. } => {
                let mut raw = old.map(|o| o.value.to_raw()).unwrap_or_default();
                raw.extend_from_slice(&data);
                let rec = splice(b, &h, &key, old, &raw)?;
                (Some(rec), "append", OpOutcome::Length { len: raw.len() as u64 })
            }
            Op::SetRange { offset, data, .. } => {
                let mut raw = old.map(|o| o.value.to_raw()).unwrap_or_default();
                if data.is_empty() {
                    return Ok(OpOutcome::Length { len: raw.len() as u64 });
                }
                // `resolve` bounded offset + len by the value limit.
                let start = usize::try_from(offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(data.len());
                if raw.len() < end {
                    raw.resize(end, 0);
                }
                raw[start..end].copy_from_slice(&data);
                let rec = splice(b, &h, &key, old, &raw)?;
                (Some(rec), "setrange", OpOutcome::Length { len: raw.len() as u64 })
            }
            Op::Copy { .. } | Op::Rename { .. } | Op::Move { .. } => {
                // Whether the source goes, whether an existing destination
                // is replaced (a rename unless RENAMENX), the events' names.
                let (remove, replace, (from_op, to_op)) = match op {
                    Op::Rename { nx, .. } => (true, !nx, ("rename_from", "rename_to")),
                    Op::Move { .. } => (true, false, ("move_from", "move_to")),
                    Op::Copy { replace, .. } => (false, replace, ("", "copy_to")),
                    _ => (false, false, ("", "")),
                };
                let Some((dh, dkey, dskey)) = dest.map(|d| *d) else {
                    return Err(Error::InvalidArgument("copy without a destination".into()));
                };
                let Some(src) = old.cloned() else {
                    return Ok(OpOutcome::Copy {
                        found: false,
                        done: false,
                    });
                };
                let dold_raw = self.state(g, b, &dskey)?;
                let dold = dold_raw.as_deref().filter(|r| !r.is_expired(now));
                if dskey == skey || (dold.is_some() && !replace) {
                    return Ok(OpOutcome::Copy {
                        found: true,
                        done: false,
                    });
                }
                dh.check_value(&dkey, &src.value)?;
                let rec = b.fresh(dold, Arc::clone(&src.value), src.enc.clone(), src.expires_at);
                if remove {
                    b.push(Change {
                        handle: Arc::clone(&h),
                        key,
                        skey,
                        old_raw,
                        new: None,
                        op: from_op,
                    });
                }
                b.push(Change {
                    handle: dh,
                    key: dkey,
                    skey: dskey,
                    old_raw: dold_raw,
                    new: Some(rec),
                    op: to_op,
                });
                return Ok(OpOutcome::Copy {
                    found: true,
                    done: true,
                });
            }
            Op::If { .. } | Op::Try { .. } => {
                return Err(Error::InvalidArgument("unresolved operation".into()));
            }
        };
        b.push(Change {
            handle: h,
            key,
            skey,
            old_raw,
            new,
            op: op_name,
        });
        Ok(outcome)
    }
}

/// How a [`Error::ValueTooLarge`] names the value.
fn value_of(h: &StoreHandle, key: &Key) -> String {
    format!("value for key {:?} in store {:?}", key.to_string(), h.spec.name)
}

/// The record of a key whose raw bytes become `raw` (APPEND, SETRANGE):
/// parsed as the store's value type, the key's expiry kept.
fn splice(b: &Batch, h: &StoreHandle, key: &Key, old: Option<&Record>, raw: &[u8]) -> Result<Record> {
    if raw.len() > b.max_value {
        return Err(Error::ValueTooLarge {
            what: value_of(h, key),
            len: raw.len(),
            max: b.max_value,
        });
    }
    let value = h
        .spec
        .value_type
        .parse_text(raw)
        .map_err(|reason| Error::InvalidValue {
            store: h.spec.name.clone(),
            key: key.to_string(),
            reason,
        })?;
    h.check_value(key, &value)?;
    let exp = match old {
        Some(o) => o.expires_at,
        None => resolve_ttl(Ttl::Default, None, h.spec.default_ttl, b.now),
    };
    let enc = value.encode();
    Ok(b.fresh(old, Arc::new(value), enc, exp))
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
