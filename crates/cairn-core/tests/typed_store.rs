//! `TypedStore<K, V>`: serde values, compare-and-set `update` under
//! contention, expiry kept by `update`, type mismatches reported as such.

use cairn_core::{Db, PutOptions, StoreSpec, TypedStore, Value};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    name: String,
    visits: u64,
}

#[test]
fn update_under_contention_applies_every_change_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let users: TypedStore<String, User> = TypedStore::open(&db, "users").unwrap();
    let key = "ann".to_string();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..50 {
                    users
                        .update(&key, |old| {
                            let mut u = old.unwrap_or(User {
                                name: "ann".into(),
                                visits: 0,
                            });
                            u.visits += 1;
                            u
                        })
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(users.get(&key).unwrap().unwrap().visits, 400);
}

#[test]
fn update_keeps_the_keys_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(StoreSpec::new("counts").default_ttl(Duration::from_secs(60)))
        .unwrap();
    let counts: TypedStore<String, i64> = TypedStore::open(&db, "counts").unwrap();
    let key = "k".to_string();
    let opts = PutOptions {
        ttl: Some(Duration::from_secs(5)),
        ..PutOptions::default()
    };
    db.put_with("counts", "k", Value::Json(1.into()), opts).unwrap();
    let before = db.get("counts", "k").unwrap().unwrap().expires_at.unwrap();
    assert_eq!(counts.update(&key, |v| v.unwrap_or(0) + 1).unwrap(), 2);
    let after = db.get("counts", "k").unwrap().unwrap().expires_at;
    assert_eq!(after, Some(before), "the 5 s expiry, not the store's 60 s");
    // A key that did not exist gets the store's default TTL.
    counts.update(&"new".to_string(), |v| v.unwrap_or(7)).unwrap();
    assert!(db.get("counts", "new").unwrap().unwrap().expires_at.is_some());
}

#[test]
fn a_stored_value_of_another_shape_is_a_type_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let users: TypedStore<String, User> = TypedStore::open(&db, "users").unwrap();
    db.put("users", "bob", Value::Json(serde_json::json!({"nom": "Bob"})))
        .unwrap();
    let err = users.get(&"bob".to_string()).unwrap_err();
    assert_eq!(err.code(), "invalid_value", "{err}");
    assert!(err.is_client_error());
    assert!(
        err.to_string().contains("bob") && err.to_string().contains("User"),
        "{err}"
    );
}
