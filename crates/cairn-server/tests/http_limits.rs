//! Connection limits at the HTTP edge: idle connections are closed and at
//! most `max_connections` are served at once.

mod common;

use common::{PATIENCE, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed() {
    let t = TestServer::start_with(|c| c.idle_timeout_secs = 1).await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(PATIENCE, idle.read(&mut buf))
        .await
        .expect("an idle connection was never closed")
        .unwrap_or(0);
    assert_eq!(n, 0, "the server closes a silent connection without answering");
    // The server itself keeps serving.
    assert_eq!(t.get("/v1/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_declared_body_is_refused_before_it_is_sent() {
    let t = TestServer::start().await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut c = TcpStream::connect(&addr).await.unwrap();
    c.write_all(
        b"PUT /v1/stores/default/keys/big HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
          content-length: 99999999\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, c.read(&mut buf)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "not refused up front: {head}");
    assert!(head.contains("99999999"), "{head}");
    assert!(t.db().get("default", "big").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_trickling_its_headers_is_cut_off() {
    // Header deadline = the idle timeout here (1 s); a byte every 300 ms keeps
    // the connection from ever being idle.
    let t = TestServer::start_with(|c| c.idle_timeout_secs = 1).await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut slow = TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let start = std::time::Instant::now();
    let mut closed = false;
    for i in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        if slow.write_all(format!("x-slow-{i}: y\r\n").as_bytes()).await.is_err() {
            closed = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(r) = tokio::time::timeout(std::time::Duration::from_millis(1), slow.read(&mut buf)).await {
            closed = matches!(r, Ok(0) | Err(_)) || closed;
            if closed {
                break;
            }
        }
    }
    assert!(
        closed,
        "a trickling client held its connection for {:?}",
        start.elapsed()
    );
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(t.get("/v1/health").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_for_a_free_slot() {
    let t = TestServer::start_with(|c| c.max_connections = 1).await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    // Hold the only slot with a keep-alive connection.
    let mut first = TcpStream::connect(&addr).await.unwrap();
    first
        .write_all(b"GET /v1/health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(PATIENCE, first.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(std::str::from_utf8(&buf[..n]).unwrap().starts_with("HTTP/1.1 200"));

    let url = t.url("/v1/health");
    let second = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !second.is_finished(),
        "a second connection was served while the only slot was taken"
    );
    drop(first);
    let status = tokio::time::timeout(PATIENCE, second)
        .await
        .expect("never served after the slot freed")
        .unwrap();
    assert_eq!(status.unwrap(), 200);
}
