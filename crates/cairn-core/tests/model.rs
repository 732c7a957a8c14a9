//! Random command sequences, with reopens in between, checked against an
//! in-memory model (a BTreeMap plus the revision counter).

use cairn_core::{Db, ListOptions, PutOptions, Value};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

#[derive(Debug, Clone)]
enum Step {
    Put(u8, i64),
    PutIfRevision(u8, i64, bool),
    PutIfAbsent(u8, i64),
    Delete(u8),
    Incr(u8, i64),
    Clear,
    Reopen,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..12, any::<i32>()).prop_map(|(k, v)| Step::Put(k, i64::from(v))),
        2 => (0u8..12, any::<i32>(), any::<bool>()).prop_map(|(k, v, b)| Step::PutIfRevision(k, i64::from(v), b)),
        2 => (0u8..12, any::<i32>()).prop_map(|(k, v)| Step::PutIfAbsent(k, i64::from(v))),
        3 => (0u8..12).prop_map(Step::Delete),
        3 => (0u8..12, -1000i64..1000).prop_map(|(k, v)| Step::Incr(k, v)),
        1 => Just(Step::Clear),
        1 => Just(Step::Reopen),
    ]
}

#[derive(Default)]
struct Model {
    map: BTreeMap<String, (i64, u64)>,
    revision: u64,
}

fn key(k: u8) -> String {
    format!("k{k:02}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(steps in proptest::collection::vec(step(), 1..60)) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = cairn_core::Config { durability: cairn_core::Durability::Relaxed, ..Default::default() };
        let open = || Db::builder(dir.path()).config(cfg.clone()).open().unwrap();
        let mut db = open();
        let mut m = Model { revision: db.revision(), ..Default::default() };
        for s in steps {
            match s {
                Step::Put(k, v) => {
                    let r = db.put("default", key(k), Value::Json(json!(v))).unwrap();
                    m.revision += 1;
                    prop_assert_eq!(r.created, !m.map.contains_key(&key(k)));
                    m.map.insert(key(k), (v, m.revision));
                }
                Step::PutIfRevision(k, v, right) => {
                    let cur = m.map.get(&key(k)).map(|e| e.1);
                    let guess = if right { cur.unwrap_or(1) } else { cur.unwrap_or(1) + 1000 };
                    let o = PutOptions { if_revision: Some(guess), ..Default::default() };
                    let r = db.put_with("default", key(k), Value::Json(json!(v)), o).unwrap();
                    let should = cur == Some(guess);
                    prop_assert_eq!(r.success, should);
                    if should {
                        m.revision += 1;
                        m.map.insert(key(k), (v, m.revision));
                    } else {
                        prop_assert_eq!(r.revision, cur);
                    }
                }
                Step::PutIfAbsent(k, v) => {
                    let o = PutOptions { if_absent: true, ..Default::default() };
                    let r = db.put_with("default", key(k), Value::Json(json!(v)), o).unwrap();
                    prop_assert_eq!(r.success, !m.map.contains_key(&key(k)));
                    if r.success {
                        m.revision += 1;
                        m.map.insert(key(k), (v, m.revision));
                    }
                }
                Step::Delete(k) => {
                    let r = db.delete("default", key(k)).unwrap();
                    let existed = m.map.remove(&key(k)).is_some();
                    prop_assert_eq!(r.success, existed);
                    if existed {
                        m.revision += 1;
                    }
                }
                Step::Incr(k, by) => {
                    let r = db.incr("default", key(k), by.into()).unwrap();
                    let v = m.map.get(&key(k)).map_or(0, |e| e.0) + by;
                    m.revision += 1;
                    prop_assert_eq!(r.value.as_i64(), Some(v));
                    m.map.insert(key(k), (v, m.revision));
                }
                Step::Clear => {
                    let n = db.clear("default").unwrap();
                    prop_assert_eq!(n as usize, m.map.len());
                    if !m.map.is_empty() {
                        m.revision += 1;
                    }
                    m.map.clear();
                }
                Step::Reopen => {
                    drop(db);
                    db = open();
                }
            }
            prop_assert_eq!(db.revision(), m.revision);
        }
        let page = db.list("default", &ListOptions { limit: Some(1000), ..Default::default() }).unwrap();
        let got: Vec<(String, i64, u64)> = page
            .items
            .iter()
            .map(|e| (e.key.to_string(), e.value_i64(), e.revision))
            .collect();
        let want: Vec<(String, i64, u64)> = m.map.iter().map(|(k, (v, r))| (k.clone(), *v, *r)).collect();
        prop_assert_eq!(got, want);
    }
}

trait ValueI64 {
    fn value_i64(&self) -> i64;
}

impl ValueI64 for cairn_core::Entry {
    fn value_i64(&self) -> i64 {
        match &self.value {
            Value::Json(v) => v.as_i64().unwrap(),
            Value::Bytes(_) => panic!("bytes"),
        }
    }
}
