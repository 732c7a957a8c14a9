//! Runs the built `cairn` binary as a user would: a server on a free port,
//! and client commands against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_cairn");

/// A `cairn serve` child process.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    /// RESP address, when started with [`Server::start_with_resp`].
    pub resp: Option<String>,
    pub dir: PathBuf,
}

impl Server {
    /// Starts `cairn serve` on `dir` with HTTP on a free port and RESP off;
    /// returns once the log says where HTTP listens.
    pub fn start(dir: &Path) -> Server {
        Server::start_with(dir, &[])
    }

    /// As [`Server::start`] with extra `serve` flags.
    pub fn start_with(dir: &Path, extra: &[&str]) -> Server {
        Server::start_at(dir, "127.0.0.1:0", extra)
    }

    /// As [`Server::start`], with RESP on a free port too.
    pub fn start_with_resp(dir: &Path) -> Server {
        Server::spawn(dir, "127.0.0.1:0", "127.0.0.1:0", &[])
    }

    /// As [`Server::start_with`], HTTP on `http`.
    pub fn start_at(dir: &Path, http: &str, extra: &[&str]) -> Server {
        Server::spawn(dir, http, "off", extra)
    }

    fn spawn(dir: &Path, http: &str, resp: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--data-dir"])
            .arg(dir)
            .args(["--http", http, "--resp", resp])
            .args(extra)
            .env("CAIRN_LOG", "info")
            .env_remove("CAIRN_SERVER")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn cairn serve");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let mut seen = Vec::new();
        let (mut addr, mut resp_addr) = (None, None);
        // The log names each listener; "cairn ready" comes after both.
        while addr.is_none() || (resp != "off" && resp_addr.is_none()) {
            let Some(Ok(line)) = lines.next() else {
                panic!("cairn serve exited before listening; its log:\n{}", seen.join("\n"));
            };
            let after = |tag: &str| {
                line.split(tag)
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().expect("address").to_owned())
            };
            addr = addr.or_else(|| after("HTTP listening addr="));
            resp_addr = resp_addr.or_else(|| after("RESP listening addr="));
            seen.push(line);
        }
        let addr = addr.expect("HTTP address");
        // Keep draining the log so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child: Some(child),
            url: format!("http://{addr}"),
            resp: resp_addr,
            dir: dir.to_owned(),
        }
    }

    /// Kills the server with SIGKILL (no shutdown, no flush) and reaps it.
    pub fn kill9(mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
    }

    /// Runs a client command against this server.
    pub fn cairn(&self, args: &[&str]) -> Output {
        cairn_with(&[("CAIRN_SERVER", &self.url)], args, None)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(st.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cairn` with extra environment variables and optional stdin.
pub fn cairn_with(env: &[(&str, &str)], args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("CAIRN_SERVER")
        .env_remove("CAIRN_TOKEN")
        .env_remove("CAIRN_STORE")
        .env_remove("CAIRN_DATA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn cairn");
    if let Some(data) = stdin {
        use std::io::Write;
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(data).expect("write stdin");
    }
    child.wait_with_output().expect("cairn output")
}

/// Runs an offline `cairn` command (no server).
pub fn cairn(args: &[&str]) -> Output {
    cairn_with(&[], args, None)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Asserts the exit code, showing the output when it differs.
#[track_caller]
pub fn expect_code(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

#[track_caller]
pub fn ok(o: Output) -> String {
    expect_code(&o, 0);
    stdout(&o)
}

pub fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}
