//! String commands: GET, SET, SETNX, SETEX, PSETEX, GETDEL, GETSET, MGET,
//! MSET, MSETNX, INCR, DECR, INCRBY, DECRBY, INCRBYFLOAT, STRLEN.
//!
//! ```text
//! SET key value [NX | XX] [GET] [EX s | PX ms | EXAT ts | PXAT ms-ts | KEEPTTL]
//! INCRBY key delta          -> :new  (a missing key counts as 0)
//! ```
//!
//! Values are parsed per the store's value type (`any`: UTF-8 becomes a
//! JSON string, other bytes stay bytes) and read back with `Value::to_raw`.

use super::{Finish, Pending, Plan, Spec, engine_error, float_arg, int_arg, not_integer, syntax_error, wrong_type};
use crate::resp::Shared;
use crate::resp::reply::{Reply, format_double};
use crate::resp::session::Session;
use cairn_core::{Applied, Check, Command, Cond, Op, Ttl, Value};
use std::collections::HashSet;

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
    let mut i = 3;
    while i < args.len() {
        let a = args[i].to_ascii_uppercase();
        let next = args.get(i + 1);
        match (a.as_slice(), next) {
            (b"NX", _) if !o.xx => o.nx = true,
            (b"XX", _) if !o.nx => o.xx = true,
            (b"GET", _) => o.get = true,
            (b"KEEPTTL", _) if o.ttl.is_none() => o.ttl = Some(Ttl::Keep),
            (b"EX" | b"PX" | b"EXAT" | b"PXAT", Some(v)) if o.ttl.is_none() => {
                let (unit, abs) = match a.as_slice() {
                    b"EX" => (1000, false),
                    b"PX" => (1, false),
                    b"EXAT" => (1000, true),
                    _ => (1, true),
                };
                o.ttl = Some(expiry(v, unit, abs, "set")?);
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
        "decrby" => (int_arg(&args[2])?.checked_neg().ok_or_else(not_integer)?.into(), false),
        _ => {
            let f = float_arg(&args[2])?;
            (
                serde_json::Number::from_f64(f).ok_or_else(|| Reply::err("value is not a valid float"))?,
                true,
            )
        }
    })
}

/// A JSON string holding a number: what `SET k 5` stores in an `any` store.
pub(crate) fn numeric_text(v: &Value, float: bool) -> Option<serde_json::Number> {
    let Value::Json(serde_json::Value::String(s)) = v else {
        return None;
    };
    if let Some(i) = super::redis_int(s) {
        return Some(i.into());
    }
    if float {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
    } else {
        None
    }
}

/// Builds the operations of a plannable string write (shared with MULTI).
pub(crate) fn ops(sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Pending, Reply> {
    let none = |ops, finish| {
        Ok(Pending {
            checks: Vec::new(),
            ops,
            finish,
        })
    };
    match spec.name {
        "set" => {
            let o = parse_set(args)?;
            let v = value(sess, &args[2])?;
            let mut checks = Vec::new();
            if o.nx {
                checks.push(check(sess, &args[1], Cond::Absent));
            }
            if o.xx {
                checks.push(check(sess, &args[1], Cond::Present));
            }
            let finish = if checks.is_empty() { Finish::Ok } else { Finish::OkOrNil };
            Ok(Pending {
                checks,
                ops: vec![put(sess, &args[1], v, o.ttl.unwrap_or_default())],
                finish,
            })
        }
        "setnx" => {
            let v = value(sess, &args[2])?;
            Ok(Pending {
                checks: vec![check(sess, &args[1], Cond::Absent)],
                ops: vec![put(sess, &args[1], v, Ttl::Default)],
                finish: Finish::Bool,
            })
        }
        "setex" | "psetex" => {
            let unit = if spec.name == "setex" { 1000 } else { 1 };
            let ttl = expiry(&args[2], unit, false, spec.name)?;
            none(vec![put(sess, &args[1], value(sess, &args[3])?, ttl)], Finish::Ok)
        }
        "mset" | "msetnx" => {
            if args.len().is_multiple_of(2) {
                return Err(super::arity_error(spec.name));
            }
            let mut ops = Vec::with_capacity(args.len() / 2);
            let mut checks = Vec::new();
            for kv in args[1..].chunks(2) {
                ops.push(put(sess, &kv[0], value(sess, &kv[1])?, Ttl::Default));
                if spec.name == "msetnx" {
                    checks.push(check(sess, &kv[0], Cond::Absent));
                }
            }
            let finish = if spec.name == "msetnx" {
                Finish::Bool
            } else {
                Finish::Ok
            };
            Ok(Pending { checks, ops, finish })
        }
        _ => {
            let (by, float) = increment(spec, args)?;
            none(
                vec![Op::Incr {
                    store: sess.store.clone(),
                    key: args[1].clone(),
                    by,
                    integer: !float,
                }],
                Finish::Incr { float },
            )
        }
    }
}

/// Plans a string write without reading, when possible.
pub(super) fn plan(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>], pending: &HashSet<Vec<u8>>) -> Plan {
    let is_incr = matches!(spec.name, "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat");
    if spec.name == "set" && args[3..].iter().any(|a| a.eq_ignore_ascii_case(b"GET")) {
        return Plan::Sequential;
    }
    if is_incr {
        // The engine increments numbers; a numeric *string* (SET k 5) needs
        // a read first, and so does a key an unfinished write may change.
        if pending.contains(&args[1]) {
            return Plan::Sequential;
        }
        if let Ok(Some(e)) = sh.app.db.get(&sess.store, &args[1])
            && numeric_text(&e.value, true).is_some()
        {
            return Plan::Sequential;
        }
    }
    match ops(sess, spec, args) {
        Ok(p) => Plan::Write(p),
        Err(r) => Plan::Reply(r),
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

fn get_raw(sh: &Shared, sess: &Session, key: &[u8]) -> Result<Option<cairn_core::Entry>, Reply> {
    sh.app.db.get(&sess.store, key).map_err(|e| engine_error(&e))
}

/// Runs a string command to completion.
pub(super) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    let r = match spec.name {
        "get" => with_value(sh, sess, &args[1], cairn_core::Value::to_raw).map(|v| v.map_or(Reply::Nil, Reply::Bulk)),
        "strlen" => with_value(sh, sess, &args[1], |v| v.to_raw().len() as i64).map(|n| Reply::Int(n.unwrap_or(0))),
        "mget" => args[1..]
            .iter()
            .map(
                |k| match sh.app.db.with_value(&sess.store, k, cairn_core::Value::to_raw) {
                    Ok(Some(v)) => Ok(Reply::Bulk(v)),
                    Ok(None) => Ok(Reply::Nil),
                    // Redis answers nil for keys that cannot hold a string.
                    Err(e) if e.is_client_error() => Ok(Reply::Nil),
                    Err(e) => Err(engine_error(&e)),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(Reply::Array),
        "getdel" => getdel(sh, sess, &args[1]).await,
        "getex" => getex(sh, sess, args).await,
        "append" => append(sh, sess, &args[1], &args[2]).await,
        "getset" => {
            let mut a = args.to_vec();
            a.push(b"GET".to_vec());
            set_get(sh, sess, &a).await
        }
        "set" if args[3..].iter().any(|a| a.eq_ignore_ascii_case(b"GET")) => set_get(sh, sess, args).await,
        "incr" | "decr" | "incrby" | "decrby" | "incrbyfloat" => incr_cas(sh, sess, spec, args).await,
        _ => match ops(sess, spec, args) {
            Ok(p) => Ok(super::execute(sh, p).await),
            Err(r) => Err(r),
        },
    };
    r.unwrap_or_else(|e| e)
}

/// Compare-and-set retries before giving up under heavy contention.
const CAS_RETRIES: usize = 1000;

fn busy() -> Reply {
    Reply::err("too much contention on this key, try again")
}

/// Writes `op` only if the key still has the revision it was read at.
async fn cas(sh: &Shared, sess: &Session, key: &[u8], rev: Option<u64>, ops: Vec<Op>) -> Result<bool, Reply> {
    let cond = rev.map_or(Cond::Absent, Cond::Revision);
    let cmd = Command::Write {
        checks: vec![check(sess, key, cond)],
        ops,
    };
    match sh.app.db.execute_async(cmd).await {
        Ok(Applied::Write(w)) => Ok(w.success),
        Ok(_) => Err(Reply::err("unexpected engine result")),
        Err(e) => Err(engine_error(&e)),
    }
}

async fn getdel(sh: &Shared, sess: &Session, key: &[u8]) -> Result<Reply, Reply> {
    for _ in 0..CAS_RETRIES {
        let Some(e) = get_raw(sh, sess, key)? else {
            return Ok(Reply::Nil);
        };
        let op = Op::Delete {
            store: sess.store.clone(),
            key: key.to_vec(),
        };
        if cas(sh, sess, key, Some(e.revision), vec![op]).await? {
            return Ok(Reply::Bulk(e.value.to_raw()));
        }
    }
    Err(busy())
}

/// `GETEX key [EX s | PX ms | EXAT ts | PXAT ms-ts | PERSIST]`: the value, and a new expiry.
async fn getex(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let ttl = match args.len() {
        2 => None,
        3 if args[2].eq_ignore_ascii_case(b"PERSIST") => Some(Ttl::Persist),
        4 => {
            let (unit, abs) = match args[2].to_ascii_uppercase().as_slice() {
                b"EX" => (1000, false),
                b"PX" => (1, false),
                b"EXAT" => (1000, true),
                b"PXAT" => (1, true),
                _ => return Err(syntax_error()),
            };
            Some(expiry(&args[3], unit, abs, "getex")?)
        }
        _ => return Err(syntax_error()),
    };
    let Some(e) = get_raw(sh, sess, &args[1])? else {
        return Ok(Reply::Nil);
    };
    if let Some(ttl) = ttl {
        let op = Op::Touch {
            store: sess.store.clone(),
            key: args[1].clone(),
            ttl,
        };
        let r = super::execute(
            sh,
            Pending {
                checks: Vec::new(),
                ops: vec![op],
                finish: Finish::Touched,
            },
        )
        .await;
        if r.is_error() {
            return Err(r);
        }
    }
    Ok(Reply::Bulk(e.value.to_raw()))
}

/// `APPEND key suffix`: the new length; the key keeps its expiry.
async fn append(sh: &Shared, sess: &Session, key: &[u8], suffix: &[u8]) -> Result<Reply, Reply> {
    for _ in 0..CAS_RETRIES {
        let old = get_raw(sh, sess, key)?;
        let mut raw = old.as_ref().map(|e| e.value.to_raw()).unwrap_or_default();
        raw.extend_from_slice(suffix);
        let len = raw.len() as i64;
        let op = put(sess, key, value(sess, &raw)?, Ttl::Keep);
        if cas(sh, sess, key, old.map(|e| e.revision), vec![op]).await? {
            return Ok(Reply::Int(len));
        }
    }
    Err(busy())
}

/// `SET ... GET`: the old value, read and replaced atomically.
async fn set_get(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let o = parse_set(args)?;
    let v = value(sess, &args[2])?;
    let key = &args[1];
    for _ in 0..CAS_RETRIES {
        let old = get_raw(sh, sess, key)?;
        let old_reply = old.as_ref().map_or(Reply::Nil, |e| Reply::Bulk(e.value.to_raw()));
        if (o.nx && old.is_some()) || (o.xx && old.is_none()) {
            return Ok(old_reply);
        }
        let op = put(sess, key, v.clone(), o.ttl.unwrap_or_default());
        if cas(sh, sess, key, old.map(|e| e.revision), vec![op]).await? {
            return Ok(old_reply);
        }
    }
    Err(busy())
}

/// An increment that may start from a numeric string.
async fn incr_cas(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let (by, float) = increment(spec, args)?;
    let key = &args[1];
    for _ in 0..CAS_RETRIES {
        let old = get_raw(sh, sess, key)?;
        let Some(cur) = old.as_ref().and_then(|e| numeric_text(&e.value, float)) else {
            // Not a numeric string: the engine's increment handles it.
            let op = Op::Incr {
                store: sess.store.clone(),
                key: key.clone(),
                by,
                integer: !float,
            };
            let p = Pending {
                checks: Vec::new(),
                ops: vec![op],
                finish: Finish::Incr { float },
            };
            return Ok(super::execute(sh, p).await);
        };
        let (sum, reply) = match (cur.as_i64(), by.as_i64(), float) {
            (Some(a), Some(b), false) => {
                let s = a
                    .checked_add(b)
                    .ok_or_else(|| Reply::err("increment or decrement would overflow"))?;
                (serde_json::Number::from(s), Reply::Int(s))
            }
            (_, _, false) => return Err(not_integer()),
            _ => {
                let s = cur.as_f64().unwrap_or(0.0) + by.as_f64().unwrap_or(0.0);
                // A whole result is kept as an integer ("10", as Redis leaves it).
                let n = cairn_core::number_from_f64(s)
                    .ok_or_else(|| Reply::err("increment would produce NaN or Infinity"))?;
                (n, Reply::text(format_double(s)))
            }
        };
        let op = put(sess, key, Value::Json(serde_json::Value::Number(sum)), Ttl::Keep);
        if cas(sh, sess, key, old.map(|e| e.revision), vec![op]).await? {
            return Ok(reply);
        }
    }
    Err(busy())
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn numeric_strings() {
        let s = |x: &str| Value::Json(serde_json::Value::String(x.into()));
        assert_eq!(numeric_text(&s("41"), false), Some(41.into()));
        assert_eq!(numeric_text(&s("1.5"), false), None);
        assert!(numeric_text(&s("1.5"), true).is_some());
        assert_eq!(numeric_text(&Value::Json(5.into()), false), None);
    }
}
