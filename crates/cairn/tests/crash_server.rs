//! End-to-end durability of the server: clients write over RESP and HTTP
//! (`sync` mode, the default), the server is killed with SIGKILL at a random
//! moment, restarted on the same data dir, and every write a client saw
//! acknowledged must read back. Many rounds, each restart also checking all
//! earlier rounds.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::Server;

const ROUNDS: u64 = 12;
const WRITERS_PER_PROTOCOL: usize = 3;

/// Acknowledged writes: key → value text as RESP GET returns it.
type Acked = Arc<Mutex<Vec<(String, String)>>>;

fn resp_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Reads one RESP reply: `Some(bulk or simple text)`, `None` for nil; an
/// I/O error once the server is gone.
fn resp_reply(r: &mut impl BufRead) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'+' | b':') => Ok(Some(line[1..].to_owned())),
        Some(b'$') if line == "$-1" => Ok(None),
        Some(b'$') => {
            let n: usize = line[1..].parse().expect("bulk length");
            let mut buf = vec![0; n + 2];
            r.read_exact(&mut buf)?;
            buf.truncate(n);
            Ok(Some(String::from_utf8(buf).expect("utf-8")))
        }
        // A dying server closes the socket; it never answers an error.
        _ => panic!("unexpected reply {line:?}"),
    }
}

/// SETs and INCRs over one RESP connection until the server dies.
fn resp_writer(addr: &str, prefix: &str, acked: &Acked, max_incr: &Mutex<i64>) {
    let Ok(s) = TcpStream::connect(addr) else { return };
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    for i in 0u64.. {
        let (key, value) = (format!("{prefix}-{i}"), format!("v{i}"));
        let sent = w.write_all(&resp_command(&[b"SET", key.as_bytes(), value.as_bytes()]));
        match (sent, resp_reply(&mut r)) {
            (Ok(()), Ok(Some(ok))) if ok == "OK" => acked.lock().unwrap().push((key, value)),
            _ => return,
        }
        if i % 4 == 0 {
            let sent = w.write_all(&resp_command(&[b"INCR", b"crash-counter"]));
            match (sent, resp_reply(&mut r)) {
                (Ok(()), Ok(Some(n))) => {
                    let n: i64 = n.parse().expect("INCR answers an integer");
                    let mut m = max_incr.lock().unwrap();
                    *m = (*m).max(n);
                }
                _ => return,
            }
        }
    }
}

/// PUTs over one keep-alive HTTP connection until the server dies.
fn http_writer(url: &str, prefix: &str, acked: &Acked) {
    let addr = url.trim_start_matches("http://");
    let Ok(s) = TcpStream::connect(addr) else { return };
    let mut w = s.try_clone().expect("clone");
    let mut r = BufReader::new(s);
    for i in 0u64.. {
        let (key, value) = (format!("{prefix}-{i}"), format!("h{i}"));
        let body = format!("\"{value}\"");
        let req = format!(
            "PUT /v1/stores/default/keys/{key} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        if w.write_all(req.as_bytes()).is_err() {
            return;
        }
        let mut status = String::new();
        if r.read_line(&mut status).unwrap_or(0) == 0 {
            return;
        }
        let mut len = 0;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_ascii_lowercase();
            if h.is_empty() {
                break;
            }
            if let Some(v) = h.strip_prefix("content-length:") {
                len = v.trim().parse().expect("content-length");
            }
        }
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON answer");
        assert!(status.starts_with("HTTP/1.1 20"), "{status} {answer}");
        assert_eq!(answer["success"], true, "{answer}");
        acked.lock().unwrap().push((key, value));
    }
}

/// Reads every acknowledged key back over RESP (pipelined) and the counter.
fn verify(addr: &str, acked: &[(String, String)], max_incr: i64) {
    let s = TcpStream::connect(addr).expect("connect after restart");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut w = s.try_clone().unwrap();
    let mut r = BufReader::new(s);
    for chunk in acked.chunks(500) {
        let mut batch = Vec::new();
        for (k, _) in chunk {
            batch.extend(resp_command(&[b"GET", k.as_bytes()]));
        }
        w.write_all(&batch).unwrap();
        for (k, v) in chunk {
            let got = resp_reply(&mut r).unwrap();
            assert_eq!(got.as_deref(), Some(v.as_str()), "acknowledged write of {k} lost");
        }
    }
    w.write_all(&resp_command(&[b"GET", b"crash-counter"])).unwrap();
    let counter: i64 = resp_reply(&mut r).unwrap().map_or(0, |n| n.parse().unwrap());
    assert!(
        counter >= max_incr,
        "counter {counter} is below an acknowledged INCR result {max_incr}"
    );
}

#[test]
fn acknowledged_resp_and_http_writes_survive_sigkill_of_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let max_incr = Arc::new(Mutex::new(0i64));
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    for round in 0..ROUNDS {
        let server = Server::start_with_resp(dir.path());
        let resp = server.resp.clone().expect("RESP address");
        // Every earlier round's acknowledged writes are still there.
        verify(&resp, &acked.lock().unwrap(), *max_incr.lock().unwrap());
        let mut threads = Vec::new();
        for t in 0..WRITERS_PER_PROTOCOL {
            let (log, max_incr, resp) = (acked.clone(), max_incr.clone(), resp.clone());
            threads.push(std::thread::spawn(move || {
                resp_writer(&resp, &format!("r{round}-resp{t}"), &log, &max_incr);
            }));
            let (log, url) = (acked.clone(), server.url.clone());
            threads.push(std::thread::spawn(move || {
                http_writer(&url, &format!("r{round}-http{t}"), &log);
            }));
        }
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(100 + (seed >> 33) % 300));
        server.kill9();
        for t in threads {
            t.join().expect("writer thread");
        }
        let this_round = format!("r{round}-");
        let n = acked
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&this_round))
            .count();
        assert!(n > 0, "round {round}: no write was acknowledged before the kill");
    }
    let server = Server::start_with_resp(dir.path());
    let acked = acked.lock().unwrap();
    verify(server.resp.as_deref().unwrap(), &acked, *max_incr.lock().unwrap());
    let resp_keys = acked.iter().filter(|(k, _)| k.contains("resp")).count();
    let http_keys = acked.len() - resp_keys;
    assert!(
        resp_keys > 0 && http_keys > 0,
        "both protocols got writes acknowledged ({resp_keys} RESP, {http_keys} HTTP)"
    );
    eprintln!(
        "{ROUNDS} kills: {resp_keys} RESP and {http_keys} HTTP acknowledged writes all survived; counter ≥ {}",
        *max_incr.lock().unwrap()
    );
}
