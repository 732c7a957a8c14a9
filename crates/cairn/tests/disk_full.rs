//! A full disk under a running server (a 3 MiB tmpfs): writes get
//! `-MISCONF` once a commit fails, health turns 503 with the reason, and
//! after space is freed and the server restarted every acknowledged write is
//! there and writes work again.
//!
//! Needs to mount a tmpfs (root, or CAP_SYS_ADMIN); where that is not
//! allowed it says so and returns.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::*;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn resp_line(r: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

fn resp_cmd(s: &mut TcpStream, args: &[&str]) {
    let mut cmd = format!("*{}\r\n", args.len());
    for a in args {
        cmd += &format!("${}\r\n{a}\r\n", a.len());
    }
    s.write_all(cmd.as_bytes()).unwrap();
}

fn health(base: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET /v1/health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (
        status,
        out.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default(),
    )
}

#[test]
fn a_full_disk_refuses_writes_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("small"), "3m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data = fs.0.join("data");
    let s = Server::start_with_resp(&data);
    let addr = s.resp.clone().unwrap();
    let mut conn = TcpStream::connect(&addr).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let value = "v".repeat(2000);
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..10_000 {
        let key = format!("k{i}");
        resp_cmd(&mut conn, &["SET", &key, &value]);
        let line = resp_line(&mut reader);
        if line == "+OK" {
            acked.push(key);
        } else {
            refusal = Some(line);
            break;
        }
    }
    let refusal = refusal.expect("3 MiB filled without an error");
    assert!(refusal.starts_with("-MISCONF"), "{refusal}");
    assert!(refusal.contains("No space left on device"), "{refusal}");
    assert!(acked.len() > 100, "only {} writes before the disk filled", acked.len());
    // Every later write is refused with the reason; reads go on.
    resp_cmd(&mut conn, &["INCR", "counter"]);
    let line = resp_line(&mut reader);
    assert!(
        line.starts_with("-MISCONF writes are refused: a commit failed"),
        "{line}"
    );
    resp_cmd(&mut conn, &["EXISTS", &acked[0]]);
    assert_eq!(resp_line(&mut reader), ":1");
    let (code, body) = health(&s.url);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("No space left on device"), "{body}");

    fs.resize("64m");
    assert_eq!(s.stop().code(), Some(0));
    let s = Server::start_with_resp(&data);
    let mut conn = TcpStream::connect(s.resp.clone().unwrap()).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    for key in &acked {
        resp_cmd(&mut conn, &["STRLEN", key]);
        assert_eq!(
            resp_line(&mut reader),
            format!(":{}", value.len()),
            "acknowledged {key} lost"
        );
    }
    resp_cmd(&mut conn, &["SET", "after", "1"]);
    assert_eq!(resp_line(&mut reader), "+OK");
    assert_eq!(health(&s.url).0, 200);
    assert_eq!(s.stop().code(), Some(0));
}
