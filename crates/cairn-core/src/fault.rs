//! Refusing writes the engine can no longer make durable: after a failed
//! commit, or once the data directory is removed or replaced under the open
//! database (a stray `rm -rf`, a tmp cleaner). Reads go on; every write is
//! answered with [`Error::Unavailable`] naming the reason until a reopen.

use crate::Error;
use crate::db::Shared;
use std::fs::File;
use std::sync::atomic::Ordering;

/// `(device, inode)` of an open file.
#[cfg(unix)]
pub(crate) fn file_id(f: &File) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
pub(crate) fn file_id(_: &File) -> Option<(u64, u64)> {
    None
}

impl Shared {
    /// Refuses every later write, keeping the first reason given.
    pub fn refuse_writes(&self, reason: String) {
        let mut fault = self.fault.lock();
        if fault.is_none() {
            tracing::error!(%reason, "the database refuses writes until it is reopened");
            *fault = Some(reason);
        }
        self.poisoned.store(true, Ordering::Release);
    }

    /// The error for a write refused after [`Shared::refuse_writes`].
    pub fn unavailable(&self) -> Error {
        Error::Unavailable {
            reason: self
                .fault
                .lock()
                .clone()
                .unwrap_or_else(|| "the database is failing".into()),
        }
    }

    /// Refuses writes once the data directory no longer holds the lock file
    /// this process opened: the directory was deleted or replaced, and what
    /// is written now would be gone at the next start.
    #[cfg(unix)]
    pub fn check_data_dir(&self) {
        use std::os::unix::fs::MetadataExt;
        let Some(id) = self.lock_id else { return };
        let lock = self.path.join("cairn.lock");
        let now = std::fs::metadata(&lock).map(|m| (m.dev(), m.ino()));
        let why = match now {
            Ok(now) if now == id => return,
            Ok(_) => "was replaced",
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => "was removed",
            // Permissions or a flaky mount: not proof the directory is gone.
            Err(_) => return,
        };
        self.refuse_writes(format!(
            "data directory {} {why} while the database was open; writes would be lost at the next start, so restart on an intact directory",
            self.path.display()
        ));
    }

    #[cfg(not(unix))]
    pub fn check_data_dir(&self) {}
}
