//! A fixed workload for profiling the read path: uncached random gets on
//! 1M keys. Pass a directory to keep the loaded data between runs.
use cairn_core::{Config, Db, Durability, Op, Ttl, Value};
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
fn key(i: u64) -> String {
    format!("user:{i:012}")
}
fn value(i: u64) -> Value {
    Value::Json(serde_json::json!({ "id": i, "name": "some user name", "n": 12345 }))
}
fn main() {
    let n = 1_000_000u64;
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| tmp.path().to_path_buf(), std::path::PathBuf::from);
    if !dir.join("fjall").exists() {
        let db = Db::builder(&dir)
            .config(Config {
                durability: Durability::Relaxed,
                ..Config::default()
            })
            .open()
            .unwrap();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let ops = chunk
                .iter()
                .map(|&i| Op::Put {
                    store: "default".into(),
                    key: key(i).into_bytes(),
                    value: value(i),
                    ttl: Ttl::Default,
                })
                .collect();
            db.batch(vec![], ops).unwrap();
        }
    }
    let db = Db::builder(&dir)
        .config(Config {
            cache_entries: 0,
            ..Config::default()
        })
        .open()
        .unwrap();
    let mut x = 1u64;
    let t = std::time::Instant::now();
    let m = 2_000_000;
    let mut found = 0;
    for _ in 0..m {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        found += usize::from(db.get("default", key((x >> 11) % n)).unwrap().is_some());
    }
    println!("{found} {:.2} us/get", t.elapsed().as_secs_f64() * 1e6 / m as f64);
}
