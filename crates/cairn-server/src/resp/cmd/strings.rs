//! String commands: GET, SET, SETNX, SETEX, PSETEX, GETDEL, GETSET, GETEX,
//! MGET, MSET, MSETNX, APPEND, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT,
//! STRLEN.
//!
//! ```text
//! SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
//! INCRBY key delta          -> :new  (a missing key or numeric string counts)
//! APPEND key suffix         -> :new-length
//! ```
//!
//! Every write is one engine write that reads what it needs at its place in
//! the writer's order: an old value is an [`Op::Get`] before the change, a
//! condition an [`Op::If`], so the same operations serve a pipelined
//! command and a command inside MULTI.
//!
//! Values are parsed per the store's value type (`any`: UTF-8 becomes a
//! JSON string, other bytes stay bytes) and read back with `Value::to_raw`.

use super::{Finish, Pending, Spec, engine_error, float_arg, int_arg, syntax_error, wrong_type};
use crate::resp::Shared;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Check, Cond, Op, Ttl, Value};

/// Parsed SET options.
#[derive(Debug, Default)]
struct SetOpts {
    nx: bool,
    xx: bool,
    get: bool,
    ttl: Option<Ttl>,
}

/// A positive expiry argument in `unit` milliseconds as a [`Ttl`].
fn expiry(a: &[u8], unit: u64, absolute: bool, cmd: &str) -> Result<Ttl, Reply> {
    let n = int_arg(a)?;
    let bad = || Reply::err(format!("invalid expire time in '{cmd}' command"));
    if n <= 0 {
        return Err(bad());
    }
    let ms = (n as u64).checked_mul(unit).ok_or_else(bad)?;
    // As Redis: the expiry time must fit a signed 64-bit millisecond count.
    let at = if absolute {
        Some(ms)
    } else {
        ms.checked_add(super::now_ms())
    };
    if at.is_none_or(|t| t > i64::MAX as u64) {
        return Err(bad());
    }
    Ok(if absolute { Ttl::At(ms) } else { Ttl::Millis(ms) })
}

fn parse_set(args: &[Vec<u8>]) -> Result<SetOpts, Reply> {
    let mut o = SetOpts::default();
    // The expiry option given: it may repeat (the last wins), as in Redis,
    // but not be mixed with another.
    let mut ttl_opt: Option<Vec<u8>> = None;
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_uppercase();
        let next = args.get(i + 1);
        let ttl_free = ttl_opt.as_ref().is_none_or(|t| *t == a);
        match (a.as_slice(), next) {
            (b"NX", _) if !o.xx => o.nx = true,
            (b"XX", _) if !o.nx => o.xx = true,
            (b"GET", _) => o.get = true,
            (b"KEEPTTL", _) if ttl_free => {
                o.ttl = Some(Ttl::Keep);
                ttl_opt = Some(a);
            }
            (b"EX" | b"PX" | b"EXAT" | b"PXAT", Some(v)) if ttl_free => {
                let (unit, abs) = match a.as_slice() {
                    b"EX" => (1000, false),
                    b"PX" => (1, false),
                    b"EXAT" => (1000, true),
                    _ => (1, true),
                };
                o.ttl = Some(expiry(v, unit, abs, "set")?);
                ttl_opt = Some(a);
                i += 1;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    Ok(o)
}

/// Parses a RESP string into a value for the selected store.
pub(crate) fn value(sess: &Session, raw: &[u8]) -> Result<Value, Reply> {
    sess.value_type
        .parse_text(raw)
        .map_err(|why| wrong_type(&sess.store, sess.value_type, &why))
}

fn put(sess: &Session, key: &[u8], value: Value, ttl: Ttl) -> Op {
    Op::Put {
        store: sess.store.clone(),
        key: key.to_vec(),
        value,
        ttl,
    }
}

fn check(sess: &Session, key: &[u8], cond: Cond) -> Check {
    Check {
        store: sess.store.clone(),
        key: key.to_vec(),
        cond,
    }
}

/// The increment a command asks for: `(by, float)`.
fn increment(spec: &Spec, args: &[Vec<u8>]) -> Result<(serde_json::Number, bool), Reply> {
    Ok(match spec.name {
        "incr" => (1.into(), false),
        "decr" => ((-1).into(), false),
        "incrby" => (int_arg(&args[2])?.into(), false),
        "decrby" => (
            int_arg(&args[2])?
                .checked_neg()
                .ok_or_else(|| Reply::err("decrement would overflow"))?
                .into(),
            false,
        ),
        _ => {
            let f = float_arg(&args[2])?;
            (
                serde_json::Number::from_f64(f).ok_or_else(|| Reply::err("value is not a valid float"))?,
                true,
            )
        }
    })
}

fn get(sess: &Session, key: &[u8]) -> Op {
    Op::Get {
        store: sess.store.clone(),
        key: key.to_vec(),
    }
}

/// `ops` applied only when `checks` hold (NX / XX), as one [`Op::If`].
fn when(checks: Vec<Check>, ops: Vec<Op>) -> Op {
    Op::If { checks, ops }
}

/// `GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]`: the value,
/// and a new expiry (a time already past deletes the key, as in Redis).
fn getex(sess: &Session, args: &[Vec<u8>]) -> Result<Vec<Op>, Reply> {
    let key = &args[1];
    let touch = |ttl| Op::Touch {
        store: sess.store.clone(),
        key: key.clone(),
        ttl,
    };
    let change = match args.len() {
        2 => None,
        3 if args[2].eq_ignore_ascii_case(b"PERSIST") => {
            Some(when(vec![check(sess, key, Cond::Expiring)], vec![touch(Ttl::Persist)]))
        }
        4 => {
            let (unit, abs) = match args[2].to_ascii_uppercase().as_slice() {
                b"EX" => (1000, false),
                b"PX" => (1, false),
                b"EXAT" => (1000, true),
                b"PXAT" => (1, true),
                _ => return Err(syntax_error()),
            };
            Some(match expiry(&args[3], unit, abs, "getex")? {
                Ttl::At(t) if t <= super::now_ms() => Op::Delete {
                    store: sess.store.clone(),
                    key: key.clone(),
                },
                ttl => touch(ttl),
            })
        }
        _ => return Err(syntax_error()),
    };
    Ok([get(sess, key)].into_iter().chain(change).collect())
}

/// Builds the one engine write of a string write command (SET and its
/// variants, GETSET, GETDEL, GETEX, APPEND, the INCR family).
pub(crate) fn ops(sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Pending, Reply> {
    let none = |ops, finish| {
        Ok(Pending {
            checks: Vec::new(),
            ops,
            finish,
        })
    };
    let key = &args[1];
    match spec.name {
        "set" | "getset" => {
            let o = if spec.name == "set" {
                parse_set(args)?
            } else {
                SetOpts {
                    get: true,
                    ..SetOpts::default()
                }
            };
            let v = value(sess, &args[2])?;
            let mut op = put(sess, key, v, o.ttl.unwrap_or_default());
            let mut finish = Finish::Ok;
            if o.nx || o.xx {
                let cond = if o.nx { Cond::Absent } else { Cond::Present };
                op = when(vec![check(sess, key, cond)], vec![op]);
                finish = Finish::OkOrNil;
            }
            if o.get {
                return none(vec![get(sess, key), op], Finish::Value);
            }
            none(vec![op], finish)
        }
        "setnx" => {
            let op = put(sess, key, value(sess, &args[2])?, Ttl::Default);
            none(vec![when(vec![check(sess, key, Cond::Absent)], vec![op])], Finish::Bool)
        }
        "setex" | "psetex" => {
            let unit = if spec.name == "setex" { 1000 } else { 1 };
            let ttl = expiry(&args[2], unit, false, spec.name)?;
            none(vec![put(sess, key, value(sess, &args[3])?, ttl)], Finish::Ok)
        }
        "mset" | "msetnx" => {
            if args.len().is_multiple_of(2) {
                return Err(super::arity_error(spec.name));
            }
            let mut ops = Vec::with_capacity(args.len() / 2);
            let mut checks = Vec::new();
            for kv in args[1..].chunks(2) {
                ops.push(put(sess, &kv[0], value(sess, &kv[1])?, Ttl::Default));
                checks.push(check(sess, &kv[0], Cond::Absent));
            }
            if spec.name == "msetnx" {
                none(vec![when(checks, ops)], Finish::Bool)
            } else {
                none(ops, Finish::Ok)
            }
        }
        "getdel" => none(
            vec![
                get(sess, key),
                Op::Delete {
                    store: sess.store.clone(),
                    key: key.clone(),
                },
            ],
            Finish::Value,
        ),
        "getex" => none(getex(sess, args)?, Finish::Value),
        "append" => none(
            vec![Op::Append {
                store: sess.store.clone(),
                key: key.clone(),
                data: args[2].clone(),
            }],
            Finish::Length,
        ),
        _ => {
            let (by, float) = increment(spec, args)?;
            none(
                vec![Op::Incr {
                    store: sess.store.clone(),
                    key: key.clone(),
                    by,
                    integer: !float,
                    text: true,
                }],
                Finish::Incr { float },
            )
        }
    }
}

/// `f` applied to the value in place, without copying it out of the cache.
fn with_value<R>(
    sh: &Shared,
    sess: &Session,
    key: &[u8],
    f: impl FnOnce(&cairn_core::Value) -> R,
) -> Result<Option<R>, Reply> {
    sh.app.db.with_value(&sess.store, key, f).map_err(|e| engine_error(&e))
}

/// Runs a string read (GET, STRLEN, MGET).
pub(super) fn run(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    let r = match spec.name {
        "get" => with_value(sh, sess, &args[1], cairn_core::Value::to_raw).map(|v| v.map_or(Reply::Nil, Reply::Bulk)),
        "strlen" => with_value(sh, sess, &args[1], |v| v.to_raw().len() as i64).map(|n| match n {
            Some(n) => Reply::Int(n),
            None => Reply::Nil,
        }),
        // One revision for all the keys: an MSET or MULTI shows whole.
        _ => sh
            .app
            .db
            .get_many(&sess.store, &args[1..])
            .map_err(|e| engine_error(&e))
            .map(|values| {
                Reply::Array(
                    values
                        .into_iter()
                        .map(|v| match v {
                            Ok(Some(v)) => Reply::Bulk(v.to_raw()),
                            // Redis answers nil for keys that cannot hold a string.
                            Ok(None) | Err(_) => Reply::Nil,
                        })
                        .collect(),
                )
            }),
    };
    let (hits, misses) = match &r {
        Ok(Reply::Array(items)) => {
            let misses = items.iter().filter(|i| matches!(i, Reply::Nil)).count() as u64;
            (items.len() as u64 - misses, misses)
        }
        Ok(Reply::Nil) => (0, 1),
        Ok(_) => (1, 0),
        Err(_) => (0, 0),
    };
    sh.stats.keyspace_hits.add(hits);
    sh.stats.keyspace_misses.add(misses);
    match r {
        // STRLEN of a missing key is 0 (its miss was counted above).
        Ok(Reply::Nil) if spec.name == "strlen" => Reply::Int(0),
        r => r.unwrap_or_else(|e| e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::cmd::not_integer;

    fn a(s: &[&str]) -> Vec<Vec<u8>> {
        s.iter().map(|x| x.as_bytes().to_vec()).collect()
    }

    #[test]
    fn set_options() {
        let o = parse_set(&a(&["set", "k", "v", "nx", "ex", "10", "get"])).unwrap();
        assert!(o.nx && o.get && !o.xx);
        assert_eq!(o.ttl, Some(Ttl::Millis(10_000)));
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "pxat", "5"])).unwrap().ttl,
            Some(Ttl::At(5))
        );
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "nx", "xx"])).unwrap_err(),
            syntax_error()
        );
        assert_eq!(parse_set(&a(&["set", "k", "v", "ex"])).unwrap_err(), syntax_error());
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "ex", "1", "px", "1"])).unwrap_err(),
            syntax_error()
        );
        assert_eq!(parse_set(&a(&["set", "k", "v", "ex", "x"])).unwrap_err(), not_integer());
        // The same expiry option twice: the last wins, as in Redis.
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "ex", "10", "EX", "20"])).unwrap().ttl,
            Some(Ttl::Millis(20_000))
        );
        assert_eq!(
            parse_set(&a(&["set", "k", "v", "keepttl", "px", "1"])).unwrap_err(),
            syntax_error()
        );
        assert!(
            matches!(parse_set(&a(&["set", "k", "v", "ex", "0"])), Err(Reply::Error(m)) if m.contains("invalid expire"))
        );
        assert!(
            matches!(parse_set(&a(&["set", "k", "v", "px", "9223372036854775807"])), Err(Reply::Error(m)) if m.contains("invalid expire"))
        );
        assert!(
            matches!(parse_set(&a(&["set", "k", "v", "ex", "9223372036854775"])), Err(Reply::Error(m)) if m.contains("invalid expire"))
        );
    }
}
