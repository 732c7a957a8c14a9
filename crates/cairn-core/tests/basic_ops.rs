//! The operations of DESIGN.md "Operations" against one database.

use cairn_core::{Check, Cond, Db, Error, KeyType, ListOptions, Op, PutOptions, StoreSpec, Ttl, Value, ValueType};
use serde_json::json;

fn j(v: serde_json::Value) -> Value {
    Value::Json(v)
}

#[test]
fn put_get_delete_report_what_happened() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let r1 = db.put("default", "k", j(json!({"a": 1}))).unwrap();
    assert!(r1.success && r1.created);
    assert_eq!(r1.key, "k");
    let r2 = db.put("default", "k", j(json!({"a": 2}))).unwrap();
    assert!(r2.success && !r2.created);
    assert!(r2.revision > r1.revision);
    let e = db.get("default", "k").unwrap().unwrap();
    assert_eq!(e.value, j(json!({"a": 2})));
    assert_eq!(e.revision, r2.revision.unwrap());
    assert_eq!(e.created_revision, r1.revision.unwrap());
    assert_eq!(e.version, 2);
    assert!(e.updated_at > 1_600_000_000_000);
    assert!(db.contains("default", "k").unwrap());
    let d = db.delete("default", "k").unwrap();
    assert!(d.success);
    assert_eq!(db.get("default", "k").unwrap(), None);
    let d2 = db.delete("default", "k").unwrap();
    assert!(!d2.success, "deleting a missing key reports success=false");
    assert_eq!(d2.revision, d.revision, "a no-op consumes no revision");
    assert_eq!(db.get_or("default", "k", j(json!(7))).unwrap(), j(json!(7)));
}

#[test]
fn conditions_fail_with_the_current_revision() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let r = db.put("default", "c", j(json!(1))).unwrap();
    let rev = r.revision.unwrap();
    let stale = PutOptions {
        if_revision: Some(rev - 1),
        ..Default::default()
    };
    let f = db.put_with("default", "c", j(json!(2)), stale).unwrap();
    assert!(!f.success);
    assert_eq!(f.revision, Some(rev));
    let ok = db.put_with(
        "default",
        "c",
        j(json!(2)),
        PutOptions {
            if_revision: Some(rev),
            ..Default::default()
        },
    );
    assert!(ok.unwrap().success);
    let absent = db.put_with(
        "default",
        "c",
        j(json!(3)),
        PutOptions {
            if_absent: true,
            ..Default::default()
        },
    );
    assert!(!absent.unwrap().success);
    let present = db.put_with(
        "default",
        "new",
        j(json!(3)),
        PutOptions {
            if_present: true,
            ..Default::default()
        },
    );
    let present = present.unwrap();
    assert!(!present.success);
    assert_eq!(present.revision, None);
    assert_eq!(db.get("default", "c").unwrap().unwrap().value, j(json!(2)));
    assert!(!db.delete_if("default", "c", Some(1)).unwrap().success);
    assert!(db.contains("default", "c").unwrap());
}

#[test]
fn incr_counts_and_refuses_non_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.incr("default", "n", 5.into()).unwrap().value, 5.into());
    assert_eq!(db.incr("default", "n", (-7).into()).unwrap().value, (-2).into());
    let f = db
        .incr("default", "n", serde_json::Number::from_f64(0.5).unwrap())
        .unwrap();
    assert_eq!(f.value.as_f64(), Some(-1.5));
    db.put("default", "s", j(json!("text"))).unwrap();
    assert!(matches!(
        db.incr("default", "s", 1.into()),
        Err(Error::NotANumber { .. })
    ));
    // Past i64 an integer goes on as u64 (JSON values may be either), past
    // u64 it overflows and nothing changes.
    db.put("default", "big", j(json!(i64::MAX))).unwrap();
    let r = db.incr("default", "big", 1.into()).unwrap();
    assert_eq!(r.value, serde_json::Number::from(i64::MAX as u64 + 1));
    db.put("default", "big", j(json!(u64::MAX))).unwrap();
    assert!(matches!(
        db.incr("default", "big", 1.into()),
        Err(Error::Overflow { .. })
    ));
    assert_eq!(db.get("default", "big").unwrap().unwrap().value, j(json!(u64::MAX)));
}

#[test]
fn batch_is_all_or_nothing_and_names_the_failed_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let r = db.put("default", "a", j(json!(1))).unwrap().revision.unwrap();
    let ops = || {
        vec![
            Op::Put {
                store: "default".into(),
                key: b"b".to_vec(),
                value: j(json!(2)),
                ttl: Ttl::Default,
            },
            Op::Delete {
                store: "default".into(),
                key: b"a".to_vec(),
            },
            Op::Incr {
                store: "default".into(),
                key: b"n".to_vec(),
                by: 3.into(),
                integer: false,
                text: false,
            },
        ]
    };
    let checks = vec![
        Check {
            store: "default".into(),
            key: b"a".to_vec(),
            cond: Cond::Revision(r),
        },
        Check {
            store: "default".into(),
            key: b"b".to_vec(),
            cond: Cond::Present,
        },
    ];
    let failed = db.batch(checks, ops()).unwrap();
    assert!(!failed.success);
    assert_eq!(failed.failed_check, Some(1));
    assert!(db.get("default", "b").unwrap().is_none());
    let checks = vec![
        Check {
            store: "default".into(),
            key: b"a".to_vec(),
            cond: Cond::Revision(r),
        },
        Check {
            store: "default".into(),
            key: b"b".to_vec(),
            cond: Cond::Absent,
        },
    ];
    let ok = db.batch(checks, ops()).unwrap();
    assert!(ok.success);
    for k in ["b", "n"] {
        assert_eq!(
            db.get("default", k).unwrap().unwrap().revision,
            ok.revision,
            "one revision per batch"
        );
    }
    assert!(db.get("default", "a").unwrap().is_none());
    // An op that fails validation leaves everything as it was.
    let bad = vec![
        Op::Put {
            store: "default".into(),
            key: b"x".to_vec(),
            value: j(json!(1)),
            ttl: Ttl::Default,
        },
        Op::Incr {
            store: "default".into(),
            key: b"b".to_vec(),
            by: 1.into(),
            integer: false,
            text: false,
        },
    ];
    db.put("default", "b", j(json!("not a number"))).unwrap();
    assert!(db.batch(vec![], bad).is_err());
    assert!(db.get("default", "x").unwrap().is_none());
}

#[test]
fn list_pages_in_key_order_with_cursors() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    for i in 0..25 {
        db.put("default", format!("user:{i:02}"), j(json!(i))).unwrap();
    }
    db.put("default", "zzz", j(json!("other"))).unwrap();
    let mut seen = Vec::new();
    let mut o = ListOptions {
        prefix: Some(b"user:".to_vec()),
        limit: Some(10),
        ..Default::default()
    };
    loop {
        let page = db.list("default", &o).unwrap();
        seen.extend(page.items.iter().map(|e| e.key.to_string()));
        match page.next_cursor {
            Some(c) => o.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("user:{i:02}")).collect();
    assert_eq!(seen, want);
    let rev = db
        .list(
            "default",
            &ListOptions {
                reverse: true,
                limit: Some(3),
                ..Default::default()
            },
        )
        .unwrap();
    let keys: Vec<String> = rev.items.iter().map(|e| e.key.to_string()).collect();
    assert_eq!(keys, ["zzz", "user:24", "user:23"]);
    let rest = ListOptions {
        reverse: true,
        limit: Some(2),
        cursor: rev.next_cursor,
        ..Default::default()
    };
    let keys: Vec<String> = db
        .list("default", &rest)
        .unwrap()
        .items
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(keys, ["user:22", "user:21"]);
    let range = ListOptions {
        start: Some(b"user:05".to_vec()),
        end: Some(b"user:08".to_vec()),
        ..Default::default()
    };
    assert_eq!(db.list("default", &range).unwrap().items.len(), 3);
    assert_eq!(db.count("default", Some(b"user:")).unwrap(), 25);
    assert_eq!(db.count("default", None).unwrap(), 26);
    let keys_only = ListOptions {
        keys_only: true,
        limit: Some(1),
        ..Default::default()
    };
    assert_eq!(db.list("default", &keys_only).unwrap().items[0].value, j(json!(null)));
    assert_eq!(db.clear("default").unwrap(), 26);
    assert_eq!(db.count("default", None).unwrap(), 0);
}

#[test]
fn typed_stores_sort_and_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(StoreSpec::new("ints").key_type(KeyType::Int).value_type(ValueType::Int))
        .unwrap();
    for k in [10, -5, 3, -100, 0] {
        db.put("ints", k.to_string(), j(json!(k * 2))).unwrap();
    }
    let keys: Vec<String> = db
        .list("ints", &ListOptions::default())
        .unwrap()
        .items
        .iter()
        .map(|e| e.key.to_string())
        .collect();
    assert_eq!(keys, ["-100", "-5", "0", "3", "10"]);
    let err = db.put("ints", "1", j(json!("one"))).unwrap_err();
    assert!(
        err.to_string().contains("ints") && err.to_string().contains("int"),
        "{err}"
    );
    assert!(matches!(
        db.put("ints", "one", j(json!(1))),
        Err(Error::InvalidKey { .. })
    ));
    let schema = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
    db.create_store(StoreSpec::new("users").key_type(KeyType::Uuid).schema(schema))
        .unwrap();
    let id = "67e55044-10b1-426f-9247-bb680e5fe0c8";
    db.put("users", id, j(json!({"name": "Ada"}))).unwrap();
    let err = db.put("users", id, j(json!({"age": 3}))).unwrap_err();
    assert!(
        matches!(err, Error::InvalidValue { .. }) && err.to_string().contains("schema"),
        "{err}"
    );
    assert_eq!(db.get("users", id).unwrap().unwrap().value, j(json!({"name": "Ada"})));
    // Same spec again is fine, a different one is refused.
    assert!(
        !db.create_store(StoreSpec::new("ints").key_type(KeyType::Int).value_type(ValueType::Int))
            .unwrap()
    );
    assert!(matches!(
        db.create_store(StoreSpec::new("ints")),
        Err(Error::StoreExists { .. })
    ));
    assert!(db.drop_store("ints").unwrap());
    assert!(matches!(db.get("ints", "1"), Err(Error::UnknownStore { .. })));
    assert!(db.drop_store("default").is_err());
}

#[test]
fn history_keeps_the_last_n_versions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(StoreSpec::new("h").history(3)).unwrap();
    for i in 0..5 {
        db.put("h", "k", j(json!(i))).unwrap();
    }
    let versions: Vec<Value> = db.history("h", "k").unwrap().into_iter().map(|e| e.value).collect();
    assert_eq!(versions, vec![j(json!(4)), j(json!(3)), j(json!(2))]);
    // Several writes of one key in one batch keep the depth too.
    let ops = (10..14)
        .map(|i| Op::Put {
            store: "h".into(),
            key: b"k".to_vec(),
            value: j(json!(i)),
            ttl: Ttl::Default,
        })
        .collect();
    db.batch(vec![], ops).unwrap();
    assert_eq!(db.history("h", "k").unwrap().len(), 3);
    // A store with history 1 reports just the current entry.
    db.put("default", "k", j(json!(1))).unwrap();
    db.put("default", "k", j(json!(2))).unwrap();
    assert_eq!(db.history("default", "k").unwrap().len(), 1);
}

#[test]
fn ttl_hides_keys_and_the_collector_removes_them() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cairn_core::Config {
        expiry_interval_ms: 20,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let opts = PutOptions {
        ttl: Some(std::time::Duration::from_millis(50)),
        ..Default::default()
    };
    db.put_with("default", "t", j(json!(1)), opts).unwrap();
    db.put("default", "keep", j(json!(1))).unwrap();
    let e = db.get("default", "t").unwrap().unwrap();
    assert!(e.expires_at.is_some());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while db.stats().expired.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(std::time::Instant::now() < deadline, "collector never ran");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(db.get("default", "t").unwrap().is_none());
    assert_eq!(
        db.get_value("default", "t").unwrap(),
        None,
        "the value-only path hides expired keys too"
    );
    assert_eq!(db.count("default", None).unwrap(), 1);
}

#[test]
fn get_value_answers_like_get_without_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get_value("default", "v").unwrap(), None);
    db.put("default", "v", j(json!({"n": 1}))).unwrap();
    // Twice: once from storage or the writer's cache entry, once cached.
    for _ in 0..2 {
        assert_eq!(
            db.get_value("default", "v").unwrap().as_deref(),
            Some(&j(json!({"n": 1})))
        );
    }
    db.put("default", "v", j(json!({"n": 2}))).unwrap();
    assert_eq!(
        db.get_value("default", "v").unwrap().as_deref(),
        Some(&j(json!({"n": 2})))
    );
    assert_eq!(
        db.with_value("default", "v", Value::to_raw).unwrap(),
        Some(b"{\"n\":2}".to_vec())
    );
    db.delete("default", "v").unwrap();
    assert_eq!(db.get_value("default", "v").unwrap(), None);
    assert_eq!(db.with_value("default", "v", Value::to_raw).unwrap(), None);
    assert!(matches!(db.get_value("nope", "v"), Err(Error::UnknownStore { .. })));
}

#[test]
fn a_get_inside_a_batch_sees_the_ops_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "c", j(json!(5))).unwrap();
    let get = || Op::Get {
        store: "default".into(),
        key: b"c".to_vec(),
    };
    let ops = vec![
        get(),
        Op::Incr {
            store: "default".into(),
            key: b"c".to_vec(),
            by: 1.into(),
            integer: true,
            text: false,
        },
        get(),
        Op::Delete {
            store: "default".into(),
            key: b"c".to_vec(),
        },
        get(),
    ];
    let before = db.revision();
    let out = db.batch(Vec::new(), ops).unwrap();
    assert!(out.success);
    let seen: Vec<Option<Value>> = out
        .ops
        .iter()
        .filter_map(|o| match o {
            cairn_core::OpOutcome::Get { entry } => Some(entry.as_ref().map(|e| e.value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(seen, [Some(j(json!(5))), Some(j(json!(6))), None]);
    assert_eq!(out.revision, before + 1, "one revision for the writes; reads take none");
    assert!(db.get("default", "c").unwrap().is_none());

    // Only reads: nothing written, no revision used.
    let out = db.batch(Vec::new(), vec![get()]).unwrap();
    assert!(out.success);
    assert_eq!(out.revision, before + 1);
    assert!(matches!(&out.ops[..], [cairn_core::OpOutcome::Get { entry: None }]));
}
