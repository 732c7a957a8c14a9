//! The writer thread under many concurrent callers, for profiling with
//! `valgrind --tool=callgrind --separate-threads=yes` (instruction counts do
//! not depend on how noisy the machine is): T threads each put N new keys,
//! `relaxed`, values shaped like `bench/http.sh`'s.
//!   cargo build --release -p cairn-core --example profile_writer
//!   valgrind --tool=callgrind --separate-threads=yes target/release/examples/profile_writer 32 500

use cairn_core::{Db, Durability, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let arg = |i: usize, d: u64| std::env::args().nth(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let threads = arg(1, 32);
    let per_thread = arg(2, 500);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::builder(dir.path())
        .durability(Durability::Relaxed)
        .open()
        .expect("open");
    std::thread::scope(|s| {
        for t in 0..threads {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..per_thread {
                    let v = Value::Json(serde_json::json!({ "n": i, "payload": "0123456789abcdef0123456789abcdef" }));
                    db.put("default", format!("bench-{t}-{i}"), v).expect("put");
                }
            });
        }
    });
    let s = db.stats();
    println!(
        "{} commands in {} commits",
        s.commands.load(std::sync::atomic::Ordering::Relaxed),
        s.commits.load(std::sync::atomic::Ordering::Relaxed)
    );
}
