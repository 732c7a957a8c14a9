//! Connection and server commands: PING, ECHO, TIME, HELLO, AUTH, SELECT,
//! INFO, CONFIG, CLIENT, COMMAND, QUIT, RESET.
//!
//! ```text
//! SELECT 0 | 1..15 | store-name   0 is the `default` store; 1..15 are stores
//!                                 named "1".."15", created on first use
//! HELLO [2|3] [AUTH user token] [SETNAME name]
//! AUTH token | AUTH user token    the user name is ignored
//! ```

use super::{Outcome, Spec, engine_error, int_arg, show, syntax_error};
use crate::resp::Shared;
use crate::resp::glob::glob_match;
use crate::resp::pubsub::{format_flags, parse_flags};
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Command, DEFAULT_STORE, Durability, StoreSpec};

/// The Redis version cairn reports, so clients enable the features it has.
pub(crate) const REDIS_VERSION: &str = "7.2.0";

pub(super) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Outcome {
    let r = match spec.name {
        "ping" if sess.subscribed_resp2() => Reply::Array(vec![
            Reply::text("pong"),
            Reply::Bulk(args.get(1).cloned().unwrap_or_default()),
        ]),
        "ping" => match args.len() {
            1 => Reply::Simple("PONG"),
            2 => Reply::Bulk(args[1].clone()),
            _ => super::arity_error("ping"),
        },
        "echo" => Reply::Bulk(args[1].clone()),
        "time" => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::text(now.as_secs().to_string()),
                Reply::text(now.subsec_micros().to_string()),
            ])
        }
        "quit" => return Outcome::Close(Reply::OK),
        "reset" => {
            sh.hub.remove(sess.id);
            let fresh = Session::new(sess.id, std::mem::take(&mut sess.peer), sh.app.auth.enabled());
            *sess = fresh;
            Reply::Simple("RESET")
        }
        "auth" => auth(sh, sess, &args[1..]),
        "hello" => hello(sh, sess, args),
        "select" => select(sh, sess, &args[1]).await,
        "info" => info(sh, sess, args).await,
        "config" => config(sh, sess, args),
        "client" => client(sh, sess, args),
        _ => command(sess, args),
    };
    Outcome::Reply(r)
}

fn auth(sh: &Shared, sess: &mut Session, args: &[Vec<u8>]) -> Reply {
    let wrongpass = || Reply::Error("WRONGPASS invalid username-password pair or user is disabled.".into());
    if !sh.app.auth.enabled() {
        // As Redis's `default` user without a password: any password is
        // fine for it (`redis://default:pw@host` URLs), none for others.
        return match args {
            [user, _] if user.as_slice() == b"default" => Reply::OK,
            [_, _] => wrongpass(),
            [_] => Reply::err(
                "AUTH <password> called without any password configured for the default user. \
                 Are you sure your configuration is correct?",
            ),
            _ => syntax_error(),
        };
    }
    let token = match args {
        [t] | [_, t] => String::from_utf8_lossy(t).into_owned(),
        _ => return syntax_error(),
    };
    match sh.app.auth.authenticate(Some(&token)) {
        Ok(p) => {
            sess.principal = Some(p);
            Reply::OK
        }
        Err(_) => wrongpass(),
    }
}

fn hello(sh: &Shared, sess: &mut Session, args: &[Vec<u8>]) -> Reply {
    let mut proto = sess.proto;
    let mut i = 1;
    if let Some(v) = args.get(1) {
        match int_arg(v) {
            Ok(2) => proto = 2,
            Ok(3) => proto = 3,
            Ok(_) => return Reply::Error("NOPROTO unsupported protocol version".into()),
            Err(_) => return Reply::err("Protocol version is not an integer or out of range"),
        }
        i = 2;
    }
    let mut name = None;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"AUTH" if i + 2 < args.len() => {
                let r = auth(sh, sess, &args[i + 1..i + 3]);
                if r.is_error() {
                    return r;
                }
                i += 3;
            }
            b"SETNAME" if i + 1 < args.len() => {
                if args[i + 1].iter().any(|b| *b <= b' ' || *b > b'~') {
                    return Reply::err("Client names cannot contain spaces, newlines or special characters.");
                }
                name = Some(show(&args[i + 1]));
                i += 2;
            }
            _ => return Reply::err(format!("Syntax error in HELLO option '{}'", show(&args[i]))),
        }
    }
    if sess.principal.is_none() {
        return Reply::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into());
    }
    if name.is_some() {
        sess.name = name;
    }
    sess.proto = proto;
    let kv = |k: &str, v: Reply| (Reply::text(k), v);
    Reply::Map(vec![
        kv("server", Reply::text("redis")),
        kv("version", Reply::text(REDIS_VERSION)),
        kv("proto", Reply::Int(i64::from(proto))),
        kv("id", Reply::Int(sess.id as i64)),
        kv("mode", Reply::text("standalone")),
        kv("role", Reply::text("master")),
        kv("modules", Reply::Array(vec![])),
    ])
}

/// The store a SELECT argument names.
pub(crate) fn store_for(arg: &[u8]) -> Result<String, Reply> {
    let s = std::str::from_utf8(arg).map_err(|_| Reply::err("invalid store name"))?;
    if s.is_empty() {
        return Err(Reply::err("value is not an integer or out of range"));
    }
    // A number as Redis reads one (no sign, spaces or leading zeros);
    // anything else made of digits is not a database index.
    let numeric = s.strip_prefix('-').unwrap_or(s);
    if !numeric.is_empty() && numeric.bytes().all(|b| b.is_ascii_digit()) {
        return match cairn_core::redis_int(s) {
            Some(0) => Ok(DEFAULT_STORE.to_owned()),
            Some(1..=15) => Ok(s.to_owned()),
            Some(_) => Err(Reply::err("DB index is out of range")),
            None => Err(Reply::err("value is not an integer or out of range")),
        };
    }
    Ok(s.to_owned())
}

/// Makes the store of a numbered Redis database (1-15) on first use, as
/// SELECT and COPY .. DB do: Redis's databases always exist.
pub(super) async fn make_numbered_store(sh: &Shared, store: &str) -> Result<(), Reply> {
    match sh
        .app
        .db
        .execute_async(Command::CreateStore {
            spec: StoreSpec::new(store),
        })
        .await
    {
        Ok(_) | Err(cairn_core::Error::StoreExists { .. }) => Ok(()),
        Err(e) => Err(engine_error(&e)),
    }
}

pub(crate) async fn select(sh: &Shared, sess: &mut Session, arg: &[u8]) -> Reply {
    let store = match store_for(arg) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if let Some(p) = &sess.principal
        && p.allow(crate::auth::Role::Read, Some(&store)).is_err()
    {
        return Reply::Error(format!("NOPERM this token has no access to store {store:?}"));
    }
    let db = &sh.app.db;
    let spec = match db.store_spec(&store) {
        Ok(s) => s,
        // Numbers past Redis's 16 databases name no store unless one was
        // made under that name: SELECT must not mint stores at will.
        Err(cairn_core::Error::UnknownStore { .. }) if store.bytes().all(|b| b.is_ascii_digit()) => {
            match store.parse::<u64>() {
                Ok(n) if n < 16 => {}
                Ok(_) => return Reply::err("DB index is out of range"),
                Err(_) => return Reply::err("value is not an integer or out of range"),
            }
            if let Err(r) = make_numbered_store(sh, &store).await {
                return r;
            }
            match db.store_spec(&store) {
                Ok(s) => s,
                Err(e) => return engine_error(&e),
            }
        }
        Err(cairn_core::Error::UnknownStore { .. }) => {
            return Reply::err(format!(
                "store {store:?} does not exist (SELECT takes 0-15 or the name of an existing store)"
            ));
        }
        Err(e) => return engine_error(&e),
    };
    sess.store = store;
    sess.value_type = spec.value_type;
    Reply::OK
}

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
fn resident_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

async fn info(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Reply {
    use std::sync::atomic::Ordering::Relaxed;
    let want: Vec<String> = args[1..].iter().map(|a| show(a).to_ascii_lowercase()).collect();
    let all = want.is_empty() || want.iter().any(|w| w == "all" || w == "everything" || w == "default");
    let has = |s: &str| all || want.iter().any(|w| w == s);
    let mut out = String::new();
    let st = &sh.stats;
    let relaxed = sh.app.config.durability == Durability::Relaxed;
    if has("server") {
        let up = st.started.elapsed().as_secs();
        let port = sh.app.config.resp.addr().map_or(0, |a| a.port());
        out += &format!(
            "# Server\r\nredis_version:{REDIS_VERSION}\r\ncairn_version:{}\r\nredis_mode:standalone\r\nos:{}\r\n\
             arch_bits:64\r\nprocess_id:{}\r\ntcp_port:{port}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            up / 86400
        );
    }
    if has("clients") {
        out += &format!(
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\ntracking_clients:0\r\n\
             pubsub_clients:{}\r\n\r\n",
            st.connected(),
            sh.app.config.max_connections,
            sh.hub.subscriber_count()
        );
    }
    if has("memory") {
        // The process's resident memory: what exporters chart as used_memory.
        let rss = resident_bytes();
        let disk = sh.app.db.disk_space().unwrap_or(0);
        out += &format!(
            "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{rss}\r\n\
             maxmemory:0\r\nmaxmemory_policy:noeviction\r\ncairn_disk_bytes:{disk}\r\n\r\n",
            rss as f64 / (1024.0 * 1024.0)
        );
    }
    if has("persistence") {
        out += &format!(
            "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:0\r\nrdb_bgsave_in_progress:0\r\n\
             rdb_last_save_time:{}\r\nrdb_last_bgsave_status:ok\r\naof_enabled:1\r\ncairn_durability:{}\r\n\r\n",
            st.last_save.load(std::sync::atomic::Ordering::Relaxed),
            if relaxed { "relaxed" } else { "sync" }
        );
    }
    if has("stats") {
        let base = *st.reset_at.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let t = st.totals(sh.app.db.stats().expired.load(Relaxed)).since(base);
        out += &format!(
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
             instantaneous_ops_per_sec:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\n\
             keyspace_hits:{}\r\nkeyspace_misses:{}\r\n\r\n",
            t.connections,
            t.commands,
            st.ops
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .per_sec(),
            t.rejected,
            t.expired,
            t.hits,
            t.misses,
        );
    }
    if has("replication") {
        out += "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n\r\n";
    }
    if has("keyspace") {
        out += "# Keyspace\r\n";
        let db = sh.app.db.clone();
        // Only the stores the caller may read: names and counts of the
        // others are not theirs to see (nor to make the server count).
        let readable: Vec<String> = db
            .stores()
            .into_iter()
            .map(|s| s.name)
            .filter(|name| {
                sess.principal
                    .as_ref()
                    .is_some_and(|p| p.allow(crate::auth::Role::Read, Some(name)).is_ok())
            })
            .collect();
        let counts = tokio::task::spawn_blocking(move || {
            readable
                .into_iter()
                .map(|name| {
                    let k = db.key_stats(&name).unwrap_or_default();
                    (name, k)
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        // As Redis lists them: by database number (0 first), then the
        // named stores by name.
        let mut counts = counts;
        counts.sort_by_cached_key(|(name, _)| {
            let db = crate::resp::pubsub::db_name(name);
            (db.parse::<u32>().map_or((1, u32::MAX), |n| (0, n)), db.to_owned())
        });
        for (name, k) in counts {
            if k.keys > 0 {
                out += &format!(
                    "db{}:keys={},expires={},avg_ttl={}\r\n",
                    crate::resp::pubsub::db_name(&name),
                    k.keys,
                    k.expiring,
                    k.mean_ttl_ms
                );
            }
        }
        out += "\r\n";
    }
    let _ = sess;
    // Sections are separated by a blank line, with none after the last, as
    // Redis writes them.
    if out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    Reply::Bulk(out.into_bytes())
}

/// Parameters CONFIG GET answers: name and current value.
fn params(sh: &Shared) -> Vec<(&'static str, String)> {
    let c = &sh.app.config;
    let relaxed = c.durability == Durability::Relaxed;
    vec![
        ("notify-keyspace-events", format_flags(sh.hub.notify_flags())),
        ("save", String::new()),
        ("appendonly", "yes".into()),
        ("appendfsync", if relaxed { "everysec" } else { "always" }.into()),
        ("maxmemory", "0".into()),
        ("maxmemory-policy", "noeviction".into()),
        ("databases", "16".into()),
        ("timeout", "0".into()),
        ("maxclients", c.max_connections.to_string()),
        ("port", c.resp.addr().map_or(0, |a| a.port()).to_string()),
        ("bind", c.resp.addr().map_or(String::new(), |a| a.ip().to_string())),
        ("proto-max-bulk-len", sh.limits.max_bulk.to_string()),
        ("tcp-keepalive", "300".into()),
        ("hz", "10".into()),
        ("cluster-enabled", "no".into()),
        ("dir", c.data_dir.display().to_string()),
    ]
}

fn config(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    let admin = sess
        .principal
        .as_ref()
        .is_some_and(|p| p.allow(crate::auth::Role::Admin, None).is_ok());
    match sub.as_slice() {
        b"GET" if args.len() >= 3 => {
            let mut out = Vec::new();
            for (name, value) in params(sh) {
                if args[2..]
                    .iter()
                    .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
                {
                    out.push((Reply::text(name), Reply::text(value)));
                }
            }
            Reply::Map(out)
        }
        b"SET" if args.len() >= 4 && args.len().is_multiple_of(2) => {
            if !admin {
                return Reply::Error("NOPERM CONFIG SET needs an admin token".into());
            }
            let mut notify = None;
            for pair in args[2..].chunks(2) {
                let (name, value) = (show(&pair[0]).to_ascii_lowercase(), show(&pair[1]));
                match name.as_str() {
                    "notify-keyspace-events" => match parse_flags(&value) {
                        // Refused rather than accepted and never sent.
                        Ok(f) if f & crate::resp::pubsub::flags::MISS != 0 => {
                            return Reply::err(
                                "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - \
                                 cairn does not send keymiss events ('m')",
                            );
                        }
                        Ok(f) => notify = Some(f),
                        Err(_) => {
                            // Redis's exact text.
                            return Reply::err(
                                "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
                            );
                        }
                    },
                    // Accepted when they ask for what cairn does anyway, since
                    // test suites and tools set them: no RDB snapshots, no
                    // eviction or memory cap, always persistent, no idle
                    // timeout on RESP connections.
                    "save" | "maxmemory-policy" if value.is_empty() || value == "noeviction" => {}
                    "appendonly" if value.eq_ignore_ascii_case("yes") => {}
                    "maxmemory" | "timeout" if value == "0" => {}
                    _ if params(sh).iter().any(|(n, _)| *n == name) => {
                        return Reply::err(format!(
                            "CONFIG SET failed (possibly related to argument '{name}') - cairn does not support changing it at run time"
                        ));
                    }
                    _ => {
                        return Reply::err(format!(
                            "Unknown option or number of arguments for CONFIG SET - '{name}'"
                        ));
                    }
                }
            }
            if let Some(f) = notify {
                sh.hub.set_notify_flags(f);
            }
            Reply::OK
        }
        b"RESETSTAT" => {
            let now = sh
                .stats
                .totals(sh.app.db.stats().expired.load(std::sync::atomic::Ordering::Relaxed));
            *sh.stats
                .reset_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = now;
            Reply::OK
        }
        b"GET" | b"SET" => super::arity_error(&("config|".to_owned() + &show(&sub).to_ascii_lowercase())),
        _ => Reply::err(format!("unknown subcommand '{}'. Try CONFIG HELP.", show(&args[1]))),
    }
}

fn client(sh: &Shared, sess: &mut Session, args: &[Vec<u8>]) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    // Other connections (their addresses, names, commands) are the
    // server's business: only a token for all stores with admin sees them.
    let operator = sess
        .principal
        .as_ref()
        .is_some_and(|p| p.allow(crate::auth::Role::Admin, None).is_ok());
    match (sub.as_slice(), args.len()) {
        (b"ID", 2) => Reply::Int(sess.id as i64),
        (b"GETNAME", 2) => sess.name.as_ref().map_or(Reply::Nil, |n| Reply::text(n.clone())),
        (b"SETNAME", 3) => {
            if args[2].iter().any(|b| *b <= b' ' || *b > b'~') {
                return Reply::err("Client names cannot contain spaces, newlines or special characters.");
            }
            sess.name = (!args[2].is_empty()).then(|| show(&args[2]));
            Reply::OK
        }
        (b"INFO", 2) | (b"LIST", _) => {
            let cmd = if sub.as_slice() == b"INFO" {
                "client|info"
            } else {
                "client|list"
            };
            let me = sh.clients.get(sess.id);
            if let Some(me) = &me {
                me.refresh(sess, cmd);
            }
            let shown = if sub.as_slice() == b"LIST" && operator {
                sh.clients.all()
            } else {
                me.into_iter().collect()
            };
            Reply::text(shown.iter().map(|c| c.line()).collect::<String>())
        }
        (b"KILL", n) if n >= 3 => client_kill(sh, sess, operator, &args[2..]),
        (b"SETINFO", 4) => match args[2].to_ascii_lowercase().as_slice() {
            b"lib-name" | b"lib-ver" => Reply::OK,
            _ => Reply::err(format!("Unrecognized option '{}'", show(&args[2]))),
        },
        (b"NO-EVICT" | b"NO-TOUCH", 3) => match args[2].to_ascii_lowercase().as_slice() {
            b"on" | b"off" => Reply::OK,
            _ => syntax_error(),
        },
        // A known subcommand with the wrong arguments: Redis 7's wording.
        (b"ID" | b"GETNAME" | b"SETNAME" | b"INFO" | b"KILL" | b"SETINFO" | b"NO-EVICT" | b"NO-TOUCH", _) => {
            super::arity_error(&format!("client|{}", show(&sub).to_ascii_lowercase()))
        }
        _ => Reply::err(format!("unknown subcommand '{}'. Try CLIENT HELP.", show(&args[1]))),
    }
}

/// `CLIENT KILL addr` (answers OK, or an error when no such client) or
/// `CLIENT KILL [ID id] [ADDR addr] [SKIPME yes|no]` (answers how many).
fn client_kill(sh: &Shared, sess: &Session, operator: bool, args: &[Vec<u8>]) -> Reply {
    if !operator {
        return Reply::Error("NOPERM CLIENT KILL needs an admin token for all stores".into());
    }
    if let [addr] = args {
        let addr = show(addr);
        return match sh.clients.kill(|c| c.peer == addr, None) {
            0 => Reply::err("No such client"),
            _ => Reply::OK,
        };
    }
    if !args.len().is_multiple_of(2) {
        return syntax_error();
    }
    let (mut id, mut addr, mut skipme) = (None, None, true);
    for pair in args.chunks(2) {
        let v = &pair[1];
        match pair[0].to_ascii_uppercase().as_slice() {
            b"ID" => match int_arg(v).ok().and_then(|n| u64::try_from(n).ok()).filter(|n| *n > 0) {
                Some(n) => id = Some(n),
                None => return Reply::err("client-id should be greater than 0"),
            },
            b"ADDR" => addr = Some(show(v)),
            b"SKIPME" => match v.to_ascii_lowercase().as_slice() {
                b"yes" => skipme = true,
                b"no" => skipme = false,
                _ => return syntax_error(),
            },
            _ => return syntax_error(),
        }
    }
    let picked =
        |c: &crate::resp::clients::Client| id.is_none_or(|i| c.id == i) && addr.as_ref().is_none_or(|a| c.peer == *a);
    let n = sh.clients.kill(picked, skipme.then_some(sess.id));
    Reply::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

/// First key, last key (-1: to the end) and step of a command's keys, as
/// `COMMAND INFO` reports them; `(0, 0, 0)` for commands without keys.
fn key_positions(name: &str) -> (i64, i64, i64) {
    match name {
        "mget" | "del" | "unlink" | "exists" | "touch" | "watch" => (1, -1, 1),
        "mset" | "msetnx" => (1, -1, 2),
        "rename" | "renamenx" | "copy" => (1, 2, 1),
        "object" | "memory" => (2, 2, 1),
        "wait" | "save" | "bgsave" | "lastsave" | "role" => (0, 0, 0),
        "randomkey" | "scan" | "keys" | "dbsize" | "flushdb" | "flushall" | "ping" | "echo" | "time" | "hello"
        | "auth" | "select" | "info" | "config" | "client" | "command" | "quit" | "reset" | "multi" | "exec"
        | "discard" | "unwatch" | "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "publish"
        | "pubsub" => (0, 0, 0),
        _ => (1, 1, 1),
    }
}

/// One `COMMAND INFO` entry (Redis 7 shape: name, arity, flags, first key,
/// last key, step, ACL categories, tips, key specs, subcommands).
fn command_info(spec: &super::Spec) -> Reply {
    let flags: &[&'static str] = match spec.perm {
        super::Perm::Write => &["write"],
        super::Perm::Read => &["readonly"],
        super::Perm::Admin => &["write", "admin"],
        super::Perm::None => &["fast"],
    };
    let (first, last, step) = key_positions(spec.name);
    Reply::Array(vec![
        Reply::text(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Array(flags.iter().map(|f| Reply::Simple(f)).collect()),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
        Reply::Array(vec![]),
    ])
}

fn command(sess: &Session, args: &[Vec<u8>]) -> Reply {
    let _ = sess;
    match args.get(1).map(|a| a.to_ascii_uppercase()).as_deref() {
        None => Reply::Array(super::COMMANDS.iter().map(command_info).collect()),
        Some(b"INFO") if args.len() == 2 => Reply::Array(super::COMMANDS.iter().map(command_info).collect()),
        Some(b"INFO") => Reply::Array(
            args[2..]
                .iter()
                .map(|n| super::lookup(n).map_or(Reply::Nil, command_info))
                .collect(),
        ),
        Some(b"COUNT") => Reply::Int(super::COMMANDS.len() as i64),
        Some(b"DOCS") => Reply::Map(vec![]),
        Some(b"LIST") => Reply::Array(super::COMMANDS.iter().map(|c| Reply::text(c.name)).collect()),
        Some(_) => Reply::err(format!("unknown subcommand '{}'. Try COMMAND HELP.", show(&args[1]))),
    }
}
