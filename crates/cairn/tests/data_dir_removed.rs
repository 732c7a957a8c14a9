//! The data directory deleted under a running server: the server keeps
//! serving reads, refuses writes with a reason on every front end (HTTP 503
//! `unavailable`, RESP `-MISCONF`, a failing CLI), and `/v1/health` turns
//! 503 so a supervisor sees it. Before, writes were acknowledged into
//! unlinked files and lost at the next start.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use support::*;

/// One HTTP/1.1 request on a fresh connection: `(status, body)`.
fn http(base: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends one RESP command and reads the first line of the reply.
fn resp(addr: &str, args: &[&str]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(cmd.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
fn writes_are_refused_and_health_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start_with_resp(&data);
    let resp_addr = s.resp.clone().unwrap();
    ok(s.cairn(&["set", "kept", r#""before""#]));
    let (code, body) = http(&s.url, "GET", "/v1/health", "");
    assert_eq!(code, 200, "{body}");
    assert_eq!(json(&body)["status"], "ok");

    std::fs::remove_dir_all(&data).unwrap();

    // The server runs in `sync` mode: the very next write is refused.
    let (code, body) = http(&s.url, "PUT", "/v1/stores/default/keys/after", r#"{"x":1}"#);
    assert_eq!(code, 503, "{body}");
    let err = json(&body);
    assert_eq!(err["error"]["code"], "unavailable", "{body}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("was removed") && msg.contains("data"), "{msg}");

    let reply = resp(&resp_addr, &["SET", "after", "1"]);
    assert!(reply.starts_with("-MISCONF writes are refused"), "{reply}");
    assert!(resp(&resp_addr, &["INCR", "n"]).starts_with("-MISCONF"));

    let out = s.cairn(&["set", "after", "2"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("was removed"), "{}", stderr(&out));

    let (code, body) = http(&s.url, "GET", "/v1/health", "");
    assert_eq!(code, 503, "{body}");
    let h = json(&body);
    assert_eq!(h["status"], "unavailable");
    assert!(h["reason"].as_str().unwrap().contains("was removed"), "{body}");
    let (_, metrics) = http(&s.url, "GET", "/metrics", "");
    assert!(metrics.contains("\ncairn_write_fault 1\n"), "{metrics}");

    // Reads go on, and nothing refused became visible.
    assert_eq!(ok(s.cairn(&["get", "kept"])), "before\n");
    assert_eq!(resp(&resp_addr, &["GET", "after"]), "$-1");
    let (code, _) = http(&s.url, "GET", "/v1/stores/default/keys/after", "");
    assert_eq!(code, 404);
    s.kill9();
}
