//! Durability under SIGKILL: a child process writes in `sync` mode from
//! several threads and prints every acknowledged write; the parent kills it
//! at a random moment, reopens, and checks every acknowledged write is there.

use cairn_core::{Db, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CAIRN_CRASH_CHILD_DIR";

/// The child: runs only when spawned by `acknowledged_writes_survive_sigkill`.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else { return };
    let db = Db::open(&dir).unwrap();
    let round: u64 = std::env::var("CAIRN_CRASH_ROUND").unwrap().parse().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    for t in 0..4u64 {
        let db = db.clone();
        let tx = tx.clone();
        std::thread::spawn(move || {
            for i in 0u64.. {
                let key = format!("r{round}-t{t}-{i}");
                let value = Value::Json(serde_json::json!({ "i": i, "pad": "x".repeat((i % 64) as usize) }));
                let r = db.put("default", &key, value).unwrap();
                if tx.send(format!("{key} {}", r.revision.unwrap())).is_err() {
                    return;
                }
            }
        });
    }
    drop(tx);
    let mut out = std::io::stdout().lock();
    for line in rx {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64 ^ u64::from(std::process::id());
    let mut acked_total = 0usize;
    for round in 0..20u64 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let run_for = Duration::from_millis(50 + seed % 400);
        let mut child = Command::new(&exe)
            .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .env("CAIRN_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut acked = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((k, r)) = line.split_once(' ')
                    && let Ok(r) = r.parse::<u64>()
                {
                    acked.push((k.to_owned(), r));
                }
            }
            acked
        });
        let start = Instant::now();
        while start.elapsed() < run_for {
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let acked = reader.join().unwrap();
        let db = Db::open(dir.path()).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        for (key, rev) in &acked {
            let e = db.get("default", key).unwrap();
            let e = e.unwrap_or_else(|| panic!("round {round}: acknowledged write {key} (rev {rev}) lost"));
            assert_eq!(e.revision, *rev, "round {round}: {key}");
        }
        let max_acked = acked.iter().map(|a| a.1).max().unwrap_or(0);
        assert!(db.revision() >= max_acked, "round {round}: revision went backwards");
        // The key count (kept, or made at open after the crash) is every record.
        let rep = db.check(|_| ()).unwrap();
        assert_eq!(rep.problems, Vec::<String>::new(), "round {round}");
        assert_eq!(db.count("default", None).unwrap(), rep.entries, "round {round}");
        acked_total += acked.len();
    }
    assert!(
        acked_total > 100,
        "the child acknowledged too few writes ({acked_total}) to mean anything"
    );
}
