//! One script run or one EXEC with scripts: the transaction it holds, the
//! Lua state it borrows, and the reply it ends with.

use super::call::Calls;
use super::{convert, lua};
use crate::resp::Shared;
use crate::resp::cmd;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Check, Tx};
use mlua::{Lua, MultiValue, Value};
use std::cell::RefCell;

/// Everything a running script's calls need.
pub(crate) struct Run<'a> {
    pub sh: &'a Shared,
    pub sess: Session,
    pub handle: tokio::runtime::Handle,
    pub read_only: bool,
}

/// Messages a script published: sent once its writes are visible.
pub(crate) type Published = Vec<(Vec<u8>, Vec<u8>)>;

impl Run<'_> {
    /// Runs the script to its reply, as the writer (in `tx`).
    pub fn script(
        self,
        tx: &mut Tx<'_, '_>,
        sha: &str,
        src: &[u8],
        keys: Vec<Vec<u8>>,
        argv: Vec<Vec<u8>>,
    ) -> (Reply, Published) {
        let read_only = self.read_only;
        let state = RefCell::new(Calls::new(self, tx));
        let r = eval(&state, sha, src, keys, argv, read_only);
        let calls = state.into_inner();
        match calls.stopped {
            Some(stopped) => (stopped, Vec::new()),
            None => (r, calls.published),
        }
    }

    /// EXEC of a transaction that holds scripts: the queued commands run
    /// in order in one engine transaction (the WATCHed revisions checked
    /// first), each as it would inside a script, and commit together.
    /// Returns the reply, what was published, and the session as the
    /// commands left it (SELECT).
    pub fn exec(
        self,
        tx: &mut Tx<'_, '_>,
        queued: Vec<(&'static cmd::Spec, Vec<Vec<u8>>)>,
        checks: Vec<Check>,
    ) -> (Reply, Published, Session) {
        if !checks.is_empty() {
            match tx.write(checks, Vec::new()) {
                Ok(w) if !w.success => return (Reply::NilArray, Vec::new(), self.sess),
                Err(e) => return (cmd::engine_error(&e), Vec::new(), self.sess),
                Ok(_) => {}
            }
        }
        let state = RefCell::new(Calls::new(self, tx));
        let mut replies = Vec::with_capacity(queued.len());
        for (spec, args) in queued {
            let r = if super::is_script(spec.name) {
                // A script's SELECT is its own, as in Redis.
                let at = state.borrow().selected();
                let r = eval_command(&state, spec.name, &args);
                state.borrow_mut().select_back(at);
                r
            } else {
                state.borrow_mut().command(args)
            };
            replies.push(r);
            if state.borrow().stopped.is_some() {
                break;
            }
        }
        let calls = state.into_inner();
        match calls.stopped {
            Some(stopped) => (stopped, Vec::new(), calls.run.sess),
            None => (Reply::Array(replies), calls.published, calls.run.sess),
        }
    }
}

/// EVAL / EVALSHA queued in a transaction: `args` as sent.
fn eval_command(state: &RefCell<Calls<'_, '_, '_, '_>>, name: &str, args: &[Vec<u8>]) -> Reply {
    let scripts = state.borrow().run.sh.scripts.clone();
    let (sha, src) = if name.starts_with("evalsha") {
        match scripts.lookup(&args[1]) {
            Some(found) => found,
            None => return Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
        }
    } else {
        let sha = super::sha1_hex(&args[1]);
        let src = scripts.remember(&sha, &args[1], false);
        (sha, src)
    };
    match super::split_keys(&args[2..]) {
        Ok((keys, argv)) => eval(state, &sha, &src, keys, argv, name.ends_with("_ro")),
        Err(r) => r,
    }
}

/// How a script may run, from its `#!lua` line: read-only with
/// `flags=no-writes`; an error for another engine or an unknown flag.
fn shebang_read_only(src: &[u8]) -> Result<bool, Reply> {
    let Some(flags) = lua::shebang(src) else {
        return Ok(false);
    };
    if !src.starts_with(b"#!lua") || src.get(5).is_some_and(|b| !b.is_ascii_whitespace()) {
        let engine =
            String::from_utf8_lossy(&src[2..src.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(src.len())])
                .into_owned();
        return Err(Reply::err(format!("Unexpected engine in script shebang: {engine}")));
    }
    let mut read_only = false;
    for f in flags {
        match f.as_str() {
            "no-writes" => read_only = true,
            "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
            other => return Err(Reply::err(format!("Unexpected flag in script shebang: {other}"))),
        }
    }
    Ok(read_only)
}

/// Runs one script in the transaction `state` holds. A script stopped by
/// the guard (SCRIPT KILL, time limit) drops the whole transaction.
fn eval(
    state: &RefCell<Calls<'_, '_, '_, '_>>,
    sha: &str,
    src: &[u8],
    keys: Vec<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    read_only: bool,
) -> Reply {
    let read_only = match shebang_read_only(src) {
        Ok(flagged) => read_only || flagged,
        Err(r) => return r,
    };
    let sh = state.borrow().run.sh;
    let scripts = &sh.scripts;
    let mut vm = match scripts.take_vm() {
        Ok(vm) => vm,
        Err(r) => return r,
    };
    let f = match vm.function(sha, src) {
        Ok(f) => f,
        Err(e) => {
            scripts.give_back(vm);
            return Reply::Error(e);
        }
    };
    state.borrow_mut().enter_script(read_only);
    // Armed once the writer is ours: waiting for it is not running.
    let guard = vm.guard.clone();
    guard.arm(lua::TIME_LIMIT_MS);
    *scripts.running.lock() = Some(guard.clone());
    let r = run_function(&vm, &f, state, keys, argv, sha);
    *scripts.running.lock() = None;
    guard.disarm();
    if vm.settle() {
        scripts.give_back(vm);
    } else {
        tracing::warn!("a script left its Lua state too full to reuse; starting a fresh one");
    }
    let mut st = state.borrow_mut();
    st.leave_script();
    match guard.tripped() {
        Some(stopped) => {
            st.tx.discard();
            st.stopped = Some(stopped.clone());
            stopped
        }
        None => r,
    }
}

fn run_function(
    vm: &lua::Vm,
    f: &mlua::Function,
    state: &RefCell<Calls<'_, '_, '_, '_>>,
    keys: Vec<Vec<u8>>,
    argv: Vec<Vec<u8>>,
    sha: &str,
) -> Reply {
    let lua = &vm.lua;
    let result = lua.scope(|scope| {
        let g = lua.globals();
        g.raw_set("KEYS", strings(lua, keys)?)?;
        g.raw_set("ARGV", strings(lua, argv)?)?;
        vm.redis.raw_set(
            "call",
            scope.create_function(|lua, args: MultiValue| match super::call::call(state, args)? {
                Reply::Error(reply) => Err(mlua::Error::external(lua::CallError {
                    reply,
                    // Level 0 is this function, 1 the script.
                    line: lua.inspect_stack(1, |d| d.current_line()).flatten(),
                })),
                r => convert::reply_to_lua(lua, r),
            })?,
        )?;
        vm.redis.raw_set(
            "pcall",
            scope.create_function(|lua, args: MultiValue| {
                let r = super::call::call(state, args)?;
                convert::reply_to_lua(lua, r)
            })?,
        )?;
        let runner: mlua::Function = vm.hidden.raw_get("run")?;
        let (ok, res, line, table): (bool, Value, Option<i64>, Option<bool>) = runner.call(f.clone())?;
        Ok(if ok {
            convert::lua_to_reply(&res, 0)
        } else {
            error_reply(&res, line, table.unwrap_or(false), sha)
        })
    });
    result.unwrap_or_else(|e| Reply::err(format!("{} script: {sha}, on @user_script.", lua::error_text(&e))))
}

/// The error reply of a failed script, worded as Redis words it: an error
/// table's text (`redis.call`'s, `error({err = ...})`) as it is, any other
/// error after `ERR`, both followed by the script and line.
fn error_reply(res: &Value, line: Option<i64>, table: bool, sha: &str) -> Reply {
    let text = one_line(&lua::error_value_text(res));
    let at = |line: Option<i64>| line.map_or_else(String::new, |l| format!(":{l}"));
    if table {
        return Reply::Error(format!("{text} script: {sha}, on @user_script{}.", at(line)));
    }
    // "user_script:3: attempt to ..." names its line.
    let line = text
        .strip_prefix("user_script:")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok());
    Reply::Error(format!("ERR {text} script: {sha}, on @user_script{}.", at(line)))
}

/// Errors are one line on the wire.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

fn strings(lua: &Lua, items: Vec<Vec<u8>>) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, s) in items.into_iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(s)?)?;
    }
    Ok(t)
}
