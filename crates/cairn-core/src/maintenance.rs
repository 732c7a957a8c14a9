//! Background upkeep: TTL collection, change-log retention and, in
//! `relaxed` mode, the periodic fsync.

use crate::db::{META_OLDEST, Shared};
use crate::writer::Job;
use crate::{Command, Durability, Key};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Most expired keys collected per round; a tick runs rounds while they
/// come back full, for up to [`EXPIRE_BUDGET`].
const EXPIRE_BATCH: usize = 1000;
/// How long one tick may keep collecting (the rest of the tick the writer
/// is left to clients).
const EXPIRE_BUDGET: Duration = Duration::from_millis(100);
/// How long one tick may spend deleting retired stores' records.
const RETIRE_BUDGET: Duration = Duration::from_millis(50);
/// How often the collector scans the expiry index from its start, as a
/// safety net under the floor it keeps.
const FULL_SCAN_EVERY: Duration = Duration::from_secs(60);

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
    let mut trimmed_to = None;
    let mut retired = crate::retire::Collector::default();
    let mut expiry = Collector {
        floor: 0,
        last_full: Instant::now(),
    };
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
            let start = Instant::now();
            loop {
                match expiry.round(shared) {
                    Ok(true) if start.elapsed() < EXPIRE_BUDGET => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "TTL collection failed");
                        break;
                    }
                }
            }
        }
        if let Err(e) = retired.run(shared, RETIRE_BUDGET) {
            tracing::warn!(error = %e, "deleting a cleared or dropped store's records failed");
        }
        if last_retention.elapsed() >= Duration::from_secs(1) {
            last_retention = Instant::now();
            crate::writer::refresh_read_view(shared);
            if let Err(e) = trim_changelog(shared, &mut trimmed_to) {
                tracing::warn!(error = %e, "change log retention failed");
            }
        }
    }
}

/// The TTL collector's position in the expiry index.
///
/// Entries are `expires_at ++ store id ++ key`, so collecting removes them
/// from the start of the index, and fjall keeps a tombstone for each until
/// compaction. Scanning from the start every tick walked all of those: a
/// server that had collected a few hundred thousand keys spent a third of
/// a core doing it, idle, for good. So each round starts at `floor`, below
/// which every entry is collected. A commit can add an entry below it (a
/// TTL that passed before its commit became visible, or an `expires_at`
/// in the past): the writer lowers `Shared::expiry_pending` to every
/// expiry it stages, and again once the commit is visible (a round that
/// took the first lowering may have scanned before it was), and a round
/// takes that into its floor, before and after its scan.
struct Collector {
    floor: u64,
    last_full: Instant,
}

impl Collector {
    /// Submits an `Expire` command for each key whose TTL passed, from the
    /// floor on, up to [`EXPIRE_BATCH`]; true when the batch was full (more
    /// may be due).
    fn round(&mut self, shared: &Shared) -> crate::Result<bool> {
        if self.last_full.elapsed() >= FULL_SCAN_EVERY {
            self.last_full = Instant::now();
            self.floor = 0;
            shared.expiry_floor.store(0, Ordering::Release);
        }
        // Staged before this swap but maybe not yet visible to the scan:
        // kept in the floor after it too. Readers take the lower of the
        // published floor and `expiry_pending`, so the floor is published
        // lowered before the swap empties `expiry_pending`.
        let before = self.floor.min(shared.expiry_pending.load(Ordering::Acquire));
        shared.expiry_floor.fetch_min(before, Ordering::AcqRel);
        let staged = shared.expiry_pending.swap(u64::MAX, Ordering::AcqRel);
        let floor = self.floor.min(staged);
        shared.expiry_floor.fetch_min(floor, Ordering::AcqRel);
        let now = crate::db::now_ms();
        if floor > now {
            self.floor = floor;
            shared.expiry_floor.store(floor, Ordering::Release);
            return Ok(false);
        }
        let mut waits = Vec::new();
        let mut stale = Vec::new();
        let mut last = floor;
        for kv in shared
            .ks
            .expiry
            .range(floor.to_be_bytes().to_vec()..=now.to_be_bytes().to_vec())
            .take(EXPIRE_BATCH)
        {
            let k = kv.key()?;
            if k.len() < 12 {
                stale.push(k.to_vec());
                continue;
            }
            last = u64::from_be_bytes([k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]]);
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
                        return Ok(false);
                    }
                    waits.push((k.to_vec(), rx));
                }
                None => stale.push(k.to_vec()),
            }
        }
        let full = waits.len() + stale.len() >= EXPIRE_BATCH;
        let mut failed = false;
        for (k, rx) in waits {
            match rx.recv() {
                // An index entry whose key was not expired is stale (the key was
                // rewritten or removed in a way that left it behind): drop it.
                Ok(Ok(crate::Applied::Expired { expired: false, .. })) => stale.push(k),
                Ok(Ok(_)) => {}
                _ => failed = true,
            }
        }
        if !stale.is_empty() {
            let mut b = shared.fj.batch();
            for k in stale {
                b.remove(&shared.ks.expiry, k);
            }
            b.commit()?;
        }
        // A full batch may have left entries at `last`; an empty or short
        // one covered everything up to `now`.
        let reached = if failed {
            floor
        } else if full {
            last
        } else {
            // Not `now + 1`: entries at exactly `now` (expired: `t <= now`)
            // sort after the 8-byte bound and were not scanned.
            now
        };
        self.floor = reached.min(staged).min(shared.expiry_pending.load(Ordering::Acquire));
        shared.expiry_floor.store(self.floor, Ordering::Release);
        Ok(full && !failed)
    }
}

/// Drops change-log entries older than the retention window.
pub(crate) fn trim_changelog(shared: &Shared, from: &mut Option<[u8; 12]>) -> crate::Result<()> {
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
    // Everything before the entry holding `new_oldest` (a chunk may start
    // earlier), from where the last trim stopped: what is before that went
    // in earlier trims, and walking their tombstones again costs.
    let end = crate::changelog::seek(&shared.ks.changelog, new_oldest)?;
    use std::ops::Bound;
    let mut start = Bound::Included(from.unwrap_or([0; 12]).to_vec());
    loop {
        let keys: Vec<_> = shared
            .ks
            .changelog
            .range((start.clone(), Bound::Excluded(end.to_vec())))
            .take(10_000)
            .filter_map(|kv| kv.key().ok())
            .collect();
        let Some(last) = keys.last() else { break };
        start = Bound::Excluded(last.to_vec());
        let mut b = shared.fj.batch();
        for k in keys {
            b.remove(&shared.ks.changelog, k);
        }
        b.commit()?;
    }
    *from = Some(end);
    Ok(())
}
