//! One RESP connection: read, parse every complete frame, run the commands
//! in order, write all replies with one `write_all` per batch.
//!
//! Pipelined writes that need no read first are submitted to the engine's
//! writer together (it commits them in order, sharing one fsync), and their
//! replies are rendered in order once they complete. Any other command first
//! waits for those writes, so reads always see earlier writes of the same
//! connection.

use super::Shared;
use super::clients::Client;
use super::cmd::{self, Finish, InMulti, Outcome, Plan};
use super::frame::{Frame, FrameError};
use super::pubsub::Message;
use super::reply::Reply;
use super::session::Session;
use bytes::{Buf, BytesMut};
use cairn_core::{Applied, Command};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

type WriteFuture = Pin<Box<dyn Future<Output = cairn_core::Result<Applied>> + Send>>;

/// Writes in flight before the connection waits for them.
const MAX_IN_FLIGHT: usize = 1024;
/// Replies buffered before they are written out mid-batch.
const MAX_BUFFERED: usize = 1 << 20;
/// Pub/sub messages written per wake-up.
const MESSAGE_BATCH: usize = 1024;

enum Item {
    Ready(Reply),
    /// A script submitted to the writer (its reply once it ran).
    Script {
        fut: Pin<Box<dyn Future<Output = Reply> + Send>>,
        done: Option<Reply>,
    },
    Pending {
        fut: WriteFuture,
        done: Option<cairn_core::Result<Applied>>,
        finish: Finish,
    },
}

struct Entry {
    item: Item,
    name: &'static str,
    started: Instant,
}

/// Submitted writes and the replies queued behind them, in command order.
#[derive(Default)]
struct Segment {
    entries: Vec<Entry>,
}

struct Conn<S> {
    stream: S,
    rbuf: BytesMut,
    wbuf: BytesMut,
    sess: Session,
    sh: Shared,
    /// This connection in the server's list (CLIENT LIST / KILL).
    client: Arc<Client>,
    /// The last command run, for CLIENT LIST.
    last_cmd: &'static str,
    seg: Segment,
    /// Observations of answered commands, recorded once per read batch so a
    /// pipeline does not touch the shared counters once per command.
    observed: Vec<(&'static str, u16, std::time::Duration)>,
}

/// Serves one client over any byte stream until it quits, breaks the
/// protocol, disconnects, or the server shuts down.
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin + Send>(stream: S, peer: String, sh: Shared) {
    let id = sh.stats.next_id.fetch_add(1, Ordering::Relaxed);
    sh.stats.connections.fetch_add(1, Ordering::Relaxed);
    sh.app.metrics.connection("resp", 1);
    let client = sh.clients.add(id, &peer);
    let sess = Session::new(id, peer, sh.app.auth.enabled());
    let mut c = Conn {
        stream,
        rbuf: BytesMut::with_capacity(16 * 1024),
        wbuf: BytesMut::with_capacity(16 * 1024),
        sess,
        sh: sh.clone(),
        client,
        last_cmd: "",
        seg: Segment::default(),
        observed: Vec::new(),
    };
    c.run().await;
    sh.clients.remove(id);
    sh.hub.remove(id);
    sh.stats.closed.fetch_add(1, Ordering::Relaxed);
    sh.app.metrics.connection("resp", -1);
}

async fn recv(rx: &mut Option<mpsc::Receiver<Message>>) -> Option<Message> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

fn message_reply(m: Message) -> Reply {
    match m {
        Message::Message { channel, payload } => Reply::Push(vec![
            Reply::text("message"),
            Reply::Bulk(channel.to_vec()),
            Reply::Bulk(payload.to_vec()),
        ]),
        Message::PMessage {
            pattern,
            channel,
            payload,
        } => Reply::Push(vec![
            Reply::text("pmessage"),
            Reply::Bulk(pattern.to_vec()),
            Reply::Bulk(channel.to_vec()),
            Reply::Bulk(payload.to_vec()),
        ]),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Conn<S> {
    async fn run(&mut self) {
        let shutdown = self.sh.app.shutdown.clone();
        loop {
            let close = self.process().await;
            self.flush_segment().await;
            self.record_observed();
            self.client.refresh(&self.sess, self.last_cmd);
            if self.write_out().await.is_err() || close {
                return;
            }
            if self.rbuf.capacity() - self.rbuf.len() < 4096 {
                self.rbuf.reserve(16 * 1024);
            }
            let Conn {
                stream,
                rbuf,
                sess,
                client,
                ..
            } = self;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = client.kill.cancelled() => return,
                r = stream.read_buf(rbuf) => match r {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                },
                m = recv(&mut sess.messages) => match m {
                    Some(m) => {
                        let proto = self.sess.proto;
                        message_reply(m).encode(proto, &mut self.wbuf);
                        for _ in 0..MESSAGE_BATCH {
                            let Some(Ok(m)) = self.sess.messages.as_mut().map(mpsc::Receiver::try_recv) else { break };
                            message_reply(m).encode(proto, &mut self.wbuf);
                        }
                    }
                    // The hub dropped this subscriber for falling behind.
                    None => {
                        let _ = self.write_out().await;
                        return;
                    }
                },
            }
        }
    }

    async fn write_out(&mut self) -> std::io::Result<()> {
        if !self.wbuf.is_empty() {
            self.stream.write_all(&self.wbuf).await?;
            self.wbuf.clear();
        }
        Ok(())
    }

    /// Runs every complete frame in the read buffer; true when the connection must close.
    async fn process(&mut self) -> bool {
        while !self.rbuf.is_empty() {
            match Frame::parse_with(&self.rbuf, &self.sh.limits) {
                Ok((frame, n)) => {
                    self.rbuf.advance(n);
                    match frame.into_args() {
                        Ok(args) if args.is_empty() => {}
                        Ok(args) => {
                            if self.command(args).await {
                                return true;
                            }
                        }
                        Err(msg) => return self.protocol_error(&msg).await,
                    }
                }
                Err(FrameError::Incomplete) => return false,
                Err(FrameError::Invalid(m)) => return self.protocol_error(&format!("Protocol error: {m}")).await,
            }
            if self.seg.entries.len() >= MAX_IN_FLIGHT {
                self.flush_segment().await;
            }
            if self.wbuf.len() >= MAX_BUFFERED && self.seg.entries.is_empty() {
                self.record_observed();
                if self.write_out().await.is_err() {
                    return true;
                }
            }
        }
        false
    }

    async fn protocol_error(&mut self, msg: &str) -> bool {
        tracing::debug!(client = self.sess.id, peer = %self.sess.peer, error = msg, "RESP protocol error; closing");
        self.flush_segment().await;
        self.push(Reply::err(msg), "protocol_error", Instant::now());
        true
    }

    /// Queues a reply behind pending writes, or encodes it now.
    fn push(&mut self, r: Reply, name: &'static str, started: Instant) {
        if self.seg.entries.is_empty() {
            self.observe(name, r.is_error(), started);
            r.encode(self.sess.proto, &mut self.wbuf);
        } else {
            self.seg.entries.push(Entry {
                item: Item::Ready(r),
                name,
                started,
            });
        }
    }

    fn observe(&mut self, name: &'static str, err: bool, started: Instant) {
        self.observed.push((name, u16::from(err), started.elapsed()));
    }

    /// Publishes the batch's observations (before its replies are written,
    /// so a client that has its answer also sees it counted).
    fn record_observed(&mut self) {
        if self.observed.is_empty() {
            return;
        }
        self.sh
            .stats
            .commands
            .fetch_add(self.observed.len() as u64, Ordering::Relaxed);
        self.sh.app.metrics.observe_many("resp", &self.observed);
        self.observed.clear();
    }

    /// Hands a write to the engine's writer now (so it joins the next group
    /// commit) and queues its reply.
    async fn submit(&mut self, p: cmd::Pending, name: &'static str, started: Instant) {
        let (command, finish): (Command, Finish) = p.command();
        let db = self.sh.app.db.clone();
        let mut fut: WriteFuture = Box::pin(async move { db.execute_async(command).await });
        // The first poll sends the job to the writer, in command order.
        let done = match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
            Poll::Ready(r) => Some(r),
            Poll::Pending => None,
        };
        self.seg.entries.push(Entry {
            item: Item::Pending { fut, done, finish },
            name,
            started,
        });
    }

    /// Waits for submitted writes and encodes every queued reply in order.
    async fn flush_segment(&mut self) {
        for e in std::mem::take(&mut self.seg.entries) {
            let r = match e.item {
                Item::Ready(r) => r,
                Item::Script { fut, done } => match done {
                    Some(r) => r,
                    None => fut.await,
                },
                Item::Pending { fut, done, finish } => finish.render(match done {
                    Some(r) => r,
                    None => fut.await,
                }),
            };
            self.observe(e.name, r.is_error(), e.started);
            r.encode(self.sess.proto, &mut self.wbuf);
        }
    }

    /// Runs one command; true when the connection must close.
    async fn command(&mut self, args: Vec<Vec<u8>>) -> bool {
        let started = Instant::now();
        let Some(spec) = cmd::lookup(&args[0]) else {
            self.last_cmd = "unknown";
            self.doom_multi();
            self.push(cmd::unknown_command(&args), "unknown", started);
            return false;
        };
        self.last_cmd = spec.name;
        if let Err(r) = self.precheck(spec, args.len()) {
            self.push(r, spec.name, started);
            return false;
        }
        if self.sess.multi.is_some() && spec.multi != InMulti::Control {
            let r = cmd::multi::queue(&mut self.sess, spec, args);
            self.push(r, spec.name, started);
            return false;
        }
        if super::script::is_script(spec.name) {
            // Like a planned write: queued with the writes around it, answered in order.
            let mut fut = super::script::submit(&self.sh, &self.sess, spec, args);
            let done = match std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
                Poll::Ready(r) => Some(r),
                Poll::Pending => None,
            };
            self.seg.entries.push(Entry {
                item: Item::Script { fut, done },
                name: spec.name,
                started,
            });
            return false;
        }
        if spec.plannable {
            if let Err(r) = cmd::keys::ensure_copy_db(&self.sh, &self.sess, spec, &args).await {
                self.push(r, spec.name, started);
                return false;
            }
            match cmd::plan_write(&self.sh, &self.sess, spec, &args) {
                Plan::Reply(r) => self.push(r, spec.name, started),
                Plan::Write(p) => self.submit(p, spec.name, started).await,
            }
            return false;
        }
        self.flush_segment().await;
        let out = cmd::run(&self.sh, &mut self.sess, spec, args).await;
        self.finish(out, spec.name, started)
    }

    fn finish(&mut self, out: Outcome, name: &'static str, started: Instant) -> bool {
        match out {
            Outcome::Reply(r) => self.push(r, name, started),
            Outcome::Many(rs) => rs.into_iter().for_each(|r| self.push(r, name, started)),
            Outcome::Close(r) => {
                self.push(r, name, started);
                return true;
            }
        }
        false
    }

    fn doom_multi(&mut self) {
        if let Some(m) = self.sess.multi.as_mut() {
            m.dirty = true;
        }
    }

    /// Arity, authentication, subscribed-mode and permission checks.
    fn precheck(&mut self, spec: &cmd::Spec, n: usize) -> Result<(), Reply> {
        let r = self.precheck_inner(spec, n);
        if let Err(e) = &r {
            // A refused EXEC ends the transaction, as in Redis.
            if spec.name == "exec"
                && self.sess.multi.take().is_some()
                && let Reply::Error(m) = e
            {
                self.sess.watched.clear();
                let m = m.strip_prefix("ERR ").unwrap_or(m);
                return Err(Reply::Error(format!("EXECABORT Transaction discarded because of: {m}")));
            }
            self.doom_multi();
        }
        r
    }

    fn precheck_inner(&self, spec: &cmd::Spec, n: usize) -> Result<(), Reply> {
        cmd::check_arity(spec, n)?;
        if self.sess.principal.is_none() && !matches!(spec.name, "auth" | "hello" | "quit" | "reset") {
            return Err(Reply::Error("NOAUTH Authentication required.".into()));
        }
        if self.sess.subscribed_resp2()
            && !matches!(
                spec.name,
                "subscribe" | "psubscribe" | "unsubscribe" | "punsubscribe" | "ping" | "quit" | "reset"
            )
        {
            return Err(Reply::err(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                spec.name
            )));
        }
        if self.sess.principal.is_some() {
            cmd::authorize(&self.sess, spec)?;
        }
        Ok(())
    }
}
