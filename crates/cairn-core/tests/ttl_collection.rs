//! The TTL collector removes every expired key, in rounds, including keys
//! whose expiry is below where its scans had got to (an expiry already
//! past when written, a TTL that passed before its commit was visible).

use cairn_core::{Db, Op, Ttl, Value};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn wait_expired(db: &Db, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.stats().expired.load(Ordering::Relaxed) < n {
        assert!(
            Instant::now() < deadline,
            "collected {} of {n}",
            db.stats().expired.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn put(key: String, ttl: Ttl) -> Op {
    Op::Put {
        store: "default".into(),
        key: key.into_bytes(),
        value: Value::from(1),
        ttl,
    }
}

#[test]
fn every_expired_key_is_collected_also_below_the_collector_s_floor() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = cairn_core::Config {
        expiry_interval_ms: 10,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let mut sub = db.subscribe(cairn_core::Filter::default(), None).unwrap();
    // More than one round's worth (1,000 keys).
    for b in 0..3 {
        let ops = (0..1000).map(|i| put(format!("k{b}-{i}"), Ttl::Millis(30))).collect();
        db.batch(vec![], ops).unwrap();
    }
    db.put("default", "stays", Value::from(1)).unwrap();
    wait_expired(&db, 3000);
    std::thread::sleep(Duration::from_millis(50)); // the floor moves on
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    db.batch(
        vec![],
        vec![
            put("past".into(), Ttl::At(now - 60_000)),
            put("soon".into(), Ttl::Millis(1)),
        ],
    )
    .unwrap();
    assert!(db.get("default", "past").unwrap().is_none(), "invisible at once");
    wait_expired(&db, 3002);
    let rep = db.check(|_| ()).unwrap();
    assert_eq!(rep.problems, Vec::<String>::new());
    assert_eq!(rep.entries, 1, "only `stays` is stored");
    assert_eq!(db.count("default", None).unwrap(), 1);
    // Each collected key sent its `expired` event.
    let mut expired = 0;
    while sub.next_revision() <= db.revision() {
        expired += sub
            .poll(10_000)
            .unwrap()
            .iter()
            .filter(|e| e.kind == cairn_core::EventKind::Expired)
            .count();
    }
    assert_eq!(expired, 3002);
}
