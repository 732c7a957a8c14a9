//! A fixed workload for profiling (e.g. under `valgrind --tool=callgrind`):
//! relaxed puts, then cached gets, on one thread.

use cairn_core::{Config, Db, Durability, Value};

/// The same allocator as the `cairn` binary, for every engine measured here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Db::builder(dir.path())
        .config(Config {
            durability: Durability::Relaxed,
            ..Config::default()
        })
        .open()
        .expect("open");
    for i in 0..n {
        let v = Value::Json(serde_json::json!({ "id": i, "name": "some user name", "n": 12345 }));
        db.put("default", format!("user:{:012}", i % 5000), v).expect("put");
    }
    let mut found = 0;
    for i in 0..n {
        found += usize::from(
            db.get("default", format!("user:{:012}", i % 5000))
                .expect("get")
                .is_some(),
        );
    }
    println!("{found}");
}
