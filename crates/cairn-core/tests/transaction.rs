//! `Db::transaction`: code that reads and writes with no other writer in
//! between, committed as one group that readers see whole or not at all.

use cairn_core::{Db, Durability, Filter, Op, Ttl, Value};
use serde_json::json;

fn put(key: &str, v: serde_json::Value) -> Op {
    Op::Put {
        store: "default".into(),
        key: key.as_bytes().to_vec(),
        value: Value::Json(v),
        ttl: Ttl::Default,
    }
}

fn number(db: &Db, key: &str) -> i64 {
    db.get("default", key)
        .unwrap()
        .and_then(|e| e.value.to_json().as_i64())
        .unwrap_or(0)
}

#[test]
fn reads_its_own_writes_and_shows_them_only_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path()).durability(Durability::Sync).open().unwrap();
    db.put("default", "a", Value::Json(json!(1))).unwrap();
    let before = db.revision();
    let mut sub = db.subscribe(Filter::default(), None).unwrap();
    sub.skip_to_current();
    let revisions = db
        .transaction(|tx| {
            let r1 = tx.write(vec![], vec![put("a", json!(2))]).unwrap().revision;
            let r2 = tx.write(vec![], vec![put("b", json!(3))]).unwrap().revision;
            assert_eq!(tx.get("default", b"a").unwrap().unwrap().value.to_json(), json!(2));
            // Another thread reads the committed state only.
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(number(&db, "a"), 1);
                    assert!(db.get("default", "b").unwrap().is_none());
                });
            });
            (r1, r2)
        })
        .unwrap();
    assert_eq!(revisions, (before + 1, before + 2));
    assert_eq!(number(&db, "a"), 2);
    assert_eq!(number(&db, "b"), 3);
    assert_eq!(db.revision(), before + 2);
    let events = sub.poll(10).unwrap();
    let seen: Vec<_> = events.iter().map(|e| (e.revision, e.key.clone().unwrap())).collect();
    assert_eq!(seen, vec![(before + 1, "a".to_owned()), (before + 2, "b".to_owned())]);
    drop(sub);
    db.close().unwrap();
    // Durable: both are there after a reopen.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(number(&db, "b"), 3);
}

#[test]
fn no_other_write_lands_between_its_read_and_its_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path()).durability(Durability::Relaxed).open().unwrap();
    let (threads, rounds) = (4, 300);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..rounds {
                    // Read, then write what was read plus one: a lost update
                    // if anyone else wrote in between.
                    db.transaction(|tx| {
                        let n = tx
                            .get("default", b"n")
                            .unwrap()
                            .and_then(|e| e.value.to_json().as_i64())
                            .unwrap_or(0);
                        std::thread::yield_now();
                        tx.write(vec![], vec![put("n", json!(n + 1))]).unwrap();
                    })
                    .unwrap();
                }
            });
        }
        // Plain writers at the same time.
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..rounds {
                    db.incr("default", "n", 1.into()).unwrap();
                }
            });
        }
    });
    assert_eq!(number(&db, "n"), (threads + 2) * rounds);
}

#[test]
fn a_discarded_transaction_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "a", Value::Json(json!(1))).unwrap();
    let before = db.revision();
    db.transaction(|tx| {
        tx.write(vec![], vec![put("a", json!(9)), put("z", json!(9))]).unwrap();
        tx.discard();
    })
    .unwrap();
    assert_eq!(number(&db, "a"), 1);
    assert!(db.get("default", "z").unwrap().is_none());
    assert_eq!(db.revision(), before);
    // The next write takes the next revision, as if nothing happened.
    assert_eq!(
        db.put("default", "a", Value::Json(json!(2))).unwrap().revision,
        Some(before + 1)
    );
    // A bad write is an error and changes nothing; the rest commits.
    db.transaction(|tx| {
        let bad = Op::Put {
            store: "nope".into(),
            key: b"k".to_vec(),
            value: Value::Json(json!(1)),
            ttl: Ttl::Default,
        };
        assert!(tx.write(vec![], vec![bad]).is_err());
        tx.write(vec![], vec![put("c", json!(3))]).unwrap();
    })
    .unwrap();
    assert_eq!(number(&db, "c"), 3);
    db.clone().close().unwrap();
    assert!(matches!(db.transaction(|_| ()), Err(cairn_core::Error::Closed)));
}

/// Queued transactions join the writer's groups: many of them, some
/// discarded, beside plain writes. Discarded ones leave nothing (not even
/// a revision), the others lose no update and show whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_transactions_share_groups_and_discard_only_their_own_part() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::builder(dir.path()).durability(Durability::Sync).open().unwrap();
    let mut sub = db.subscribe(Filter::default(), None).unwrap();
    sub.skip_to_current();
    let rev_before = db.revision() as i64;
    let commits_before = db.stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    let (tasks, rounds) = (8u64, 50u64);
    let mut handles = Vec::new();
    for t in 0..tasks {
        let db = db.clone();
        handles.push(tokio::spawn(async move {
            for i in 0..rounds {
                let discard = (t + i) % 5 == 0;
                let seen = db
                    .transaction_async(move |tx| {
                        let n = tx
                            .get("default", b"n")
                            .unwrap()
                            .and_then(|e| e.value.to_json().as_i64())
                            .unwrap_or(0);
                        // Two keys per transaction: "pair" must always
                        // match "n" for a reader.
                        tx.write(vec![], vec![put("n", json!(n + 1))]).unwrap();
                        tx.write(vec![], vec![put("pair", json!(n + 1))]).unwrap();
                        if discard {
                            tx.write(vec![], vec![put("discarded", json!(true))]).unwrap();
                            tx.discard();
                        }
                        n
                    })
                    .await
                    .unwrap();
                assert!(seen >= 0);
                if i % 2 == 0 {
                    db.execute_async(cairn_core::Command::Write {
                        checks: vec![],
                        ops: vec![put(&format!("plain-{t}-{i}"), json!(i))],
                    })
                    .await
                    .unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let kept = (0..tasks)
        .flat_map(|t| (0..rounds).map(move |i| (t + i) % 5 != 0))
        .filter(|k| *k)
        .count() as i64;
    assert_eq!(number(&db, "n"), kept);
    assert_eq!(number(&db, "pair"), kept);
    assert!(db.get("default", "discarded").unwrap().is_none());
    // Revisions stay gapless: each kept transaction used two, each plain write one.
    let plain = (tasks * rounds / 2) as i64;
    assert_eq!(db.revision() as i64 - rev_before, 2 * kept + plain);
    let mut events = Vec::new();
    loop {
        let batch = sub.poll(10_000).unwrap();
        if batch.is_empty() {
            break;
        }
        events.extend(batch);
    }
    assert_eq!(events.len() as i64, 2 * kept + plain);
    assert!(events.windows(2).all(|w| w[1].revision == w[0].revision + 1));
    assert!(events.iter().all(|e| e.key.as_deref() != Some("discarded")));
    // Fewer commits than transactions: they shared groups (and fsyncs).
    let commits = db.stats().commits.load(std::sync::atomic::Ordering::Relaxed) - commits_before;
    assert!(commits < (kept as u64) + plain as u64, "{commits} commits");
    drop(sub);
}
