//! open → write → drop → reopen → assert: data, specs and revisions survive.

use cairn_core::{Db, Error, KeyType, StoreSpec, Value, ValueType};
use serde_json::json;

#[test]
fn data_specs_and_revisions_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let last;
    {
        let db = Db::open(dir.path()).unwrap();
        db.create_store(StoreSpec::new("n").key_type(KeyType::Int).value_type(ValueType::Float))
            .unwrap();
        db.put("n", "-3", Value::Json(json!(1.5))).unwrap();
        db.put("default", "bytes", Value::Bytes(vec![0, 1, 255])).unwrap();
        last = db
            .put("default", "j", Value::Json(json!({"x": [1]})))
            .unwrap()
            .revision
            .unwrap();
    }
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.revision(), last);
    assert_eq!(db.store_spec("n").unwrap().value_type, ValueType::Float);
    assert_eq!(db.get("n", "-3").unwrap().unwrap().value, Value::Json(json!(1.5)));
    assert_eq!(
        db.get("default", "bytes").unwrap().unwrap().value,
        Value::Bytes(vec![0, 1, 255])
    );
    let next = db.put("default", "j", Value::Json(json!(2))).unwrap().revision.unwrap();
    assert_eq!(next, last + 1, "revisions continue, never reused");
    assert!(
        db.put("n", "1", Value::Json(json!("x"))).is_err(),
        "typed spec still enforced"
    );
}

#[test]
fn a_second_open_of_the_same_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let _db = Db::open(dir.path()).unwrap();
    let err = Db::open(dir.path()).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(err.to_string().contains("locked"));
}

#[test]
fn a_live_subscription_keeps_the_directory_in_use_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let db = cairn_core::Db::open(dir.path()).unwrap();
    let sub = db.subscribe(cairn_core::Filter::default(), None).unwrap();
    drop(db);
    let err = cairn_core::Db::open(dir.path()).unwrap_err();
    assert_eq!(err.code(), "locked", "{err}");
    assert!(err.to_string().contains("Subscription"), "{err}");
    drop(sub);
    let db = cairn_core::Db::open(dir.path()).unwrap();
    db.put("default", "k", cairn_core::Value::Json(1.into())).unwrap();
}

#[test]
fn close_shuts_down_now_and_other_clones_can_only_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "k", cairn_core::Value::from(1)).unwrap();
    let other = db.clone();
    db.close().unwrap();
    assert!(matches!(
        other.put("default", "k2", cairn_core::Value::from(2)),
        Err(cairn_core::Error::Closed)
    ));
    assert!(other.get("default", "k").unwrap().is_some(), "reads go on");
    drop(other);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(
        db.get("default", "k").unwrap().unwrap().value,
        cairn_core::Value::from(1)
    );
    assert!(db.get("default", "k2").unwrap().is_none());
    db.close().unwrap();
}
