//! `ServerConfig`: the only code that reads flags and environment variables.

use cairn_core::{Config, Durability, Limits};
use std::net::SocketAddr;
use std::path::PathBuf;

/// A listen address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Listen here (port 0: any free port).
    At(SocketAddr),
    /// Do not listen.
    Off,
}

impl std::str::FromStr for Listen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("off") {
            return Ok(Listen::Off);
        }
        if let Ok(a) = s.parse() {
            return Ok(Listen::At(a));
        }
        // A host name with a port (`localhost:7070`): its first address,
        // IPv4 first, as most clients try it first.
        let bad = || format!("{s:?} is not an address like 127.0.0.1:7070 or localhost:7070 (or \"off\")");
        let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(s)
            .map_err(|_| bad())?
            .collect();
        addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .map(Listen::At)
            .ok_or_else(bad)
    }
}

impl Listen {
    /// The address, unless off.
    #[must_use]
    pub fn addr(self) -> Option<SocketAddr> {
        match self {
            Listen::At(a) => Some(a),
            Listen::Off => None,
        }
    }
}

/// Options of `cairn serve`. Every flag has a `CAIRN_*` environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerConfig {
    /// Data directory.
    #[arg(long, env = "CAIRN_DATA_DIR", default_value = "./cairn-data")]
    pub data_dir: PathBuf,
    /// HTTP listen address (REST, SSE, WebSocket), or "off".
    #[arg(long, env = "CAIRN_HTTP", default_value = "127.0.0.1:7070")]
    pub http: Listen,
    /// Redis-protocol listen address, or "off".
    #[arg(long, env = "CAIRN_RESP", default_value = "127.0.0.1:6380")]
    pub resp: Listen,
    /// When writes are acknowledged: "sync" (after fsync) or "relaxed".
    #[arg(long, env = "CAIRN_DURABILITY", default_value = "sync")]
    pub durability: Durability,
    /// fsync period in relaxed mode, milliseconds.
    #[arg(long, env = "CAIRN_SYNC_INTERVAL_MS", default_value_t = 100)]
    pub sync_interval_ms: u64,
    /// Token file: one `TOKEN ROLE [STORE_GLOB]` a line (ROLE: read, write, admin).
    #[arg(long, env = "CAIRN_AUTH_TOKEN_FILE")]
    pub auth_token_file: Option<PathBuf>,
    /// Allow binding a non-loopback address without auth tokens.
    #[arg(long, env = "CAIRN_INSECURE")]
    pub insecure: bool,
    /// TLS certificate chain (PEM) for HTTP.
    #[arg(long, env = "CAIRN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for HTTP.
    #[arg(long, env = "CAIRN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Largest HTTP request body, bytes.
    #[arg(long, env = "CAIRN_MAX_BODY_BYTES", default_value_t = 9 << 20)]
    pub max_body_bytes: usize,
    /// Largest key, bytes.
    #[arg(long, env = "CAIRN_MAX_KEY_BYTES", default_value_t = 4096)]
    pub max_key_bytes: usize,
    /// Largest value, bytes.
    #[arg(long, env = "CAIRN_MAX_VALUE_BYTES", default_value_t = 8 << 20)]
    pub max_value_bytes: usize,
    /// Most operations in one batch.
    #[arg(long, env = "CAIRN_MAX_BATCH_OPS", default_value_t = 1000)]
    pub max_batch_ops: usize,
    /// Deepest JSON nesting accepted in a request (1-100: the engine
    /// stores values up to 100 levels deep).
    #[arg(long, env = "CAIRN_MAX_JSON_DEPTH", default_value_t = 64,
        value_parser = json_depth)]
    pub max_json_depth: usize,
    /// Most concurrent client connections (HTTP and RESP each).
    #[arg(long, env = "CAIRN_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Close HTTP and WebSocket connections idle this long, seconds (RESP
    /// connections stay open, as Redis's `timeout 0`).
    #[arg(long, env = "CAIRN_IDLE_TIMEOUT_SECS", default_value_t = 300)]
    pub idle_timeout_secs: u64,
    /// Watch heartbeat (`progress`) period, milliseconds (kept under half
    /// the idle timeout, so an idle watch is never cut off).
    #[arg(long, env = "CAIRN_HEARTBEAT_MS", default_value_t = 5000)]
    pub heartbeat_ms: u64,
    /// Read cache size, entries (0: no cache).
    #[arg(long, env = "CAIRN_CACHE_ENTRIES", default_value_t = 100_000)]
    pub cache_entries: usize,
    /// Read cache size, bytes: keys and values, each value counted twice
    /// (parsed and encoded); whichever of this and --cache-entries is
    /// reached first bounds the cache.
    #[arg(long, env = "CAIRN_CACHE_BYTES", default_value_t = 256 << 20)]
    pub cache_bytes: u64,
    /// Revisions kept in the change log.
    #[arg(long, env = "CAIRN_CHANGELOG_RETENTION", default_value_t = 1_000_000)]
    pub changelog_retention: u64,
    /// About the most bytes of write-ahead journal kept on disk (at least
    /// 64 MiB): past it, the oldest journal's changes are written out as
    /// tables so it can be deleted. Smaller: less disk and a shorter replay
    /// after a crash; larger: fewer, bigger table writes.
    #[arg(long, env = "CAIRN_JOURNAL_BYTES", default_value_t = 128 << 20,
        value_parser = journal_bytes)]
    pub journal_bytes: u64,
}

impl ServerConfig {
    /// The watch heartbeat period: `heartbeat_ms`, but at most half the
    /// idle timeout (a quiet watch stream must not look idle) and at least
    /// 10 ms.
    #[must_use]
    pub fn heartbeat(&self) -> std::time::Duration {
        let half_idle = self.idle_timeout_secs.max(1).saturating_mul(500);
        std::time::Duration::from_millis(self.heartbeat_ms.min(half_idle).max(10))
    }

    /// A config for tests: a data dir, both listeners on free loopback ports.
    #[must_use]
    pub fn for_tests(data_dir: impl Into<PathBuf>) -> ServerConfig {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            c: ServerConfig,
        }
        let mut c = P::parse_from(["cairn"]).c;
        c.data_dir = data_dir.into();
        c.http = Listen::At(SocketAddr::from(([127, 0, 0, 1], 0)));
        c.resp = Listen::At(SocketAddr::from(([127, 0, 0, 1], 0)));
        c
    }

    /// The engine configuration these options imply.
    #[must_use]
    pub fn engine(&self) -> Config {
        Config {
            durability: self.durability,
            sync_interval_ms: self.sync_interval_ms,
            limits: Limits {
                max_key_bytes: self.max_key_bytes,
                max_value_bytes: self.max_value_bytes,
                max_batch_ops: self.max_batch_ops,
            },
            changelog_retention: self.changelog_retention,
            cache_entries: self.cache_entries,
            cache_bytes: self.cache_bytes,
            journal_bytes: self.journal_bytes,
            ..Config::default()
        }
    }
}

/// `--journal-bytes`: at least 64 MiB (fjall's floor).
fn journal_bytes(s: &str) -> Result<u64, String> {
    const MIN: u64 = 64 << 20;
    s.parse::<u64>()
        .ok()
        .filter(|b| *b >= MIN)
        .ok_or_else(|| format!("{s:?} is not a byte count of at least {MIN} (64 MiB)"))
}

/// `--max-json-depth`: 1 to [`cairn_core::MAX_VALUE_DEPTH`].
fn json_depth(s: &str) -> Result<usize, String> {
    let max = cairn_core::MAX_VALUE_DEPTH;
    s.parse::<usize>()
        .ok()
        .filter(|d| (1..=max).contains(d))
        .ok_or_else(|| {
            format!("{s:?} is not a depth from 1 to {max} (the engine stores values up to {max} levels deep)")
        })
}

#[cfg(test)]
mod tests {
    use super::ServerConfig;
    use std::time::Duration;

    #[test]
    fn listen_takes_addresses_host_names_and_off() {
        use super::Listen;
        assert_eq!("127.0.0.1:7070".parse::<Listen>().unwrap().addr().unwrap().port(), 7070);
        let a = "localhost:7071".parse::<Listen>().unwrap().addr().unwrap();
        assert!(a.ip().is_loopback() && a.port() == 7071, "{a}");
        assert_eq!("off".parse::<Listen>().unwrap(), Listen::Off);
        for bad in ["7070", "localhost", ""] {
            let e = bad.parse::<Listen>().unwrap_err();
            assert!(e.contains("not an address"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_heartbeat_stays_under_half_the_idle_timeout() {
        let mut c = ServerConfig::for_tests("/nonexistent");
        c.idle_timeout_secs = 300;
        c.heartbeat_ms = 5000;
        assert_eq!(c.heartbeat(), Duration::from_secs(5));
        c.idle_timeout_secs = 4;
        c.heartbeat_ms = 60_000;
        assert_eq!(c.heartbeat(), Duration::from_secs(2));
        c.heartbeat_ms = 0;
        assert_eq!(c.heartbeat(), Duration::from_millis(10));
    }

    #[test]
    fn journal_bytes_below_64_mib_is_refused_and_the_value_reaches_the_engine() {
        assert_eq!(super::journal_bytes("67108864"), Ok(64 << 20));
        for bad in ["1000", "-1", "lots"] {
            let e = super::journal_bytes(bad).unwrap_err();
            assert!(e.contains("64 MiB") && e.contains(bad), "{bad}: {e}");
        }
        let mut c = ServerConfig::for_tests("/nonexistent");
        assert_eq!(c.engine().journal_bytes, 128 << 20);
        c.journal_bytes = 256 << 20;
        assert_eq!(c.engine().journal_bytes, 256 << 20);
    }
}
