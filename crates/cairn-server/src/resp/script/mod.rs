//! Lua scripts: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT.
//!
//! ```text
//! EVAL "return redis.call('incr', KEYS[1])" 1 counter     :1
//! SCRIPT LOAD "return ARGV[1]"                            "<sha1>"
//! EVALSHA <sha1> 0 hello                                  "hello"
//! ```
//!
//! A script runs as Redis runs one: nothing else writes while it runs
//! ([`cairn_core::Db::transaction_async`]: it runs on the writer thread, in
//! order with the other writes), its `redis.call`s see each other's
//! writes, and other connections see all of its writes at once, after it
//! ends: they commit with the group the script joined, sharing its fsync
//! with the writes and scripts around it. Each write inside is the same engine write the command makes
//! outside a script ([`cmd::write_ops`]), and key reads are answered as
//! inside `MULTI` ([`cmd::multi::seen_reply`]), so a command means the same
//! thing in both places.
//!
//! Where cairn differs from Redis:
//! - A script stopped by `SCRIPT KILL` or by running past 5 seconds leaves
//!   nothing it wrote (Redis cannot stop a script that wrote; it answers
//!   `BUSY` to everyone after 5 s instead). `SCRIPT KILL` stops scripts that
//!   have run at least 0.5 s, and answers `NOTBUSY` for shorter ones. A
//!   script that fails with an error keeps the writes made before the
//!   error, as in Redis.
//! - `PUBLISH` inside a script answers at once and sends after the
//!   script's writes are visible (never, if it is stopped).
//! - Globals and libraries are read-only (Redis 7's rule); `setfenv`,
//!   `getfenv`, `newproxy` and stopping the garbage collector are not
//!   there. `math.random` is not reseeded per script.
//! - Reads that are not of keys (`DBSIZE`, `KEYS`, `SCAN`, `RANDOMKEY`) see
//!   the data as committed before the script, not its own writes. Server
//!   commands other than `PING`, `ECHO`, `TIME`, `PUBLISH`, `OBJECT` and
//!   `MEMORY` are refused, as are `FLUSHDB`, `FLUSHALL` and `SCRIPT`.
//! - A `MULTI` that holds a script runs all its commands that way, in one
//!   transaction, instead of as one engine batch; its reads that are not
//!   of keys then also see the data as committed before it.
//! - `SELECT` inside a script reaches existing stores only (a script cannot
//!   create stores); `cmsgpack` and `struct` are not there; `redis.setresp(3)`
//!   is refused; there is no script debugger (`SCRIPT DEBUG`).
//! - Scripts run one at a time and hold up writes (not reads) meanwhile.
//! - The script cache holds at most 10,000 scripts; past that, scripts
//!   that came in by `EVAL` (not `SCRIPT LOAD`) are forgotten.

mod call;
mod convert;
mod libs;
mod lua;
mod run;

use crate::resp::Shared;
use crate::resp::cmd::{self, Spec};
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use std::collections::HashMap;
use std::sync::Arc;

/// Scripts kept for EVALSHA before EVAL-sent ones are forgotten.
const MAX_SCRIPTS: usize = 10_000;

/// A script body and whether `SCRIPT LOAD` brought it.
struct Cached {
    src: Arc<Vec<u8>>,
    loaded: bool,
}

/// The script cache and the pool of Lua states, shared by all connections.
#[derive(Default)]
pub(crate) struct Scripts {
    cache: parking_lot::RwLock<HashMap<String, Cached>>,
    vms: parking_lot::Mutex<Vec<lua::Vm>>,
    /// The guard of the script running now (for SCRIPT KILL).
    running: parking_lot::Mutex<Option<Arc<lua::Guard>>>,
}

impl Scripts {
    fn remember(&self, sha: &str, src: &[u8], loaded: bool) -> Arc<Vec<u8>> {
        let mut cache = self.cache.write();
        if let Some(c) = cache.get_mut(sha) {
            c.loaded |= loaded;
            return c.src.clone();
        }
        if cache.len() >= MAX_SCRIPTS {
            cache.retain(|_, c| c.loaded);
        }
        let src = Arc::new(src.to_vec());
        cache.insert(
            sha.to_owned(),
            Cached {
                src: src.clone(),
                loaded,
            },
        );
        src
    }

    fn lookup(&self, sha: &[u8]) -> Option<(String, Arc<Vec<u8>>)> {
        let sha = String::from_utf8_lossy(sha).to_ascii_lowercase();
        let src = self.cache.read().get(&sha)?.src.clone();
        Some((sha, src))
    }

    fn flush(&self) {
        self.cache.write().clear();
        for vm in self.vms.lock().iter_mut() {
            vm.forget_functions();
        }
    }

    fn take_vm(&self) -> Result<lua::Vm, Reply> {
        match self.vms.lock().pop() {
            Some(vm) => Ok(vm),
            None => lua::Vm::new().map_err(|e| Reply::err(format!("could not start Lua: {e}"))),
        }
    }

    fn give_back(&self, vm: lua::Vm) {
        self.vms.lock().push(vm);
    }
}

/// SHA-1 of a script, in lowercase hex (the script's name for EVALSHA).
pub(crate) fn sha1_hex(src: &[u8]) -> String {
    cairn_core::ContentHash::of(cairn_core::Algorithm::Sha1, src).to_hex()
}

pub(crate) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "eval" | "eval_ro" => {
            let sha = sha1_hex(&args[1]);
            let src = sh.scripts.remember(&sha, &args[1], false);
            eval(sh, sess, sha, src, &args[2..], spec.name == "eval_ro").await
        }
        "evalsha" | "evalsha_ro" => match sh.scripts.lookup(&args[1]) {
            Some((sha, src)) => eval(sh, sess, sha, src, &args[2..], spec.name == "evalsha_ro").await,
            None => Reply::Error("NOSCRIPT No matching script. Please use EVAL.".into()),
        },
        _ => script_command(sh, args).await,
    }
}

/// A script future that owns what it needs, for a connection to submit
/// now and answer in order later (pipelined scripts join one group commit
/// as pipelined writes do). The first poll queues the script's job.
pub(crate) fn submit(
    sh: &Shared,
    sess: &Session,
    spec: &'static Spec,
    args: Vec<Vec<u8>>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>> {
    let sh = sh.clone();
    let mut sess = copy_session(sess);
    Box::pin(async move { run(&sh, &mut sess, spec, &args).await })
}

/// SCRIPT LOAD / EXISTS / FLUSH / KILL / HELP.
async fn script_command(sh: &Shared, args: &[Vec<u8>]) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    match (sub.as_slice(), args.len()) {
        (b"LOAD", 3) => {
            // Compiled once here so a broken script is refused at LOAD, as in Redis.
            let src = args[2].clone();
            let checked = tokio::task::spawn_blocking(move || {
                let lua =
                    mlua::Lua::new_with(mlua::StdLib::NONE, mlua::LuaOptions::default()).map_err(|e| e.to_string())?;
                lua::compile(&lua, &src).map(|_| src)
            })
            .await;
            match checked {
                Ok(Ok(src)) => {
                    let sha = sha1_hex(&src);
                    sh.scripts.remember(&sha, &src, true);
                    Reply::text(sha)
                }
                Ok(Err(e)) => Reply::Error(e),
                Err(e) => Reply::err(format!("script check failed: {e}")),
            }
        }
        (b"EXISTS", n) if n >= 3 => {
            let cache = sh.scripts.cache.read();
            Reply::Array(
                args[2..]
                    .iter()
                    .map(|s| {
                        Reply::Int(i64::from(
                            cache.contains_key(&String::from_utf8_lossy(s).to_ascii_lowercase()),
                        ))
                    })
                    .collect(),
            )
        }
        (b"FLUSH", 2) => {
            sh.scripts.flush();
            Reply::OK
        }
        (b"FLUSH", 3) if args[2].eq_ignore_ascii_case(b"ASYNC") || args[2].eq_ignore_ascii_case(b"SYNC") => {
            sh.scripts.flush();
            Reply::OK
        }
        (b"KILL", 2) => match sh.scripts.running.lock().as_ref() {
            Some(g) if g.kill() => Reply::OK,
            _ => Reply::Error("NOTBUSY No scripts in execution right now.".into()),
        },
        (b"HELP", 2) => Reply::Array(
            [
                "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "EXISTS <sha1> [<sha1> ...]",
                "    Return information about the existence of the scripts in the script cache.",
                "FLUSH [ASYNC|SYNC]",
                "    Flush the Lua scripts cache.",
                "KILL",
                "    Kill the currently executing Lua script (cairn keeps none of its writes).",
                "LOAD <script>",
                "    Load a script into the scripts cache without executing it.",
            ]
            .into_iter()
            .map(|s| Reply::Status(s.into()))
            .collect(),
        ),
        (b"FLUSH", 3) => Reply::err("SCRIPT FLUSH only support SYNC|ASYNC option"),
        (b"LOAD" | b"EXISTS" | b"KILL" | b"FLUSH" | b"HELP", _) => Reply::err(format!(
            "wrong number of arguments for 'script|{}' command",
            String::from_utf8_lossy(&args[1]).to_ascii_lowercase()
        )),
        _ => Reply::err(format!(
            "unknown subcommand '{}'. Try SCRIPT HELP.",
            cmd::show(&args[1])
        )),
    }
}

/// A script's `KEYS` and `ARGV`.
type KeysAndArgs = (Vec<Vec<u8>>, Vec<Vec<u8>>);

/// `numkeys key... arg...` split into the keys and the arguments.
fn split_keys(rest: &[Vec<u8>]) -> Result<KeysAndArgs, Reply> {
    let numkeys = match cmd::int_arg(&rest[0]) {
        Ok(n) if n < 0 => return Err(Reply::err("Number of keys can't be negative")),
        Ok(n) if n as usize > rest.len() - 1 => {
            return Err(Reply::err("Number of keys can't be greater than number of args"));
        }
        Ok(n) => n as usize,
        Err(r) => return Err(r),
    };
    Ok((rest[1..=numkeys].to_vec(), rest[1 + numkeys..].to_vec()))
}

/// The connection's state as a script or transaction starts with it.
fn copy_session(sess: &Session) -> Session {
    let mut s = Session::new(sess.id, sess.peer.clone(), false);
    s.store.clone_from(&sess.store);
    s.value_type = sess.value_type;
    s.principal.clone_from(&sess.principal);
    s
}

/// Runs a script: `rest` is `numkeys key... arg...`.
async fn eval(sh: &Shared, sess: &Session, sha: String, src: Arc<Vec<u8>>, rest: &[Vec<u8>], ro: bool) -> Reply {
    let (keys, argv) = match split_keys(rest) {
        Ok(split) => split,
        Err(r) => return r,
    };
    let sess = copy_session(sess);
    let sh2 = sh.clone();
    let handle = tokio::runtime::Handle::current();
    // Runs as the writer, in order with other writes, and shares their
    // group commit (one fsync for many scripts).
    let job = sh.app.db.transaction_async(move |tx| {
        let run = run::Run {
            sh: &sh2,
            sess,
            handle,
            read_only: ro,
        };
        run.script(tx, &sha, &src, keys, argv)
    });
    match job.await {
        Ok((reply, published)) => {
            deliver(sh, published);
            reply
        }
        Err(e) => cmd::engine_error(&e),
    }
}

/// Sends what a script published, now that its writes are visible.
fn deliver(sh: &Shared, published: run::Published) {
    for (channel, message) in published {
        sh.hub.publish(&channel, &message);
    }
}

/// True for the commands that run a script.
pub(crate) fn is_script(name: &str) -> bool {
    matches!(name, "eval" | "evalsha" | "eval_ro" | "evalsha_ro")
}

/// EXEC of a transaction with scripts in it (`run::Run::exec`).
pub(crate) async fn exec(
    sh: &Shared,
    sess: &mut Session,
    queued: Vec<(&'static Spec, Vec<Vec<u8>>)>,
    checks: Vec<cairn_core::Check>,
) -> Reply {
    // Stores a SELECT, COPY .. DB or MOVE of the transaction makes are made
    // now, as outside a transaction: the transaction holds the writer, and
    // making a store needs it.
    let mut probe = copy_session(sess);
    for (spec, args) in &queued {
        if spec.name == "select" {
            let _ = cmd::server::select(sh, &mut probe, &args[1]).await;
        } else if cmd::keys::ensure_copy_db(sh, &probe, spec, args).await.is_err() {
            // The command answers its own error when it runs.
        }
    }
    let run_sess = copy_session(sess);
    let sh2 = sh.clone();
    let handle = tokio::runtime::Handle::current();
    let job = sh.app.db.transaction_async(move |tx| {
        let run = run::Run {
            sh: &sh2,
            sess: run_sess,
            handle,
            read_only: false,
        };
        run.exec(tx, queued, checks)
    });
    match job.await {
        Ok((reply, published, after)) => {
            deliver(sh, published);
            if !reply.is_error() {
                // SELECT inside the transaction moves the connection, as in Redis.
                sess.store = after.store;
                sess.value_type = after.value_type;
            }
            reply
        }
        Err(e) => cmd::engine_error(&e),
    }
}
