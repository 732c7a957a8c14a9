//! The workloads, run identically against every [`Engine`], one round at a time.

use crate::engines::{Engine, open};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sizes and time limits of one round.
#[derive(Debug, Clone)]
pub struct Params {
    /// Keys loaded before the read workloads (a multiple of 100, so every scanned prefix matches 100 keys).
    pub keys: u64,
    /// Keys per batch in the load.
    pub batch: usize,
    /// Upper bound on operations per measured phase.
    pub ops: u64,
    /// Upper bound on single-writer durable puts (each waits for an fsync).
    pub durable_ops: u64,
    /// Concurrent writers in the contended durable-put phase.
    pub writers: u64,
    /// Time limit of each measured phase; a phase stops at `ops` or this, whichever comes first.
    pub phase_time: Duration,
}

impl Params {
    /// A few milliseconds per system: what `cargo test` runs so the bench cannot rot.
    #[must_use]
    pub fn smoke() -> Self {
        Params {
            keys: 2_000,
            batch: 500,
            ops: 2_000,
            durable_ops: 20,
            writers: 4,
            phase_time: Duration::from_millis(200),
        }
    }
}

/// One measurement: `metric` of `system` on `workload` in round `round`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Workload name, e.g. `point_get`.
    pub workload: String,
    /// System name, one of [`crate::SYSTEMS`].
    pub system: String,
    /// Round number, from 1.
    pub round: u32,
    /// `ops_per_s`, `p50_us`, `p99_us`, `bytes` or `ms`.
    pub metric: &'static str,
    /// The measured value.
    pub value: f64,
}

/// The key of item `i`: `user:` and 12 digits (17 bytes).
#[must_use]
pub fn key(i: u64) -> Vec<u8> {
    format!("user:{i:012}").into_bytes()
}

/// A 128-byte value that differs per item.
#[must_use]
pub fn value(i: u64) -> Vec<u8> {
    let mut v = vec![b'v'; 128];
    v[..20].copy_from_slice(format!("{i:020}").as_bytes());
    v
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) % n
    }
}

/// A multiplier coprime with `n`, so `i * m % n` visits every key once in a scattered order.
fn scatter_multiplier(n: u64) -> u64 {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    (7919..).find(|&m| gcd(m, n) == 1).unwrap_or(1)
}

/// Runs `op` until `max_ops` operations or `limit` elapsed; returns (ops, elapsed).
/// The clock is read every 64 operations while they are fast, every one once
/// they are slow (fsyncs), so a phase overruns its limit by little either way.
fn timed(max_ops: u64, limit: Duration, mut op: impl FnMut(u64)) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    let mut every = 64;
    while n < max_ops {
        op(n);
        n += 1;
        if n.is_multiple_of(every) {
            let elapsed = start.elapsed();
            if elapsed >= limit {
                break;
            }
            if elapsed > Duration::from_micros(50) * u32::try_from(n).unwrap_or(u32::MAX) {
                every = 1;
            }
        }
    }
    (n, start.elapsed())
}

/// Bytes allocated on disk under `dir` (like `du`): preallocated but unwritten
/// journal space counts only once the filesystem has really reserved it.
fn dir_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(rd) = std::fs::read_dir(dir) else { return 0 };
    rd.flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Runs every workload once against `system` in a fresh directory under
/// `scratch`, and removes that directory afterwards.
///
/// # Panics
/// When a system answers wrongly (a loaded key missing, a prefix scan not
/// returning its 100 keys): its numbers would be meaningless.
pub fn run_round(system: &str, scratch: &Path, p: &Params, round: u32) -> Vec<Row> {
    assert!(
        p.keys >= 100 && p.keys.is_multiple_of(100),
        "keys must be a positive multiple of 100, got {}",
        p.keys
    );
    let dir = scratch.join(format!("{system}-{round}"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut rows = Vec::new();
    let mut row = |workload: &str, metric: &'static str, value: f64| {
        rows.push(Row {
            workload: workload.into(),
            system: system.into(),
            round,
            metric,
            value,
        })
    };
    let rate = |n: u64, d: Duration| n as f64 / d.as_secs_f64();
    let mut rng = Rng(0x5eed ^ u64::from(round));

    // Load: durable batches of `batch` keys in scattered key order.
    {
        let e = open(system, &dir, true);
        let m = scatter_multiplier(p.keys);
        let start = Instant::now();
        let mut i = 0;
        while i < p.keys {
            let end = (i + p.batch as u64).min(p.keys);
            let items: Vec<_> = (i..end).map(|j| (j * m) % p.keys).map(|k| (key(k), value(k))).collect();
            e.batch_put(&items);
            i = end;
        }
        row("batch_put_durable", "ops_per_s", rate(p.keys, start.elapsed()));
    }
    row("disk_after_load", "bytes", dir_bytes(&dir) as f64);

    // Reads and buffered writes on the reopened data set.
    {
        let start = Instant::now();
        let e = open(system, &dir, false);
        row("reopen_after_load", "ms", start.elapsed().as_secs_f64() * 1e3);
        let (n, d) = timed(p.ops, p.phase_time, |_| {
            let k = rng.below(p.keys);
            assert_eq!(e.get(&key(k)), Some(128), "{system}: loaded key {k} missing");
        });
        row("point_get", "ops_per_s", rate(n, d));
        let (n, d) = timed(p.ops / 10, p.phase_time, |_| {
            let prefix = format!("user:{:010}", rng.below(p.keys / 100));
            assert_eq!(e.scan_prefix(prefix.as_bytes()), 100, "{system}: prefix {prefix}");
        });
        row("prefix_scan_100", "ops_per_s", rate(n, d));
        let (n, d) = timed(p.ops, p.phase_time, |i| e.put(&key(rng.below(p.keys)), &value(i)));
        row("put_buffered", "ops_per_s", rate(n, d));
    }

    // Durable single puts: one writer (bounded by fsync latency), then `writers` at once.
    {
        let e = open(system, &dir, true);
        let mut lat = Vec::with_capacity(p.durable_ops as usize);
        let (n, d) = timed(p.durable_ops, p.phase_time, |i| {
            let t = Instant::now();
            e.put(&key(rng.below(p.keys)), &value(i));
            lat.push(t.elapsed());
        });
        lat.sort_unstable();
        row("put_durable_1w", "ops_per_s", rate(n, d));
        row("put_durable_1w", "p50_us", percentile(&lat, 0.50));
        row("put_durable_1w", "p99_us", percentile(&lat, 0.99));
        let (n, d) = concurrent_puts(e.as_ref(), p);
        row(&format!("put_durable_{}w", p.writers), "ops_per_s", rate(n, d));
    }
    let _ = std::fs::remove_dir_all(&dir);
    rows
}

fn concurrent_puts(e: &dyn Engine, p: &Params) -> (u64, Duration) {
    let start = Instant::now();
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..p.writers)
            .map(|w| {
                s.spawn(move || {
                    let mut rng = Rng(w + 1);
                    timed(p.durable_ops, p.phase_time, |i| {
                        e.put(&key(rng.below(p.keys)), &value(i))
                    })
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer thread")).sum()
    });
    (total, start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_system_runs_every_workload() {
        let scratch = tempfile::tempdir().unwrap();
        for system in crate::SYSTEMS {
            let rows = run_round(system, scratch.path(), &Params::smoke(), 1);
            let workloads: Vec<_> = rows.iter().map(|r| r.workload.as_str()).collect();
            for w in [
                "batch_put_durable",
                "point_get",
                "prefix_scan_100",
                "put_buffered",
                "put_durable_1w",
            ] {
                assert!(workloads.contains(&w), "{system}: no {w} row in {workloads:?}");
            }
            assert!(
                rows.iter().all(|r| r.value.is_finite() && r.value >= 0.0),
                "{system}: {rows:?}"
            );
            assert!(
                !scratch.path().join(format!("{system}-1")).exists(),
                "{system}: scratch dir left behind"
            );
        }
    }

    #[test]
    fn scatter_visits_every_key_once() {
        for n in [100u64, 2_000, 7_919 * 100] {
            let m = scatter_multiplier(n);
            let mut seen = vec![false; n as usize];
            for i in 0..n {
                let k = ((i * m) % n) as usize;
                assert!(!seen[k], "n={n}: key {k} twice");
                seen[k] = true;
            }
        }
    }
}
