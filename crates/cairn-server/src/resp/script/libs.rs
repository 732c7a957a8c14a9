//! The libraries scripts see besides Lua's own: `redis.*` helpers,
//! `cjson` and LuaBitOp's `bit`, as Redis ships them.

use mlua::{Lua, MultiValue, Table, Value};

/// `redis.*` except `call` and `pcall`, which each run sets (they reach
/// that run's transaction).
pub(super) fn redis_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "status_reply",
        lua.create_function(|lua, s: mlua::LuaString| {
            let r = lua.create_table()?;
            r.set("ok", s)?;
            Ok(r)
        })?,
    )?;
    t.set(
        "error_reply",
        lua.create_function(|lua, s: mlua::LuaString| {
            let r = lua.create_table()?;
            // As Redis: a leading "-" is the protocol's, not the text's.
            let b = s.as_bytes();
            r.set("err", lua.create_string(b.strip_prefix(b"-").unwrap_or(&b))?)?;
            Ok(r)
        })?,
    )?;
    t.set(
        "sha1hex",
        lua.create_function(|_, s: mlua::LuaString| Ok(super::sha1_hex(&s.as_bytes())))?,
    )?;
    t.set(
        "log",
        lua.create_function(|lua, args: MultiValue| {
            let mut it = args.into_iter();
            let level = it.next().and_then(|v| v.as_i64()).unwrap_or(2);
            let mut msg = String::new();
            for v in it {
                if let Some(s) = lua.coerce_string(v)? {
                    if !msg.is_empty() {
                        msg.push(' ');
                    }
                    msg.push_str(&s.to_string_lossy());
                }
            }
            match level {
                0 => tracing::debug!(target: "cairn::script", "{msg}"),
                3 => tracing::warn!(target: "cairn::script", "{msg}"),
                _ => tracing::info!(target: "cairn::script", "{msg}"),
            }
            Ok(())
        })?,
    )?;
    for (name, level) in [
        ("LOG_DEBUG", 0),
        ("LOG_VERBOSE", 1),
        ("LOG_NOTICE", 2),
        ("LOG_WARNING", 3),
    ] {
        t.set(name, level)?;
    }
    for (name, n) in [
        ("REPL_NONE", 0),
        ("REPL_AOF", 1),
        ("REPL_SLAVE", 2),
        ("REPL_REPLICA", 2),
        ("REPL_ALL", 3),
    ] {
        t.set(name, n)?;
    }
    let version = crate::resp::cmd::server::REDIS_VERSION;
    t.set("REDIS_VERSION", version)?;
    let num = version
        .split('.')
        .fold(0i64, |acc, p| (acc << 8) | p.parse::<i64>().unwrap_or(0));
    t.set("REDIS_VERSION_NUM", num)?;
    // Effects are what is written (there are no replicas yet): accepted, nothing to change.
    t.set("replicate_commands", lua.create_function(|_, ()| Ok(true))?)?;
    t.set("set_repl", lua.create_function(|_, _: i64| Ok(()))?)?;
    t.set(
        "setresp",
        lua.create_function(|_, v: i64| match v {
            2 => Ok(()),
            _ => Err(mlua::Error::runtime(
                "cairn scripts speak RESP2 only (redis.setresp(2))",
            )),
        })?,
    )?;
    t.set("breakpoint", lua.create_function(|_, ()| Ok(false))?)?;
    t.set("debug", lua.create_function(|_, _: MultiValue| Ok(()))?)?;
    Ok(t)
}

/// `cjson.encode`, `cjson.decode` and `cjson.null`.
pub(super) fn cjson_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|lua, v: Value| {
            let mut out = Vec::new();
            encode(&v, 0, &mut out).map_err(mlua::Error::runtime)?;
            lua.create_string(out)
        })?,
    )?;
    t.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let j: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("cjson.decode: {e}")))?;
            from_json(lua, &j)
        })?,
    )?;
    t.set("null", Value::NULL)?;
    Ok(t)
}

/// cjson's encoding: a table whose keys are all positive integers is an
/// array (holes as `null`; too sparse an array is an error, as in cjson),
/// any other an object; strings are written byte for byte (not checked as
/// UTF-8), with `/` escaped as cjson does.
fn encode(v: &Value, depth: usize, out: &mut Vec<u8>) -> Result<(), String> {
    if depth > 1000 {
        return Err("Cannot serialise, excessive nesting (1001)".into());
    }
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Number(n) if n.is_finite() => {
            out.extend_from_slice(super::convert::format_g14(*n).as_bytes());
        }
        Value::Number(_) => return Err("Cannot serialise number: must not be NaN or Inf".into()),
        Value::String(s) => encode_string(&s.as_bytes(), out),
        Value::Table(t) => {
            let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().filter_map(Result::ok).collect();
            let max = pairs
                .iter()
                .map(|(k, _)| match k {
                    Value::Integer(i) if *i >= 1 => Some(*i as usize),
                    _ => None,
                })
                .try_fold(0usize, |m, k| k.map(|k| m.max(k)));
            match max {
                Some(max) if !pairs.is_empty() => {
                    if max > 10 && max > pairs.len() * 2 {
                        return Err("Cannot serialise table: excessively sparse array".into());
                    }
                    out.push(b'[');
                    for i in 1..=max {
                        if i > 1 {
                            out.push(b',');
                        }
                        encode(&t.raw_get::<Value>(i).map_err(|e| e.to_string())?, depth + 1, out)?;
                    }
                    out.push(b']');
                }
                _ => {
                    out.push(b'{');
                    for (n, (k, val)) in pairs.iter().enumerate() {
                        if n > 0 {
                            out.push(b',');
                        }
                        match k {
                            Value::String(s) => encode_string(&s.as_bytes(), out),
                            Value::Integer(i) => encode_string(i.to_string().as_bytes(), out),
                            Value::Number(f) => encode_string(super::convert::format_g14(*f).as_bytes(), out),
                            _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                        }
                        out.push(b':');
                        encode(val, depth + 1, out)?;
                    }
                    out.push(b'}');
                }
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

fn encode_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            0..0x20 | 0x7f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn from_json(lua: &Lua, j: &serde_json::Value) -> mlua::Result<Value> {
    use serde_json::Value as J;
    Ok(match j {
        J::Null => Value::NULL,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
        },
        J::String(s) => Value::String(lua.create_string(s)?),
        J::Array(a) => {
            let t = lua.create_table_with_capacity(a.len(), 0)?;
            for (i, v) in a.iter().enumerate() {
                t.raw_set(i + 1, from_json(lua, v)?)?;
            }
            Value::Table(t)
        }
        J::Object(m) => {
            let t = lua.create_table_with_capacity(0, m.len())?;
            for (k, v) in m {
                t.raw_set(k.as_str(), from_json(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

/// LuaBitOp's `bit` library (32-bit operations), which Redis ships.
pub(super) fn bit_table(lua: &Lua) -> mlua::Result<Table> {
    fn bits(v: f64) -> i32 {
        // LuaBitOp: the number modulo 2^32, as a signed 32-bit integer.
        (v.trunc().rem_euclid(4_294_967_296.0) as u64) as u32 as i32
    }
    let t = lua.create_table()?;
    let fold = |lua: &Lua, f: fn(i32, i32) -> i32| {
        lua.create_function(move |_, args: mlua::Variadic<f64>| {
            let mut it = args.iter().map(|v| bits(*v));
            let first = it
                .next()
                .ok_or_else(|| mlua::Error::runtime("bad argument #1 (number expected)"))?;
            Ok(it.fold(first, f))
        })
    };
    t.set("band", fold(lua, |a, b| a & b)?)?;
    t.set("bor", fold(lua, |a, b| a | b)?)?;
    t.set("bxor", fold(lua, |a, b| a ^ b)?)?;
    t.set("tobit", lua.create_function(|_, v: f64| Ok(bits(v)))?)?;
    t.set("bnot", lua.create_function(|_, v: f64| Ok(!bits(v)))?)?;
    t.set("bswap", lua.create_function(|_, v: f64| Ok(bits(v).swap_bytes()))?)?;
    let shift = |lua: &Lua, f: fn(i32, u32) -> i32| {
        lua.create_function(move |_, (v, n): (f64, f64)| Ok(f(bits(v), (bits(n) & 31) as u32)))
    };
    t.set("lshift", shift(lua, |a, n| ((a as u32) << n) as i32)?)?;
    t.set("rshift", shift(lua, |a, n| ((a as u32) >> n) as i32)?)?;
    t.set("arshift", shift(lua, |a, n| a >> n)?)?;
    t.set("rol", shift(lua, |a, n| (a as u32).rotate_left(n) as i32)?)?;
    t.set("ror", shift(lua, |a, n| (a as u32).rotate_right(n) as i32)?)?;
    t.set(
        "tohex",
        lua.create_function(|_, (v, n): (f64, Option<f64>)| {
            let n = n.map_or(8, |n| n as i64);
            let (upper, width) = (n < 0, n.unsigned_abs().clamp(1, 8) as usize);
            let s = format!("{:08x}", bits(v) as u32);
            let s = s[8 - width..].to_owned();
            Ok(if upper { s.to_uppercase() } else { s })
        })?,
    )?;
    Ok(t)
}
