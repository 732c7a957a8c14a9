//! Engine configuration: the one place for options and their defaults.

use serde::{Deserialize, Serialize};

/// When a write is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Acknowledged only after the journal is fsynced (group commit shares fsyncs).
    #[default]
    Sync,
    /// Acknowledged once written to the OS; fsynced every `sync_interval_ms`.
    Relaxed,
}

impl std::str::FromStr for Durability {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sync" => Ok(Durability::Sync),
            "relaxed" => Ok(Durability::Relaxed),
            other => Err(format!("durability must be \"sync\" or \"relaxed\", not {other:?}")),
        }
    }
}

/// Size limits enforced on every write before anything is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Maximum key length in bytes. Default: 4096.
    pub max_key_bytes: usize,
    /// Maximum encoded value length in bytes. Default: 8 MiB.
    pub max_value_bytes: usize,
    /// Maximum number of checks plus operations in one batch. Default: 1000.
    pub max_batch_ops: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_bytes: 4096,
            max_value_bytes: 8 << 20,
            max_batch_ops: 1000,
        }
    }
}

/// Engine options. Build with struct update syntax:
/// `Config { durability: Durability::Relaxed, ..Config::default() }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// Write acknowledgement mode. Default: [`Durability::Sync`].
    pub durability: Durability,
    /// fsync period in `relaxed` mode, in milliseconds. Default: 100.
    pub sync_interval_ms: u64,
    /// Size limits. Default: see [`Limits`].
    pub limits: Limits,
    /// Number of most recent revisions kept in the change log. Default: 1,000,000.
    pub changelog_retention: u64,
    /// Most entries kept in the read cache (0 disables it). Default: 100,000.
    pub cache_entries: usize,
    /// About the most bytes the read cache holds: keys and values (counted
    /// twice: parsed and encoded) and bookkeeping (0 disables it). Default:
    /// 256 MiB.
    pub cache_bytes: u64,
    /// fjall block cache size in bytes. Default: 64 MiB.
    pub block_cache_bytes: u64,
    /// About the most bytes of journal kept on disk: past it, the stores
    /// whose unwritten changes hold the oldest journal are written out as
    /// tables so it can go. At least 64 MiB. Default: 128 MiB (fjall's own
    /// default, 512 MiB, let a busy server keep half a gigabyte of
    /// journals that a restart must replay).
    #[serde(default = "default_journal_bytes")]
    pub journal_bytes: u64,
    /// How often the TTL collector looks for expired keys, in milliseconds. Default: 250.
    pub expiry_interval_ms: u64,
    /// Number of recent change events kept in memory for watchers. Default: 65,536.
    pub event_buffer: usize,
    /// Most bytes of recent change events (their old and new values) kept
    /// in memory for watchers; older events are read from the change log.
    /// Default: 64 MiB.
    pub event_buffer_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            durability: Durability::Sync,
            sync_interval_ms: 100,
            limits: Limits::default(),
            changelog_retention: 1_000_000,
            cache_entries: 100_000,
            cache_bytes: 256 << 20,
            block_cache_bytes: 64 << 20,
            journal_bytes: default_journal_bytes(),
            expiry_interval_ms: 250,
            event_buffer: 65_536,
            event_buffer_bytes: 64 << 20,
        }
    }
}

fn default_journal_bytes() -> u64 {
    128 << 20
}

/// fjall refuses a smaller journal budget.
const MIN_JOURNAL_BYTES: u64 = 64 << 20;

impl Config {
    /// Checks cross-field rules.
    ///
    /// # Errors
    /// Returns a message naming the offending field.
    pub fn validate(self) -> Result<Config, String> {
        if self.sync_interval_ms == 0 {
            return Err("sync_interval_ms must be at least 1".into());
        }
        if self.changelog_retention == 0 {
            return Err("changelog_retention must be at least 1".into());
        }
        if self.limits.max_key_bytes == 0 || self.limits.max_value_bytes == 0 || self.limits.max_batch_ops == 0 {
            return Err("limits must be positive".into());
        }
        if self.expiry_interval_ms == 0 {
            return Err("expiry_interval_ms must be at least 1".into());
        }
        if self.event_buffer_bytes == 0 {
            return Err("event_buffer_bytes must be at least 1".into());
        }
        if self.journal_bytes < MIN_JOURNAL_BYTES {
            return Err(format!(
                "journal_bytes must be at least {MIN_JOURNAL_BYTES} (64 MiB), not {}",
                self.journal_bytes
            ));
        }
        if self.event_buffer == 0 {
            return Err("event_buffer must be at least 1".into());
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_budget_below_fjalls_floor_is_refused_by_name() {
        assert!(Config::default().validate().is_ok());
        let small = Config {
            journal_bytes: 32 << 20,
            ..Config::default()
        };
        let err = small.validate().unwrap_err();
        assert!(err.contains("journal_bytes"), "{err}");
    }

    #[test]
    fn a_config_saved_before_journal_bytes_existed_still_loads() {
        let mut v = serde_json::to_value(Config::default()).unwrap();
        v.as_object_mut().unwrap().remove("journal_bytes");
        let c: Config = serde_json::from_value(v).unwrap();
        assert_eq!(c.journal_bytes, 128 << 20);
    }
}
