//! One script run: the transaction it holds, and `redis.call` /
//! `redis.pcall` turning into the same engine writes and reads the
//! commands make outside scripts.

use super::lua::{self, Vm};
use crate::resp::Shared;
use crate::resp::cmd::{self, InMulti, Outcome, Perm};
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Check, Op, OpOutcome, Tx};
use mlua::{Lua, MultiValue, Value};
use std::cell::RefCell;

/// Reads that are not of keys, answered from committed data.
const OTHER_READS: &[&str] = &[
    "ping",
    "echo",
    "time",
    "dbsize",
    "keys",
    "scan",
    "randomkey",
    "publish",
    "object",
    "memory",
];

/// Everything a running script's calls need.
pub(crate) struct Run<'a> {
    pub sh: &'a Shared,
    pub sess: Session,
    pub handle: tokio::runtime::Handle,
    pub read_only: bool,
}

/// A `redis.call` that failed: its error reply travels as the Lua error,
/// with the script line of the call.
#[derive(Debug)]
struct CallError {
    reply: String,
    line: Option<usize>,
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reply)
    }
}

impl std::error::Error for CallError {}

impl Run<'_> {
    /// Runs the script to its reply, as the writer (in `tx`).
    pub fn script(self, tx: &mut Tx<'_, '_>, sha: &str, src: &[u8], keys: Vec<Vec<u8>>, argv: Vec<Vec<u8>>) -> Reply {
        let read_only = self.read_only;
        let state = RefCell::new(Calls {
            run: self,
            tx,
            in_script: false,
            stopped: None,
        });
        let r = eval(&state, sha, src, keys, argv, read_only);
        state.into_inner().stopped.unwrap_or(r)
    }

    /// EXEC of a transaction that holds scripts: the queued commands run
    /// in order in one engine transaction (the WATCHed revisions checked
    /// first), each as it would inside a script, and commit together.
    /// Returns the reply and the session as the commands left it (SELECT).
    pub fn exec(
        self,
        tx: &mut Tx<'_, '_>,
        queued: Vec<(&'static cmd::Spec, Vec<Vec<u8>>)>,
        checks: Vec<Check>,
    ) -> (Reply, Session) {
        if !checks.is_empty() {
            match tx.write(checks, Vec::new()) {
                Ok(w) if !w.success => return (Reply::NilArray, self.sess),
                Err(e) => return (cmd::engine_error(&e), self.sess),
                Ok(_) => {}
            }
        }
        let state = RefCell::new(Calls {
            run: self,
            tx,
            in_script: false,
            stopped: None,
        });
        let mut replies = Vec::with_capacity(queued.len());
        for (spec, args) in queued {
            let r = match spec.name {
                "eval" | "eval_ro" | "evalsha" | "evalsha_ro" => eval_command(&state, spec.name, &args),
                _ => state.borrow_mut().command(args),
            };
            replies.push(r);
            if state.borrow().stopped.is_some() {
                break;
            }
        }
        let calls = state.into_inner();
        (calls.stopped.unwrap_or(Reply::Array(replies)), calls.run.sess)
    }
}

/// EVAL / EVALSHA queued in a transaction: `args` as sent.
fn eval_command(state: &RefCell<Calls<'_, '_, '_, '_>>, name: &str, args: &[Vec<u8>]) -> Reply {
    let scripts = &state.borrow().run.sh.scripts.clone();
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
    {
        let mut st = state.borrow_mut();
        st.in_script = true;
        st.run.read_only = read_only;
    }
    // Armed once the writer is ours: waiting for it is not running.
    let guard = vm.guard.clone();
    guard.arm(lua::TIME_LIMIT_MS);
    *scripts.running.lock() = Some(guard.clone());
    let r = run_function(&vm, &f, state, keys, argv, sha);
    *scripts.running.lock() = None;
    guard.disarm();
    scripts.give_back(vm);
    let mut st = state.borrow_mut();
    st.in_script = false;
    st.run.read_only = false;
    match guard.tripped() {
        Some(stopped) => {
            st.tx.discard();
            st.stopped = Some(stopped.clone());
            stopped
        }
        None => r,
    }
}

/// The calls of one transaction, shared by `redis.call` and `redis.pcall`.
struct Calls<'r, 't, 'a, 's> {
    run: Run<'r>,
    tx: &'t mut Tx<'a, 's>,
    /// A script is running (else a command queued in MULTI runs).
    in_script: bool,
    /// Why the guard stopped a script: the transaction's reply.
    stopped: Option<Reply>,
}

fn run_function(
    vm: &Vm,
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
        let redis: mlua::Table = g.raw_get("redis")?;
        redis.raw_set(
            "call",
            scope.create_function(|lua, args: MultiValue| {
                let r = call(lua, state, args)?;
                match r {
                    Reply::Error(reply) => Err(mlua::Error::external(CallError {
                        reply,
                        line: lua.inspect_stack(1, |d| d.current_line()).flatten(),
                    })),
                    r => lua::reply_to_lua(lua, r),
                }
            })?,
        )?;
        redis.raw_set(
            "pcall",
            scope.create_function(|lua, args: MultiValue| {
                let r = call(lua, state, args)?;
                lua::reply_to_lua(lua, r)
            })?,
        )?;
        let out = f.call::<Value>(());
        Ok(match out {
            Ok(v) => lua::lua_to_reply(&v, 0),
            Err(e) => error_reply(&e, sha),
        })
    });
    result.unwrap_or_else(|e| error_reply(&e, sha))
}

/// The error reply of a failed script, worded as Redis words it.
fn error_reply(e: &mlua::Error, sha: &str) -> Reply {
    let at = |line: Option<usize>| line.map_or_else(String::new, |l| format!(":{l}"));
    if let Some(c) = find_call_error(e) {
        return Reply::Error(format!("{} script: {sha}, on @user_script{}.", c.reply, at(c.line)));
    }
    let text = lua::error_text(e);
    // "user_script:3: attempt to ..." names its line.
    let line = text
        .strip_prefix("user_script:")
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok());
    Reply::Error(format!("ERR {text} script: {sha}, on @user_script{}.", at(line)))
}

fn find_call_error(e: &mlua::Error) -> Option<&CallError> {
    match e {
        mlua::Error::ExternalError(x) => x.downcast_ref::<CallError>(),
        mlua::Error::CallbackError { cause, .. } => find_call_error(cause),
        mlua::Error::WithContext { cause, .. } => find_call_error(cause),
        _ => None,
    }
}

fn strings(lua: &Lua, items: Vec<Vec<u8>>) -> mlua::Result<mlua::Table> {
    let t = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, s) in items.into_iter().enumerate() {
        t.raw_set(i + 1, lua.create_string(s)?)?;
    }
    Ok(t)
}

/// One `redis.call`: the arguments as a command, run in the transaction.
fn call(lua: &Lua, state: &RefCell<Calls<'_, '_, '_, '_>>, args: MultiValue) -> mlua::Result<Reply> {
    let mut argv = Vec::with_capacity(args.len());
    for v in args {
        match v {
            Value::String(s) => argv.push(s.as_bytes().to_vec()),
            v @ (Value::Integer(_) | Value::Number(_)) => match lua.coerce_string(v)? {
                Some(s) => argv.push(s.as_bytes().to_vec()),
                None => {
                    return Ok(Reply::err(
                        "Lua redis lib command arguments must be strings or integers",
                    ));
                }
            },
            _ => {
                return Ok(Reply::err(
                    "Lua redis lib command arguments must be strings or integers",
                ));
            }
        }
    }
    if argv.is_empty() {
        return Ok(Reply::err(
            "Please specify at least one argument for this redis lib call",
        ));
    }
    let mut st = state.borrow_mut();
    Ok(st.command(argv))
}

impl Calls<'_, '_, '_, '_> {
    fn command(&mut self, args: Vec<Vec<u8>>) -> Reply {
        let Some(spec) = cmd::lookup(&args[0]) else {
            return Reply::err("Unknown Redis command called from script");
        };
        if cmd::check_arity(spec, args.len()).is_err() {
            return Reply::err("Wrong number of args calling Redis command from script");
        }
        // (In a transaction, EXEC checked these when they were queued.)
        let sess = &mut self.run.sess;
        if sess.principal.is_some()
            && let Err(r) = cmd::authorize(sess, spec)
        {
            return r;
        }
        if self.run.read_only && spec.perm == Perm::Write {
            return Reply::err("Write commands are not allowed from read-only scripts.");
        }
        let sh = self.run.sh;
        if spec.name == "select" {
            return select(sh, sess, &args[1]);
        }
        if cmd::multi::KEY_READS.contains(&spec.name) {
            let ops = cmd::multi::read_keys(spec, &args)
                .iter()
                .map(|k| Op::Get {
                    store: sess.store.clone(),
                    key: k.clone(),
                })
                .collect();
            return match self.tx.write(Vec::new(), ops) {
                Ok(w) => cmd::multi::seen_reply(spec.name, &args, &w.ops),
                Err(e) => cmd::engine_error(&e),
            };
        }
        if spec.multi == InMulti::Op {
            if let Err(r) = cmd::keys::copy_target_exists(sh, spec, &args) {
                return r;
            }
            let p = match cmd::write_ops(sh, sess, spec, &args) {
                Ok(p) => p,
                Err(r) => return r,
            };
            return match self.tx.write(p.checks, vec![Op::Try { ops: p.ops }]) {
                Ok(w) => match w.ops.first() {
                    Some(OpOutcome::Tried { ops }) => p.finish.reply(w.success, ops),
                    Some(OpOutcome::Failed { error }) => p.finish.error(&error.0),
                    _ => p.finish.reply(w.success, &[]),
                },
                Err(e) => p.finish.error(&e),
            };
        }
        if OTHER_READS.contains(&spec.name) || (!self.in_script && spec.multi == InMulti::Read) {
            // The writer's own thread runs scripts; a caller of the
            // blocking API leading the group from inside a runtime cannot
            // wait on it.
            if tokio::runtime::Handle::try_current().is_ok() {
                return Reply::err("this command cannot run in a script on this thread");
            }
            let handle = self.run.handle.clone();
            return match handle.block_on(cmd::run(sh, sess, spec, args)) {
                Outcome::Reply(r) | Outcome::Close(r) => r,
                Outcome::Many(mut v) => v.pop().unwrap_or(Reply::Nil),
            };
        }
        Reply::err("This Redis command is not allowed from script")
    }
}

/// `SELECT` inside a script: existing stores only, for this script only.
fn select(sh: &Shared, sess: &mut Session, arg: &[u8]) -> Reply {
    let store = match cmd::server::store_for(arg) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(p) = &sess.principal
        && p.allow(crate::auth::Role::Read, Some(&store)).is_err()
    {
        return Reply::Error(format!("NOPERM this token has no access to store {store:?}"));
    }
    match sh.app.db.store_spec(&store) {
        Ok(spec) => {
            sess.store = store;
            sess.value_type = spec.value_type;
            Reply::OK
        }
        Err(_) => Reply::err(format!(
            "store {store:?} does not exist (a script cannot create stores: SELECT it once outside the script)"
        )),
    }
}
