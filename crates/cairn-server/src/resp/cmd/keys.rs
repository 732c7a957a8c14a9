//! Key commands: DEL, UNLINK, EXISTS, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT,
//! PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME, TYPE, SCAN, KEYS, DBSIZE,
//! FLUSHDB, FLUSHALL.
//!
//! ```text
//! EXPIRE key seconds [NX | XX | GT | LT]   -> :1 set, :0 key missing or condition false
//! SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]  -> [next-cursor, [key, ...]]
//! ```
//!
//! SCAN cursors are numbers the server maps to engine list cursors in a
//! table shared by every connection (`crate::resp::cursors`), so a scan can
//! go on over another connection (pooled clients do that); `0` starts and
//! ends a scan, and a number not in the table is refused (`-ERR invalid
//! cursor`) rather than taken for the end. A key that exists for the whole
//! scan is returned exactly once.

use super::{Finish, Pending, Plan, Spec, engine_error, int_arg, now_ms, show, syntax_error};
use crate::resp::Shared;
use crate::resp::cursors::ScanCursor;
use crate::resp::glob::Glob;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Applied, Check, Command, Cond, ListOptions, Op, Ttl};

/// The new expiry an EXPIRE-family command asks for, as an absolute time
/// (ms since the epoch); `None` when it is already past (the key is deleted).
fn expire_at(spec: &Spec, args: &[Vec<u8>]) -> Result<Option<u64>, Reply> {
    let n = int_arg(&args[2])?;
    let bad = || Reply::err(format!("invalid expire time in '{}' command", spec.name));
    let (unit, absolute) = match spec.name {
        "expire" => (1000i64, false),
        "pexpire" => (1, false),
        "expireat" => (1000, true),
        _ => (1, true),
    };
    let ms = n.checked_mul(unit).ok_or_else(bad)?;
    let at = if absolute {
        ms
    } else {
        (now_ms() as i64).checked_add(ms).ok_or_else(bad)?
    };
    Ok((at > now_ms() as i64).then_some(at as u64))
}

/// DEL / EXPIRE ops (shared with MULTI). EXPIRE with a condition is not plannable.
pub(crate) fn ops(sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Option<Pending>, Reply> {
    let store = || sess.store.clone();
    match spec.name {
        "del" | "unlink" => Ok(Some(Pending {
            checks: Vec::new(),
            ops: args[1..]
                .iter()
                .map(|k| Op::Delete {
                    store: store(),
                    key: k.clone(),
                })
                .collect(),
            finish: Finish::Deleted,
        })),
        _ => {
            if args.len() > 3 {
                return Ok(None);
            }
            let key = args[1].clone();
            let op = match expire_at(spec, args)? {
                Some(at) => Op::Touch {
                    store: store(),
                    key,
                    ttl: Ttl::At(at),
                },
                None => Op::Delete { store: store(), key },
            };
            Ok(Some(Pending {
                checks: Vec::new(),
                ops: vec![op],
                finish: Finish::Touched,
            }))
        }
    }
}

pub(super) fn plan(sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Plan {
    match ops(sess, spec, args) {
        Ok(Some(p)) => Plan::Write(p),
        Ok(None) => Plan::Sequential,
        Err(r) => Plan::Reply(r),
    }
}

/// TTL, PTTL, EXPIRETIME or PEXPIRETIME (`name`) of a key whose expiry is
/// `expires_at` (outer `None`: the key is absent): -2 absent, -1 no expiry.
pub(super) fn ttl_reply(name: &str, expires_at: Option<Option<u64>>) -> i64 {
    match expires_at {
        None => -2,
        Some(None) => -1,
        Some(Some(at)) => match name {
            "ttl" => (at.saturating_sub(now_ms()) as i64 + 500) / 1000,
            "pttl" => at.saturating_sub(now_ms()) as i64,
            "expiretime" => (at / 1000) as i64,
            _ => at as i64,
        },
    }
}

pub(super) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    let db = &sh.app.db;
    let store = sess.store.clone();
    let r: Result<Reply, Reply> = match spec.name {
        "del" | "unlink" | "expire" | "pexpire" | "expireat" | "pexpireat" => match ops(sess, spec, args) {
            Ok(Some(p)) => Ok(super::execute(sh, p).await),
            Ok(None) => expire_if(sh, sess, spec, args).await,
            Err(r) => Err(r),
        },
        "exists" => {
            let mut n = 0;
            for k in &args[1..] {
                match db.contains(&store, k) {
                    Ok(true) => n += 1,
                    Ok(false) => {}
                    Err(e) if e.is_client_error() => {}
                    Err(e) => return engine_error(&e),
                }
            }
            Ok(Reply::Int(n))
        }
        "ttl" | "pttl" | "expiretime" | "pexpiretime" => db
            .get(&store, &args[1])
            .map_err(|e| engine_error(&e))
            .map(|e| Reply::Int(ttl_reply(spec.name, e.map(|e| e.expires_at)))),
        "type" => db
            .contains(&store, &args[1])
            .map(|e| Reply::Simple(if e { "string" } else { "none" }))
            .map_err(|e| engine_error(&e)),
        "persist" => persist(sh, sess, &args[1]).await,
        "rename" | "renamenx" => rename(sh, sess, spec.name == "renamenx", &args[1], &args[2]).await,
        "dbsize" => count(sh, &store).await.map(|n| Reply::Int(n as i64)),
        "keys" => keys(sh, &store, &args[1]).await,
        "scan" => scan(sh, sess, args),
        "flushdb" | "flushall" => flush(sh, sess, spec, args).await,
        other => Err(Reply::err(format!("command '{other}' is not implemented"))),
    };
    r.unwrap_or_else(|e| e)
}

/// `RENAME src dst` / `RENAMENX`: moves the value and its expiry in one batch.
async fn rename(sh: &Shared, sess: &Session, nx: bool, src: &[u8], dst: &[u8]) -> Result<Reply, Reply> {
    let store = &sess.store;
    for _ in 0..1000 {
        let Some(e) = sh.app.db.get(store, src).map_err(|e| engine_error(&e))? else {
            return Err(Reply::err("no such key"));
        };
        if src == dst {
            return Ok(if nx { Reply::Int(0) } else { Reply::OK });
        }
        let check = |key: &[u8], cond| Check {
            store: store.clone(),
            key: key.to_vec(),
            cond,
        };
        let mut checks = vec![check(src, Cond::Revision(e.revision))];
        if nx {
            checks.push(check(dst, Cond::Absent));
        }
        let ttl = e.expires_at.map_or(Ttl::Persist, Ttl::At);
        let ops = vec![
            Op::Delete {
                store: store.clone(),
                key: src.to_vec(),
            },
            Op::Put {
                store: store.clone(),
                key: dst.to_vec(),
                value: e.value,
                ttl,
            },
        ];
        match sh.app.db.execute_async(Command::Write { checks, ops }).await {
            Ok(Applied::Write(w)) if w.success => return Ok(if nx { Reply::Int(1) } else { Reply::OK }),
            Ok(Applied::Write(w)) if nx && w.failed_check == Some(1) => return Ok(Reply::Int(0)),
            Ok(_) => {}
            Err(e) => return Err(engine_error(&e)),
        }
    }
    Err(Reply::err("too much contention on this key, try again"))
}

/// PERSIST: `:1` only when the key had an expiry.
async fn persist(sh: &Shared, sess: &Session, key: &[u8]) -> Result<Reply, Reply> {
    match sh.app.db.get(&sess.store, key).map_err(|e| engine_error(&e))? {
        Some(e) if e.expires_at.is_some() => {
            let op = Op::Touch {
                store: sess.store.clone(),
                key: key.to_vec(),
                ttl: Ttl::Persist,
            };
            Ok(super::execute(
                sh,
                Pending {
                    checks: Vec::new(),
                    ops: vec![op],
                    finish: Finish::Touched,
                },
            )
            .await)
        }
        _ => Ok(Reply::Int(0)),
    }
}

/// EXPIRE with NX / XX / GT / LT: read, decide, then write if unchanged.
async fn expire_if(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let mut flags = (false, false, false, false);
    for a in &args[3..] {
        match a.to_ascii_uppercase().as_slice() {
            b"NX" => flags.0 = true,
            b"XX" => flags.1 = true,
            b"GT" => flags.2 = true,
            b"LT" => flags.3 = true,
            _ => return Err(Reply::err(format!("Unsupported option {}", show(a)))),
        }
    }
    let (nx, xx, gt, lt) = flags;
    if (nx && (xx || gt || lt)) || (gt && lt) {
        return Err(Reply::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    let at = expire_at(spec, args)?;
    for _ in 0..1000 {
        let Some(e) = sh.app.db.get(&sess.store, &args[1]).map_err(|e| engine_error(&e))? else {
            return Ok(Reply::Int(0));
        };
        // No expiry counts as an infinite TTL for GT / LT.
        let new = at.unwrap_or(0);
        let ok = match e.expires_at {
            None => !xx && !gt,
            Some(cur) => !nx && (!gt || new > cur) && (!lt || new < cur),
        };
        if !ok {
            return Ok(Reply::Int(0));
        }
        let key = args[1].clone();
        let op = match at {
            Some(at) => Op::Touch {
                store: sess.store.clone(),
                key: key.clone(),
                ttl: Ttl::At(at),
            },
            None => Op::Delete {
                store: sess.store.clone(),
                key: key.clone(),
            },
        };
        let checks = vec![Check {
            store: sess.store.clone(),
            key,
            cond: Cond::Revision(e.revision),
        }];
        match sh.app.db.execute_async(Command::Write { checks, ops: vec![op] }).await {
            Ok(Applied::Write(w)) if w.success => return Ok(Reply::Int(1)),
            Ok(_) => {}
            Err(e) => return Err(engine_error(&e)),
        }
    }
    Err(Reply::err("too much contention on this key, try again"))
}

async fn count(sh: &Shared, store: &str) -> Result<u64, Reply> {
    let db = sh.app.db.clone();
    let store = store.to_owned();
    tokio::task::spawn_blocking(move || db.count(&store, None))
        .await
        .map_err(|_| Reply::err("count failed"))?
        .map_err(|e| engine_error(&e))
}

/// Lists keys of `store` matching `glob` in pages: `f` sees each page.
fn list_page(
    sh: &Shared,
    store: &str,
    glob: &Glob,
    cursor: Option<String>,
    limit: usize,
) -> Result<(Vec<Vec<u8>>, Option<String>), Reply> {
    let db = &sh.app.db;
    let prefix = glob.literal_prefix();
    let prefix_ok = !prefix.is_empty()
        && db
            .store_spec(store)
            .map_err(|e| engine_error(&e))?
            .key_type
            .supports_prefix();
    let o = ListOptions {
        prefix: prefix_ok.then(|| prefix.to_vec()),
        limit: Some(limit),
        cursor,
        keys_only: true,
        ..ListOptions::default()
    };
    let page = db.list(store, &o).map_err(|e| engine_error(&e))?;
    let keys = page
        .items
        .into_iter()
        .map(|e| e.key.to_raw())
        .filter(|k| glob.is_all() || glob.matches(k))
        .collect();
    Ok((keys, page.next_cursor))
}

async fn keys(sh: &Shared, store: &str, pattern: &[u8]) -> Result<Reply, Reply> {
    let sh2 = sh.clone();
    let store = store.to_owned();
    let glob = Glob::new(pattern);
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let (keys, next) = list_page(&sh2, &store, &glob, cursor, cairn_core::MAX_LIST_LIMIT)?;
            out.extend(keys.into_iter().map(Reply::Bulk));
            match next {
                Some(c) => cursor = Some(c),
                None => return Ok(Reply::Array(out)),
            }
        }
    })
    .await
    .map_err(|_| Reply::err("KEYS failed"))?
}

/// `SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]`.
///
/// A cursor goes on with the store its scan started in, whichever store the
/// connection has SELECTed since (and whichever connection sends it): a
/// cursor names a position in one store's key order, so reading another
/// store from there would skip or repeat keys. The caller still needs read
/// access to that store. `SCAN 0` always starts a new scan of the selected
/// store.
fn scan(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    let id = std::str::from_utf8(&args[1])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| Reply::err("invalid cursor"))?;
    let (mut pattern, mut count, mut strings) = (b"*".to_vec(), 10usize, true);
    let mut i = 2;
    while i < args.len() {
        let v = args.get(i + 1).ok_or_else(syntax_error)?;
        match args[i].to_ascii_uppercase().as_slice() {
            b"MATCH" => pattern = v.clone(),
            b"COUNT" => {
                count = usize::try_from(int_arg(v)?)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(syntax_error)?;
            }
            // Every cairn value is a Redis string.
            b"TYPE" => strings = v.eq_ignore_ascii_case(b"string"),
            _ => return Err(syntax_error()),
        }
        i += 2;
    }
    let (store, cursor) = if id == 0 {
        (sess.store.clone(), None)
    } else {
        // Unknown, forgotten, already used or from before a restart: an
        // error, never an empty last page (the client would lose keys).
        let c = sh
            .cursors
            .get(id)
            .ok_or_else(|| Reply::err("invalid cursor: unknown or expired SCAN cursor (start again from 0)"))?;
        if c.store != sess.store
            && let Some(p) = &sess.principal
            && p.allow(crate::auth::Role::Read, Some(&c.store)).is_err()
        {
            return Err(Reply::Error(format!(
                "NOPERM this token has no permission to run the 'scan' command on store {:?}",
                c.store
            )));
        }
        (c.store, Some(c.engine))
    };
    if !strings {
        // No key has another type: the scan ends here.
        sh.cursors.advance(id, None);
        return Ok(Reply::Array(vec![Reply::text("0"), Reply::Array(vec![])]));
    }
    let glob = Glob::new(&pattern);
    let (keys, next) = list_page(sh, &store, &glob, cursor, count.min(cairn_core::MAX_LIST_LIMIT))?;
    // The used cursor is forgotten only now: after an engine error the
    // client may send it again.
    let next_id = sh.cursors.advance(id, next.map(|engine| ScanCursor { store, engine }));
    Ok(Reply::Array(vec![
        Reply::text(next_id.to_string()),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ]))
}

async fn flush(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    for a in &args[1..] {
        if !(a.eq_ignore_ascii_case(b"ASYNC") || a.eq_ignore_ascii_case(b"SYNC")) {
            return Err(syntax_error());
        }
    }
    let stores: Vec<String> = if spec.name == "flushall" {
        sh.app.db.stores().into_iter().map(|s| s.name).collect()
    } else {
        vec![sess.store.clone()]
    };
    for store in stores {
        if let Err(e) = sh.app.db.execute_async(Command::Clear { store }).await {
            return Err(engine_error(&e));
        }
    }
    Ok(Reply::OK)
}
