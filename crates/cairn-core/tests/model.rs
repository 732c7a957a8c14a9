//! Random command sequences, with reopens in between, checked against an
//! in-memory model (a BTreeMap, the revision counter and the change events
//! every step must produce). Bursts submit several writes at once so they
//! share commits, and so change-log chunks that hold many revisions.

use cairn_core::{Applied, Db, EventKind, Filter, ListOptions, OpOutcome, PutOptions, Value};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::future::Future;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Clone)]
enum Step {
    Put(u8, i64),
    /// A put with a TTL far enough away not to pass during the test.
    PutTtl(u8, i64),
    PutIfRevision(u8, i64, bool),
    PutIfAbsent(u8, i64),
    Delete(u8),
    Incr(u8, i64),
    Clear,
    Reopen,
    /// Puts submitted together (async), applied in submission order.
    Burst(Vec<(u8, i64)>),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..12, any::<i32>()).prop_map(|(k, v)| Step::Put(k, i64::from(v))),
        2 => (0u8..12, any::<i32>()).prop_map(|(k, v)| Step::PutTtl(k, i64::from(v))),
        2 => (0u8..12, any::<i32>(), any::<bool>()).prop_map(|(k, v, b)| Step::PutIfRevision(k, i64::from(v), b)),
        2 => (0u8..12, any::<i32>()).prop_map(|(k, v)| Step::PutIfAbsent(k, i64::from(v))),
        3 => (0u8..12).prop_map(Step::Delete),
        3 => (0u8..12, -1000i64..1000).prop_map(|(k, v)| Step::Incr(k, v)),
        1 => Just(Step::Clear),
        1 => Just(Step::Reopen),
        2 => proptest::collection::vec((0u8..12, any::<i32>()).prop_map(|(k, v)| (k, i64::from(v))), 2..40).prop_map(Step::Burst),
    ]
}

/// `(revision, key, kind, new value)` of one change event.
type Ev = (u64, Option<String>, EventKind, Option<i64>);

#[derive(Default)]
struct Model {
    map: BTreeMap<String, (i64, u64)>,
    /// Keys of `map` that have a TTL.
    ttl: std::collections::BTreeSet<String>,
    revision: u64,
    events: Vec<Ev>,
}

impl Model {
    /// A key written with `v` at the next revision.
    fn write(&mut self, k: String, v: i64) {
        self.revision += 1;
        let kind = if self.map.contains_key(&k) {
            EventKind::Updated
        } else {
            EventKind::Created
        };
        self.events.push((self.revision, Some(k.clone()), kind, Some(v)));
        self.map.insert(k, (v, self.revision));
    }
}

/// Submits every put before waiting for any, so the writer groups them.
fn burst(db: &Db, puts: &[(u8, i64)]) -> Vec<Applied> {
    let mut futs: Vec<_> = puts
        .iter()
        .map(|&(k, v)| {
            let (cmd, _) = db
                .put_command(
                    "default",
                    key(k).as_bytes(),
                    Value::Json(json!(v)),
                    PutOptions::default(),
                )
                .unwrap();
            Box::pin(db.execute_async(cmd))
        })
        .collect();
    // The first poll of each sends its command to the writer, in order.
    let mut cx = Context::from_waker(Waker::noop());
    let mut done: Vec<Option<Applied>> = futs
        .iter_mut()
        .map(|f| match f.as_mut().poll(&mut cx) {
            Poll::Ready(r) => Some(r.unwrap()),
            Poll::Pending => None,
        })
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for (f, slot) in futs.into_iter().zip(&mut done) {
        if slot.is_none() {
            *slot = Some(rt.block_on(f).unwrap());
        }
    }
    done.into_iter().map(Option::unwrap).collect()
}

/// Every event from `from` to the current revision, read back in pages.
fn replay(db: &Db, from: u64) -> Vec<Ev> {
    let mut sub = db.subscribe(Filter::default(), Some(from)).unwrap();
    let mut out = Vec::new();
    while sub.next_revision() <= db.revision() {
        for e in sub.poll(5).unwrap() {
            let v = e.new_value.as_deref().map(|v| match v {
                Value::Json(j) => j.as_i64().unwrap(),
                Value::Bytes(_) => panic!("bytes"),
            });
            out.push((e.revision, e.key.clone(), e.kind, v));
        }
    }
    out
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
        let first = m.revision + 1;
        for s in steps {
            match s {
                Step::Put(k, v) => {
                    let r = db.put("default", key(k), Value::Json(json!(v))).unwrap();
                    prop_assert_eq!(r.created, !m.map.contains_key(&key(k)));
                    m.write(key(k), v);
                    m.ttl.remove(&key(k));
                }
                Step::PutTtl(k, v) => {
                    let o = PutOptions { ttl: Some(std::time::Duration::from_secs(3600)), ..Default::default() };
                    let r = db.put_with("default", key(k), Value::Json(json!(v)), o).unwrap();
                    prop_assert_eq!(r.created, !m.map.contains_key(&key(k)));
                    m.write(key(k), v);
                    m.ttl.insert(key(k));
                }
                Step::PutIfRevision(k, v, right) => {
                    let cur = m.map.get(&key(k)).map(|e| e.1);
                    let guess = if right { cur.unwrap_or(1) } else { cur.unwrap_or(1) + 1000 };
                    let o = PutOptions { if_revision: Some(guess), ..Default::default() };
                    let r = db.put_with("default", key(k), Value::Json(json!(v)), o).unwrap();
                    let should = cur == Some(guess);
                    prop_assert_eq!(r.success, should);
                    if should {
                        m.write(key(k), v);
                        m.ttl.remove(&key(k));
                    } else {
                        prop_assert_eq!(r.revision, cur);
                    }
                }
                Step::PutIfAbsent(k, v) => {
                    let o = PutOptions { if_absent: true, ..Default::default() };
                    let r = db.put_with("default", key(k), Value::Json(json!(v)), o).unwrap();
                    prop_assert_eq!(r.success, !m.map.contains_key(&key(k)));
                    if r.success {
                        m.write(key(k), v);
                        m.ttl.remove(&key(k));
                    }
                }
                Step::Delete(k) => {
                    let r = db.delete("default", key(k)).unwrap();
                    let existed = m.map.remove(&key(k)).is_some();
                    m.ttl.remove(&key(k));
                    prop_assert_eq!(r.success, existed);
                    if existed {
                        m.revision += 1;
                        m.events.push((m.revision, Some(key(k)), EventKind::Deleted, None));
                    }
                }
                Step::Incr(k, by) => {
                    let r = db.incr("default", key(k), by.into()).unwrap();
                    let v = m.map.get(&key(k)).map_or(0, |e| e.0) + by;
                    prop_assert_eq!(r.value.as_i64(), Some(v));
                    m.write(key(k), v);
                }
                Step::Clear => {
                    let n = db.clear("default").unwrap();
                    prop_assert_eq!(n as usize, m.map.len());
                    if !m.map.is_empty() {
                        m.revision += 1;
                        m.events.push((m.revision, None, EventKind::Cleared, None));
                    }
                    m.map.clear();
                    m.ttl.clear();
                }
                Step::Reopen => {
                    drop(db);
                    db = open();
                }
                Step::Burst(puts) => {
                    for (&(k, v), applied) in puts.iter().zip(burst(&db, &puts)) {
                        let Applied::Write(w) = applied else { panic!("not a write: {applied:?}") };
                        prop_assert_eq!(&w.ops, &[OpOutcome::Put { created: !m.map.contains_key(&key(k)) }]);
                        m.write(key(k), v);
                        m.ttl.remove(&key(k));
                        prop_assert_eq!(w.revision, m.revision, "bursts apply in submission order");
                    }
                }
            }
            prop_assert_eq!(db.revision(), m.revision);
            // Whole-store counts come from the kept statistics, a prefix
            // count from a walk: both agree with the model.
            let stats = db.key_stats("default").unwrap();
            prop_assert_eq!(stats.keys as usize, m.map.len());
            prop_assert_eq!(stats.expiring as usize, m.ttl.len());
            prop_assert_eq!(db.count("default", None).unwrap() as usize, m.map.len());
            prop_assert_eq!(db.count("default", Some(b"k")).unwrap() as usize, m.map.len());
        }
        let page = db.list("default", &ListOptions { limit: Some(1000), ..Default::default() }).unwrap();
        let got: Vec<(String, i64, u64)> = page
            .items
            .iter()
            .map(|e| (e.key.to_string(), e.value_i64(), e.revision))
            .collect();
        let want: Vec<(String, i64, u64)> = m.map.iter().map(|(k, (v, r))| (k.clone(), *v, *r)).collect();
        prop_assert_eq!(got, want);
        // The change log holds exactly the model's events, across reopens
        // and whatever grouping the writer chose.
        prop_assert_eq!(replay(&db, first), m.events);
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
