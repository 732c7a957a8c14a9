//! The Lua side of scripts: a sandboxed Lua 5.1 state set up as Redis
//! sets up its own (`redis.*`, `cjson`, `bit`, protected globals), and the
//! conversions between Lua values and replies, with Redis's rules.

use crate::resp::reply::Reply;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// How long a script may run before it is stopped (Redis's
/// `busy-reply-threshold`, after which Redis only answers `BUSY`). Its
/// writes are then dropped: cairn commits a script's writes at its end.
pub(crate) const TIME_LIMIT_MS: u64 = 5_000;

/// Most memory one Lua state may hold.
const MEMORY_LIMIT: usize = 256 << 20;

/// Compiled scripts kept per state before the cache starts over.
const MAX_FUNCTIONS: usize = 1_000;

/// What the instruction hook checks: a deadline and a kill request.
#[derive(Default)]
pub(crate) struct Guard {
    started: parking_lot::Mutex<Option<Instant>>,
    pub killed: AtomicBool,
    /// Set by the hook when it stopped the run.
    tripped: AtomicBool,
    /// Milliseconds the current run may take.
    limit_ms: AtomicU64,
}

impl Guard {
    pub fn arm(&self, limit_ms: u64) {
        *self.started.lock() = Some(Instant::now());
        self.killed.store(false, Ordering::Release);
        self.tripped.store(false, Ordering::Release);
        self.limit_ms.store(limit_ms, Ordering::Release);
    }

    pub fn disarm(&self) {
        *self.started.lock() = None;
    }

    /// Why the running script must stop, if it must.
    fn stop(&self) -> Option<&'static str> {
        let why = if self.killed.load(Ordering::Acquire) {
            "ERR Script killed by user with SCRIPT KILL... (nothing it wrote was kept)"
        } else {
            let started = (*self.started.lock())?;
            if (started.elapsed().as_millis() as u64) <= self.limit_ms.load(Ordering::Acquire) {
                return None;
            }
            "ERR Script killed: it ran longer than 5 seconds (busy-reply-threshold; nothing it wrote was kept)"
        };
        self.tripped.store(true, Ordering::Release);
        Some(why)
    }

    /// The error of a run the hook stopped (whatever the script did with
    /// the error: `pcall` catches it in Lua).
    pub fn tripped(&self) -> Option<Reply> {
        self.tripped.load(Ordering::Acquire).then(|| {
            Reply::Error(if self.killed.load(Ordering::Acquire) {
                "ERR Script killed by user with SCRIPT KILL... (nothing it wrote was kept)".into()
            } else {
                "ERR Script killed: it ran longer than 5 seconds (busy-reply-threshold; nothing it wrote was kept)"
                    .into()
            })
        })
    }
}

/// One Lua state and the scripts compiled in it.
pub(crate) struct Vm {
    pub lua: Lua,
    functions: HashMap<String, Function>,
    pub guard: Arc<Guard>,
}

impl Vm {
    pub fn new() -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let g = lua.globals();
        // As Redis: no files, no modules, and only `os.clock` of `os`.
        for name in ["loadfile", "dofile", "require", "module", "print"] {
            g.raw_set(name, Value::Nil)?;
        }
        let os: Table = g.get("os")?;
        let safe_os = lua.create_table()?;
        safe_os.set("clock", os.get::<Function>("clock")?)?;
        g.set("os", safe_os)?;
        g.set("redis", redis_table(&lua)?)?;
        g.set("cjson", cjson_table(&lua)?)?;
        g.set("bit", bit_table(&lua)?)?;
        protect_globals(&lua)?;
        let guard = Arc::new(Guard::default());
        let hook_guard = guard.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(10_000),
            move |_, _| match hook_guard.stop() {
                Some(why) => Err(mlua::Error::runtime(why)),
                None => Ok(VmState::Continue),
            },
        )?;
        Ok(Vm {
            lua,
            functions: HashMap::new(),
            guard,
        })
    }

    /// The script's function, compiled on first use in this state.
    pub fn function(&mut self, sha: &str, src: &[u8]) -> Result<Function, String> {
        if let Some(f) = self.functions.get(sha) {
            return Ok(f.clone());
        }
        let f = compile(&self.lua, src)?;
        if self.functions.len() >= MAX_FUNCTIONS {
            self.functions.clear();
        }
        self.functions.insert(sha.to_owned(), f.clone());
        Ok(f)
    }

    pub fn forget_functions(&mut self) {
        self.functions.clear();
    }
}

/// Compiles a script body; the error is Redis's wording.
pub(crate) fn compile(lua: &Lua, src: &[u8]) -> Result<Function, String> {
    lua.load(src)
        .set_name("@user_script")
        .into_function()
        .map_err(|e| format!("ERR Error compiling script (new function): {}", error_text(&e)))
}

/// The message of a Lua error without mlua's stack traceback.
pub(crate) fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } | mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::MemoryError(m) => format!("script ran out of memory: {m}"),
        e => e.to_string(),
    }
    .lines()
    .next()
    .unwrap_or_default()
    .to_owned()
}

/// Setting or reading an undefined global is an error, as in Redis.
fn protect_globals(lua: &Lua) -> mlua::Result<()> {
    lua.load(
        r#"
        local mt = {}
        mt.__newindex = function(t, n, v)
            error("Script attempted to create global variable '" .. tostring(n) .. "'", 2)
        end
        mt.__index = function(t, n)
            error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
        end
        setmetatable(_G, mt)
        "#,
    )
    .set_name("@protect")
    .exec()
}

/// `redis.*` except `call` and `pcall`, which each run sets (they reach
/// that run's transaction).
fn redis_table(lua: &Lua) -> mlua::Result<Table> {
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
            r.set("err", s)?;
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
fn cjson_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "encode",
        lua.create_function(|_, v: Value| {
            let j = to_json(&v, 0).map_err(mlua::Error::runtime)?;
            Ok(j.to_string())
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

fn to_json(v: &Value, depth: usize) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    if depth > 1000 {
        return Err("Cannot serialise, excessive nesting (1001)".into());
    }
    Ok(match v {
        Value::Nil => J::Null,
        Value::LightUserData(u) if u.0.is_null() => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => J::from(*i),
        Value::Number(n) => serde_json::Number::from_f64(*n)
            .map(J::Number)
            .ok_or("Cannot serialise number: must not be NaN or Inf")?,
        Value::String(s) => J::String(s.to_string_lossy()),
        Value::Table(t) => {
            let len = t.raw_len();
            let pairs: Vec<(Value, Value)> = t.pairs::<Value, Value>().filter_map(Result::ok).collect();
            if len > 0 && pairs.len() == len {
                let mut a = Vec::with_capacity(len);
                for i in 1..=len {
                    a.push(to_json(&t.raw_get::<Value>(i).map_err(|e| e.to_string())?, depth + 1)?);
                }
                J::Array(a)
            } else {
                let mut m = serde_json::Map::new();
                for (k, val) in pairs {
                    let key = match k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        Value::Number(n) => n.to_string(),
                        _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                    };
                    m.insert(key, to_json(&val, depth + 1)?);
                }
                J::Object(m)
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    })
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
fn bit_table(lua: &Lua) -> mlua::Result<Table> {
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
        Value::Number(n) => Reply::Int(*n as i64),
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
