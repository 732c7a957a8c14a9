//! A data directory removed under an open database: writes are refused with
//! a reason naming the directory (instead of being acknowledged into files
//! that are already unlinked and would be gone at the next start), reads go
//! on, and `Db::fault` says why.

use cairn_core::{Config, Db, Durability, Error, Value};
use serde_json::json;
use std::time::{Duration, Instant};

fn open(path: &std::path::Path, durability: Durability) -> Db {
    Db::builder(path)
        .config(Config {
            durability,
            ..Config::default()
        })
        .open()
        .unwrap()
}

fn refused(r: cairn_core::Result<impl std::fmt::Debug>, path: &std::path::Path) {
    match r {
        Err(e @ Error::Unavailable { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&path.display().to_string()),
                "message names the directory: {msg}"
            );
            assert!(msg.contains("removed"), "message says what happened: {msg}");
            assert_eq!(e.code(), "unavailable");
            assert!(!e.is_client_error());
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[test]
fn sync_mode_refuses_the_first_write_after_removal() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data");
    let db = open(&path, Durability::Sync);
    db.put("default", "before", Value::Json(json!(1))).unwrap();
    assert_eq!(db.fault(), None);

    std::fs::remove_dir_all(&path).unwrap();
    // `sync` checks the directory before every group, so no wait is needed.
    refused(db.put("default", "after", Value::Json(json!(2))), &path);
    refused(db.incr("default", "n", 1.into()), &path);
    assert!(db.fault().unwrap().contains("was removed"));
    // Reads still answer from what the process holds.
    assert_eq!(
        db.get("default", "before").unwrap().unwrap().value,
        Value::Json(json!(1))
    );
    assert!(db.get("default", "after").unwrap().is_none());
}

#[test]
fn relaxed_mode_notices_within_a_maintenance_tick() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data");
    let db = open(&path, Durability::Relaxed);
    db.put("default", "before", Value::Json(json!(1))).unwrap();

    std::fs::remove_dir_all(&path).unwrap();
    let start = Instant::now();
    while db.fault().is_none() {
        assert!(start.elapsed() < Duration::from_secs(10), "removal not noticed");
        std::thread::sleep(Duration::from_millis(20));
    }
    refused(db.put("default", "after", Value::Json(json!(2))), &path);
    assert_eq!(
        db.get("default", "before").unwrap().unwrap().value,
        Value::Json(json!(1))
    );
}

#[test]
fn a_replaced_directory_is_not_mistaken_for_the_original() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("data");
    let db = open(&path, Durability::Sync);
    db.put("default", "k", Value::Json(json!(1))).unwrap();
    // Moved away and a fresh directory (with its own lock file) in its place.
    std::fs::rename(&path, root.path().join("moved")).unwrap();
    std::fs::create_dir(&path).unwrap();
    std::fs::write(path.join("cairn.lock"), b"").unwrap();
    match db.put("default", "k", Value::Json(json!(2))) {
        Err(e @ Error::Unavailable { .. }) => assert!(e.to_string().contains("was replaced"), "{e}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}
