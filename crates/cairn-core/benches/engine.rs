//! Engine benchmarks, with raw fjall beside cairn so overhead is a ratio.
//!
//! `cargo bench -p cairn-core --bench engine` (set `CAIRN_BENCH_KEYS` to
//! change the data set size, default 1,000,000, and `CAIRN_BENCH_CACHE_MB`
//! the block cache of every database, default 64 as in `Config`).

use cairn_core::{Config, Db, Durability, ListOptions, Op, Ttl, Value};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// The same allocator as the `cairn` binary, for every engine measured here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn n_keys() -> u64 {
    std::env::var("CAIRN_BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// Block cache bytes for every database here, cairn and raw fjall alike.
fn block_cache() -> u64 {
    std::env::var("CAIRN_BENCH_CACHE_MB")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(Config::default().block_cache_bytes, |mb| mb << 20)
}

fn key(i: u64) -> String {
    format!("user:{i:012}")
}

fn value(i: u64) -> Value {
    Value::Json(serde_json::json!({ "id": i, "name": "some user name", "n": 12345 }))
}

/// Loads `n` keys in batches (relaxed), then reopens with `config`.
fn loaded_db(dir: &std::path::Path, n: u64, config: Config) -> Db {
    {
        let db = Db::builder(dir)
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
    Db::builder(dir).config(config).open().unwrap()
}

/// Raw fjall with the same data, reopened like the cairn databases so both
/// read from the same state: cairn writes its memtables out as tables when
/// it closes, so raw fjall does too (otherwise reopening would replay its
/// journal into a memtable and part of its reads would never touch a table).
fn loaded_fjall(dir: &std::path::Path, n: u64) -> (fjall::Database, fjall::Keyspace) {
    let open = || {
        let fj = fjall::Database::builder(dir)
            .manual_journal_persist(true)
            .cache_size(block_cache())
            .open()
            .unwrap();
        let ks = fj.keyspace("data", fjall::KeyspaceCreateOptions::default).unwrap();
        (fj, ks)
    };
    {
        let (fj, ks) = open();
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut b = fj.batch();
            for &i in chunk {
                b.insert(&ks, key(i), value(i).encode());
            }
            b.commit().unwrap();
        }
        fj.persist(fjall::PersistMode::SyncAll).unwrap();
        ks.rotate_memtable_and_wait().unwrap();
    }
    open()
}

fn lcg(x: &mut u64) -> u64 {
    *x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    *x >> 11
}

fn gets(c: &mut Criterion) {
    let n = n_keys();
    let dir = tempfile::tempdir().unwrap();
    let cached = loaded_db(
        &dir.path().join("cached"),
        n,
        Config {
            cache_entries: 100_000,
            block_cache_bytes: block_cache(),
            ..Config::default()
        },
    );
    let uncached = loaded_db(
        &dir.path().join("uncached"),
        n,
        Config {
            cache_entries: 0,
            block_cache_bytes: block_cache(),
            ..Config::default()
        },
    );
    let (_fj, raw) = loaded_fjall(&dir.path().join("raw"), n);
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    let mut x = 1u64;
    g.bench_function("cairn_hot_cached", |b| {
        b.iter(|| black_box(cached.get("default", key(lcg(&mut x) % 1000)).unwrap()))
    });
    g.bench_function("cairn_uncached_random", |b| {
        b.iter(|| black_box(uncached.get("default", key(lcg(&mut x) % n)).unwrap()))
    });
    g.bench_function("fjall_raw_random", |b| {
        b.iter(|| {
            let v = raw.get(key(lcg(&mut x) % n)).unwrap().unwrap();
            black_box(Value::decode(&v).unwrap())
        })
    });
    g.finish();
    let mut g = c.benchmark_group("list");
    g.throughput(Throughput::Elements(100));
    g.bench_function("cairn_list_100", |b| {
        b.iter(|| {
            let start = key(lcg(&mut x) % (n - 200)).into_bytes();
            let o = ListOptions {
                start: Some(start),
                limit: Some(100),
                ..Default::default()
            };
            black_box(uncached.list("default", &o).unwrap())
        })
    });
    g.finish();
}

fn puts(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let relaxed = Db::builder(dir.path().join("relaxed"))
        .durability(Durability::Relaxed)
        .open()
        .unwrap();
    let fj = fjall::Database::builder(dir.path().join("raw"))
        .manual_journal_persist(true)
        .open()
        .unwrap();
    let raw = fj.keyspace("data", fjall::KeyspaceCreateOptions::default).unwrap();
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("cairn_relaxed", |b| {
        b.iter(|| {
            i += 1;
            relaxed.put("default", key(i % 100_000), value(i)).unwrap()
        })
    });
    g.bench_function("fjall_raw_buffered", |b| {
        b.iter(|| {
            i += 1;
            let mut batch = fj.batch().durability(Some(fjall::PersistMode::Buffer));
            batch.insert(&raw, key(i % 100_000), value(i).encode());
            batch.commit().unwrap()
        })
    });
    // The same work cairn's put does on storage: read the old value (for the
    // event), write the record, a change-log entry and the revision counter.
    let log = fj.keyspace("changelog", fjall::KeyspaceCreateOptions::default).unwrap();
    let meta = fj.keyspace("meta", fjall::KeyspaceCreateOptions::default).unwrap();
    g.bench_function("fjall_raw_equivalent", |b| {
        b.iter(|| {
            i += 1;
            let k = key(i % 100_000);
            let old = raw.get(&k).unwrap();
            let v = value(i).encode();
            let mut event = v.clone();
            if let Some(o) = old {
                event.extend_from_slice(&o);
            }
            let mut batch = fj.batch().durability(Some(fjall::PersistMode::Buffer));
            batch.insert(&raw, k, v);
            batch.insert(&log, i.to_be_bytes(), event);
            batch.insert(&meta, "revision", i.to_le_bytes());
            batch.commit().unwrap()
        })
    });
    g.finish();

    let sync = Db::builder(dir.path().join("sync"))
        .durability(Durability::Sync)
        .open()
        .unwrap();
    let mut g = c.benchmark_group("put_sync");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for writers in [1u64, 16] {
        g.throughput(Throughput::Elements(writers * 50));
        g.bench_with_input(BenchmarkId::new("writers", writers), &writers, |b, &writers| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                std::thread::scope(|s| {
                    for w in 0..writers {
                        let db = sync.clone();
                        s.spawn(move || {
                            for it in 0..iters * 50 {
                                db.put("default", key(w * 1_000_000 + it % 10_000), value(it)).unwrap();
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("batch_put");
    g.throughput(Throughput::Elements(100));
    g.bench_function("cairn_relaxed_100_ops", |b| {
        b.iter(|| {
            i += 1;
            let ops = (0..100)
                .map(|j| Op::Put {
                    store: "default".into(),
                    key: key((i * 100 + j) % 100_000).into_bytes(),
                    value: value(j),
                    ttl: Ttl::Default,
                })
                .collect();
            relaxed.batch(vec![], ops).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, gets, puts);
criterion_main!(benches);
