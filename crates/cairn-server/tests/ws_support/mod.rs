//! Shared helpers for the WebSocket tests: a real server and a JSON client.
#![allow(dead_code)]

use cairn_server::{Server, ServerConfig};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value as Json, json};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Longest wait for any expected message; only reached when a test fails.
pub const WAIT: Duration = Duration::from_secs(10);

/// A running server and its data dir.
pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

/// Starts a server on a fresh data dir, with `tweak` applied to its config.
pub async fn start_with(tweak: impl FnOnce(&mut ServerConfig, &std::path::Path)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::for_tests(dir.path().join("data"));
    tweak(&mut config, dir.path());
    let server = cairn_server::start(config).await.unwrap();
    let addr = server.http_addr.unwrap();
    TestServer {
        server,
        addr,
        _dir: dir,
    }
}

/// Starts a server with the test defaults.
pub async fn start() -> TestServer {
    start_with(|_, _| {}).await
}

/// A WebSocket client speaking JSON text messages.
pub struct Client {
    pub ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connects to `/v1/ws`, optionally with a bearer token header.
    pub async fn connect(addr: SocketAddr, bearer: Option<&str>) -> Client {
        let mut req = format!("ws://{addr}/v1/ws").into_client_request().unwrap();
        if let Some(t) = bearer {
            req.headers_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
        Client { ws }
    }

    /// Sends a raw text message.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, v: Json) {
        self.send_text(v.to_string()).await;
    }

    /// The next JSON message (pings and pongs skipped); panics on close or after [`WAIT`].
    pub async fn recv(&mut self) -> Json {
        loop {
            let msg = tokio::time::timeout(WAIT, self.ws.next())
                .await
                .expect("no message within the wait")
                .expect("connection ended")
                .expect("websocket error");
            match msg {
                Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// Sends a request and returns the next message (its response when no
    /// subscription is pushing).
    pub async fn call(&mut self, v: Json) -> Json {
        self.send(v).await;
        self.recv().await
    }

    /// Receives until a message of type `ty` arrives, returning it and the skipped ones.
    pub async fn recv_until(&mut self, ty: &str) -> (Json, Vec<Json>) {
        let mut skipped = Vec::new();
        loop {
            let m = self.recv().await;
            if m["type"] == ty {
                return (m, skipped);
            }
            skipped.push(m);
        }
    }
}

/// `{"type": "set", "key": k, "value": v}`.
pub fn set(k: &str, v: Json) -> Json {
    json!({"type": "set", "key": k, "value": v})
}
