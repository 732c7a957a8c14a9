//! Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
//!
//! ```text
//! WATCH k1 k2      records each key's revision now (or that it is absent)
//! MULTI            +OK; later commands answer +QUEUED
//! SET k1 v         +QUEUED
//! EXEC             one atomic engine batch: the watched revisions become
//!                  its checks, the queued writes its operations.
//!                  *-1 (nil) when a watched key changed; otherwise one reply
//!                  per queued command.
//! ```
//!
//! Queued reads of keys (GET, MGET, EXISTS, STRLEN, TYPE, TTL, ...) become
//! [`Op::Get`]s at their place in the batch, so each sees exactly the
//! commands queued before it, as in Redis; so do the old values of SET ..
//! GET, GETSET and GETDEL. Other reads (DBSIZE, KEYS, PING, ...) are
//! answered after the batch commits. Conditional writes (SET NX, SETNX,
//! MSETNX, APPEND, RENAME, GETEX, EXPIRE NX, ...) are refused inside MULTI:
//! a batch is all-or-nothing, so a per-command condition has no place in it.

use super::{InMulti, Outcome, Pending, Spec, engine_error};
use crate::resp::Shared;
use crate::resp::reply::Reply;
use crate::resp::session::{Multi, Session, Watched};
use cairn_core::{Applied, Check, Command, Cond, Entry, Op, OpOutcome, Ttl, Value};
use std::collections::HashMap;

/// A command waiting for EXEC.
#[derive(Debug)]
pub(crate) struct Queued {
    spec: &'static Spec,
    args: Vec<Vec<u8>>,
}

/// Attempts when an EXEC's own consistency check (not a WATCH) fails.
const RETRIES: usize = 100;

/// Reads answered from the key's entry at their place in the batch.
const KEY_READS: &[&str] = &[
    "get",
    "mget",
    "strlen",
    "exists",
    "type",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
];

/// The keys a key read looks at.
fn read_keys<'a>(spec: &Spec, args: &'a [Vec<u8>]) -> &'a [Vec<u8>] {
    match spec.name {
        "mget" | "exists" => &args[1..],
        _ => &args[1..2],
    }
}

/// A write's operations inside MULTI, and whether its reply is the key's
/// old value (SET .. GET, GETSET, GETDEL): then the first op is an
/// [`Op::Get`] of that key.
fn write_ops(sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<(Pending, bool), Reply> {
    let old = match spec.name {
        "getset" | "getdel" => true,
        "set" => args[3..].iter().any(|a| a.eq_ignore_ascii_case(b"GET")),
        _ => false,
    };
    let p = match spec.name {
        "getdel" => Some(Pending {
            checks: Vec::new(),
            ops: vec![Op::Delete {
                store: sess.store.clone(),
                key: args[1].clone(),
            }],
            finish: super::Finish::Deleted,
        }),
        "getset" => {
            let set = super::lookup(b"set").ok_or_else(|| Reply::err("no SET command"))?;
            Some(super::strings::ops(
                sess,
                set,
                &[b"SET".to_vec(), args[1].clone(), args[2].clone()],
            )?)
        }
        "del" | "unlink" | "expire" | "pexpire" | "expireat" | "pexpireat" => super::keys::ops(sess, spec, args)?,
        "persist" => Some(Pending {
            checks: Vec::new(),
            ops: vec![Op::Touch {
                store: sess.store.clone(),
                key: args[1].clone(),
                ttl: Ttl::Persist,
            }],
            finish: super::Finish::Touched,
        }),
        _ => Some(super::strings::ops(sess, spec, args)?),
    };
    match p {
        Some(mut p) if p.checks.is_empty() => {
            if old {
                p.ops.insert(
                    0,
                    Op::Get {
                        store: sess.store.clone(),
                        key: args[1].clone(),
                    },
                );
            }
            Ok((p, old))
        }
        _ => Err(refused(spec)),
    }
}

/// The reply of a key read (or of a write answering the old value, as
/// `get`) from what its [`Op::Get`]s saw.
fn seen_reply(name: &str, outcomes: &[OpOutcome]) -> Reply {
    let entries: Vec<Option<&Entry>> = outcomes
        .iter()
        .map(|o| match o {
            OpOutcome::Get { entry } => entry.as_deref(),
            _ => None,
        })
        .collect();
    let first = entries.first().copied().flatten();
    let bulk = |e: Option<&Entry>| e.map_or(Reply::Nil, |e| Reply::Bulk(e.value.to_raw()));
    match name {
        "get" => bulk(first),
        "mget" => Reply::Array(entries.into_iter().map(bulk).collect()),
        "strlen" => Reply::Int(first.map_or(0, |e| e.value.to_raw().len() as i64)),
        "exists" => Reply::Int(entries.iter().filter(|e| e.is_some()).count() as i64),
        "type" => Reply::Simple(if first.is_some() { "string" } else { "none" }),
        _ => Reply::Int(super::keys::ttl_reply(name, first.map(|e| e.expires_at))),
    }
}

fn refused(spec: &Spec) -> Reply {
    Reply::err(format!(
        "'{}' with these arguments is not supported inside MULTI by cairn (a transaction is one all-or-nothing batch)",
        spec.name
    ))
}

/// Queues a command inside MULTI; returns `+QUEUED` or the error that dooms the EXEC.
pub(crate) fn queue(sess: &mut Session, spec: &'static Spec, args: Vec<Vec<u8>>) -> Reply {
    let checked = match spec.multi {
        InMulti::Op => write_ops(sess, spec, &args).map(|_| ()),
        InMulti::Read => Ok(()),
        InMulti::No | InMulti::Control => Err(refused(spec)),
    };
    let Some(m) = sess.multi.as_mut() else {
        return Reply::err("not in a transaction");
    };
    match checked {
        Ok(()) => {
            m.queued.push(Queued { spec, args });
            Reply::Simple("QUEUED")
        }
        Err(r) => {
            m.dirty = true;
            r
        }
    }
}

pub(super) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "multi" if sess.multi.is_some() => Reply::err("MULTI calls can not be nested"),
        "multi" => {
            sess.multi = Some(Multi::default());
            Reply::OK
        }
        "discard" => match sess.multi.take() {
            None => Reply::err("DISCARD without MULTI"),
            Some(_) => {
                sess.watched.clear();
                Reply::OK
            }
        },
        "unwatch" => {
            sess.watched.clear();
            Reply::OK
        }
        "watch" if sess.multi.is_some() => Reply::err("WATCH inside MULTI is not allowed"),
        "watch" => {
            for k in &args[1..] {
                match sh.app.db.get(&sess.store, k) {
                    Ok(e) => sess.watched.push(Watched {
                        store: sess.store.clone(),
                        key: k.clone(),
                        revision: e.map(|e| e.revision),
                    }),
                    Err(e) => return engine_error(&e),
                }
            }
            Reply::OK
        }
        _ => exec(sh, sess).await,
    }
}

/// How one queued command's reply is made.
enum Slot {
    /// From the outcomes of ops `start..end` of the batch.
    Write {
        start: usize,
        end: usize,
        finish: super::Finish,
    },
    /// From the entries ops `start..end` ([`Op::Get`]) saw, as command `name`.
    Seen {
        start: usize,
        end: usize,
        name: &'static str,
    },
    /// By running the read after the commit (reads not of keys).
    Read,
}

async fn exec(sh: &Shared, sess: &mut Session) -> Reply {
    let Some(multi) = sess.multi.take() else {
        return Reply::err("EXEC without MULTI");
    };
    let watched = std::mem::take(&mut sess.watched);
    if multi.dirty {
        return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let db = &sh.app.db;
    for _ in 0..RETRIES {
        let mut checks: Vec<Check> = watched
            .iter()
            .map(|w| Check {
                store: w.store.clone(),
                key: w.key.clone(),
                cond: w.revision.map_or(Cond::Absent, Cond::Revision),
            })
            .collect();
        let n_watch = checks.len();
        let mut ops: Vec<Op> = Vec::new();
        let mut slots = Vec::with_capacity(multi.queued.len());
        // Index of the last op on each key written so far.
        let mut touched: HashMap<(String, Vec<u8>), usize> = HashMap::new();
        for q in &multi.queued {
            if KEY_READS.contains(&q.spec.name) {
                let start = ops.len();
                ops.extend(read_keys(q.spec, &q.args).iter().map(|k| Op::Get {
                    store: sess.store.clone(),
                    key: k.clone(),
                }));
                slots.push(Slot::Seen {
                    start,
                    end: ops.len(),
                    name: q.spec.name,
                });
                continue;
            }
            if q.spec.multi != InMulti::Op {
                slots.push(Slot::Read);
                continue;
            }
            let (p, old) = match write_ops(sess, q.spec, &q.args) {
                Ok(p) => p,
                Err(r) => return r,
            };
            let start = ops.len();
            for op in p.ops {
                if let Op::Get { .. } = op {
                    ops.push(op);
                    continue;
                }
                let (store, key) = op.target();
                let target = (store.to_owned(), key.to_vec());
                // The engine increments numbers; a numeric string (what SET
                // stores) is first rewritten as a number: in place when this
                // transaction wrote it, else by a put guarded by a check on
                // the key's revision.
                if let Op::Incr { by, .. } = &op {
                    match touched.get(&target) {
                        Some(&i) => {
                            if let Op::Put { value, .. } = &mut ops[i]
                                && let Some(n) = super::strings::numeric_text(value, by.is_f64())
                            {
                                *value = Value::Json(serde_json::Value::Number(n));
                            }
                        }
                        None => {
                            if let Ok(Some(e)) = db.get(store, key)
                                && let Some(n) = super::strings::numeric_text(&e.value, by.is_f64())
                            {
                                checks.push(Check {
                                    store: target.0.clone(),
                                    key: target.1.clone(),
                                    cond: Cond::Revision(e.revision),
                                });
                                ops.push(Op::Put {
                                    store: target.0.clone(),
                                    key: target.1.clone(),
                                    value: Value::Json(serde_json::Value::Number(n)),
                                    ttl: Ttl::Keep,
                                });
                            }
                        }
                    }
                }
                touched.insert(target, ops.len());
                ops.push(op);
            }
            slots.push(if old {
                Slot::Seen {
                    start,
                    end: start + 1,
                    name: "get",
                }
            } else {
                Slot::Write {
                    start,
                    end: ops.len(),
                    finish: p.finish,
                }
            });
        }
        let outcome = if checks.is_empty() && ops.is_empty() {
            None
        } else {
            match db.execute_async(Command::Write { checks, ops }).await {
                Ok(Applied::Write(w)) => Some(w),
                Ok(other) => return Reply::err(format!("unexpected engine result {other:?}")),
                Err(e) => {
                    let r = engine_error(&e);
                    let Reply::Error(m) = r else { return r };
                    return Reply::Error(format!("EXECABORT Transaction discarded, nothing was written: {m}"));
                }
            }
        };
        if let Some(w) = &outcome
            && !w.success
        {
            if w.failed_check.is_some_and(|i| i < n_watch) {
                return Reply::NilArray;
            }
            continue;
        }
        let results = outcome.map(|w| w.ops).unwrap_or_default();
        let mut replies = Vec::with_capacity(slots.len());
        for (q, slot) in multi.queued.iter().zip(slots) {
            replies.push(match slot {
                Slot::Write { start, end, finish } => finish.reply(true, results.get(start..end).unwrap_or(&[])),
                Slot::Seen { start, end, name } => seen_reply(name, results.get(start..end).unwrap_or(&[])),
                Slot::Read => match Box::pin(super::run(sh, sess, q.spec, q.args.clone())).await {
                    Outcome::Reply(r) | Outcome::Close(r) => r,
                    Outcome::Many(mut v) => v.pop().unwrap_or(Reply::Nil),
                },
            });
        }
        return Reply::Array(replies);
    }
    Reply::err("transaction kept conflicting with concurrent writes, try again")
}
