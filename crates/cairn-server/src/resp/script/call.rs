//! `redis.call` / `redis.pcall` (and the commands of an EXEC with
//! scripts): each command becomes the same engine write or read it is
//! outside scripts, applied in the running transaction.

use super::convert;
use super::run::{Published, Run};
use crate::resp::Shared;
use crate::resp::cmd::{self, InMulti, Outcome, Perm};
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Op, OpOutcome, Tx, ValueType};
use mlua::{MultiValue, Value};
use std::cell::RefCell;

/// Server commands a script may call, answered from committed data.
const SCRIPT_READS: &[&str] = &[
    "ping",
    "echo",
    "time",
    "dbsize",
    "keys",
    "scan",
    "randomkey",
    "object",
    "memory",
    "info",
    "lastsave",
    "pubsub",
];

/// The calls of one transaction, shared by `redis.call` and `redis.pcall`.
pub(super) struct Calls<'r, 't, 'a, 's> {
    pub run: Run<'r>,
    pub tx: &'t mut Tx<'a, 's>,
    /// A script is running (else a command queued in MULTI runs).
    in_script: bool,
    /// Why the guard stopped a script: the transaction's reply.
    pub stopped: Option<Reply>,
    /// PUBLISHed messages, sent after the commit (not before the writes
    /// they announce are visible).
    pub published: Published,
}

impl<'r, 't, 'a, 's> Calls<'r, 't, 'a, 's> {
    pub fn new(run: Run<'r>, tx: &'t mut Tx<'a, 's>) -> Self {
        Calls {
            run,
            tx,
            in_script: false,
            stopped: None,
            published: Vec::new(),
        }
    }
}

impl Calls<'_, '_, '_, '_> {
    pub fn enter_script(&mut self, read_only: bool) {
        self.in_script = true;
        self.run.read_only = read_only;
    }

    pub fn leave_script(&mut self) {
        self.in_script = false;
        self.run.read_only = false;
    }

    /// The selected store, to go back to after a script.
    pub fn selected(&self) -> (String, ValueType) {
        (self.run.sess.store.clone(), self.run.sess.value_type)
    }

    pub fn select_back(&mut self, (store, vt): (String, ValueType)) {
        self.run.sess.store = store;
        self.run.sess.value_type = vt;
    }

    pub fn command(&mut self, args: Vec<Vec<u8>>) -> Reply {
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
        if self.run.read_only && (spec.perm == Perm::Write || spec.name == "publish") {
            return Reply::err("Write commands are not allowed from read-only scripts.");
        }
        let sh = self.run.sh;
        match spec.name {
            "select" => return select(sh, sess, &args[1]),
            "publish" => return self.publish(&args[1], &args[2]),
            _ => {}
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
        if SCRIPT_READS.contains(&spec.name) || (!self.in_script && spec.multi == InMulti::Read) {
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

    /// PUBLISH: answers how many would receive it now; sent after the commit.
    fn publish(&mut self, channel: &[u8], message: &[u8]) -> Reply {
        if let Err(r) = cmd::pubsub::may_publish(&self.run.sess, channel) {
            return r;
        }
        self.published.push((channel.to_vec(), message.to_vec()));
        Reply::Int(self.run.sh.hub.receivers(channel) as i64)
    }
}

/// One `redis.call`: the arguments as a command, run in the transaction.
pub(super) fn call(state: &RefCell<Calls<'_, '_, '_, '_>>, args: MultiValue) -> mlua::Result<Reply> {
    let mut argv = Vec::with_capacity(args.len());
    for v in args {
        match v {
            Value::String(s) => argv.push(s.as_bytes().to_vec()),
            v => match convert::number_arg(&v) {
                Some(n) => argv.push(n.into_bytes()),
                None => {
                    return Ok(Reply::err(
                        "Lua redis lib command arguments must be strings or integers",
                    ));
                }
            },
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
