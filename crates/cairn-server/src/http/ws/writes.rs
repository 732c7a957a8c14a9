//! Write requests, started in arrival order and finished later, so that a
//! client pipelining writes shares commits (and fsyncs) between them.

use super::messages::{PutVerb, Request, WsError};
use crate::AppState;
use cairn_core::{Applied, Command, Db, delete_result, incr_result, put_result};
use serde_json::{Value as Json, json};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A write whose command is already queued on the engine's writer.
pub type InFlight = Pin<Box<dyn Future<Output = Result<Json, WsError>> + Send>>;

/// What [`start`] did with a request.
pub enum Start {
    /// A write, queued: await it for the response.
    Submitted(InFlight),
    /// A write refused before reaching the writer (unknown store, bad key, ...).
    Failed(WsError),
    /// Not a write: handle it some other way.
    NotAWrite(Request),
}

/// Builds the command for a write request and queues it on the engine's
/// writer before returning. The writer applies commands in queue order, so
/// writes started in order commit in order and a later write never
/// overtakes an earlier one.
pub fn start(state: &AppState, req: Request) -> Start {
    let db = &state.db;
    let built: Result<InFlight, cairn_core::Error> = match req {
        Request::Put { verb, store, key, value, options } => {
            db.put_command(&store, &key, value, options).map(|(cmd, key_text)| {
                let applied = submit(db, cmd);
                let ty = match verb {
                    PutVerb::Set => "set_response",
                    PutVerb::Put => "put_response",
                };
                Box::pin(async move {
                    let r = put_result(key_text, applied.await?)?;
                    Ok(json!({"type": ty, "key": cairn_core::json_key(&r.key, &key), "success": r.success, "revision": r.revision, "created": r.created}))
                }) as InFlight
            })
        }
        Request::Delete { store, key, if_revision } => {
            db.delete_command(&store, &key, if_revision).map(|(cmd, key_text)| {
                let applied = submit(db, cmd);
                Box::pin(async move {
                    let r = delete_result(key_text, applied.await?)?;
                    Ok(json!({"type": "delete_response", "key": cairn_core::json_key(&r.key, &key), "success": r.success, "revision": r.revision}))
                }) as InFlight
            })
        }
        Request::Incr { store, key, by } => db.incr_command(&store, &key, by).map(|(cmd, key_text)| {
            let applied = submit(db, cmd);
            Box::pin(async move {
                let r = incr_result(key_text, applied.await?)?;
                Ok(json!({"type": "incr_response", "key": cairn_core::json_key(&r.key, &key), "value": r.value, "revision": r.revision}))
            }) as InFlight
        }),
        Request::Clear { store } => {
            let applied = submit(db, Command::Clear { store: store.clone() });
            Ok(Box::pin(async move {
                match applied.await? {
                    Applied::Cleared { removed, revision } => {
                        Ok(json!({"type": "clear_response", "store": store, "removed": removed, "revision": revision}))
                    }
                    other => Err(unexpected(&other)),
                }
            }) as InFlight)
        }
        Request::Batch { checks, ops } => {
            let applied = submit(db, Command::Write { checks, ops });
            Ok(Box::pin(async move {
                match applied.await? {
                    Applied::Write(w) if w.success => {
                        Ok(json!({"type": "batch_response", "success": true, "revision": w.revision}))
                    }
                    Applied::Write(w) => Ok(json!({
                        "type": "batch_response", "success": false, "failed_check": w.failed_check,
                        "revision": w.current_revision,
                    })),
                    other => Err(unexpected(&other)),
                }
            }) as InFlight)
        }
        Request::StoreContent { data, algorithm } => {
            let applied = submit(db, Command::PutContent { algorithm, data });
            Ok(Box::pin(async move {
                match applied.await? {
                    Applied::Content { info, .. } => Ok(json!({
                        "type": "store_content_response", "hash": info.hash, "algorithm": info.algorithm,
                        "size": info.size, "stored": info.stored,
                    })),
                    other => Err(unexpected(&other)),
                }
            }) as InFlight)
        }
        other => return Start::NotAWrite(other),
    };
    match built {
        Ok(f) => Start::Submitted(f),
        Err(e) => Start::Failed(e.into()),
    }
}

type Applying = Pin<Box<dyn Future<Output = cairn_core::Result<Applied>> + Send>>;

/// Queues `cmd` on the writer now, returning the future of its result.
///
/// `Db::execute_async` queues the job when first polled, so it is polled
/// once here, with a no-op waker; awaiting it later registers the real
/// waker. (Should the engine ever queue later than the first poll, order
/// would still hold, since in-flight writes are awaited in order; only the
/// sharing of commits would be lost.)
fn submit(db: &Db, cmd: Command) -> Applying {
    let db = db.clone();
    let mut fut: Applying = Box::pin(async move { db.execute_async(cmd).await });
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Pending => fut,
        Poll::Ready(r) => Box::pin(std::future::ready(r)),
    }
}

fn unexpected(a: &Applied) -> WsError {
    tracing::error!(applied = ?a, "unexpected engine result");
    WsError::new("internal", "internal error")
}
