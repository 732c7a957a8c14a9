//! A backup taken while writers run holds exactly the state at its revision:
//! every write up to it, none after it.

use cairn_core::{Db, ListOptions};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// One committed write: (revision, key, value or None for a delete).
type Log = Vec<(u64, String, Option<serde_json::Value>)>;

fn writer(db: &Db, id: usize, stop: &AtomicBool) -> Log {
    let mut log = Log::new();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) || i < 50 {
        let key = format!("w{id}-{}", i % 97);
        if i % 7 == 3 {
            let d = db.delete("default", &key).unwrap();
            if d.success {
                log.push((d.revision.unwrap(), key, None));
            }
        } else {
            let v = json!({"writer": id, "i": i});
            let p = db.put("default", &key, v.clone().into()).unwrap();
            log.push((p.revision.unwrap(), key, Some(v)));
        }
        i += 1;
    }
    log
}

#[test]
fn backup_under_concurrent_writes_is_consistent_at_its_revision() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src")).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..3)
        .map(|id| {
            let (db, stop) = (db.clone(), stop.clone());
            std::thread::spawn(move || writer(&db, id, &stop))
        })
        .collect();
    while db.revision() < 300 {
        std::thread::yield_now();
    }
    let file = dir.path().join("b");
    let info = db.backup_to_file(&file, |_, _| {}).unwrap();
    // Keep writing after the snapshot so that later writes exist to be excluded.
    let target_rev = db.revision() + 200;
    while db.revision() < target_rev {
        std::thread::yield_now();
    }
    stop.store(true, Ordering::Relaxed);
    let mut log: Log = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    log.sort_by_key(|e| e.0);
    assert!(
        log.iter().any(|e| e.0 > info.revision),
        "writes continued past the backup"
    );
    assert!(info.revision >= 300);

    let mut model: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for (rev, key, v) in &log {
        if *rev > info.revision {
            break;
        }
        match v {
            Some(v) => model.insert(key.clone(), v.clone()),
            None => model.remove(key),
        };
    }
    let target = dir.path().join("restored");
    cairn_core::restore(&file, &target, false, |_, _| {}).unwrap();
    let r = Db::open(&target).unwrap();
    assert_eq!(r.revision(), info.revision);
    let page = r
        .list(
            "default",
            &ListOptions {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap();
    let got: BTreeMap<String, serde_json::Value> = page
        .items
        .into_iter()
        .map(|e| (e.key.to_string(), serde_json::to_value(&e.value).unwrap()))
        .collect();
    assert_eq!(got, model);
    // Each restored entry carries the revision of its last write at or before the backup.
    for e in r
        .list(
            "default",
            &ListOptions {
                limit: Some(1000),
                ..Default::default()
            },
        )
        .unwrap()
        .items
    {
        let last = log
            .iter()
            .rev()
            .find(|(rev, k, _)| *rev <= info.revision && *k == e.key.to_string())
            .unwrap();
        assert_eq!(e.revision, last.0);
    }
    assert!(r.check(|_| {}).unwrap().problems.is_empty());
}
