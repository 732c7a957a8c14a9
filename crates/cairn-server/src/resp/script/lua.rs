//! The Lua side of scripts: a sandboxed Lua 5.1 state set up as Redis 7
//! sets up its own (read-only globals and libraries, `redis.*`, `cjson`,
//! `bit`), and the guard that stops runaway scripts.
//!
//! One state serves script after script, so nothing a script does may
//! reach the next one: `_G`, the libraries and the string metatable are
//! read-only (`rawset` and `setmetatable` on them are refused too), and
//! `setfenv`, `getfenv` and stopping the garbage collector are not there.
//! Each run sets `redis.call` and `redis.pcall` in the real `redis` table
//! (scripts see it through a read-only proxy) to functions that reach its
//! own transaction.

use crate::resp::reply::Reply;
use mlua::{Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long a script may run before it is stopped (Redis's
/// `busy-reply-threshold`, after which Redis only answers `BUSY`). Its
/// writes are then dropped: cairn commits a script's writes at its end.
pub(crate) const TIME_LIMIT_MS: u64 = 5_000;

/// `SCRIPT KILL` stops scripts that ran at least this long (Redis can only
/// be asked once a script has run past its threshold; shorter ones are not
/// "busy" and answer `NOTBUSY`).
const KILLABLE_AFTER: Duration = Duration::from_millis(500);

/// Most memory one Lua state may hold.
const MEMORY_LIMIT: usize = 256 << 20;

/// A state that still holds this much after a full collection is dropped.
const MEMORY_KEEP: usize = 64 << 20;

/// Compiled scripts kept per state before the cache starts over.
const MAX_FUNCTIONS: usize = 1_000;

const KILLED: &str = "ERR Script killed by user with SCRIPT KILL... (nothing it wrote was kept)";
const TIMED_OUT: &str =
    "ERR Script killed: it ran longer than 5 seconds (busy-reply-threshold; nothing it wrote was kept)";

/// What the instruction hook checks: a deadline and a kill request.
#[derive(Default)]
pub(crate) struct Guard {
    started: parking_lot::Mutex<Option<Instant>>,
    killed: AtomicBool,
    /// Set once the run must stop.
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

    /// SCRIPT KILL: true when the running script has run long enough to
    /// be stopped (it then stops at its next check).
    pub fn kill(&self) -> bool {
        let busy = self.started.lock().is_some_and(|t| t.elapsed() >= KILLABLE_AFTER);
        if busy {
            self.killed.store(true, Ordering::Release);
        }
        busy
    }

    /// Why the running script must stop, if it must.
    fn stop(&self) -> Option<&'static str> {
        if self.tripped.load(Ordering::Acquire) {
            return Some(self.why());
        }
        if !self.killed.load(Ordering::Acquire) {
            let started = (*self.started.lock())?;
            if (started.elapsed().as_millis() as u64) <= self.limit_ms.load(Ordering::Acquire) {
                return None;
            }
        }
        self.tripped.store(true, Ordering::Release);
        Some(self.why())
    }

    fn why(&self) -> &'static str {
        if self.killed.load(Ordering::Acquire) {
            KILLED
        } else {
            TIMED_OUT
        }
    }

    /// The error of a run that was stopped, whatever the script did with
    /// the error.
    pub fn tripped(&self) -> Option<Reply> {
        self.tripped
            .load(Ordering::Acquire)
            .then(|| Reply::Error(self.why().into()))
    }
}

/// The sandbox, run once per state with `hidden` and `stopped` (a function
/// answering why the run must stop, or nil). Besides read-only globals it
/// makes `pcall` and `xpcall` re-raise the guard's error once the run must
/// stop, so no loop of protected calls can outlive it.
const SANDBOX: &str = r#"
local hidden, stopped, unwrap = ...
local raw_pcall, raw_xpcall, raw_rawset, raw_setmetatable = pcall, xpcall, rawset, setmetatable
local raw_getmetatable, raw_gc, error, select, type, unpack, tostring = getmetatable, collectgarbage, error, select, type, unpack, tostring

local function check()
    local why = stopped()
    if why then error(why, 0) end
end
local function pack(...) return { n = select('#', ...), ... } end

-- A failed redis.call is an error table, as in Redis, once caught.
pcall = function(...)
    local r = pack(raw_pcall(...))
    check()
    if not r[1] then r[2] = unwrap(r[2]) end
    return unpack(r, 1, r.n)
end
xpcall = function(f, handler, ...)
    local r = pack(raw_xpcall(f, function(e) return handler(unwrap(e)) end, ...))
    check()
    return unpack(r, 1, r.n)
end
collectgarbage = function(opt, ...)
    if opt == 'stop' or opt == 'setpause' or opt == 'setstepmul' then
        error("collectgarbage('" .. tostring(opt) .. "') is not allowed in scripts", 2)
    end
    return raw_gc(opt, ...)
end

hidden.run = function(f)
    local ok, res = raw_pcall(f)
    if ok then return true, res end
    res = unwrap(res)
    if type(res) == 'table' and type(res.err) == 'string' then
        return false, res.err, res.line, true
    end
    return false, res
end

local protected = {}
local function readonly_error() error('Attempt to modify a readonly table', 2) end
local function readonly(t)
    local p = {}
    raw_setmetatable(p, { __index = t, __newindex = readonly_error, __metatable = false })
    protected[p] = true
    return p
end
rawset = function(t, k, v)
    if protected[t] then error('Attempt to modify a readonly table', 2) end
    return raw_rawset(t, k, v)
end
for _, name in ipairs({ 'string', 'table', 'math', 'os', 'redis', 'cjson', 'bit' }) do
    raw_rawset(_G, name, readonly(_G[name]))
end
raw_getmetatable('').__metatable = false
for _, name in ipairs({ 'setfenv', 'getfenv', 'newproxy', 'gcinfo', 'module', 'loadfile', 'dofile', 'require', 'print' }) do
    raw_rawset(_G, name, nil)
end
protected[_G] = true
raw_setmetatable(_G, {
    __index = function(_, n)
        error("Script attempted to access nonexistent global variable '" .. tostring(n) .. "'", 2)
    end,
    __newindex = readonly_error,
    __metatable = false,
})
"#;

/// A failed `redis.call`: the command's error reply travels as the Lua
/// error, with the script line of the call, and turns into Redis's error
/// table (`{err = ...}`) where the script or the runner catches it.
#[derive(Debug)]
pub(crate) struct CallError {
    pub reply: String,
    pub line: Option<usize>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reply)
    }
}

impl std::error::Error for CallError {}

fn find_call_error(e: &mlua::Error) -> Option<&CallError> {
    match e {
        mlua::Error::ExternalError(x) => x.downcast_ref::<CallError>(),
        mlua::Error::CallbackError { cause, .. } | mlua::Error::WithContext { cause, .. } => find_call_error(cause),
        _ => None,
    }
}

/// One Lua state and the scripts compiled in it.
pub(crate) struct Vm {
    pub lua: Lua,
    functions: HashMap<String, Function>,
    /// The sandbox's runner (`hidden.run`).
    pub hidden: Table,
    /// The real `redis` table, where each run sets `call` and `pcall`.
    pub redis: Table,
    pub guard: Arc<Guard>,
}

impl Vm {
    pub fn new() -> mlua::Result<Vm> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH | StdLib::OS;
        let lua = Lua::new_with(libs, LuaOptions::default())?;
        lua.set_memory_limit(MEMORY_LIMIT)?;
        let g = lua.globals();
        // As Redis: of `os`, only `os.clock`.
        let os: Table = g.get("os")?;
        let safe_os = lua.create_table()?;
        safe_os.set("clock", os.get::<Function>("clock")?)?;
        g.set("os", safe_os)?;
        let redis = super::libs::redis_table(&lua)?;
        g.set("redis", redis.clone())?;
        g.set("cjson", super::libs::cjson_table(&lua)?)?;
        g.set("bit", super::libs::bit_table(&lua)?)?;
        let guard = Arc::new(Guard::default());
        let hidden = lua.create_table()?;
        let g2 = guard.clone();
        let stopped = lua.create_function(move |_, ()| Ok(g2.stop()))?;
        let unwrap = lua.create_function(|lua, v: Value| {
            let Value::Error(e) = &v else { return Ok(v) };
            let Some(c) = find_call_error(e) else { return Ok(v) };
            let t = lua.create_table()?;
            t.raw_set("err", c.reply.as_str())?;
            if let Some(line) = c.line {
                t.raw_set("line", line)?;
            }
            Ok(Value::Table(t))
        })?;
        lua.load(SANDBOX)
            .set_name("@sandbox")
            .call::<()>((hidden.clone(), stopped, unwrap))?;
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
            hidden,
            redis,
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

    /// After a run: collects garbage when the state grew, and says whether
    /// the state is still fit to keep (a script that filled it leaves it
    /// unable to even compile the next one).
    pub fn settle(&self) -> bool {
        if self.lua.used_memory() > MEMORY_KEEP / 4 {
            let _ = self.lua.gc_collect();
        }
        self.lua.used_memory() <= MEMORY_KEEP
    }
}

/// Compiles a script body; the error is Redis's wording. A first line
/// `#!lua` (Redis 7's shebang, with `flags=...`) is read by the caller and
/// skipped here, keeping line numbers.
pub(crate) fn compile(lua: &Lua, src: &[u8]) -> Result<Function, String> {
    let body: std::borrow::Cow<'_, [u8]> = match shebang(src) {
        Some(_) => {
            let nl = src.iter().position(|&b| b == b'\n').unwrap_or(src.len());
            let mut b = b"--".to_vec();
            b.extend_from_slice(&src[nl..]);
            b.into()
        }
        None => src.into(),
    };
    lua.load(body.as_ref())
        .set_name("@user_script")
        .into_function()
        .map_err(|e| format!("ERR Error compiling script (new function): {}", error_text(&e)))
}

/// The flags of a `#!lua flags=a,b` first line, if the script has one.
pub(crate) fn shebang(src: &[u8]) -> Option<Vec<String>> {
    let line = src.strip_prefix(b"#!")?;
    let line = &line[..line.iter().position(|&b| b == b'\n').unwrap_or(line.len())];
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_whitespace();
    let _engine = words.next();
    let flags = words
        .filter_map(|w| w.strip_prefix("flags="))
        .flat_map(|f| f.split(',').map(str::to_owned).collect::<Vec<_>>())
        .collect();
    Some(flags)
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

/// A script's error value as text (a string, or an error from Rust).
pub(crate) fn error_value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Error(e) => error_text(e),
        Value::Nil => "nil".into(),
        other => format!("{} (an error value of type {})", other.type_name(), other.type_name()),
    }
}
