//! Prometheus metrics (text exposition format): request counts by front
//! end, route and status, latency histograms per route, open connections,
//! and the engine's own counters.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Default)]
struct Histogram {
    /// Per bucket (not cumulative); the last slot counts observations above every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = BUCKETS.iter().position(|b| secs <= *b).unwrap_or(BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

type RouteKey = (&'static str, &'static str);
type CountKey = (&'static str, &'static str, u16);

/// Request counters and latency histograms.
///
/// Series are created on first use and then updated with atomics under a
/// read lock, so the hot path never takes a write lock.
#[derive(Debug, Default)]
pub struct Metrics {
    counts: RwLock<HashMap<CountKey, Arc<AtomicU64>>>,
    latency: RwLock<HashMap<RouteKey, Arc<Histogram>>>,
    connections: RwLock<HashMap<&'static str, Arc<AtomicI64>>>,
}

fn series<K: std::hash::Hash + Eq + Copy, V: Default>(map: &RwLock<HashMap<K, Arc<V>>>, k: K) -> Arc<V> {
    if let Some(v) = map.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&k) {
        return v.clone();
    }
    map.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .entry(k)
        .or_default()
        .clone()
}

impl Metrics {
    /// Records one request. `route` is a pattern (`/v1/stores/{store}`) or a
    /// command name, never raw user input, so the series stay bounded.
    pub fn observe(&self, frontend: &'static str, route: &'static str, status: u16, elapsed: Duration) {
        self.observe_many(frontend, &[(route, status, elapsed)]);
    }

    /// Records many requests of one front end, taking each lock once.
    pub fn observe_many(&self, frontend: &'static str, items: &[(&'static str, u16, Duration)]) {
        let counts = self.counts.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let latency = self.latency.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut missing = Vec::new(); // allocates only on a series' first use
        for &(route, status, elapsed) in items {
            match (counts.get(&(frontend, route, status)), latency.get(&(frontend, route))) {
                (Some(c), Some(h)) => {
                    c.fetch_add(1, Ordering::Relaxed);
                    h.observe(elapsed);
                }
                _ => missing.push((route, status, elapsed)),
            }
        }
        drop((counts, latency));
        // First use of a series: the slow path creates it.
        for (route, status, elapsed) in missing {
            series(&self.counts, (frontend, route, status)).fetch_add(1, Ordering::Relaxed);
            series(&self.latency, (frontend, route)).observe(elapsed);
        }
    }

    /// Counts a connection opened (`delta` 1) or closed (-1).
    pub fn connection(&self, frontend: &'static str, delta: i64) {
        series(&self.connections, frontend).fetch_add(delta, Ordering::Relaxed);
    }

    /// Renders everything in the Prometheus text format.
    #[must_use]
    pub fn render(&self, db: &cairn_core::Db) -> String {
        let mut out = String::with_capacity(4096);
        let counts = self.counts.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<_> = counts.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        drop(counts);
        rows.sort_unstable();
        out.push_str("# HELP cairn_requests_total Requests handled, by front end, route and status.\n");
        out.push_str("# TYPE cairn_requests_total counter\n");
        for ((fe, route, status), n) in rows {
            let _ = writeln!(
                out,
                "cairn_requests_total{{frontend=\"{fe}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(route)
            );
        }
        let lat = self.latency.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut hists: Vec<_> = lat.iter().map(|(k, v)| (*k, v.clone())).collect();
        drop(lat);
        hists.sort_unstable_by_key(|(k, _)| *k);
        out.push_str("# HELP cairn_request_duration_seconds Request latency, by front end and route.\n");
        out.push_str("# TYPE cairn_request_duration_seconds histogram\n");
        for ((fe, route), h) in hists {
            let labels = format!("frontend=\"{fe}\",route=\"{}\"", esc(route));
            let mut cum = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cum += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "cairn_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {cum}"
                );
            }
            cum += h.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "cairn_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {cum}"
            );
            let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "cairn_request_duration_seconds_sum{{{labels}}} {sum}");
            let _ = writeln!(out, "cairn_request_duration_seconds_count{{{labels}}} {cum}");
        }
        out.push_str("# HELP cairn_connections Open client connections, by front end.\n");
        out.push_str("# TYPE cairn_connections gauge\n");
        let conns = self
            .connections
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut conns: Vec<_> = conns.iter().map(|(k, v)| (*k, v.load(Ordering::Relaxed))).collect();
        conns.sort_unstable();
        for (fe, n) in conns {
            let _ = writeln!(out, "cairn_connections{{frontend=\"{fe}\"}} {n}");
        }
        let s = db.stats();
        let engine = [
            (
                "cairn_engine_commands_total",
                "counter",
                "Commands committed.",
                s.commands.load(Ordering::Relaxed),
            ),
            (
                "cairn_engine_commits_total",
                "counter",
                "Storage commits (fsync groups).",
                s.commits.load(Ordering::Relaxed),
            ),
            (
                "cairn_engine_cache_hits_total",
                "counter",
                "Reads served by the cache.",
                s.cache_hits.load(Ordering::Relaxed),
            ),
            (
                "cairn_engine_cache_misses_total",
                "counter",
                "Reads that went to storage.",
                s.cache_misses.load(Ordering::Relaxed),
            ),
            (
                "cairn_engine_multiget_snapshots_total",
                "counter",
                "Multi-key reads (MGET) a busy writer sent to a storage snapshot.",
                s.multiget_snapshots.load(Ordering::Relaxed),
            ),
            (
                "cairn_engine_expired_total",
                "counter",
                "Keys removed by TTL.",
                s.expired.load(Ordering::Relaxed),
            ),
            ("cairn_revision", "gauge", "Last committed revision.", db.revision()),
            (
                "cairn_oldest_revision",
                "gauge",
                "Oldest revision in the change log.",
                db.oldest_revision(),
            ),
            (
                "cairn_write_fault",
                "gauge",
                "1 while the engine refuses writes (see /v1/health for why), else 0.",
                u64::from(db.fault().is_some()),
            ),
        ];
        for (name, kind, help, v) in engine {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        // Kept by the engine per store: no scan of the keys.
        let stores: Vec<(String, cairn_core::KeyStats)> = db
            .stores()
            .into_iter()
            .filter_map(|s| db.key_stats(&s.name).ok().map(|k| (s.name, k)))
            .collect();
        out.push_str("# HELP cairn_keys Live keys, by store.\n# TYPE cairn_keys gauge\n");
        for (name, k) in &stores {
            let _ = writeln!(out, "cairn_keys{{store=\"{}\"}} {}", esc(name), k.keys);
        }
        out.push_str("# HELP cairn_keys_expiring Live keys with a TTL, by store.\n# TYPE cairn_keys_expiring gauge\n");
        for (name, k) in &stores {
            let _ = writeln!(out, "cairn_keys_expiring{{store=\"{}\"}} {}", esc(name), k.expiring);
        }
        out
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("http", "/a", 200, Duration::from_micros(50));
        m.observe("http", "/a", 200, Duration::from_millis(3));
        m.observe("http", "/a", 404, Duration::from_secs(9));
        let dir = tempfile::tempdir().unwrap();
        let db = cairn_core::Db::open(dir.path()).unwrap();
        db.create_store(cairn_core::StoreSpec::new("s.q")).unwrap();
        db.put("s.q", "a", cairn_core::Value::from(1)).unwrap();
        let ttl = cairn_core::PutOptions {
            ttl: Some(Duration::from_secs(60)),
            ..cairn_core::PutOptions::default()
        };
        db.put_with("s.q", "b", cairn_core::Value::from(2), ttl).unwrap();
        let text = m.render(&db);
        assert!(text.contains("cairn_requests_total{frontend=\"http\",route=\"/a\",status=\"200\"} 2"));
        assert!(text.contains("cairn_request_duration_seconds_bucket{frontend=\"http\",route=\"/a\",le=\"0.0001\"} 1"));
        assert!(text.contains("cairn_request_duration_seconds_bucket{frontend=\"http\",route=\"/a\",le=\"0.005\"} 2"));
        assert!(text.contains("cairn_request_duration_seconds_bucket{frontend=\"http\",route=\"/a\",le=\"+Inf\"} 3"));
        assert!(text.contains("cairn_revision "));
        assert!(text.contains("cairn_keys{store=\"default\"} 0\n"), "{text}");
        assert!(text.contains("cairn_keys{store=\"s.q\"} 2\n"), "{text}");
        assert!(text.contains("cairn_keys_expiring{store=\"s.q\"} 1\n"), "{text}");
    }

    #[test]
    fn observe_many_counts_like_observe() {
        let m = Metrics::default();
        m.observe("resp", "get", 0, Duration::from_micros(20));
        // Existing and new series, errors apart from successes.
        let batch = [
            ("get", 0, Duration::from_micros(30)),
            ("get", 0, Duration::from_millis(2)),
            ("set", 0, Duration::from_micros(40)),
            ("set", 1, Duration::from_micros(40)),
        ];
        m.observe_many("resp", &batch);
        let dir = tempfile::tempdir().unwrap();
        let db = cairn_core::Db::open(dir.path()).unwrap();
        let text = m.render(&db);
        assert!(text.contains("cairn_requests_total{frontend=\"resp\",route=\"get\",status=\"0\"} 3"));
        assert!(text.contains("cairn_requests_total{frontend=\"resp\",route=\"set\",status=\"0\"} 1"));
        assert!(text.contains("cairn_requests_total{frontend=\"resp\",route=\"set\",status=\"1\"} 1"));
        assert!(
            text.contains("cairn_request_duration_seconds_bucket{frontend=\"resp\",route=\"get\",le=\"0.0001\"} 2")
        );
        assert!(text.contains("cairn_request_duration_seconds_bucket{frontend=\"resp\",route=\"set\",le=\"+Inf\"} 2"));
    }
}
