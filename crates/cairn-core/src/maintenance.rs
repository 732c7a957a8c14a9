//! Background upkeep: TTL collection, change-log retention and, in
//! `relaxed` mode, the periodic fsync.

use crate::db::{META_OLDEST, Shared};
use crate::writer::Job;
use crate::{Command, Durability, Key};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most expired keys collected per tick.
const EXPIRE_BATCH: usize = 1000;

pub(crate) fn run(shared: &Arc<Shared>, stop: &crossbeam_channel::Receiver<()>) {
    let cfg = &shared.config;
    let expiry_every = Duration::from_millis(cfg.expiry_interval_ms);
    let sync_every = Duration::from_millis(cfg.sync_interval_ms);
    let tick = if cfg.durability == Durability::Relaxed {
        expiry_every.min(sync_every)
    } else {
        expiry_every
    };
    let mut last_sync = Instant::now();
    let mut last_expiry = Instant::now();
    let mut last_retention = Instant::now();
    loop {
        match stop.recv_timeout(tick) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        shared.check_data_dir();
        // The periodic sync goes on after a fault: writes acknowledged
        // before it still get to disk where the disk allows.
        if cfg.durability == Durability::Relaxed && last_sync.elapsed() >= sync_every {
            last_sync = Instant::now();
            if let Err(e) = shared.fj.persist(fjall::PersistMode::SyncData) {
                // Writes acknowledged since the last good sync may not be on
                // disk, and a retried fsync can report success without
                // writing them (Linux drops the error once reported): stop
                // acknowledging writes rather than lose them quietly.
                shared.refuse_writes(format!(
                    "the periodic fsync failed ({e}); restart once the cause is fixed"
                ));
            }
        }
        if shared.poisoned.load(Ordering::Acquire) {
            continue;
        }
        if last_expiry.elapsed() >= expiry_every {
            last_expiry = Instant::now();
            if let Err(e) = collect_expired(shared) {
                tracing::warn!(error = %e, "TTL collection failed");
            }
        }
        if last_retention.elapsed() >= Duration::from_secs(1) {
            last_retention = Instant::now();
            if let Err(e) = trim_changelog(shared) {
                tracing::warn!(error = %e, "change log retention failed");
            }
        }
    }
}

/// Submits an `Expire` command for every key whose TTL passed.
fn collect_expired(shared: &Shared) -> crate::Result<()> {
    let now = crate::db::now_ms();
    let mut waits = Vec::new();
    let mut stale = Vec::new();
    for kv in shared
        .ks
        .expiry
        .range(..=(now.to_be_bytes().to_vec()))
        .take(EXPIRE_BATCH)
    {
        let k = kv.key()?;
        if k.len() < 12 {
            stale.push(k.to_vec());
            continue;
        }
        let (id, enc) = (u32::from_be_bytes([k[8], k[9], k[10], k[11]]), &k[12..]);
        let target = shared.catalog.read().by_id(id).and_then(|h| {
            Key::decode(h.spec.key_type, enc)
                .ok()
                .map(|key| (h.spec.name.clone(), key.to_raw()))
        });
        match target {
            Some((store, key)) => {
                let (job, rx) = Job::blocking(Command::Expire { store, key });
                if shared.queue.submit_async(job).is_err() {
                    return Ok(());
                }
                waits.push((k.to_vec(), rx));
            }
            None => stale.push(k.to_vec()),
        }
    }
    for (k, rx) in waits {
        // An index entry whose key was not expired is stale (the key was
        // rewritten or removed in a way that left it behind): drop it.
        if let Ok(Ok(crate::Applied::Expired { expired: false, .. })) = rx.recv() {
            stale.push(k);
        }
    }
    if !stale.is_empty() {
        let mut b = shared.fj.batch();
        for k in stale {
            b.remove(&shared.ks.expiry, k);
        }
        b.commit()?;
    }
    Ok(())
}

/// Drops change-log entries older than the retention window.
pub(crate) fn trim_changelog(shared: &Shared) -> crate::Result<()> {
    let retention = shared.config.changelog_retention;
    let revision = shared.revision.load(Ordering::Acquire);
    let oldest = shared.oldest.load(Ordering::Acquire);
    let slack = (retention / 10).clamp(1, 10_000);
    if revision < oldest || revision - oldest < retention + slack {
        return Ok(());
    }
    let new_oldest = revision + 1 - retention;
    // Publish the new floor first: readers check it after reading, so they
    // report `Compacted` rather than silently skipping what is deleted next.
    shared.oldest.store(new_oldest, Ordering::Release);
    shared.ks.meta.insert(META_OLDEST, new_oldest.to_le_bytes())?;
    // Everything before the entry holding `new_oldest` (a chunk may start earlier).
    let end = crate::changelog::seek(&shared.ks.changelog, new_oldest)?;
    loop {
        let keys: Vec<_> = shared
            .ks
            .changelog
            .range(..end)
            .take(10_000)
            .filter_map(|kv| kv.key().ok())
            .collect();
        if keys.is_empty() {
            break;
        }
        let mut b = shared.fj.batch();
        for k in keys {
            b.remove(&shared.ks.changelog, k);
        }
        b.commit()?;
    }
    Ok(())
}
