//! Applying [`Command::Write`]: checks, then operations, all at one revision.

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
        Ttl::Default => default.map(|d| now.saturating_add(d.as_millis() as u64)),
        Ttl::Millis(ms) => Some(now.saturating_add(ms)),
        Ttl::At(t) => Some(t),
        Ttl::Keep => old.and_then(|r| r.expires_at),
        Ttl::Persist => None,
    }
}

fn add(
    store: &str,
    key: &Key,
    old: Option<&Value>,
    by: &serde_json::Number,
    int_only: bool,
    integer: bool,
) -> Result<serde_json::Number> {
    let nan = || Error::NotANumber {
        store: store.to_owned(),
        key: key.to_string(),
    };
    let zero = serde_json::Number::from(0);
    let cur = match old {
        None => &zero,
        Some(v) => v.as_number().ok_or_else(nan)?,
    };
    if integer && (cur.as_i64().is_none() || by.as_i64().is_none()) {
        return Err(Error::NotAnInteger {
            store: store.to_owned(),
            key: key.to_string(),
        });
    }
    if let (Some(a), Some(b)) = (cur.as_i64(), by.as_i64()) {
        return a
            .checked_add(b)
            .map(serde_json::Number::from)
            .ok_or_else(|| Error::Overflow {
                store: store.to_owned(),
                key: key.to_string(),
            });
    }
    if int_only {
        return Err(Error::InvalidValue {
            store: store.to_owned(),
            key: key.to_string(),
            reason: "an int store only takes integer increments".into(),
        });
    }
    let (a, b) = (cur.as_f64().ok_or_else(nan)?, by.as_f64().ok_or_else(nan)?);
    crate::value::number_from_f64(a + b).ok_or_else(|| Error::Overflow {
        store: store.to_owned(),
        key: key.to_string(),
    })
}

impl Writer<'_> {
    pub(crate) fn apply_write(&mut self, g: &mut Group, checks: Vec<Check>, ops: Vec<Op>) -> Result<WriteOutcome> {
        let limits = self.shared.config.limits;
        let n = checks.len() + ops.len();
        if n > limits.max_batch_ops {
            return Err(Error::BatchTooLarge {
                len: n,
                max: limits.max_batch_ops,
            });
        }
        let now = now_ms();
        // Validate everything before looking at state, so bad input changes nothing.
        let mut resolved_checks = Vec::with_capacity(checks.len());
        for c in &checks {
            let h = self.store(&c.store)?;
            let (_, skey) = crate::db::storage_key(&self.shared.config, &h, &c.key)?;
            resolved_checks.push((skey, c.cond));
        }
        let mut resolved_ops = Vec::with_capacity(ops.len());
        for op in ops {
            let (store, raw) = op.target();
            let h = self.store(store)?;
            let (key, skey) = crate::db::storage_key(&self.shared.config, &h, raw)?;
            let mut enc = None;
            if let Op::Put { value, .. } = &op {
                let e = value.encode();
                // A string counts its own bytes, not its JSON escaping (a
                // RESP value of NUL bytes would count six times over).
                let len = match value {
                    Value::Json(serde_json::Value::String(s)) => s.len(),
                    _ => e.len() - 1,
                };
                if len > limits.max_value_bytes {
                    return Err(Error::ValueTooLarge {
                        len,
                        max: limits.max_value_bytes,
                    });
                }
                h.check_value(&key, value)?;
                enc = Some(e);
            }
            if let Op::Incr { .. } = &op {
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
            resolved_ops.push((h, key, skey, op, enc));
        }
        for (i, (skey, cond)) in resolved_checks.iter().enumerate() {
            let cur = self.current(g, skey)?.filter(|r| !r.is_expired(now));
            let ok = match cond {
                Cond::Revision(r) => cur.as_ref().is_some_and(|c| c.revision == *r),
                Cond::Absent => cur.is_none(),
                Cond::Present => cur.is_some(),
            };
            if !ok {
                return Ok(WriteOutcome {
                    success: false,
                    revision: self.revision(),
                    failed_check: Some(i),
                    current_revision: cur.map(|c| c.revision),
                    ops: Vec::new(),
                });
            }
        }
        let rev = self.next_rev;
        let multi = resolved_ops.len() > 1;
        let mut changes: Vec<Change> = Vec::with_capacity(resolved_ops.len());
        // Latest state of keys this command already changed: index into `changes`.
        let mut latest: HashMap<Vec<u8>, usize> = HashMap::new();
        let mut outcomes = Vec::with_capacity(resolved_ops.len());
        for (h, key, skey, op, enc) in resolved_ops {
            let old_raw = match latest.get(&skey) {
                Some(&i) => changes[i].new.clone().map(Arc::new),
                None => self.current(g, &skey)?,
            };
            let old = old_raw.as_deref().filter(|r| !r.is_expired(now));
            let fresh = |value: Arc<Value>, enc: Vec<u8>, expires_at: Option<u64>| Record {
                value,
                enc,
                revision: rev,
                created_revision: old.map_or(rev, |o| o.created_revision),
                version: old.map_or(1, |o| o.version + 1),
                updated_at: now,
                expires_at,
            };
            let (new, op_name, outcome) = match op {
                Op::Put { value, ttl, .. } => {
                    let exp = resolve_ttl(ttl, old, h.spec.default_ttl, now);
                    let name = if matches!(ttl, Ttl::Millis(_) | Ttl::At(_)) {
                        "set+expire"
                    } else {
                        "set"
                    };
                    (
                        Some(fresh(Arc::new(value), enc.unwrap_or_default(), exp)),
                        name,
                        OpOutcome::Put { created: old.is_none() },
                    )
                }
                Op::Delete { .. } => {
                    if old_raw.is_none() {
                        outcomes.push(OpOutcome::Delete { existed: false });
                        continue;
                    }
                    (None, "del", OpOutcome::Delete { existed: old.is_some() })
                }
                Op::Incr { by, integer, .. } => {
                    let int_only = h.spec.value_type == crate::ValueType::Int;
                    let sum = add(&h.spec.name, &key, old.map(|o| &*o.value), &by, int_only, integer)?;
                    let value = Value::Json(serde_json::Value::Number(sum.clone()));
                    h.check_value(&key, &value)?;
                    let exp = match old {
                        Some(o) => o.expires_at,
                        None => resolve_ttl(Ttl::Default, None, h.spec.default_ttl, now),
                    };
                    let name = if sum.is_f64() { "incrbyfloat" } else { "incrby" };
                    let enc = value.encode();
                    (
                        Some(fresh(Arc::new(value), enc, exp)),
                        name,
                        OpOutcome::Incr { value: sum },
                    )
                }
                Op::Get { .. } => {
                    outcomes.push(OpOutcome::Get {
                        entry: old.map(|o| Box::new(o.to_entry(key.clone()))),
                    });
                    continue;
                }
                Op::Touch { ttl, .. } => {
                    let Some(o) = old else {
                        outcomes.push(OpOutcome::Touch { existed: false });
                        continue;
                    };
                    let ttl = if ttl == Ttl::Default { Ttl::Keep } else { ttl };
                    let exp = resolve_ttl(ttl, Some(o), None, now);
                    let name = if exp.is_some() { "expire" } else { "persist" };
                    (
                        Some(fresh(Arc::clone(&o.value), o.enc.clone(), exp)),
                        name,
                        OpOutcome::Touch { existed: true },
                    )
                }
            };
            outcomes.push(outcome);
            // A key written twice in one command yields two changes; the
            // second starts from the first's result, so events chain.
            if multi {
                latest.insert(skey.clone(), changes.len());
            }
            changes.push(Change {
                handle: h,
                key,
                skey,
                old_raw,
                new,
                op: op_name,
            });
        }
        if changes.is_empty() {
            return Ok(WriteOutcome {
                success: true,
                revision: self.revision(),
                failed_check: None,
                current_revision: None,
                ops: outcomes,
            });
        }
        let revision = self.bump(g);
        debug_assert_eq!(revision, rev);
        self.stage(g, changes, revision, now);
        Ok(WriteOutcome {
            success: true,
            revision,
            failed_check: None,
            current_revision: None,
            ops: outcomes,
        })
    }
}
