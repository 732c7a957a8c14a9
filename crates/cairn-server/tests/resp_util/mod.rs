//! Shared helpers for the RESP integration tests: a real server on free
//! ports and clients for it.
#![allow(dead_code)]

use cairn_server::{Server, ServerConfig};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct TestServer {
    pub server: Server,
    pub url: String,
    _dir: tempfile::TempDir,
}

pub async fn start() -> TestServer {
    start_with(|_| {}).await
}

pub async fn start_with(f: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = ServerConfig::for_tests(dir.path().join("data"));
    f(&mut cfg);
    let server = cairn_server::start(cfg).await.unwrap();
    let addr = server.resp_addr.expect("RESP listens in tests");
    TestServer {
        url: format!("redis://{addr}/"),
        server,
        _dir: dir,
    }
}

impl TestServer {
    pub fn client(&self) -> redis::Client {
        redis::Client::open(self.url.as_str()).unwrap()
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        self.client().get_multiplexed_async_connection().await.unwrap()
    }

    /// Runs blocking engine calls (writes wait for the writer thread) off the runtime.
    pub async fn with_db<T: Send + 'static>(&self, f: impl FnOnce(&cairn_core::Db) -> T + Send + 'static) -> T {
        let db = self.server.db().clone();
        tokio::task::spawn_blocking(move || f(&db)).await.unwrap()
    }

    /// A raw TCP connection for byte-level assertions.
    pub async fn raw(&self) -> TcpStream {
        TcpStream::connect(self.server.resp_addr.unwrap()).await.unwrap()
    }
}

/// A request as a RESP array of bulk strings.
pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Sends `req` and reads until `expected` bytes arrived (or the peer closed).
pub async fn roundtrip(s: &mut TcpStream, req: &[u8], expected_len: usize) -> Vec<u8> {
    s.write_all(req).await.unwrap();
    read_n(s, expected_len).await
}

/// Sends `req` and reads exactly one RESP2 reply.
pub async fn reply(s: &mut TcpStream, req: &[u8]) -> Vec<u8> {
    s.write_all(req).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match cairn_server::resp::frame::Frame::parse(&out) {
            Ok((_, n)) => {
                assert_eq!(
                    n,
                    out.len(),
                    "one reply, nothing after it: {:?}",
                    String::from_utf8_lossy(&out)
                );
                return out;
            }
            Err(cairn_server::resp::frame::FrameError::Incomplete) => {}
            Err(e) => panic!("bad reply {e}: {:?}", String::from_utf8_lossy(&out)),
        }
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        assert!(r > 0, "connection closed after {:?}", String::from_utf8_lossy(&out));
        out.extend_from_slice(&buf[..r]);
    }
}

pub async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while out.len() < n {
        let r = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("reply in time")
            .unwrap();
        if r == 0 {
            break;
        }
        out.extend_from_slice(&buf[..r]);
    }
    out
}

/// Reads until the peer closes the connection.
pub async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .expect("close in time")
        .unwrap();
    out
}

pub async fn cmd<T: redis::FromRedisValue>(
    c: &mut redis::aio::MultiplexedConnection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut k = redis::cmd(args[0]);
    for a in &args[1..] {
        k.arg(*a);
    }
    k.query_async(c).await
}

/// The next pub/sub message as (channel, payload), waiting up to 10 s.
pub async fn next(stream: &mut (impl futures_util::Stream<Item = redis::Msg> + Unpin)) -> (String, String) {
    use futures_util::StreamExt;
    let m = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a message in time")
        .unwrap();
    (m.get_channel_name().to_owned(), m.get_payload::<String>().unwrap())
}

/// Sends one transaction (MULTI, `cmds`, EXEC) and returns EXEC's reply.
pub async fn transaction(c: &mut redis::aio::MultiplexedConnection, cmds: &[&[&str]]) -> redis::Value {
    let mut p = redis::pipe();
    p.atomic();
    for a in cmds {
        let mut one = redis::cmd(a[0]);
        for arg in &a[1..] {
            one.arg(*arg);
        }
        p.add_command(one);
    }
    p.query_async(c).await.unwrap()
}
