//! Write→event latency with 1, 100 and 1,000 subscribers at a steady write
//! rate, and delivered events per second.
//!
//! `cargo bench -p cairn-core --bench watch` (env `CAIRN_WATCH_RATE`, writes/s,
//! default 10,000; `CAIRN_WATCH_SECS`, default 3).

use cairn_core::{Config, Db, Durability, Filter, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The same allocator as the `cairn` binary, for every engine measured here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|s| s.parse().ok()).unwrap_or(default)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn run(subscribers: usize, rate: u64, secs: u64) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path())
        .config(Config {
            durability: Durability::Relaxed,
            ..Config::default()
        })
        .open()
        .unwrap();
    let base = Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..subscribers {
        let mut sub = db.subscribe(Filter::default(), None).unwrap();
        let delivered = delivered.clone();
        let stop = stop.clone();
        handles.push(rt.spawn(async move {
            let mut lat = Vec::new();
            while stop.load(Ordering::Relaxed) == 0 {
                let evs = sub.poll(1024).unwrap();
                if evs.is_empty() {
                    let _ = tokio::time::timeout(Duration::from_millis(50), sub.changed()).await;
                    continue;
                }
                let now = base.elapsed().as_micros() as u64;
                for e in &evs {
                    if let Some(Value::Json(v)) = e.new_value.as_deref() {
                        lat.push(now.saturating_sub(v.as_u64().unwrap_or(now)));
                    }
                }
                delivered.fetch_add(evs.len() as u64, Ordering::Relaxed);
            }
            lat
        }));
    }
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    let mut next = start;
    let mut i = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += interval;
        // Values carry the write time, in µs since `base`, for the latency.
        let t = base.elapsed().as_micros() as u64;
        db.put("default", format!("k{}", i % 1000), Value::Json(t.into()))
            .unwrap();
        i += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(1, Ordering::Relaxed);
    let mut all: Vec<u64> = Vec::new();
    for h in handles {
        all.extend(rt.block_on(h).unwrap());
    }
    all.sort_unstable();
    println!(
        "subscribers={subscribers:>5} writes/s={:>8.0} delivered events/s={:>10.0} latency p50={:>8.1}µs p99={:>8.1}µs (n={})",
        i as f64 / elapsed,
        delivered.load(Ordering::Relaxed) as f64 / elapsed,
        percentile(&all, 0.50),
        percentile(&all, 0.99),
        all.len()
    );
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench`-less args; keep it cheap then.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let rate = env("CAIRN_WATCH_RATE", 10_000);
    let secs = env("CAIRN_WATCH_SECS", 3);
    for subs in [1, 100, 1000] {
        run(subs, rate, secs);
    }
}
