//! `GET /v1/watch`: change events as Server-Sent Events.
//!
//! Each event is `id: <revision>` plus `data: <event JSON>`; a quiet stream
//! gets `event: progress` with `{"type": "progress", "revision"}` (and that
//! revision as its `id`) every `heartbeat_ms`, and once as soon as a new
//! stream is idle, so that a client has a resume point before any event. The stream holds only a [`Subscription`] (a cursor into
//! the change log), so a slow client costs the engine nothing: it falls
//! behind and catches up from the log.

use super::auth::Caller;
use super::error::{ApiError, ApiResult};
use super::extract::Query;
use crate::AppState;
use crate::auth::Role;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, Sse};
use cairn_core::{Event, Filter, Subscription};
use futures_util::Stream;
use serde::Deserialize;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

/// Events fetched from the subscription per poll.
const POLL_BATCH: usize = 256;

/// Query of `GET /v1/watch`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct WatchParams {
    /// Only this store.
    pub store: Option<String>,
    /// Only this exact key.
    pub key: Option<String>,
    /// Only keys starting with this.
    pub prefix: Option<String>,
    /// Bearer token, for browsers' `EventSource`, which cannot set an
    /// `Authorization` header (it then appears in URLs and logs: prefer
    /// the header where you can).
    pub token: Option<String>,
    /// Replay from this revision (inclusive), then follow live; absent or 0:
    /// from now on.
    pub from_revision: Option<u64>,
}

/// Streams change events (text/event-stream). `Last-Event-ID` resumes after that revision.
#[utoipa::path(get, path = "/v1/watch", params(WatchParams),
    responses((status = 200, content_type = "text/event-stream", description = "events; `data:` is an event JSON"),
        (status = 410, body = super::error::ErrorBody, description = "from_revision was compacted away")), tag = "watch")]
pub async fn watch(
    State(state): State<AppState>,
    Query(q): Query<WatchParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let caller = Caller::from_headers_or_query(&state, &headers, q.token.as_deref())?;
    if q.store.is_none() && !caller.can_read_all() {
        return Err(ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            "forbidden",
            "this token may not read every store: watch one store it may read with `store=NAME`",
        ));
    }
    caller.allow(Role::Read, q.store.as_deref())?;
    if q.key.is_some() && q.prefix.is_some() {
        return Err(ApiError::bad_request(
            "invalid_argument",
            "key and prefix cannot both be set: watch one key, or every key under a prefix",
        ));
    }
    let last_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("invalid_argument", "Last-Event-ID must be a revision number"))?,
        ),
        None => None,
    };
    // A reconnecting EventSource sends the last revision it saw: resume after it.
    let from = last_id.map(|r| r + 1).or(q.from_revision);
    let filter = Filter {
        store: q.store,
        key: q.key,
        prefix: q.prefix,
    };
    let sub = state.db.subscribe(filter, from)?;
    let heartbeat = state.config.heartbeat();
    let stream = WatchStream {
        sub,
        pending: VecDeque::new(),
        heartbeat,
        // A progress message as soon as the stream is idle, so a client
        // knows the revision it is caught up to before any event comes:
        // its resume point (`Last-Event-ID`) if the connection drops.
        next_beat: tokio::time::Instant::now(),
        shutdown: state.shutdown.clone(),
        done: false,
    };
    Ok(Sse::new(futures_util::stream::unfold(stream, WatchStream::next)))
}

struct WatchStream {
    sub: Subscription,
    pending: VecDeque<Arc<Event>>,
    heartbeat: Duration,
    /// When to send a progress message if nothing else is sent before.
    /// Only sending moves it, so writes that the filter drops cannot
    /// postpone the heartbeat forever.
    next_beat: tokio::time::Instant,
    shutdown: CancellationToken,
    done: bool,
}

impl WatchStream {
    async fn next(mut self) -> Option<(Result<SseEvent, Infallible>, Self)> {
        if self.done {
            return None;
        }
        loop {
            if let Some(e) = self.pending.pop_front() {
                // Only the last event of a revision carries the id, so a client
                // resuming with Last-Event-ID never skips the rest of a batch.
                let last_of_revision = self.pending.front().is_none_or(|n| n.revision != e.revision);
                self.next_beat = tokio::time::Instant::now() + self.heartbeat;
                return Some((Ok(event_frame(&e, last_of_revision)), self));
            }
            match self.sub.poll(POLL_BATCH) {
                Ok(events) if !events.is_empty() => {
                    self.pending.extend(events);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    // The subscriber fell behind the retained log: tell it and end the stream.
                    tracing::info!(error = %e, "watch stream ended");
                    self.done = true;
                    let mut body = serde_json::json!({"type": "error", "code": e.code(), "message": e.to_string()});
                    if let cairn_core::Error::Compacted { oldest, .. } = &e {
                        body["oldest_revision"] = (*oldest).into();
                    }
                    return Some((Ok(SseEvent::default().event("error").data(body.to_string())), self));
                }
            }
            let seen = self.sub.next_revision().saturating_sub(1);
            tokio::select! {
                () = self.sub.changed() => {}
                () = tokio::time::sleep_until(self.next_beat) => {
                    self.next_beat = tokio::time::Instant::now() + self.heartbeat;
                    let body = serde_json::json!({"type": "progress", "revision": seen});
                    let frame = SseEvent::default().event("progress").id(seen.to_string()).data(body.to_string());
                    return Some((Ok(frame), self));
                }
                () = self.shutdown.cancelled() => return None,
            }
        }
    }
}

fn event_frame(e: &Event, with_id: bool) -> SseEvent {
    let data = serde_json::to_string(e).unwrap_or_else(|err| {
        tracing::error!(error = %err, revision = e.revision, "event does not serialize");
        String::from("{}")
    });
    let frame = SseEvent::default().data(data);
    if with_id {
        frame.id(e.revision.to_string())
    } else {
        frame
    }
}
