//! What operators' tools call: WAIT, SAVE, BGSAVE, LASTSAVE, OBJECT and
//! MEMORY.
//!
//! ```text
//! WAIT numreplicas timeout    -> :0 (no replicas; answers at once)
//! SAVE                        -> +OK once everything written is fsynced
//! BGSAVE [SCHEDULE]           -> +Background saving started (fsync in the background)
//! LASTSAVE                    -> unix seconds of the last SAVE/BGSAVE (or of the start)
//! OBJECT ENCODING key         -> int | embstr | raw, as Redis would store the string
//! OBJECT REFCOUNT key         -> :1        OBJECT IDLETIME key -> seconds since the last write
//! OBJECT FREQ key             -> error (no LFU policy), as Redis without one
//! MEMORY USAGE key [SAMPLES n] -> bytes of the key's stored record
//! ```
//!
//! cairn writes every change to its journal as it commits; SAVE is the
//! durability point a `relaxed` server otherwise reaches every
//! `sync_interval_ms` (in `sync` mode every acknowledged write is already
//! on disk, and SAVE costs one fsync).

use super::{Spec, engine_error, int_arg, show, syntax_error};
use crate::resp::Shared;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use std::sync::atomic::Ordering;

pub(super) async fn run(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    match spec.name {
        "wait" => wait(args),
        "save" => match save(sh).await {
            Ok(()) => Reply::OK,
            Err(r) => r,
        },
        "bgsave" => bgsave(sh, args),
        "lastsave" => Reply::Int(sh.stats.last_save.load(Ordering::Relaxed) as i64),
        // A primary without replicas: role, replication offset, replicas.
        "role" => Reply::Array(vec![
            Reply::Bulk(b"master".to_vec()),
            Reply::Int(0),
            Reply::Array(Vec::new()),
        ]),
        "object" => object(sh, sess, args),
        _ => memory(sh, sess, args),
    }
}

/// No replicas acknowledge anything: 0, at once (Redis waits for the
/// timeout when it cannot reach the count; nothing here would change).
fn wait(args: &[Vec<u8>]) -> Reply {
    if let Err(r) = int_arg(&args[1]) {
        return r;
    }
    match int_arg(&args[2]) {
        Ok(t) if t < 0 => Reply::err("timeout is negative"),
        Ok(_) => Reply::Int(0),
        Err(r) => r,
    }
}

async fn save(sh: &Shared) -> Result<(), Reply> {
    let db = sh.app.db.clone();
    tokio::task::spawn_blocking(move || db.sync())
        .await
        .map_err(|_| Reply::err("SAVE failed"))?
        .map_err(|e| engine_error(&e))?;
    sh.stats.last_save.store(super::unix_secs(), Ordering::Relaxed);
    Ok(())
}

fn bgsave(sh: &Shared, args: &[Vec<u8>]) -> Reply {
    match args.get(1..).unwrap_or_default() {
        [] => {}
        [a] if a.eq_ignore_ascii_case(b"SCHEDULE") => {}
        _ => return syntax_error(),
    }
    let sh = sh.clone();
    tokio::spawn(async move {
        if let Err(r) = save(&sh).await {
            tracing::error!(reply = ?r, "BGSAVE failed");
        }
    });
    Reply::Simple("Background saving started")
}

fn unknown(cmd: &str, sub: &[u8]) -> Reply {
    Reply::err(format!("unknown subcommand '{}'. Try {cmd} HELP.", show(sub)))
}

/// Help text as Redis sends it: simple strings.
fn help(lines: &[&'static str]) -> Reply {
    Reply::Array(lines.iter().map(|l| Reply::Simple(l)).collect())
}

/// The key's entry, or the reply for a missing one / an error.
fn entry(sh: &Shared, sess: &Session, key: &[u8]) -> Result<cairn_core::Entry, Reply> {
    match sh.app.db.get(&sess.store, key) {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err(Reply::Nil),
        Err(e) => Err(engine_error(&e)),
    }
}

fn object(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    if sub == b"HELP" {
        return help(&[
            "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "ENCODING <key>",
            "    Return the kind of internal representation used in order to store the value",
            "    associated with a <key>.",
            "FREQ <key>",
            "    Not tracked by cairn (as Redis without an LFU maxmemory policy).",
            "IDLETIME <key>",
            "    Return the idle time of the <key>: seconds since its last write in cairn.",
            "REFCOUNT <key>",
            "    Return the reference count of the object stored at <key>.",
            "HELP",
            "    Print this help.",
        ]);
    }
    if !matches!(sub.as_slice(), b"ENCODING" | b"FREQ" | b"IDLETIME" | b"REFCOUNT") {
        return unknown("OBJECT", &args[1]);
    }
    let [_, _, key] = args else {
        return Reply::err(format!(
            "wrong number of arguments for 'object|{}' command",
            show(&args[1]).to_ascii_lowercase()
        ));
    };
    let e = match entry(sh, sess, key) {
        Ok(e) => e,
        Err(r) => return r,
    };
    match sub.as_slice() {
        b"ENCODING" => Reply::text(encoding(&e.value.to_raw())),
        b"REFCOUNT" => Reply::Int(1),
        b"IDLETIME" => Reply::Int((super::now_ms().saturating_sub(e.updated_at) / 1000) as i64),
        _ => Reply::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that \
             when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
    }
}

/// Redis's encoding of a string value: `int` for an integer it would keep
/// as a number, `embstr` up to 44 bytes, `raw` beyond.
fn encoding(raw: &[u8]) -> &'static str {
    let int = raw.len() <= 20 && std::str::from_utf8(raw).ok().and_then(cairn_core::redis_int).is_some();
    if int {
        "int"
    } else if raw.len() <= 44 {
        "embstr"
    } else {
        "raw"
    }
}

fn memory(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Reply {
    let sub = args[1].to_ascii_uppercase();
    match sub.as_slice() {
        b"HELP" => help(&[
            "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "USAGE <key> [SAMPLES <count>]",
            "    Return the bytes of the record stored for <key> (key, value and metadata).",
            "HELP",
            "    Print this help.",
        ]),
        b"USAGE" => {
            let [_, _, key, opts @ ..] = args else {
                return Reply::err("wrong number of arguments for 'memory|usage' command");
            };
            // `SAMPLES n` any number of times, as Redis takes it; n >= 0.
            for pair in opts.chunks(2) {
                match pair {
                    [opt, n] if opt.eq_ignore_ascii_case(b"SAMPLES") => match int_arg(n) {
                        Ok(n) if n >= 0 => {}
                        Ok(_) => return syntax_error(),
                        Err(r) => return r,
                    },
                    _ => return syntax_error(),
                }
            }
            match entry(sh, sess, key) {
                // Key, value, and the record's header (revisions, version,
                // times: ~14 bytes) with the store prefix.
                Ok(e) => Reply::Int((key.len() + e.value.to_raw().len() + 18) as i64),
                Err(r) => r,
            }
        }
        _ => unknown("MEMORY", &args[1]),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodings_are_redis_s() {
        for (v, want) in [
            ("12345", "int"),
            ("-7", "int"),
            ("007", "embstr"),
            ("hello", "embstr"),
            ("99999999999999999999", "embstr"),
            (&"x".repeat(44), "embstr"),
            (&"x".repeat(45), "raw"),
        ] {
            assert_eq!(super::encoding(v.as_bytes()), want, "{v}");
        }
    }
}
