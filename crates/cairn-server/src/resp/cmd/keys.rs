//! Key commands: DEL, UNLINK, EXISTS, TOUCH, EXPIRE, PEXPIRE, EXPIREAT,
//! PEXPIREAT, PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME, TYPE, RENAME,
//! RENAMENX, COPY, MOVE, RANDOMKEY, SCAN, KEYS, DBSIZE, FLUSHDB, FLUSHALL.
//!
//! ```text
//! EXPIRE key seconds [NX | XX | GT | LT]   -> :1 set, :0 key missing or condition false
//! RENAME src dst                           -> +OK, or -ERR no such key
//! COPY src dst [DB n] [REPLACE]            -> :1 copied, :0 src missing or dst exists
//! MOVE key db                              -> :1 moved, :0 key missing or present in db
//! RANDOMKEY                                -> a key, or nil when the store is empty
//! SCAN cursor [MATCH pattern] [COUNT n] [TYPE string]  -> [next-cursor, [key, ...]]
//! ```
//!
//! SCAN cursors are numbers the server maps to engine list cursors in a
//! table shared by every connection (`crate::resp::cursors`), so a scan can
//! go on over another connection (pooled clients do that); `0` starts and
//! ends a scan, and a number not in the table is refused (`-ERR invalid
//! cursor`) rather than taken for the end. A key that exists for the whole
//! scan is returned exactly once.

use super::{Finish, Pending, Spec, engine_error, int_arg, now_ms, show, syntax_error};
use crate::resp::Shared;
use crate::resp::cursors::ScanCursor;
use crate::resp::glob::Glob;
use crate::resp::reply::Reply;
use crate::resp::session::Session;
use cairn_core::{Check, Command, Cond, ListOptions, Op, Ttl};

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

/// The condition of `EXPIRE .. NX | XX | GT | LT` for a new expiry `at`
/// (`None`: already past), or `None` without options.
fn expire_cond(args: &[Vec<u8>], at: Option<u64>) -> Result<Option<Cond>, Reply> {
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for a in &args[3..] {
        match a.to_ascii_uppercase().as_slice() {
            b"NX" => nx = true,
            b"XX" => xx = true,
            b"GT" => gt = true,
            b"LT" => lt = true,
            _ => return Err(Reply::err(format!("Unsupported option {}", show(a)))),
        }
    }
    if nx && (xx || gt || lt) {
        return Err(Reply::err(
            "NX and XX, GT or LT options at the same time are not compatible",
        ));
    }
    if gt && lt {
        return Err(Reply::err("GT and LT options at the same time are not compatible"));
    }
    // No expiry counts as an infinite TTL for GT / LT (so GT never holds on
    // a key without one, and LT always does); a past time compares as 0.
    let new = at.unwrap_or(0);
    Ok(if nx {
        Some(Cond::Persistent)
    } else if gt {
        Some(Cond::ExpiresBefore(new))
    } else if lt {
        Some(Cond::ExpiresAfter(new))
    } else if xx {
        Some(Cond::Expiring)
    } else {
        None
    })
}

/// The store of database `n` for COPY .. DB (see [`ensure_copy_db`], which
/// made a numbered one before the command was planned).
fn db_store(sh: &Shared, arg: &[u8]) -> Result<String, Reply> {
    let store = super::server::store_for(arg)?;
    match sh.app.db.store_spec(&store) {
        Ok(_) => Ok(store),
        Err(e) => Err(engine_error(&e)),
    }
}

/// Like SELECT, makes the store of a `COPY .. DB n` with n in 1-15 on first
/// use (Redis's databases always exist). Run before the command is planned:
/// creating a store waits for the writer, which planning must not do on an
/// async worker (it did, and the blocking wait panicked the connection).
pub(crate) async fn ensure_copy_db(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<(), Reply> {
    let Some(store) = copy_target(spec, args)? else {
        return Ok(());
    };
    let db = &sh.app.db;
    if !store.bytes().all(|b| b.is_ascii_digit()) || db.store_spec(&store).is_ok() {
        return Ok(());
    }
    // Only a token that may write there makes the store (COPY checks again).
    if sess
        .principal
        .as_ref()
        .is_none_or(|p| p.allow(crate::auth::Role::Write, Some(&store)).is_err())
    {
        return Err(Reply::Error(format!(
            "NOPERM this token has no permission to run the '{}' command on store {store:?}",
            spec.name
        )));
    }
    super::server::make_numbered_store(sh, &store).await
}

/// The other store COPY .. DB or MOVE writes to, if the command names one.
fn copy_target(spec: &Spec, args: &[Vec<u8>]) -> Result<Option<String>, Reply> {
    let db_arg = match spec.name {
        "copy" => match (3..args.len().saturating_sub(1)).find(|&i| args[i].eq_ignore_ascii_case(b"DB")) {
            Some(i) => &args[i + 1],
            None => return Ok(None),
        },
        "move" => &args[2],
        _ => return Ok(None),
    };
    super::server::store_for(db_arg).map(Some)
}

/// Inside a script (which cannot create stores): the store COPY .. DB or
/// MOVE writes to must exist already.
pub(crate) fn copy_target_exists(sh: &Shared, spec: &Spec, args: &[Vec<u8>]) -> Result<(), Reply> {
    match copy_target(spec, args)? {
        Some(store) if sh.app.db.store_spec(&store).is_err() => Err(Reply::err(format!(
            "store {store:?} does not exist (a script cannot create stores: SELECT it once outside the script)"
        ))),
        _ => Ok(()),
    }
}

/// `MOVE key db`: the key goes to the other store when it is absent
/// there, in one atomic write (`:1`), else nothing happens (`:0`).
fn move_key(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Op, Reply> {
    let to_store = super::server::store_for(&args[2])?;
    if let Some(p) = &sess.principal
        && p.allow(crate::auth::Role::Write, Some(&to_store)).is_err()
    {
        return Err(Reply::Error(format!(
            "NOPERM this token has no permission to run the 'move' command on store {to_store:?}"
        )));
    }
    let to_store = db_store(sh, &args[2])?;
    if to_store == sess.store {
        return Err(Reply::err("source and destination objects are the same"));
    }
    Ok(Op::Move {
        store: sess.store.clone(),
        key: args[1].clone(),
        to_store,
    })
}

/// `COPY src dst [DB n] [REPLACE]`.
fn copy(sh: &Shared, sess: &Session, args: &[Vec<u8>]) -> Result<Op, Reply> {
    let (mut to_store, mut replace) = (sess.store.clone(), false);
    let mut i = 3;
    while i < args.len() {
        match args[i].to_ascii_uppercase().as_slice() {
            b"REPLACE" => replace = true,
            b"DB" if i + 1 < args.len() => {
                i += 1;
                to_store = super::server::store_for(&args[i])?;
                if let Some(p) = &sess.principal
                    && p.allow(crate::auth::Role::Write, Some(&to_store)).is_err()
                {
                    return Err(Reply::Error(format!(
                        "NOPERM this token has no permission to run the 'copy' command on store {to_store:?}"
                    )));
                }
                to_store = db_store(sh, &args[i])?;
            }
            _ => return Err(syntax_error()),
        }
        i += 1;
    }
    if to_store == sess.store && args[1] == args[2] {
        return Err(Reply::err("source and destination objects are the same"));
    }
    Ok(Op::Copy {
        store: sess.store.clone(),
        key: args[1].clone(),
        to_store,
        to: args[2].clone(),
        replace,
    })
}

/// The engine write of DEL, UNLINK, the EXPIRE family, PERSIST, RENAME,
/// RENAMENX and COPY (shared with MULTI).
pub(crate) fn ops(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Pending, Reply> {
    let store = || sess.store.clone();
    let key = args[1].clone();
    let one = |op, finish| Pending {
        checks: Vec::new(),
        ops: vec![op],
        finish,
    };
    let guarded = |cond: Option<Cond>, op: Op| match cond {
        Some(cond) => Op::If {
            checks: vec![Check {
                store: store(),
                key: args[1].clone(),
                cond,
            }],
            ops: vec![op],
        },
        None => op,
    };
    Ok(match spec.name {
        "del" | "unlink" => Pending {
            checks: Vec::new(),
            ops: args[1..]
                .iter()
                .map(|k| Op::Delete {
                    store: store(),
                    key: k.clone(),
                })
                .collect(),
            finish: Finish::Deleted,
        },
        "persist" => {
            let op = Op::Touch {
                store: store(),
                key,
                ttl: Ttl::Persist,
            };
            one(guarded(Some(Cond::Expiring), op), Finish::Touched)
        }
        "rename" | "renamenx" => {
            let nx = spec.name == "renamenx";
            let op = Op::Rename {
                store: store(),
                key,
                to: args[2].clone(),
                nx,
            };
            one(op, Finish::Renamed { nx })
        }
        "copy" => one(copy(sh, sess, args)?, Finish::Copied),
        "move" => one(move_key(sh, sess, args)?, Finish::Copied),
        _ => {
            let at = expire_at(spec, args)?;
            let cond = expire_cond(args, at)?;
            let op = match at {
                Some(at) => Op::Touch {
                    store: store(),
                    key,
                    ttl: Ttl::At(at),
                },
                None => Op::Delete { store: store(), key },
            };
            one(guarded(cond, op), Finish::Touched)
        }
    })
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
            // Rounded as Redis rounds (`(ms + 500) / 1000`), like TTL.
            "expiretime" => (at.saturating_add(500) / 1000) as i64,
            _ => at as i64,
        },
    }
}

pub(super) async fn run(sh: &Shared, sess: &mut Session, spec: &Spec, args: &[Vec<u8>]) -> Reply {
    let db = &sh.app.db;
    let store = sess.store.clone();
    let r: Result<Reply, Reply> = match spec.name {
        // TOUCH only counts: cairn keeps no access times.
        "exists" | "touch" => {
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
        "randomkey" => random_key(sh, &store).await,
        "dbsize" => count(sh, &store).await.map(|n| Reply::Int(n as i64)),
        "keys" => keys(sh, &store, &args[1]).await,
        "scan" => scan(sh, sess, args),
        "flushdb" | "flushall" => flush(sh, sess, spec, args).await,
        other => Err(Reply::err(format!("command '{other}' is not implemented"))),
    };
    r.unwrap_or_else(|e| e)
}

/// `RANDOMKEY`: a key picked uniformly among the live keys. cairn walks
/// to a random index below the kept count (O(n), where Redis is O(1)).
async fn random_key(sh: &Shared, store: &str) -> Result<Reply, Reply> {
    use std::hash::BuildHasher;
    let db = sh.app.db.clone();
    let store = store.to_owned();
    let seed = std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now());
    tokio::task::spawn_blocking(move || -> cairn_core::Result<Reply> {
        let n = db.count(&store, None)?;
        if n == 0 {
            return Ok(Reply::Nil);
        }
        let mut skip = seed % n;
        let mut cursor = None;
        loop {
            let o = ListOptions {
                limit: Some(cairn_core::MAX_LIST_LIMIT),
                cursor,
                keys_only: true,
                ..ListOptions::default()
            };
            let page = db.list(&store, &o)?;
            let len = page.items.len() as u64;
            if skip < len {
                return Ok(Reply::Bulk(page.items[skip as usize].key.to_raw()));
            }
            skip -= len;
            // Keys expired or deleted since the count: take the last one seen.
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(page.items.last().map_or(Reply::Nil, |e| Reply::Bulk(e.key.to_raw()))),
            }
        }
    })
    .await
    .map_err(|_| Reply::err("RANDOMKEY failed"))?
    .map_err(|e| engine_error(&e))
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
        // Unknown, forgotten or from before a restart: an error, never an
        // empty last page (the client would lose keys).
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
    let next_id = sh.cursors.advance(id, next.map(|engine| ScanCursor { store, engine }));
    Ok(Reply::Array(vec![
        Reply::text(next_id.to_string()),
        Reply::Array(keys.into_iter().map(Reply::Bulk).collect()),
    ]))
}

async fn flush(sh: &Shared, sess: &Session, spec: &Spec, args: &[Vec<u8>]) -> Result<Reply, Reply> {
    // At most one of ASYNC / SYNC, as Redis takes.
    match &args[1..] {
        [] => {}
        [a] if a.eq_ignore_ascii_case(b"ASYNC") || a.eq_ignore_ascii_case(b"SYNC") => {}
        _ => return Err(syntax_error()),
    }
    let stores: Vec<String> = if spec.name == "flushall" {
        sh.app.db.stores().into_iter().map(|s| s.name).collect()
    } else {
        vec![sess.store.clone()]
    };
    let all = spec.name == "flushall";
    for store in stores {
        match sh.app.db.execute_async(Command::Clear { store }).await {
            Ok(_) => {}
            // Dropped since it was listed: nothing left to flush there.
            Err(cairn_core::Error::UnknownStore { .. }) if all => {}
            Err(e) => return Err(engine_error(&e)),
        }
    }
    Ok(Reply::OK)
}
