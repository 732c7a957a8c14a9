//! With auth off, a browser page from another site cannot use the server:
//! cross-site requests (an `Origin` that is not loopback) and DNS-rebound
//! ones (a `Host` that is not loopback) are refused; local tools send
//! neither and are served.

mod common;

use common::TestServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends one raw request and returns the status line.
async fn status_line(t: &TestServer, request: String) -> String {
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_and_hosts_are_refused_without_auth() {
    let t = TestServer::start().await;
    // A "simple" cross-site POST a page could send without a preflight.
    let r = t
        .client
        .post(t.url("/v1/batch"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(r#"{"ops":[{"op":"put","store":"default","key":"victim","value":"pwned"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    assert!(
        t.db().get("default", "victim").unwrap().is_none(),
        "the write went through"
    );
    for (method, path) in [("POST", "/v1/stores/default/clear"), ("GET", "/v1/stores/default/keys")] {
        let r = t
            .client
            .request(method.parse().unwrap(), t.url(path))
            .header("origin", "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
    }

    // A page served from localhost, and tools that send no Origin, are served.
    let r = t
        .client
        .put(t.url("/v1/stores/default/keys/local"))
        .header("origin", "http://localhost:5173")
        .json(&json!(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(t.put("/v1/stores/default/keys/tool", &json!(2)).await.0, 200);

    // DNS rebinding: the page's own host name, resolved to 127.0.0.1.
    let get =
        |host: &str| format!("GET /v1/stores/default/keys/tool HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n");
    assert!(status_line(&t, get("attacker.example:7070")).await.contains(" 403 "));
    for host in ["127.0.0.1:7070", "localhost:7070", "[::1]:7070", "localhost"] {
        assert!(status_line(&t, get(host)).await.contains(" 200 "), "{host}");
    }
}
