//! `Db::check`: reads every record at one snapshot and reports what does not
//! decode or verify.

use super::{u64_le, verify_content};
use crate::db::{META_NEXT_STORE, META_OLDEST, META_REVISION};
use crate::entry::Record;
use crate::writer::PersistedStore;
use crate::{Db, Key, Result};
use fjall::Readable;
use std::collections::HashMap;

/// What [`Db::check`] found.
#[derive(Debug, Clone, Default)]
pub struct CheckReport {
    /// Revision checked at.
    pub revision: u64,
    /// Oldest revision in the change log.
    pub oldest: u64,
    /// Stores.
    pub stores: u64,
    /// Live entries (expired ones not yet collected included).
    pub entries: u64,
    /// Older versions kept by history.
    pub history: u64,
    /// Content objects, each verified against its hash.
    pub content: u64,
    /// Bytes of content.
    pub content_bytes: u64,
    /// Change-log events.
    pub events: u64,
    /// Everything wrong, one line each; empty when the db is sound.
    pub problems: Vec<String>,
}

const MAX_PROBLEMS: usize = 100;

impl CheckReport {
    fn problem(&mut self, p: String) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(p);
        } else if self.problems.len() == MAX_PROBLEMS {
            self.problems.push("(further problems not listed)".into());
        }
    }
}

impl Db {
    /// Reads every record of the database at one snapshot and reports what
    /// does not decode or verify: entries (key and value against the store's
    /// types), history, content (against its hash), the expiry index and the
    /// change log (ordered, within `oldest..=revision`, event indices dense).
    ///
    /// # Errors
    /// Storage errors that stop the scan; problems found are in the report.
    pub fn check(&self, mut progress: impl FnMut(u64)) -> Result<CheckReport> {
        let (snap, kept) = crate::keystats::snapshot(&self.shared);
        let ks = &self.shared.ks;
        let mut rep = CheckReport::default();
        let meta = |k: &[u8]| -> Result<Option<u64>> {
            snap.get(&ks.meta, k)?.map(|v| u64_le(&v, "meta counter")).transpose()
        };
        rep.revision = meta(META_REVISION)?.unwrap_or(0);
        rep.oldest = meta(META_OLDEST)?.unwrap_or(1);
        let next_store = meta(META_NEXT_STORE)?.unwrap_or(1);
        let mut stores: HashMap<u32, PersistedStore> = HashMap::new();
        for kv in snap.iter(&ks.stores) {
            let (k, v) = kv.into_inner()?;
            rep.stores += 1;
            match serde_json::from_slice::<PersistedStore>(&v) {
                Ok(p) => {
                    if p.spec.name.as_bytes() != &*k {
                        rep.problem(format!(
                            "store {:?} is filed under {:?}",
                            p.spec.name,
                            String::from_utf8_lossy(&k)
                        ));
                    }
                    if u64::from(p.id) >= next_store {
                        rep.problem(format!(
                            "store {:?} has id {} >= next store id {next_store}",
                            p.spec.name, p.id
                        ));
                    }
                    stores.insert(p.id, p);
                }
                Err(e) => rep.problem(format!(
                    "store {:?}: spec does not parse: {e}",
                    String::from_utf8_lossy(&k)
                )),
            }
        }
        let mut n = 0u64;
        let mut tallies = crate::keystats::Map::default();
        // Records of cleared or dropped stores, not yet deleted: skipped.
        let retired = crate::retire::at_snapshot(&snap, ks)?;
        let is_retired = |k: &[u8]| crate::retire::id_of(k).is_some_and(|id| retired.contains(&id));
        for kv in snap.iter(&ks.data) {
            let (k, v) = kv.into_inner()?;
            if is_retired(&k) {
                continue;
            }
            rep.entries += 1;
            if let (Some(id), Ok(t)) = (crate::retire::id_of(&k), Record::stored_expires_at(&v)) {
                tallies.entry(id).or_default().add_record(t);
            }
            n += 1;
            if n.is_multiple_of(4096) {
                progress(n);
            }
            if let Err(p) = check_entry(&stores, &k, &v, rep.revision, &snap, ks) {
                rep.problem(p);
            }
        }
        for p in crate::keystats::compare(&kept, &tallies) {
            let name = |id: &u32| {
                stores
                    .get(id)
                    .map_or_else(|| format!("id {id}"), |p| format!("{:?}", p.spec.name))
            };
            rep.problem(format!(
                "store {}: key statistics say {:?}, the records {:?}",
                name(&p.0),
                p.1,
                p.2
            ));
        }
        for kv in snap.iter(&ks.history) {
            let (k, v) = kv.into_inner()?;
            if is_retired(&k) {
                continue;
            }
            rep.history += 1;
            if let Err(e) = Record::decode(&v) {
                rep.problem(format!("history record: {e}"));
            }
        }
        for kv in snap.iter(&ks.expiry) {
            let (k, _) = kv.into_inner()?;
            if k.len() < 12 {
                rep.problem("expiry index key is too short".into());
                continue;
            }
            let at = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
            // A cleared or dropped store's entry: the TTL collector drops it
            // when its time comes.
            if crate::retire::id_of(&k[8..]).is_some_and(|id| !stores.contains_key(&id)) {
                continue;
            }
            let matches = match snap.get(&ks.data, &k[8..])? {
                Some(v) => Record::decode(&v).is_ok_and(|r| r.expires_at == Some(at)),
                None => false,
            };
            if !matches {
                rep.problem(format!("expiry index entry at {at} points at no entry expiring then"));
            }
        }
        for kv in snap.iter(&ks.content) {
            let (k, v) = kv.into_inner()?;
            rep.content += 1;
            rep.content_bytes += v.len() as u64;
            n += 1;
            if let Err(p) = verify_content(&k, &v) {
                rep.problem(p);
            }
        }
        check_changelog(&snap, ks, &mut rep)?;
        progress(n);
        Ok(rep)
    }
}

fn check_entry(
    stores: &HashMap<u32, PersistedStore>,
    k: &[u8],
    v: &[u8],
    revision: u64,
    snap: &fjall::Snapshot,
    ks: &crate::db::Keyspaces,
) -> std::result::Result<(), String> {
    let Some(id) = crate::retire::id_of(k) else {
        return Err("data key shorter than a store id".into());
    };
    let p = stores
        .get(&id)
        .ok_or_else(|| format!("entry under unknown store id {id}"))?;
    let name = &p.spec.name;
    let key = Key::decode(p.spec.key_type, &k[4..]).map_err(|e| format!("store {name:?}: {e}"))?;
    let r = Record::decode(v).map_err(|e| format!("store {name:?} key {key}: {e}"))?;
    p.spec
        .value_type
        .check(&r.value)
        .map_err(|e| format!("store {name:?} key {key}: {e}"))?;
    if r.revision > revision || r.created_revision > r.revision || r.version == 0 {
        return Err(format!(
            "store {name:?} key {key}: inconsistent metadata (revision {}, created {}, version {}, db revision {revision})",
            r.revision, r.created_revision, r.version
        ));
    }
    if let Some(at) = r.expires_at {
        let ek = crate::writer::expiry_key(at, k);
        if !snap.contains_key(&ks.expiry, ek).map_err(|e| e.to_string())? {
            return Err(format!(
                "store {name:?} key {key}: expires at {at} but is missing from the expiry index"
            ));
        }
    }
    Ok(())
}

fn check_changelog(snap: &fjall::Snapshot, ks: &crate::db::Keyspaces, rep: &mut CheckReport) -> Result<()> {
    // (revision, index) of the previous entry's last event; index is only
    // meaningful for old one-event entries.
    let mut last: Option<(u64, u32)> = None;
    for kv in snap.iter(&ks.changelog) {
        let (k, v) = kv.into_inner()?;
        if k.len() != 12 {
            rep.problem("change-log key is not 12 bytes".into());
            continue;
        }
        let rev = u64::from_be_bytes(k[..8].try_into().unwrap_or_default());
        let idx = u32::from_be_bytes(k[8..].try_into().unwrap_or_default());
        let chunk = crate::changelog::is_chunk(&v);
        let expected_idx = match last {
            Some((r, i)) if r == rev && !chunk => i + 1,
            _ => 0,
        };
        if idx != expected_idx || last.is_some_and(|(r, _)| chunk && r >= rev) {
            rep.problem(format!("change log revision {rev}: entry {idx} out of order"));
        }
        let events = match crate::changelog::events(rev, &v) {
            Ok(events) => events,
            Err(e) => {
                rep.problem(e.to_string());
                continue;
            }
        };
        for (r, bytes) in events {
            rep.events += 1;
            if r > rep.revision {
                rep.problem(format!(
                    "change log holds revision {r}, after the db revision {}",
                    rep.revision
                ));
            }
            // Entries below `oldest` may linger until the trimmer deletes them; only retained ones must decode.
            if r >= rep.oldest
                && let Err(e) = crate::Event::decode(r, bytes)
            {
                rep.problem(format!("change log revision {r}: {e}"));
            }
            last = Some((r, idx));
        }
    }
    Ok(())
}
