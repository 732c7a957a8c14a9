//! A list or count runs on one snapshot: a batch shows whole or not at
//! all, never half of it, however a writer interleaves with the scan.

use cairn_core::{Db, Durability, ListOptions, Op, Ttl, Value};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};

/// One batch putting `i` under each of `keys` in the default store.
fn put_all(db: &Db, keys: impl IntoIterator<Item = impl AsRef<str>>, i: u64) {
    let ops = keys
        .into_iter()
        .map(|k| Op::Put {
            store: "default".into(),
            key: k.as_ref().as_bytes().to_vec(),
            value: Value::Json(json!(i)),
            ttl: Ttl::Default,
        })
        .collect();
    db.batch(vec![], ops).unwrap();
}

#[test]
fn lists_and_counts_never_see_half_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path()).durability(Durability::Relaxed).open().unwrap();
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    let batch = |i: u64, with_h: bool| put_all(&db, keys.iter().filter(|k| with_h || **k != "h"), i);
    batch(0, false);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 1..=3000u64 {
                // Odd batches also write h, even ones delete it: a count
                // that saw half a batch would read 7 or 8 at the wrong time.
                batch(i, i % 2 == 1);
                if i % 2 == 0 {
                    db.delete("default", "h").unwrap();
                }
            }
            done.store(true, Ordering::Release);
        });
        let mut lists = 0;
        while !done.load(Ordering::Acquire) {
            let page = db.list("default", &ListOptions::default()).unwrap();
            let values: Vec<_> = page
                .items
                .iter()
                .filter(|e| e.key.to_string() != "h")
                .map(|e| e.value.to_json())
                .collect();
            assert_eq!(values.len(), 7);
            assert!(values.iter().all(|v| *v == values[0]), "half a batch: {values:?}");
            let n = db.count("default", None).unwrap();
            assert!(n == 7 || n == 8, "{n}");
            lists += 1;
        }
        assert!(lists > 10, "the reader ran only {lists} times");
    });
}

/// `get_many` (Redis MGET) sees each batch whole, through the cache and
/// without one (a cache of 0 entries reads storage every time).
#[test]
fn get_many_never_sees_half_a_batch() {
    for cache_entries in [100_000, 0] {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::builder(dir.path())
            .durability(Durability::Relaxed)
            .cache_entries(cache_entries)
            .open()
            .unwrap();
        let keys: Vec<String> = (0..16).map(|i| format!("k{i}")).collect();
        let batch = |i: u64| put_all(&db, &keys, i);
        batch(0);
        let done = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                for i in 1..=5000u64 {
                    batch(i);
                }
                done.store(true, Ordering::Release);
            });
            let mut reads = 0;
            while !done.load(Ordering::Acquire) {
                let got = db.get_many("default", &keys).unwrap();
                let values: Vec<_> = got
                    .iter()
                    .map(|v| v.as_ref().unwrap().as_ref().unwrap().to_json())
                    .collect();
                assert!(values.iter().all(|v| *v == values[0]), "half a batch: {values:?}");
                reads += 1;
            }
            assert!(reads > 10, "the reader ran only {reads} times");
        });
    }
}

#[test]
fn get_many_answers_each_key_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(cairn_core::StoreSpec::new("nums").key_type(cairn_core::KeyType::Int))
        .unwrap();
    db.put("nums", "7", Value::Json(json!("seven"))).unwrap();
    db.put("default", "gone", Value::Json(json!(1))).unwrap();
    db.delete("default", "gone").unwrap();
    let got = db.get_many("nums", &["7", "not-a-number", "8"]).unwrap();
    assert_eq!(got[0].as_ref().unwrap().as_ref().unwrap().to_json(), json!("seven"));
    let err = got[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("nums"), "{err}");
    assert!(got[2].as_ref().unwrap().is_none());
    assert!(
        db.get_many("default", &["gone"]).unwrap()[0]
            .as_ref()
            .unwrap()
            .is_none()
    );
    let err = db.get_many("nope", &["a"]).unwrap_err().to_string();
    assert!(err.contains("nope"), "{err}");
}
