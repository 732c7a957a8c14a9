//! Shared test harness: a real server on free loopback ports, a reqwest
//! client, and a small Server-Sent Events reader.
#![allow(dead_code)]

use cairn_server::{Server, ServerConfig};
use futures_util::StreamExt as _;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bound on how long a test waits for something that should happen
/// promptly; it only keeps a broken server from hanging the suite.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestServer {
    pub server: Option<Server>,
    pub base: String,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut t = TestServer::start_in(&dir, tweak).await;
        t._tmp = Some(tmp);
        t
    }

    /// Starts on an existing data dir (the caller keeps the temp dir alive).
    pub async fn start_in(dir: &Path, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
        let mut cfg = ServerConfig::for_tests(dir);
        cfg.resp = cairn_server::Listen::Off;
        tweak(&mut cfg);
        let server = cairn_server::start(cfg).await.unwrap();
        let base = format!("http://{}", server.http_addr.unwrap());
        TestServer {
            server: Some(server),
            base,
            client: reqwest::Client::new(),
            dir: dir.to_owned(),
            _tmp: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn db(&self) -> &cairn_core::Db {
        self.server.as_ref().unwrap().db()
    }

    pub async fn shutdown(&mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await;
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        send(self.client.get(self.url(path))).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.client.put(self.url(path)).json(body)).await
    }

    pub async fn put_raw(&self, path: &str, body: &str) -> (u16, Value) {
        send(
            self.client
                .put(self.url(path))
                .header("content-type", "application/json")
                .body(body.to_owned()),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        send(self.client.post(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        send(self.client.delete(self.url(path))).await
    }

    /// Status of a HEAD request.
    pub async fn head(&self, path: &str) -> u16 {
        self.client.head(self.url(path)).send().await.unwrap().status().as_u16()
    }

    /// Opens a watch stream; panics unless it is a 200 event stream.
    pub async fn watch(&self, query: &str, last_event_id: Option<&str>) -> SseReader {
        let mut req = self.client.get(self.url(&format!("/v1/watch{query}")));
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "watch{query}: {:?}", resp.text().await);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseReader {
            stream: Box::pin(resp.bytes_stream()),
            buf: String::new(),
        }
    }
}

/// Sends a request; returns the status and the body as JSON (`Null` when empty).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("non-JSON body ({e}): {text}"))
    };
    (status, body)
}

/// Asserts an error answer's status and code.
#[track_caller]
pub fn assert_error(got: &(u16, Value), status: u16, code: &str) {
    assert_eq!(got.0, status, "unexpected status, body: {}", got.1);
    assert_eq!(got.1["error"]["code"], code, "unexpected error: {}", got.1);
    assert!(
        got.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()),
        "no message: {}",
        got.1
    );
}

/// One SSE frame.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("SSE data is not JSON ({e}): {}", self.data))
    }
}

type ByteStream = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>;

pub struct SseReader {
    stream: ByteStream,
    buf: String,
}

impl SseReader {
    /// The next frame with data (comments skipped); `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(pos) = self.buf.find("\n\n") {
                let raw: String = self.buf.drain(..pos + 2).collect();
                let mut f = Frame::default();
                let mut data = Vec::new();
                for line in raw.lines() {
                    if let Some(v) = line.strip_prefix("data:") {
                        data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        f.id = Some(v.trim().to_owned());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        f.event = Some(v.trim().to_owned());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                f.data = data.join("\n");
                return Some(f);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("no SSE frame in time")?;
            self.buf.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
        }
    }

    /// The next frame that is not a progress heartbeat.
    pub async fn next_event(&mut self) -> Frame {
        loop {
            let f = self.next().await.expect("stream ended");
            if f.event.as_deref() != Some("progress") {
                return f;
            }
        }
    }
}
