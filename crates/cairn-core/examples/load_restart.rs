//! Loads N keys (128-byte values, batches of 1,000), closes, reopens, and
//! prints close time, reopen time and bytes on disk: the cost of a restart.
//!
//! `cargo run --release -p cairn-core --example load_restart -- 1000000 DIR`

use cairn_core::{Db, Durability, Op, Ttl, Value};
use std::time::Instant;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn dir_bytes(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p).map_or(0, |rd| {
        rd.flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => dir_bytes(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    })
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let dir = std::path::PathBuf::from(args.next().unwrap_or_else(|| "load-restart-data".into()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let db = Db::builder(&dir).durability(Durability::Relaxed).open().expect("open");
    for start in (0..n).step_by(1000) {
        let ops = (start..(start + 1000).min(n))
            .map(|i| Op::Put {
                store: "default".into(),
                key: format!("user:{i:012}").into_bytes(),
                value: Value::Bytes(vec![b'v'; 128]),
                ttl: Ttl::Default,
            })
            .collect();
        db.batch(vec![], ops).expect("batch");
    }
    println!(
        "load: {:.2} s ({:.0} keys/s)",
        t.elapsed().as_secs_f64(),
        n as f64 / t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    drop(db);
    println!("close: {:.2} s", t.elapsed().as_secs_f64());
    println!("disk: {:.1} MB", dir_bytes(&dir) as f64 / 1e6);
    let t = Instant::now();
    let db = Db::open(&dir).expect("reopen");
    let first = db.get("default", "user:000000000000").expect("get");
    println!(
        "reopen to first read: {:.3} s (found: {})",
        t.elapsed().as_secs_f64(),
        first.is_some()
    );
    drop(db);
    if std::env::var_os("KEEP").is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
