//! Bad input: each a clear, typed error, and nothing already stored changes.

use cairn_core::{Config, Db, Error, KeyType, Limits, ListOptions, Op, StoreSpec, Ttl, Value, ValueType};
use serde_json::json;

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_key_bytes: 16,
        max_value_bytes: 64,
        max_batch_ops: 3,
    };
    let db = Db::builder(dir.path())
        .config(Config {
            limits,
            ..Default::default()
        })
        .open()
        .unwrap();
    db.create_store(StoreSpec::new("ints").key_type(KeyType::Int).value_type(ValueType::Int))
        .unwrap();
    db.put("default", "keep", Value::Json(json!("original"))).unwrap();
    db.put("ints", "1", Value::Json(json!(1))).unwrap();
    let before = db.revision();

    let put = |store: &str, key: &str, v: serde_json::Value| db.put(store, key, Value::Json(v)).map(|_| ());
    let cases: Vec<(&str, Result<(), Error>, &str)> = vec![
        ("unknown store", put("nope", "k", json!(1)), "unknown_store"),
        (
            "oversize key",
            put("default", &"k".repeat(17), json!(1)),
            "key_too_large",
        ),
        (
            "oversize value",
            put("default", "keep", json!("v".repeat(100))),
            "value_too_large",
        ),
        ("empty key", put("default", "", json!(1)), "invalid_key"),
        ("non-int key", put("ints", "one", json!(1)), "invalid_key"),
        ("wrong value type", put("ints", "1", json!("x")), "invalid_value"),
        (
            "incr a string",
            db.incr("default", "keep", 1.into()).map(|_| ()),
            "not_a_number",
        ),
        (
            "batch too large",
            db.batch(
                vec![],
                (0..4)
                    .map(|i| Op::Put {
                        store: "default".into(),
                        key: format!("b{i}").into_bytes(),
                        value: Value::Json(json!(i)),
                        ttl: Ttl::Default,
                    })
                    .collect(),
            )
            .map(|_| ()),
            "batch_too_large",
        ),
        (
            "bad cursor",
            db.list(
                "default",
                &ListOptions {
                    cursor: Some("!!!".into()),
                    ..Default::default()
                },
            )
            .map(|_| ()),
            "invalid_cursor",
        ),
        (
            "prefix on int keys",
            db.list(
                "ints",
                &ListOptions {
                    prefix: Some(b"1".to_vec()),
                    ..Default::default()
                },
            )
            .map(|_| ()),
            "invalid_argument",
        ),
        (
            "bad store name",
            db.create_store(StoreSpec::new("no spaces")).map(|_| ()),
            "invalid_spec",
        ),
        (
            "schema on a non-json store",
            db.create_store(StoreSpec {
                schema: Some(json!({})),
                ..StoreSpec::new("s").value_type(ValueType::Int)
            })
            .map(|_| ()),
            "invalid_spec",
        ),
        (
            "schema that does not compile",
            db.create_store(StoreSpec::new("s2").schema(json!({"type": 5})))
                .map(|_| ()),
            "invalid_spec",
        ),
        ("bad content hash", db.get_content("xyz").map(|_| ()), "invalid_hash"),
    ];
    for (what, result, code) in cases {
        let err = result.expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
        assert!(!err.to_string().is_empty());
    }
    assert_eq!(db.revision(), before, "no bad input consumed a revision");
    assert_eq!(
        db.get("default", "keep").unwrap().unwrap().value,
        Value::Json(json!("original"))
    );
    assert_eq!(db.get("ints", "1").unwrap().unwrap().value, Value::Json(json!(1)));
    assert_eq!(db.count("default", None).unwrap(), 1);
    assert_eq!(db.stores().len(), 2);
}

#[test]
fn a_string_value_counts_its_own_bytes_not_its_json_escaping() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::default();
    cfg.limits.max_value_bytes = 64;
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    // 64 NUL characters: 64 bytes, 386 as escaped JSON.
    let nuls = "\u{0}".repeat(64);
    db.put("default", "nuls", Value::Json(json!(nuls))).unwrap();
    assert_eq!(
        db.get("default", "nuls").unwrap().unwrap().value,
        Value::Json(json!(nuls))
    );
    let e = db
        .put("default", "more", Value::Json(json!("\u{0}".repeat(65))))
        .unwrap_err();
    assert_eq!(e.code(), "value_too_large");
    assert!(e.to_string().contains("65 bytes"), "{e}");
    // Other JSON counts as its text.
    let e = db.put("default", "arr", Value::Json(json!(vec![1; 40]))).unwrap_err();
    assert!(e.to_string().contains("81 bytes"), "{e}");
}

#[test]
fn messages_name_what_differs_or_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(StoreSpec::new("s").key_type(KeyType::Int)).unwrap();
    let err = db
        .create_store(StoreSpec {
            history: 5,
            ..StoreSpec::new("s").key_type(KeyType::Uuid)
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("key_type: int here, uuid asked") && msg.contains("history: 1 here, 5 asked"),
        "{msg}"
    );

    db.create_store(StoreSpec::new("ints").value_type(ValueType::Int))
        .unwrap();
    let err = db
        .put("ints", "k", Value::Json(json!(9_223_372_036_854_775_808u64)))
        .unwrap_err();
    assert!(err.to_string().contains("out of range for type int"), "{err}");

    for (spec, got) in [
        (json!({"name": "t", "default_ttl": -1}), "got -1"),
        (json!({"name": "t", "default_ttl": "5s"}), "got \"5s\""),
    ] {
        let err = serde_json::from_value::<StoreSpec>(spec).unwrap_err().to_string();
        assert!(
            err.contains("default_ttl must be a positive number of seconds") && err.contains(got),
            "{err}"
        );
    }
}

#[test]
fn a_default_ttl_past_317_years_is_refused_not_wrapped() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let spec: StoreSpec =
        serde_json::from_value(json!({"name": "wrap", "default_ttl": 18_446_744_073_709_552u64})).unwrap();
    let err = db.create_store(spec).unwrap_err();
    assert_eq!(err.code(), "invalid_spec", "{err}");
    assert!(err.to_string().contains("at most 10000000000 seconds"), "{err}");
    let spec: StoreSpec = serde_json::from_value(json!({"name": "long", "default_ttl": 9_999_999_999u64})).unwrap();
    db.create_store(spec).unwrap();
    let r = db.put("long", "k", Value::Json(json!(1))).unwrap();
    assert!(r.success);
    let e = db.get("long", "k").unwrap().expect("a long TTL keeps the key");
    assert!(e.expires_at.unwrap() > 9_999_999_999_000, "{:?}", e.expires_at);
}

#[test]
fn incr_on_integers_past_i64_stays_exact_or_overflows() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "big", Value::Json(json!(9_223_372_036_854_775_808u64)))
        .unwrap();
    let r = db
        .incr("default", "big", json!(-1).as_number().unwrap().clone())
        .unwrap();
    assert_eq!(r.value, serde_json::Number::from(i64::MAX));
    db.put("default", "max", Value::Json(json!(u64::MAX))).unwrap();
    let r = db.incr("default", "max", serde_json::Number::from(0)).unwrap();
    assert_eq!(r.value, serde_json::Number::from(u64::MAX), "no float in between");
    let err = db.incr("default", "max", serde_json::Number::from(1)).unwrap_err();
    assert_eq!(err.code(), "overflow", "{err}");
    assert_eq!(
        db.get("default", "max").unwrap().unwrap().value,
        Value::Json(json!(u64::MAX))
    );
}

#[test]
fn a_value_nested_past_the_limit_is_refused_and_the_store_stays_readable() {
    let dir = tempfile::tempdir().unwrap();
    let db = cairn_core::Db::open(dir.path()).unwrap();
    let nest = |levels: usize| {
        let mut v = serde_json::json!(1);
        for _ in 0..levels {
            v = serde_json::json!({ "a": v });
        }
        cairn_core::Value::Json(v)
    };
    let err = db
        .put("default", "deep", nest(cairn_core::MAX_VALUE_DEPTH + 30))
        .unwrap_err();
    assert_eq!(err.code(), "invalid_value", "{err}");
    assert!(err.to_string().contains("levels deep"), "{err}");
    assert!(db.get("default", "deep").unwrap().is_none());
    // At the limit it is stored and reads back, also after a reopen.
    db.put("default", "ok", nest(cairn_core::MAX_VALUE_DEPTH)).unwrap();
    drop(db);
    let db = cairn_core::Db::open(dir.path()).unwrap();
    assert_eq!(
        db.get("default", "ok").unwrap().unwrap().value,
        nest(cairn_core::MAX_VALUE_DEPTH)
    );
    assert_eq!(
        db.list("default", &cairn_core::ListOptions::default())
            .unwrap()
            .items
            .len(),
        1
    );
}

#[test]
fn a_request_ttl_of_zero_or_past_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = cairn_core::Db::open(dir.path()).unwrap();
    let put = |ttl: std::time::Duration| {
        let o = cairn_core::PutOptions {
            ttl: Some(ttl),
            ..cairn_core::PutOptions::default()
        };
        db.put_with("default", "k", cairn_core::Value::Json(1.into()), o)
    };
    for ttl in [
        std::time::Duration::ZERO,
        std::time::Duration::from_secs(cairn_core::MAX_TTL_SECS + 1),
        // Past u64 milliseconds: it wrapped to about a second.
        std::time::Duration::new(18_446_744_073_709_552, 616_000_000),
    ] {
        let err = put(ttl).unwrap_err();
        assert_eq!(err.code(), "invalid_argument", "{ttl:?}: {err}");
    }
    assert!(db.get("default", "k").unwrap().is_none());
    put(std::time::Duration::from_secs(cairn_core::MAX_TTL_SECS)).unwrap();
    let e = db.get("default", "k").unwrap().unwrap();
    assert!(e.expires_at.unwrap() > e.updated_at + 1000 * 1_000_000_000);
}
