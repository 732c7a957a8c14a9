//! [`Builder`]: opening a [`Db`] with options, and the data directory's lock.

use crate::{Config, Db, Durability, Error, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Opens a [`Db`] with options.
#[derive(Debug)]
#[must_use]
pub struct Builder {
    pub(crate) path: PathBuf,
    pub(crate) config: Config,
}

impl Builder {
    /// Replaces the whole configuration.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Sets the durability mode.
    pub fn durability(mut self, d: Durability) -> Self {
        self.config.durability = d;
        self
    }

    /// Sets the read cache size in entries (0 disables it).
    pub fn cache_entries(mut self, n: usize) -> Self {
        self.config.cache_entries = n;
        self
    }

    /// Sets the read cache's byte budget (0 disables it).
    pub fn cache_bytes(mut self, n: u64) -> Self {
        self.config.cache_bytes = n;
        self
    }

    /// Sets how many revisions the change log keeps.
    pub fn changelog_retention(mut self, n: u64) -> Self {
        self.config.changelog_retention = n;
        self
    }

    /// Opens (or creates) the database.
    ///
    /// # Errors
    /// [`Error::Locked`] when another process has it open; storage errors.
    pub fn open(self) -> Result<Db> {
        Db::open_with(&self.path, self.config)
    }
}

/// Takes the data directory's lock file, made if missing.
pub(crate) fn lock_dir(path: &Path) -> Result<File> {
    std::fs::create_dir_all(path)?;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.join("cairn.lock"))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked { path: path.to_owned() }),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}
