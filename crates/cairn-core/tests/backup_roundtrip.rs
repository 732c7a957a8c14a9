//! Backup then restore reproduces the database exactly: every value type,
//! typed stores (int and uuid keys), history, TTLs and content.

use cairn_core::{Algorithm, Db, KeyType, ListOptions, PutOptions, StoreSpec, Value, ValueType};
use serde_json::json;
use std::path::Path;
use std::time::Duration;

fn all_entries(db: &Db) -> Vec<(String, Vec<cairn_core::Entry>)> {
    db.stores()
        .into_iter()
        .map(|s| {
            let page = db
                .list(
                    &s.name,
                    &ListOptions {
                        limit: Some(1000),
                        ..Default::default()
                    },
                )
                .unwrap();
            assert!(page.next_cursor.is_none());
            (s.name, page.items)
        })
        .collect()
}

fn populate(db: &Db) -> Vec<String> {
    db.create_store(StoreSpec::new("ints").key_type(KeyType::Int).value_type(ValueType::Int))
        .unwrap();
    db.create_store(
        StoreSpec::new("ids")
            .key_type(KeyType::Uuid)
            .value_type(ValueType::String),
    )
    .unwrap();
    db.create_store(
        StoreSpec::new("blobs")
            .key_type(KeyType::Bytes)
            .value_type(ValueType::Bytes),
    )
    .unwrap();
    db.create_store(
        StoreSpec::new("docs")
            .schema(json!({"type": "object", "required": ["n"]}))
            .history(3)
            .default_ttl(Duration::from_secs(86_400)),
    )
    .unwrap();
    db.create_store(StoreSpec::new("flags").value_type(ValueType::Bool))
        .unwrap();
    db.create_store(StoreSpec::new("ratios").value_type(ValueType::Float))
        .unwrap();
    for v in [
        json!(null),
        json!(true),
        json!(42),
        json!(-1.5),
        json!("text"),
        json!([1, [2]]),
        json!({"a": {"b": 1}}),
    ] {
        db.put("default", format!("k-{v}"), v.into()).unwrap();
    }
    db.put("default", "raw", Value::Bytes(vec![0, 159, 255])).unwrap();
    db.put_with(
        "default",
        "ttl",
        json!("expires later").into(),
        PutOptions {
            ttl: Some(Duration::from_secs(3600)),
            ..Default::default()
        },
    )
    .unwrap();
    for i in [-5i64, 0, 7, i64::MAX, i64::MIN] {
        db.put("ints", i.to_string(), json!(i).into()).unwrap();
    }
    db.incr("ints", "7", 3.into()).unwrap();
    let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    db.put("ids", id, json!("uuid value").into()).unwrap();
    db.put("blobs", [0xffu8, 0, 1], Value::Bytes(vec![1, 2, 3])).unwrap();
    for n in 1..=4 {
        db.put("docs", "d", json!({"n": n}).into()).unwrap();
    }
    db.put("flags", "f", json!(false).into()).unwrap();
    db.put("ratios", "r", json!(0.25).into()).unwrap();
    db.delete("default", "k-null").unwrap();
    let a = db.put_content(b"content one".to_vec(), Algorithm::Sha256).unwrap();
    let b = db.put_content(vec![7u8; 100_000], Algorithm::Sha1).unwrap();
    vec![a.hash, b.hash]
}

fn backup_restore(db: &Db, dir: &Path) -> (Db, cairn_core::BackupInfo) {
    let file = dir.join("db.backup");
    let info = db.backup_to_file(&file, |_, _| {}).unwrap();
    assert_eq!(info.bytes, std::fs::metadata(&file).unwrap().len());
    let target = dir.join("restored");
    let restored = cairn_core::restore(&file, &target, false, |_, _| {}).unwrap();
    assert_eq!(restored, info);
    (Db::open(&target).unwrap(), info)
}

#[test]
fn round_trip_preserves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src")).unwrap();
    let hashes = populate(&db);
    let (r, info) = backup_restore(&db, dir.path());
    assert_eq!(info.revision, db.revision());
    assert_eq!(r.revision(), db.revision());
    assert_eq!(r.oldest_revision(), db.revision() + 1);
    assert_eq!(r.stores(), db.stores());
    assert_eq!(all_entries(&r), all_entries(&db));
    // Key statistics are not in the backup: the restored db counts its
    // records when first opened.
    for s in db.stores() {
        let (a, b) = (r.key_stats(&s.name).unwrap(), db.key_stats(&s.name).unwrap());
        assert_eq!((a.keys, a.expiring), (b.keys, b.expiring), "store {}", s.name);
    }
    assert!(r.key_stats("docs").unwrap().expiring > 0);
    assert!(r.check(|_| ()).unwrap().problems.is_empty());
    assert_eq!(r.history("docs", "d").unwrap(), db.history("docs", "d").unwrap());
    assert_eq!(r.history("docs", "d").unwrap().len(), 3);
    for h in &hashes {
        assert_eq!(r.get_content(h).unwrap(), db.get_content(h).unwrap());
        assert!(r.get_content(h).unwrap().is_some());
    }
    let rep = r.check(|_| {}).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(rep.content, 2);
    assert_eq!(rep.stores, 7);
    // Revisions continue after the backup's; they are never reused.
    let p = r.put("default", "after", json!(1).into()).unwrap();
    assert_eq!(p.revision, Some(info.revision + 1));
    // The change log starts after the backup: older revisions are refused with the oldest named.
    let err = r.subscribe(cairn_core::Filter::default(), Some(1)).unwrap_err();
    assert!(err.to_string().contains(&format!("{}", info.revision + 1)), "{err}");
}

#[test]
fn check_of_a_live_db_is_clean_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    populate(&db);
    let rep = db.check(|_| {}).unwrap();
    assert!(rep.problems.is_empty(), "{:?}", rep.problems);
    assert_eq!(rep.revision, db.revision());
    assert_eq!(rep.history, 3);
    assert!(rep.entries >= 18, "{}", rep.entries);
    assert!(rep.events > 0);
}

#[test]
fn restore_refuses_a_non_empty_target_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src")).unwrap();
    db.put("default", "k", json!("from backup").into()).unwrap();
    let file = dir.path().join("b");
    db.backup_to_file(&file, |_, _| {}).unwrap();
    let target = dir.path().join("t");
    {
        let other = Db::open(&target).unwrap();
        other.put("default", "k", json!("existing").into()).unwrap();
        // Locked while open, even with force.
        let e = cairn_core::restore(&file, &target, true, |_, _| {}).unwrap_err();
        assert!(matches!(e, cairn_core::Error::Locked { .. }), "{e}");
    }
    let e = cairn_core::restore(&file, &target, false, |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("not empty"), "{e}");
    assert_eq!(
        Db::open(&target).unwrap().get("default", "k").unwrap().unwrap().value,
        json!("existing").into()
    );
    cairn_core::restore(&file, &target, true, |_, _| {}).unwrap();
    assert_eq!(
        Db::open(&target).unwrap().get("default", "k").unwrap().unwrap().value,
        json!("from backup").into()
    );
    assert!(!dir.path().join("t.tmp-restore").exists());
    // Force replaces a data directory, not just any directory.
    let precious = dir.path().join("precious");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep").unwrap();
    let e = cairn_core::restore(&file, &precious, true, |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("not a cairn data directory"), "{e}");
    assert_eq!(std::fs::read_to_string(precious.join("notes.txt")).unwrap(), "keep");
    // A trailing slash names the same directory.
    let slashed = format!("{}/", dir.path().join("t3").display());
    cairn_core::restore(&file, Path::new(&slashed), false, |_, _| {}).unwrap();
    assert_eq!(Db::open(dir.path().join("t3")).unwrap().revision(), db.revision());
    assert!(!dir.path().join("t3").join(".tmp-restore").exists());
    assert!(!dir.path().join("t.old-restore").exists());
}

#[test]
fn corrupt_content_is_found_by_check_and_refused_by_backup() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path().join("src")).unwrap();
    db.put("default", "k", json!(1).into()).unwrap();
    let good = db.put_content(b"fine".to_vec(), Algorithm::Sha256).unwrap().hash;
    let bad = db.put_content(b"original".to_vec(), Algorithm::Sha1).unwrap().hash;
    assert!(db.check(|_| {}).unwrap().problems.is_empty());
    db.corrupt_content_for_tests(&bad, b"tampered").unwrap();
    let rep = db.check(|_| {}).unwrap();
    assert_eq!(rep.problems.len(), 1, "{:?}", rep.problems);
    assert!(rep.problems[0].contains(&bad), "{:?}", rep.problems);
    assert!(!rep.problems[0].contains(&good));
    let file = dir.path().join("b");
    let e = db.backup_to_file(&file, |_, _| {}).unwrap_err();
    assert!(
        matches!(&e, cairn_core::Error::Corrupted { hash, .. } if *hash == bad),
        "{e}"
    );
    assert!(!file.exists());
    assert!(!dir.path().join("b.tmp").exists());
}
