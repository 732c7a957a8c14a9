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
//! Queued reads of keys (GET, MGET, EXISTS, STRLEN, GETRANGE, TYPE, TTL,
//! ...) become [`Op::Get`]s at their place in the batch, so each sees
//! exactly the commands queued before it, as in Redis; so do the old values
//! of SET .. GET, GETSET, GETDEL and GETEX. Other reads (DBSIZE, KEYS,
//! RANDOMKEY, PING, ...) are answered after the batch commits.
//!
//! Conditional commands keep their Redis meaning: SET NX / XX, SETNX,
//! MSETNX, EXPIRE NX / XX / GT / LT and PERSIST are [`Op::If`] groups, which
//! the engine skips (the command answers nil or 0) without failing the
//! rest of the transaction; APPEND, SETRANGE, INCR on a numeric string,
//! RENAME, RENAMENX and COPY read the value as the commands before them
//! left it. A command whose arguments are wrong (a syntax error, a value
//! the store's type refuses) answers its error in EXEC's reply while the
//! others apply, as in Redis; so does one that fails while applying (INCR
//! on a non-number, APPEND past the size limit): each write command is an
//! [`Op::Try`] group, which the engine undoes and reports instead of
//! failing the batch. The commit is still one atomic batch: a failure of
//! the engine itself (or a transaction over the batch limit) answers
//! `-EXECABORT` and writes nothing.

use super::{InMulti, Outcome, Spec, engine_error};
use crate::resp::Shared;
use crate::resp::reply::Reply;
use crate::resp::session::{Multi, Session, Watched};
use cairn_core::{Applied, Check, Command, Cond, Entry, Op, OpOutcome};

/// A command waiting for EXEC.
#[derive(Debug)]
pub(crate) struct Queued {
    pub spec: &'static Spec,
    pub args: Vec<Vec<u8>>,
}

/// Reads answered from the key's entry at their place in the batch.
pub(crate) const KEY_READS: &[&str] = &[
    "get",
    "mget",
    "strlen",
    "getrange",
    "substr",
    "exists",
    "touch",
    "type",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
];

/// The keys a key read looks at.
pub(crate) fn read_keys<'a>(spec: &Spec, args: &'a [Vec<u8>]) -> &'a [Vec<u8>] {
    match spec.name {
        "mget" | "exists" | "touch" => &args[1..],
        _ => &args[1..2],
    }
}

/// The reply of a key read from what its [`Op::Get`]s saw.
pub(crate) fn seen_reply(name: &str, args: &[Vec<u8>], outcomes: &[OpOutcome]) -> Reply {
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
        "getrange" | "substr" => match super::bytes::range_args(args) {
            Ok((start, end)) => {
                Reply::Bulk(first.map_or_else(Vec::new, |e| super::bytes::range(&e.value.to_raw(), start, end)))
            }
            Err(r) => r,
        },
        "exists" | "touch" => Reply::Int(entries.iter().filter(|e| e.is_some()).count() as i64),
        "type" => Reply::Simple(if first.is_some() { "string" } else { "none" }),
        _ => Reply::Int(super::keys::ttl_reply(name, first.map(|e| e.expires_at))),
    }
}

/// Redis refuses an unknown subcommand when it is queued (so the
/// transaction is discarded), not at EXEC.
fn known_subcommand(spec: &Spec, args: &[Vec<u8>]) -> Result<(), Reply> {
    let known: &[&[u8]] = match spec.name {
        "config" => &[b"GET", b"SET", b"RESETSTAT"],
        "client" => &[
            b"ID",
            b"GETNAME",
            b"SETNAME",
            b"INFO",
            b"LIST",
            b"KILL",
            b"SETINFO",
            b"NO-EVICT",
            b"NO-TOUCH",
        ],
        "pubsub" => &[b"CHANNELS", b"NUMSUB", b"NUMPAT"],
        "command" => &[b"INFO", b"COUNT", b"DOCS", b"LIST"],
        "object" => &[b"ENCODING", b"FREQ", b"IDLETIME", b"REFCOUNT", b"HELP"],
        "memory" => &[b"USAGE", b"HELP"],
        _ => return Ok(()),
    };
    match args.get(1) {
        None => Ok(()),
        Some(sub) if known.iter().any(|k| sub.eq_ignore_ascii_case(k)) => Ok(()),
        Some(sub) => Err(Reply::err(format!(
            "unknown subcommand '{}'. Try {} HELP.",
            super::show(sub),
            spec.name.to_ascii_uppercase()
        ))),
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
    // As in Redis, only an unknown command or a wrong argument count (both
    // checked before this) dooms the transaction here; other argument
    // errors are the command's reply in EXEC's answer.
    let checked = match spec.multi {
        InMulti::Op | InMulti::Read | InMulti::Select => known_subcommand(spec, &args),
        _ if crate::resp::script::is_script(spec.name) => Ok(()),
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
    /// From the outcome of the command's [`Op::Try`] group, op `at` of the batch.
    Write { at: usize, finish: super::Finish },
    /// From the entries ops `start..end` ([`Op::Get`]) saw, as command `name`.
    Seen {
        start: usize,
        end: usize,
        name: &'static str,
    },
    /// By running the read after the commit (reads not of keys), in the
    /// store the connection had selected at its place.
    Read {
        store: String,
        value_type: cairn_core::ValueType,
    },
    /// This reply (the command's arguments were refused).
    Fixed(Reply),
}

async fn exec(sh: &Shared, sess: &mut Session) -> Reply {
    let Some(multi) = sess.multi.take() else {
        return Reply::err("EXEC without MULTI");
    };
    let watched = std::mem::take(&mut sess.watched);
    if multi.dirty {
        return Reply::Error("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let checks: Vec<Check> = watched
        .iter()
        .map(|w| Check {
            store: w.store.clone(),
            key: w.key.clone(),
            cond: w.revision.map_or(Cond::Absent, Cond::Revision),
        })
        .collect();
    if multi.queued.iter().any(|q| crate::resp::script::is_script(q.spec.name)) {
        let queued = multi.queued.into_iter().map(|q| (q.spec, q.args)).collect();
        return crate::resp::script::exec(sh, sess, queued, checks).await;
    }
    let mut ops: Vec<Op> = Vec::new();
    let mut slots = Vec::with_capacity(multi.queued.len());
    // SELECT moves the commands after it to another store; if the
    // transaction does not commit, the connection stays where it was.
    let before = (sess.store.clone(), sess.value_type);
    for q in &multi.queued {
        let start = ops.len();
        if q.spec.multi == InMulti::Select {
            slots.push(Slot::Fixed(super::server::select(sh, sess, &q.args[1]).await));
        } else if KEY_READS.contains(&q.spec.name) {
            ops.extend(read_keys(q.spec, &q.args).iter().map(|k| Op::Get {
                store: sess.store.clone(),
                key: k.clone(),
            }));
            slots.push(Slot::Seen {
                start,
                end: ops.len(),
                name: q.spec.name,
            });
        } else if q.spec.multi != InMulti::Op {
            slots.push(Slot::Read {
                store: sess.store.clone(),
                value_type: sess.value_type,
            });
        } else if let Err(r) = super::keys::ensure_copy_db(sh, sess, q.spec, &q.args).await {
            slots.push(Slot::Fixed(r));
        } else {
            match super::write_ops(sh, sess, q.spec, &q.args) {
                // Every write command's conditions are `Op::If` groups, never
                // batch checks, which would fail the whole transaction.
                Ok(p) if p.checks.is_empty() => {
                    ops.push(Op::Try { ops: p.ops });
                    slots.push(Slot::Write {
                        at: start,
                        finish: p.finish,
                    });
                }
                Ok(_) => slots.push(Slot::Fixed(refused(q.spec))),
                Err(r) => slots.push(Slot::Fixed(r)),
            }
        }
    }
    let committed = if checks.is_empty() && ops.is_empty() {
        Ok(None)
    } else {
        match sh.app.db.execute_async(Command::Write { checks, ops }).await {
            Ok(Applied::Write(w)) if w.success => Ok(Some(w)),
            // Only WATCHed revisions are checks of the batch.
            Ok(Applied::Write(_)) => Err(Reply::NilArray),
            Ok(other) => Err(Reply::err(format!("unexpected engine result {other:?}"))),
            Err(e) => Err(match engine_error(&e) {
                Reply::Error(m) => Reply::Error(format!("EXECABORT Transaction discarded, nothing was written: {m}")),
                r => r,
            }),
        }
    };
    let outcome = match committed {
        Ok(o) => o,
        Err(r) => {
            // Not committed: the connection stays where it was before SELECTs.
            (sess.store, sess.value_type) = before;
            return r;
        }
    };
    let after = (sess.store.clone(), sess.value_type);
    let results = outcome.map(|w| w.ops).unwrap_or_default();
    let mut replies = Vec::with_capacity(slots.len());
    for (q, slot) in multi.queued.iter().zip(slots) {
        replies.push(match slot {
            Slot::Write { at, finish } => match results.get(at) {
                Some(OpOutcome::Tried { ops }) => finish.reply(true, ops),
                Some(OpOutcome::Failed { error }) => finish.error(&error.0),
                _ => finish.reply(true, &[]),
            },
            Slot::Seen { start, end, name } => seen_reply(name, &q.args, results.get(start..end).unwrap_or(&[])),
            Slot::Fixed(r) => r,
            Slot::Read { store, value_type } => {
                (sess.store, sess.value_type) = (store, value_type);
                match Box::pin(super::run(sh, sess, q.spec, q.args.clone())).await {
                    Outcome::Reply(r) | Outcome::Close(r) => r,
                    Outcome::Many(mut v) => v.pop().unwrap_or(Reply::Nil),
                }
            }
        });
    }
    (sess.store, sess.value_type) = after;
    Reply::Array(replies)
}
