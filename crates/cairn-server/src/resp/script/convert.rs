//! Values between Lua and replies, with Redis's rules.

use crate::resp::reply::Reply;
use mlua::{Lua, Value};

/// A reply as a script sees it (Redis's RESP2 → Lua conversion): integers
/// are numbers, bulk strings strings, nil is `false`, arrays tables, a
/// status `{ok = ...}`, an error `{err = ...}`.
pub(crate) fn reply_to_lua(lua: &Lua, r: Reply) -> mlua::Result<Value> {
    Ok(match r {
        Reply::Int(i) => Value::Integer(i),
        Reply::Bulk(b) => Value::String(lua.create_string(b)?),
        Reply::Double(d) => Value::String(lua.create_string(crate::resp::reply::format_double(d))?),
        Reply::Nil | Reply::NilArray => Value::Boolean(false),
        Reply::Simple(s) => status(lua, "ok", s)?,
        Reply::Status(s) => status(lua, "ok", &s)?,
        Reply::Error(e) => status(lua, "err", &e)?,
        Reply::Array(items) | Reply::Push(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for (i, item) in items.into_iter().enumerate() {
                t.raw_set(i + 1, reply_to_lua(lua, item)?)?;
            }
            Value::Table(t)
        }
        Reply::Map(pairs) => {
            let t = lua.create_table_with_capacity(pairs.len() * 2, 0)?;
            for (i, (k, v)) in pairs.into_iter().enumerate() {
                t.raw_set(2 * i + 1, reply_to_lua(lua, k)?)?;
                t.raw_set(2 * i + 2, reply_to_lua(lua, v)?)?;
            }
            Value::Table(t)
        }
    })
}

fn status(lua: &Lua, field: &str, text: &str) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    t.raw_set(field, text)?;
    Ok(Value::Table(t))
}

/// A script's result as a reply (Redis's Lua → RESP2 conversion): numbers
/// are truncated to integers, `false` and `nil` are nil, `true` is 1, a
/// table with `err` or `ok` an error or a status, other tables arrays up
/// to their first nil.
pub(crate) fn lua_to_reply(v: &Value, depth: usize) -> Reply {
    match v {
        Value::Nil | Value::Boolean(false) => Reply::Nil,
        Value::Boolean(true) => Reply::Int(1),
        Value::Integer(i) => Reply::Int(*i),
        Value::Number(n) => Reply::Int(to_integer(*n)),
        Value::String(s) => Reply::Bulk(s.as_bytes().to_vec()),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                // As in Redis, the text is the whole error: "My Error" has the code "My".
                return Reply::Error(e.to_string_lossy());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return Reply::Status(s.to_string_lossy());
            }
            if depth > 1000 {
                return Reply::err("reached lua stack limit");
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(v) => items.push(lua_to_reply(&v, depth + 1)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Nil,
    }
}

/// A Lua number as Redis turns it into an integer reply: truncated, and
/// what no 64-bit integer holds (infinities, NaN, past 2^63) as i64::MIN,
/// which is what Redis's C conversion gives there.
fn to_integer(n: f64) -> i64 {
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&n) {
        n as i64
    } else {
        i64::MIN
    }
}

/// A number argument of `redis.call` as Redis 7 writes it: integers in
/// full, other numbers as C's `%.17g` (so nothing is lost to rounding).
pub(crate) fn number_arg(v: &Value) -> Option<String> {
    match v {
        Value::Integer(i) => Some(i.to_string()),
        Value::Number(n) => Some(format_g17(*n)),
        _ => None,
    }
}

/// C's `printf("%.17g", x)`.
pub(crate) fn format_g17(x: f64) -> String {
    format_g(x, 17)
}

/// C's `printf("%.14g", x)` (how cjson writes numbers).
pub(crate) fn format_g14(x: f64) -> String {
    format_g(x, 14)
}

/// C's `printf("%.<digits>g", x)`.
fn format_g(x: f64, digits: i32) -> String {
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf" } else { "inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // `digits` significant digits: one before the point, the rest after.
    let sci = format!("{x:.*e}", (digits - 1) as usize);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s.to_owned()
        }
    };
    if !(-4..digits).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim(mantissa), exp.unsigned_abs())
    } else {
        let decimals = (digits - 1 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

#[cfg(test)]
mod tests {
    use super::format_g17;

    #[test]
    fn numbers_print_as_c_does_with_17_digits() {
        for (x, want) in [
            (0.1, "0.10000000000000001"),
            (1.5, "1.5"),
            (100.0, "100"),
            (-2.25, "-2.25"),
            (1e17, "1e+17"),
            (123456789012345.6, "123456789012345.59"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (3.0e-300, "3.0000000000000002e-300"),
        ] {
            assert_eq!(format_g17(x), want, "{x}");
        }
    }
}
