//! NDJSON export and import: round trip, bad lines, conflicts, batches.

use cairn_core::{
    Config, Db, ExportItem, ExportLine, ExportOptions, KeyType, OnConflict, PutOptions, StoreSpec, Value, ValueType,
};
use serde_json::json;
use std::time::Duration;

/// The entries of an export (its store lines checked and left out).
fn export_lines(db: &Db, o: &ExportOptions) -> Vec<ExportLine> {
    let (specs, lines) = export_items(db, o);
    assert!(
        lines.iter().all(|l| specs.iter().any(|s| s.name == l.store)),
        "an entry's store has no store line before it"
    );
    lines
}

/// Store lines and entries, in order: every store line comes first.
fn export_items(db: &Db, o: &ExportOptions) -> (Vec<StoreSpec>, Vec<ExportLine>) {
    let mut out = Vec::new();
    let info = db.export(&mut out, o, |_, _| {}).unwrap();
    let text = String::from_utf8(out).unwrap();
    let (mut specs, mut lines) = (Vec::new(), Vec::new());
    for l in text.lines() {
        match ExportItem::parse(l).unwrap() {
            ExportItem::Store(s) => {
                assert!(lines.is_empty(), "store line {l} after an entry");
                specs.push(s);
            }
            ExportItem::Entry(e) => lines.push(e),
        }
    }
    assert_eq!(info.lines as usize, specs.len() + lines.len());
    assert_eq!(
        (info.stores as usize, info.entries as usize),
        (specs.len(), lines.len())
    );
    assert_eq!(info.bytes as usize, text.len());
    (specs, lines)
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
    let first: serde_json::Value = serde_json::from_slice(
        text.split(|b| *b == b'\n')
            .find(|l| !l.windows(7).any(|w| w == b"\"spec\":"))
            .unwrap(),
    )
    .unwrap();
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
    assert_eq!((info.written, info.stores_created), (12, 2));
    // Stores missing on the target are created with the exported specs.
    assert_eq!(b.store_spec("ints").unwrap().key_type, KeyType::Int);
    assert_eq!(b.store_spec("raw").unwrap().key_type, KeyType::Bytes);
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

#[test]
fn store_specs_travel_with_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let a = Db::open(dir.path().join("a")).unwrap();
    let people = StoreSpec::new("people")
        .value_type(ValueType::Json)
        .schema(json!({"type": "object", "required": ["name"]}))
        .history(3)
        .default_ttl(Duration::from_secs(3600));
    a.create_store(people.clone()).unwrap();
    a.create_store(StoreSpec::new("ids").key_type(KeyType::Int)).unwrap();
    a.create_store(StoreSpec::new("empty").value_type(ValueType::Int))
        .unwrap();
    a.put("people", "ann", json!({"name": "Ann"}).into()).unwrap();
    for k in [10, -2, 9] {
        a.put("ids", k.to_string(), json!(k).into()).unwrap();
    }
    let (specs, lines) = export_items(&a, &ExportOptions::default());
    assert_eq!(specs.len(), 4, "default, people, ids and the empty store: {specs:?}");
    assert_eq!(lines.len(), 4);
    let mut text = Vec::new();
    a.export(&mut text, &ExportOptions::default(), |_, _| {}).unwrap();

    let b = Db::open(dir.path().join("b")).unwrap();
    let info = b.import(text.as_slice(), OnConflict::Fail, |_, _| {}).unwrap();
    assert_eq!((info.written, info.stores_created), (4, 3));
    assert_eq!(b.store_spec("people").unwrap(), people);
    assert_eq!(b.store_spec("empty").unwrap().value_type, ValueType::Int);
    // The schema holds on the target; int keys sort as ints.
    assert!(b.put("people", "bob", json!({"age": 3}).into()).is_err());
    let keys: Vec<String> = b
        .list("ids", &Default::default())
        .unwrap()
        .items
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(keys, ["-2", "9", "10"]);
    // Importing again: the stores exist with the same specs, which is fine.
    let again = b.import(text.as_slice(), OnConflict::Overwrite, |_, _| {}).unwrap();
    assert_eq!((again.written, again.stores_created), (4, 0));

    // A store that exists with another spec stops the import before its entries.
    let c = Db::open(dir.path().join("c")).unwrap();
    c.create_store(StoreSpec::new("ids").key_type(KeyType::String)).unwrap();
    let e = c.import(text.as_slice(), OnConflict::Overwrite, |_, _| {}).unwrap_err();
    assert!(
        e.to_string().contains("different spec") && e.to_string().contains("\"ids\""),
        "{e}"
    );
    assert_eq!(c.count("ids", None).unwrap(), 0, "nothing written into it");

    // A store export carries just that store's line.
    let (specs, _) = export_items(
        &a,
        &ExportOptions {
            store: Some("ids".into()),
            ..Default::default()
        },
    );
    assert_eq!(specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["ids"]);
}

#[test]
fn malformed_store_lines_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for (line, want) in [
        (r#"{"store":"s","spec":{"key_type":"float"}}"#, "bad spec"),
        (r#"{"store":"s","spec":{"color":"red"}}"#, "unknown field"),
        (r#"{"store":"s","spec":{},"key":"k","value":1}"#, "takes no"),
        (r#"{"store":"s","key":"k"}"#, "needs a \"value\""),
        (r#"{"store":"s","value":1}"#, "needs a \"key\""),
    ] {
        let e = db
            .import(format!("\n{line}").as_bytes(), OnConflict::Overwrite, |_, _| {})
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2") && e.contains(want), "{line}: {e}");
    }
    assert!(db.store_spec("s").is_err(), "no store was created");
    // A null value is a value.
    let ok = db
        .import(
            r#"{"store":"default","key":"n","value":null}"#.as_bytes(),
            OnConflict::Overwrite,
            |_, _| {},
        )
        .unwrap();
    assert_eq!(ok.written, 1);
    assert_eq!(db.get("default", "n").unwrap().unwrap().value, json!(null).into());
}
