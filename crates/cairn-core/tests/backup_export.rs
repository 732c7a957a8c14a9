//! NDJSON export and import: round trip, bad lines, conflicts, batches.

use cairn_core::{Config, Db, ExportLine, ExportOptions, KeyType, OnConflict, PutOptions, StoreSpec, Value};
use serde_json::json;
use std::time::Duration;

fn export_lines(db: &Db, o: &ExportOptions) -> Vec<ExportLine> {
    let mut out = Vec::new();
    let info = db.export(&mut out, o, |_, _| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<ExportLine> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(info.lines as usize, lines.len());
    assert_eq!(info.bytes as usize, text.len());
    lines
}

/// What import preserves: store, key, value, expiry.
fn essence(lines: &[ExportLine]) -> Vec<(String, serde_json::Value, Value, Option<u64>)> {
    lines
        .iter()
        .map(|l| (l.store.clone(), l.key.clone(), l.value.clone(), l.expires_at))
        .collect()
}

#[test]
fn ndjson_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let a = Db::open(dir.path().join("a")).unwrap();
    a.create_store(StoreSpec::new("ints").key_type(KeyType::Int)).unwrap();
    a.create_store(StoreSpec::new("raw").key_type(KeyType::Bytes)).unwrap();
    for v in [
        json!(null),
        json!(1),
        json!(2.5),
        json!("s"),
        json!([1]),
        json!({"o": {"p": null}}),
        json!(true),
    ] {
        a.put("default", format!("k{v}"), v.into()).unwrap();
    }
    a.put("default", "bytes", Value::Bytes(vec![0, 1, 254, 255])).unwrap();
    a.put("default", "utf8 ✓ key/with spaces", json!("unicode").into())
        .unwrap();
    a.put_with(
        "default",
        "ttl",
        json!(1).into(),
        PutOptions {
            ttl: Some(Duration::from_secs(600)),
            ..Default::default()
        },
    )
    .unwrap();
    a.put("ints", "-3", json!("minus three").into()).unwrap();
    a.put("raw", [0xffu8, 0xfe], json!("non-utf8 key").into()).unwrap();
    let lines = export_lines(&a, &ExportOptions::default());
    assert_eq!(lines.len(), 12);
    let raw_key = lines.iter().find(|l| l.store == "raw").unwrap();
    assert_eq!(raw_key.key, json!({"$base64": "//4="}));
    let mut text = Vec::new();
    a.export(&mut text, &ExportOptions::default(), |_, _| {}).unwrap();
    let first: serde_json::Value = serde_json::from_slice(text.split(|b| *b == b'\n').next().unwrap()).unwrap();
    for field in [
        "store",
        "key",
        "value",
        "revision",
        "created_revision",
        "version",
        "updated_at",
    ] {
        assert!(first.get(field).is_some(), "missing {field} in {first}");
    }

    let b = Db::open(dir.path().join("b")).unwrap();
    let info = b.import(text.as_slice(), OnConflict::Fail, |_, _| {}).unwrap();
    assert_eq!(info.written, 12);
    // Stores missing on the target are created with default specs; typed keys arrive as text.
    let mut got = essence(&export_lines(&b, &ExportOptions::default()));
    let mut want = essence(&lines);
    got.sort_by_key(|g| format!("{g:?}"));
    want.sort_by_key(|g| format!("{g:?}"));
    assert_eq!(got, want);
    assert!(b.check(|_| {}).unwrap().problems.is_empty());

    let only = export_lines(
        &a,
        &ExportOptions {
            store: Some("default".into()),
            prefix: Some(b"k".to_vec()),
        },
    );
    assert_eq!(only.len(), 7);
    // Across all stores a prefix skips int stores; naming one is an error.
    assert_eq!(
        export_lines(
            &a,
            &ExportOptions {
                store: None,
                prefix: Some(b"k".to_vec())
            }
        )
        .len(),
        7
    );
    let o = ExportOptions {
        store: Some("ints".into()),
        prefix: Some(b"k".to_vec()),
    };
    assert!(
        a.export(Vec::new(), &o, |_, _| {})
            .unwrap_err()
            .to_string()
            .contains("prefix")
    );
    assert!(
        a.export(
            Vec::new(),
            &ExportOptions {
                store: Some("nope".into()),
                ..Default::default()
            },
            |_, _| {}
        )
        .is_err()
    );
}

#[test]
fn a_bad_line_is_named_and_its_batch_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.limits.max_batch_ops = 3;
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let good = |i: u32| format!(r#"{{"store":"default","key":"k{i}","value":{i}}}"#);
    // Lines 1-3 are one batch; line 4 and the bad line 5 are the next.
    let input = [
        good(1),
        good(2),
        good(3),
        good(4),
        "{\"store\": \"default\", \"key\": 5".into(),
        good(6),
    ]
    .join("\n");
    let e = db
        .import(input.as_bytes(), OnConflict::Overwrite, |_, _| {})
        .unwrap_err();
    assert!(e.to_string().contains("line 5"), "{e}");
    assert!(db.get("default", "k3").unwrap().is_some());
    assert!(db.get("default", "k4").unwrap().is_none());
    assert!(db.get("default", "k6").unwrap().is_none());

    let e = db.import(
        r#"{"store":"bad name!","key":"k","value":1}"#.as_bytes(),
        OnConflict::Overwrite,
        |_, _| {},
    );
    assert!(e.unwrap_err().to_string().contains("line 1"));
    let e = db.import(
        "\n\n{\"store\":\"default\",\"key\":7,\"value\":1}".as_bytes(),
        OnConflict::Overwrite,
        |_, _| {},
    );
    assert!(e.unwrap_err().to_string().contains("line 3"));
}

#[test]
fn conflicts_skip_overwrite_or_fail() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "a", json!("old").into()).unwrap();
    let input = "{\"store\":\"default\",\"key\":\"a\",\"value\":\"new\"}\n{\"store\":\"default\",\"key\":\"b\",\"value\":\"new\"}\n";
    let e = db.import(input.as_bytes(), OnConflict::Fail, |_, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("line 1") && e.to_string().contains("already exists"),
        "{e}"
    );
    assert!(db.get("default", "b").unwrap().is_none());
    let s = db.import(input.as_bytes(), OnConflict::Skip, |_, _| {}).unwrap();
    assert_eq!((s.written, s.skipped), (1, 1));
    assert_eq!(db.get("default", "a").unwrap().unwrap().value, json!("old").into());
    let o = db.import(input.as_bytes(), OnConflict::Overwrite, |_, _| {}).unwrap();
    assert_eq!(o.written, 2);
    assert_eq!(db.get("default", "a").unwrap().unwrap().value, json!("new").into());
    // Lines whose expiry has passed are not written.
    let past = "{\"store\":\"default\",\"key\":\"gone\",\"value\":1,\"expires_at\":1000}";
    let p = db.import(past.as_bytes(), OnConflict::Overwrite, |_, _| {}).unwrap();
    assert_eq!((p.written, p.expired), (0, 1));
    assert!("maybe".parse::<OnConflict>().is_err());
}
