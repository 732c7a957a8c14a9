//! Commands: the table of what cairn answers, argument helpers, engine
//! error mapping, and the dispatcher. One file per family of commands.
//!
//! Every write is *plannable*: it becomes one engine [`Command::Write`]
//! without reading anything first ([`plan_write`], [`write_ops`]); what it
//! needs to read (an old value, a numeric string, a condition) the engine
//! reads at its place in the writer's order ([`Op::Get`], [`Op::If`], ...).
//! So a connection can submit a run of pipelined writes to the
//! group-committing writer at once and render their replies in order when
//! they complete, and a transaction's batch holds the same operations.
//! Reads run one at a time through [`run`], after earlier writes have
//! completed.

mod admin;
mod bytes;
pub(crate) mod keys;
pub(crate) mod multi;
pub(crate) mod pubsub;
pub(crate) mod server;
mod strings;

use super::Shared;
use super::reply::Reply;
use super::session::Session;
use crate::auth::Role;
use cairn_core::{Check, Command, Error, Op, OpOutcome, WriteOutcome};

/// What a command needs from the caller's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Perm {
    /// Nothing (connection-level commands).
    None,
    /// Read on the selected store.
    Read,
    /// Write on the selected store.
    Write,
    /// Admin on every store.
    Admin,
}

/// How a command behaves inside `MULTI`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InMulti {
    /// Becomes operations of the transaction's batch.
    Op,
    /// A read, answered after the batch commits.
    Read,
    /// Transaction control, run immediately.
    Control,
    /// Changes the connection's store at its place in the transaction
    /// (`SELECT`): the commands queued after it use the new store.
    Select,
    /// Refused (the transaction is then discarded at `EXEC`).
    No,
}

/// One row of the command table.
#[derive(Debug)]
pub(crate) struct Spec {
    /// Lowercase name (also the metrics label).
    pub name: &'static str,
    /// Redis arity: `n` exactly n arguments including the name, `-n` at least n.
    pub arity: i32,
    /// True when [`plan_write`] handles it.
    pub plannable: bool,
    pub perm: Perm,
    pub multi: InMulti,
}

const fn c(name: &'static str, arity: i32, plannable: bool, perm: Perm, multi: InMulti) -> Spec {
    Spec {
        name,
        arity,
        plannable,
        perm,
        multi,
    }
}

use InMulti as M;
use Perm as P;

/// Every command cairn answers.
pub(crate) static COMMANDS: &[Spec] = &[
    c("get", 2, false, P::Read, M::Read),
    c("set", -3, true, P::Write, M::Op),
    c("setnx", 3, true, P::Write, M::Op),
    c("setex", 4, true, P::Write, M::Op),
    c("psetex", 4, true, P::Write, M::Op),
    c("getdel", 2, true, P::Write, M::Op),
    c("getset", 3, true, P::Write, M::Op),
    c("getex", -2, true, P::Write, M::Op),
    c("mget", -2, false, P::Read, M::Read),
    c("mset", -3, true, P::Write, M::Op),
    c("msetnx", -3, true, P::Write, M::Op),
    c("incr", 2, true, P::Write, M::Op),
    c("decr", 2, true, P::Write, M::Op),
    c("incrby", 3, true, P::Write, M::Op),
    c("decrby", 3, true, P::Write, M::Op),
    c("incrbyfloat", 3, true, P::Write, M::Op),
    c("strlen", 2, false, P::Read, M::Read),
    c("append", 3, true, P::Write, M::Op),
    c("getrange", 4, false, P::Read, M::Read),
    c("substr", 4, false, P::Read, M::Read),
    c("setrange", 4, true, P::Write, M::Op),
    c("rename", 3, true, P::Write, M::Op),
    c("renamenx", 3, true, P::Write, M::Op),
    c("copy", -3, true, P::Write, M::Op),
    c("move", 3, true, P::Write, M::Op),
    c("del", -2, true, P::Write, M::Op),
    c("unlink", -2, true, P::Write, M::Op),
    c("exists", -2, false, P::Read, M::Read),
    c("touch", -2, false, P::Read, M::Read),
    c("expire", -3, true, P::Write, M::Op),
    c("pexpire", -3, true, P::Write, M::Op),
    c("expireat", -3, true, P::Write, M::Op),
    c("pexpireat", -3, true, P::Write, M::Op),
    c("persist", 2, true, P::Write, M::Op),
    c("ttl", 2, false, P::Read, M::Read),
    c("pttl", 2, false, P::Read, M::Read),
    c("expiretime", 2, false, P::Read, M::Read),
    c("pexpiretime", 2, false, P::Read, M::Read),
    c("type", 2, false, P::Read, M::Read),
    c("randomkey", 1, false, P::Read, M::Read),
    c("scan", -2, false, P::Read, M::Read),
    c("keys", 2, false, P::Read, M::Read),
    c("dbsize", 1, false, P::Read, M::Read),
    c("flushdb", -1, false, P::Write, M::No),
    c("flushall", -1, false, P::Admin, M::No),
    c("ping", -1, false, P::None, M::Read),
    c("echo", 2, false, P::None, M::Read),
    c("time", 1, false, P::None, M::Read),
    c("hello", -1, false, P::None, M::No),
    c("auth", -2, false, P::None, M::No),
    c("select", 2, false, P::None, M::Select),
    c("info", -1, false, P::None, M::Read),
    c("config", -2, false, P::None, M::Read),
    c("client", -2, false, P::None, M::Read),
    c("command", -1, false, P::None, M::Read),
    c("quit", -1, false, P::None, M::Control),
    c("reset", 1, false, P::None, M::Control),
    c("multi", 1, false, P::None, M::Control),
    c("exec", 1, false, P::None, M::Control),
    c("discard", 1, false, P::None, M::Control),
    c("watch", -2, false, P::Read, M::Control),
    c("unwatch", 1, false, P::None, M::Control),
    c("subscribe", -2, false, P::None, M::No),
    c("psubscribe", -2, false, P::None, M::No),
    c("unsubscribe", -1, false, P::None, M::No),
    c("punsubscribe", -1, false, P::None, M::No),
    c("wait", 3, false, P::None, M::Read),
    c("save", 1, false, P::Write, M::No),
    c("bgsave", -1, false, P::Write, M::Read),
    c("lastsave", 1, false, P::None, M::Read),
    c("role", 1, false, P::None, M::Read),
    c("object", -2, false, P::Read, M::Read),
    c("memory", -2, false, P::Read, M::Read),
    c("publish", 3, false, P::None, M::Read),
    c("pubsub", -2, false, P::None, M::Read),
    // Each command a script calls checks the token for itself.
    c("eval", -3, false, P::None, M::No),
    c("evalsha", -3, false, P::None, M::No),
    c("eval_ro", -3, false, P::None, M::No),
    c("evalsha_ro", -3, false, P::None, M::No),
    c("script", -2, false, P::None, M::No),
];

/// Finds a command by name (any case).
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// What running a command produced.
pub(crate) enum Outcome {
    /// One reply.
    Reply(Reply),
    /// Several replies (SUBSCRIBE answers once per channel).
    Many(Vec<Reply>),
    /// Reply, then close the connection.
    Close(Reply),
}

impl From<Reply> for Outcome {
    fn from(r: Reply) -> Outcome {
        Outcome::Reply(r)
    }
}

/// A write planned without reading: checks, operations, and how to turn
/// their outcome into a reply.
#[derive(Debug)]
pub(crate) struct Pending {
    pub checks: Vec<Check>,
    pub ops: Vec<Op>,
    pub finish: Finish,
}

impl Pending {
    pub fn command(self) -> (Command, Finish) {
        (
            Command::Write {
                checks: self.checks,
                ops: self.ops,
            },
            self.finish,
        )
    }
}

/// How a planned write's outcome becomes a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// `+OK`.
    Ok,
    /// `+OK`, or nil when a condition (NX / XX) failed.
    OkOrNil,
    /// `:1` on success, `:0` when a condition failed (SETNX, MSETNX).
    Bool,
    /// Number of deletes that removed something.
    Deleted,
    /// The increment's result; `float` renders a bulk string.
    Incr { float: bool },
    /// `:1` when the key existed (EXPIRE, PERSIST).
    Touched,
    /// The value the command's first [`Op::Get`] saw, or nil (SET .. GET,
    /// GETSET, GETDEL, GETEX).
    Value,
    /// The value's length after the write (APPEND, SETRANGE).
    Length,
    /// RENAME (`+OK`) or RENAMENX (`:1` / `:0`); `-ERR no such key` when
    /// the source is missing.
    Renamed { nx: bool },
    /// `:1` when COPY wrote the destination.
    Copied,
}

/// A command's operation outcomes with its [`Op::If`] groups opened, and
/// whether every group's checks held.
fn flatten(ops: &[OpOutcome], out: &mut Vec<OpOutcome>) -> bool {
    let mut held = true;
    for o in ops {
        match o {
            OpOutcome::If { held: h, ops } => held &= *h && flatten(ops, out),
            o => out.push(o.clone()),
        }
    }
    held
}

impl Finish {
    /// The reply for a committed (or check-failed) write; `ops` are this
    /// command's operation outcomes.
    pub fn reply(self, success: bool, ops: &[OpOutcome]) -> Reply {
        if ops.iter().any(|o| matches!(o, OpOutcome::If { .. })) {
            let mut flat = Vec::with_capacity(ops.len());
            let held = flatten(ops, &mut flat);
            return self.reply(success && held, &flat);
        }
        match self {
            Finish::Ok => Reply::OK,
            Finish::OkOrNil if success => Reply::OK,
            Finish::OkOrNil => Reply::Nil,
            Finish::Bool => Reply::Int(i64::from(success)),
            Finish::Deleted => Reply::Int(
                ops.iter()
                    .filter(|o| matches!(o, OpOutcome::Delete { existed: true }))
                    .count() as i64,
            ),
            Finish::Incr { float } => match ops.iter().find_map(|o| match o {
                OpOutcome::Incr { value } => Some(value),
                _ => None,
            }) {
                Some(v) if float => Reply::text(super::reply::format_double(v.as_f64().unwrap_or(f64::NAN))),
                Some(v) => match v.as_i64() {
                    Some(i) => Reply::Int(i),
                    None => Reply::err("value is not an integer or out of range"),
                },
                None => Reply::err("increment produced no value"),
            },
            Finish::Touched => Reply::Int(i64::from(ops.iter().any(|o| {
                matches!(
                    o,
                    OpOutcome::Touch { existed: true } | OpOutcome::Delete { existed: true }
                )
            }))),
            Finish::Value => ops
                .iter()
                .find_map(|o| match o {
                    OpOutcome::Get { entry } => Some(entry.as_ref().map(|e| e.value.to_raw())),
                    _ => None,
                })
                .flatten()
                .map_or(Reply::Nil, Reply::Bulk),
            Finish::Length => Reply::Int(
                ops.iter()
                    .find_map(|o| match o {
                        OpOutcome::Length { len } => Some(*len as i64),
                        _ => None,
                    })
                    .unwrap_or(0),
            ),
            Finish::Renamed { .. } | Finish::Copied => {
                let (found, done) = ops
                    .iter()
                    .find_map(|o| match o {
                        OpOutcome::Copy { found, done } => Some((*found, *done)),
                        _ => None,
                    })
                    .unwrap_or((false, false));
                match self {
                    Finish::Copied => Reply::Int(i64::from(done)),
                    _ if !found => Reply::err("no such key"),
                    Finish::Renamed { nx: true } => Reply::Int(i64::from(done)),
                    _ => Reply::OK,
                }
            }
        }
    }

    /// The reply for an engine result.
    pub fn render(self, r: cairn_core::Result<cairn_core::Applied>) -> Reply {
        match r {
            Ok(cairn_core::Applied::Write(WriteOutcome { success, ops, .. })) => self.reply(success, &ops),
            Ok(other) => engine_error(&Error::InvalidArgument(format!("unexpected engine result {other:?}"))),
            Err(e) => self.error(&e),
        }
    }

    /// The reply for an engine error of this command (also inside EXEC).
    pub fn error(&self, e: &Error) -> Reply {
        match e {
            // Redis's INCRBYFLOAT words a value that is no number this way.
            Error::NotANumber { .. } if *self == Finish::Incr { float: true } => {
                Reply::err("value is not a valid float")
            }
            e => engine_error(e),
        }
    }
}

/// The result of planning a write.
pub(crate) enum Plan {
    /// Answered without writing (an argument error, usually).
    Reply(Reply),
    /// One engine write.
    Write(Pending),
}

/// Plans a plannable command: every one is a single engine write, which
/// reads what it needs (an old value, a numeric string) at its place in
/// the writer's order, so it never waits for earlier pipelined writes.
pub(crate) fn plan_write(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Plan {
    match write_ops(sh, sess, spec, args) {
        Ok(p) => Plan::Write(p),
        Err(r) => Plan::Reply(r),
    }
}

/// The one engine write a write command is: what [`plan_write`] submits,
/// [`run`] executes and a transaction adds to its batch. Conditions (NX,
/// XX, GT, ...) are [`Op::If`] groups, so they hold inside a transaction too.
pub(crate) fn write_ops(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Pending, Reply> {
    match spec.name {
        "del" | "unlink" | "expire" | "pexpire" | "expireat" | "pexpireat" | "persist" | "rename" | "renamenx"
        | "copy" | "move" => keys::ops(sh, sess, spec, args),
        "setrange" => bytes::setrange(sh, sess, args),
        _ => strings::ops(sess, spec, args),
    }
}

/// Runs any command to completion.
pub(crate) async fn run(sh: &Shared, sess: &mut Session, spec: &'static Spec, args: Vec<Vec<u8>>) -> Outcome {
    if spec.plannable {
        return match write_ops(sh, sess, spec, &args) {
            Ok(p) => execute(sh, p).await,
            Err(r) => r,
        }
        .into();
    }
    match spec.name {
        "get" | "mget" | "strlen" => strings::run(sh, sess, spec, &args).into(),
        "getrange" | "substr" => bytes::getrange(sh, sess, &args).into(),
        "multi" | "exec" | "discard" | "watch" | "unwatch" => multi::run(sh, sess, spec, &args).await.into(),
        "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "publish" | "pubsub" => {
            pubsub::run(sh, sess, spec, &args)
        }
        "ping" | "echo" | "time" | "hello" | "auth" | "select" | "info" | "config" | "client" | "command" | "quit"
        | "reset" => server::run(sh, sess, spec, &args).await,
        "wait" | "save" | "bgsave" | "lastsave" | "role" | "object" | "memory" => {
            admin::run(sh, sess, spec, &args).await.into()
        }
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "script" => {
            super::script::run(sh, sess, spec, &args).await.into()
        }
        _ => keys::run(sh, sess, spec, &args).await.into(),
    }
}

/// Runs a planned write now and renders its reply.
pub(crate) async fn execute(sh: &Shared, p: Pending) -> Reply {
    let (cmd, finish) = p.command();
    finish.render(sh.app.db.execute_async(cmd).await)
}

/// Maps an engine error to Redis's reply for it.
pub(crate) fn engine_error(e: &Error) -> Reply {
    match e {
        Error::InvalidValue { .. } => Reply::Error(format!(
            "WRONGTYPE Operation against a key holding the wrong kind of value: {e}"
        )),
        Error::NotANumber { .. } | Error::NotAnInteger { .. } => Reply::err("value is not an integer or out of range"),
        Error::Overflow { .. } => Reply::err("increment or decrement would overflow"),
        Error::Closed => Reply::err("the server is shutting down"),
        // A command of many keys (DEL, MSET, a transaction) is one batch.
        Error::BatchTooLarge { .. } => Reply::err(format!(
            "{e}: a command or transaction is one atomic batch; send fewer keys, or raise the server's limit (cairn serve --max-batch-ops)"
        )),
        // Redis's answer when it cannot persist and stops taking writes.
        Error::Unavailable { .. } => Reply::Error(format!("MISCONF {e}")),
        e if e.is_client_error() => Reply::err(e),
        e => {
            tracing::error!(error = %e, "RESP command failed");
            Reply::err("internal error (see the server log)")
        }
    }
}

/// `-WRONGTYPE` for a value that does not parse as the store's type.
pub(crate) fn wrong_type(store: &str, vt: cairn_core::ValueType, why: &str) -> Reply {
    Reply::Error(format!(
        "WRONGTYPE Operation against a key holding the wrong kind of value: store {store:?} holds {} values and {why}",
        vt.as_str()
    ))
}

/// `-ERR wrong number of arguments for '<cmd>' command`.
pub(crate) fn arity_error(name: &str) -> Reply {
    Reply::err(format!("wrong number of arguments for '{name}' command"))
}

/// `-ERR syntax error`.
pub(crate) fn syntax_error() -> Reply {
    Reply::err("syntax error")
}

/// `-ERR value is not an integer or out of range`.
pub(crate) fn not_integer() -> Reply {
    Reply::err("value is not an integer or out of range")
}

/// Parses an integer argument like Redis (no spaces, no `+`).
pub(crate) fn int_arg(a: &[u8]) -> Result<i64, Reply> {
    std::str::from_utf8(a)
        .ok()
        .and_then(cairn_core::redis_int)
        .ok_or_else(not_integer)
}

/// Parses a float argument like Redis.
pub(crate) fn float_arg(a: &[u8]) -> Result<f64, Reply> {
    std::str::from_utf8(a)
        .ok()
        .filter(|s| !s.trim().is_empty() && s.trim() == *s)
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|f| f.is_finite())
        .ok_or_else(|| Reply::err("value is not a valid float"))
}

/// Milliseconds since the Unix epoch.
pub(crate) fn unix_secs() -> u64 {
    now_ms() / 1000
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Text of an argument (lossy) for messages.
pub(crate) fn show(a: &[u8]) -> String {
    String::from_utf8_lossy(a).into_owned()
}

/// Checks arity and returns the reply for a bad count.
pub(crate) fn check_arity(spec: &Spec, n: usize) -> Result<(), Reply> {
    let n = n as i32;
    let ok = if spec.arity >= 0 {
        n == spec.arity
    } else {
        n >= -spec.arity
    };
    if ok { Ok(()) } else { Err(arity_error(spec.name)) }
}

/// The reply for an unknown command, worded as Redis words it.
pub(crate) fn unknown_command(args: &[Vec<u8>]) -> Reply {
    let mut s = format!("unknown command '{}', with args beginning with: ", show(&args[0]));
    for a in args.iter().skip(1).take(10) {
        s.push_str(&format!("'{}' ", show(a)));
    }
    Reply::err(s)
}

/// Checks the caller's token for a command on the selected store.
pub(crate) fn authorize(sess: &Session, spec: &Spec) -> Result<(), Reply> {
    let Some(p) = &sess.principal else {
        return Err(Reply::Error("NOAUTH Authentication required.".into()));
    };
    let r = match spec.perm {
        Perm::None => Ok(()),
        Perm::Read => p.allow(Role::Read, Some(&sess.store)),
        Perm::Write => p.allow(Role::Write, Some(&sess.store)),
        Perm::Admin => p.allow(Role::Admin, None),
    };
    r.map_err(|_| {
        Reply::Error(format!(
            "NOPERM this token has no permission to run the '{}' command on store {:?}",
            spec.name, sess.store
        ))
    })
}
