//! Group commit at a glance: N threads doing `sync` puts, and the rate.
//!   cargo run --release -p cairn-core --example sync_writers -- 16 2000

use cairn_core::{Db, Durability, Value};
use std::sync::atomic::Ordering::Relaxed;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let arg = |i: usize, d: u64| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let writers = arg(1, 16);
    let per_writer = arg(2, 2000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::builder(dir.path())
        .durability(Durability::Sync)
        .open()
        .expect("open");
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for w in 0..writers {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..per_writer {
                    let v = Value::Json(serde_json::json!({ "writer": w, "i": i }));
                    db.put("default", format!("w{w}:{}", i % 10_000), v).expect("put");
                }
            });
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let s = db.stats();
    println!(
        "{writers} writers: {:.0} writes/s, {:.1} commands per commit",
        (writers * per_writer) as f64 / secs,
        s.commands.load(Relaxed) as f64 / s.commits.load(Relaxed).max(1) as f64
    );
}
