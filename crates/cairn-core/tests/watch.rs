//! Change notifications: exact sequences per filter, stalled subscribers,
//! resume after reopen, compaction, TTL expiry events.

use cairn_core::{Config, Db, Error, EventKind, Filter, PutOptions, Subscription, Value};
use serde_json::json;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

fn drain_until(sub: &mut Subscription, revision: u64) -> Vec<(u64, String, EventKind)> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sub.next_revision() <= revision {
        assert!(Instant::now() < deadline, "timed out waiting for revision {revision}");
        for e in sub.poll(500).unwrap() {
            out.push((e.revision, e.key.clone().unwrap_or_default(), e.kind));
        }
        sub.wait_timeout(Duration::from_millis(50));
    }
    out
}

#[test]
fn concurrent_writers_and_filtered_subscribers_see_exactly_the_committed_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let filters = [
        Filter::default(),
        Filter {
            store: Some("default".into()),
            prefix: Some("a/".into()),
            ..Default::default()
        },
        Filter {
            store: Some("default".into()),
            key: Some("b/3".into()),
            ..Default::default()
        },
    ];
    let mut subs: Vec<Subscription> = filters.iter().map(|f| db.subscribe(f.clone(), None).unwrap()).collect();
    let writers: Vec<_> = ["a", "b", "c", "d"]
        .into_iter()
        .map(|p| {
            let db = db.clone();
            std::thread::spawn(move || {
                let mut log = Vec::new();
                for i in 0..200 {
                    let key = format!("{p}/{}", i % 7);
                    let r = db.put("default", &key, Value::Json(json!(i))).unwrap();
                    log.push((
                        r.revision.unwrap(),
                        key,
                        if r.created {
                            EventKind::Created
                        } else {
                            EventKind::Updated
                        },
                    ));
                }
                log
            })
        })
        .collect();
    let mut committed: Vec<(u64, String, EventKind)> = writers.into_iter().flat_map(|w| w.join().unwrap()).collect();
    committed.sort();
    let last = db.revision();
    for (sub, filter) in subs.iter_mut().zip(&filters) {
        let got = drain_until(sub, last);
        let want: Vec<_> = committed
            .iter()
            .filter(|(_, k, _)| filter.key.as_ref().is_none_or(|w| w == k))
            .filter(|(_, k, _)| filter.prefix.as_ref().is_none_or(|p| k.starts_with(p.as_str())))
            .cloned()
            .collect();
        assert_eq!(got, want, "filter {filter:?}");
    }
}

#[test]
fn a_stalled_subscriber_catches_up_from_the_change_log_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // A tiny in-memory ring forces the catch-up to come from the durable log.
    let cfg = Config {
        event_buffer: 16,
        durability: cairn_core::Durability::Relaxed,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let mut stalled = db.subscribe(Filter::default(), Some(1)).unwrap();
    let first = db.revision() + 1;
    for i in 0..3000 {
        db.put("default", format!("k{}", i % 50), Value::Json(json!(i)))
            .unwrap();
    }
    let got = drain_until(&mut stalled, db.revision());
    let revs: Vec<u64> = got.iter().map(|e| e.0).filter(|r| *r >= first).collect();
    assert_eq!(revs, (first..first + 3000).collect::<Vec<_>>());
}

#[test]
fn a_from_revision_beyond_the_next_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("default", "k", Value::Json(json!(1))).unwrap();
    let current = db.revision();
    let e = db.subscribe(Filter::default(), Some(current + 2)).unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains(&format!("current revision {current}")), "{e}");
    // The next revision is fine: it is the next write's.
    let mut sub = db.subscribe(Filter::default(), Some(current + 1)).unwrap();
    db.put("default", "k", Value::Json(json!(2))).unwrap();
    let got = drain_until(&mut sub, db.revision());
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), [current + 1]);
}

#[test]
fn large_values_are_watched_from_the_change_log_when_they_overflow_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    // A 1 MiB ring and 200 KB values: only a few events fit in memory.
    let cfg = Config {
        event_buffer_bytes: 1 << 20,
        durability: cairn_core::Durability::Relaxed,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let mut sub = db.subscribe(Filter::default(), Some(1)).unwrap();
    let first = db.revision() + 1;
    for i in 0..40 {
        let v = format!("{i:03}{}", "x".repeat(200_000));
        db.put("default", format!("big{}", i % 3), Value::Json(json!(v)))
            .unwrap();
    }
    let got = drain_until(&mut sub, db.revision());
    let revs: Vec<u64> = got.iter().map(|e| e.0).filter(|r| *r >= first).collect();
    assert_eq!(revs, (first..first + 40).collect::<Vec<_>>());
}

#[test]
fn resume_from_a_revision_after_reopen_and_refuse_compacted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mid;
    {
        let db = Db::open(dir.path()).unwrap();
        for i in 0..10 {
            db.put("default", "k", Value::Json(json!(i))).unwrap();
        }
        mid = db.revision() - 4;
    }
    let db = Db::open(dir.path()).unwrap();
    let mut sub = db.subscribe(Filter::default(), Some(mid)).unwrap();
    let got = drain_until(&mut sub, db.revision());
    assert_eq!(got.first().map(|e| e.0), Some(mid));
    assert_eq!(got.len(), 5);
    // A subscription shares the engine's storage: drop it with the handle.
    drop(sub);
    drop(db);

    let cfg = Config {
        changelog_retention: 10,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    for i in 0..100 {
        db.put("default", "k", Value::Json(json!(i))).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.oldest_revision() <= 1 {
        assert!(Instant::now() < deadline, "retention never trimmed");
        std::thread::sleep(Duration::from_millis(50));
    }
    match db.subscribe(Filter::default(), Some(1)) {
        Err(Error::Compacted { requested: 1, oldest }) => assert_eq!(oldest, db.oldest_revision()),
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut ok = db.subscribe(Filter::default(), Some(db.oldest_revision())).unwrap();
    assert!(!drain_until(&mut ok, db.revision()).is_empty());
}

#[test]
fn expiry_delete_and_clear_produce_events_with_values() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        expiry_interval_ms: 20,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    let mut sub = db
        .subscribe(
            Filter {
                store: Some("default".into()),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    let ttl = PutOptions {
        ttl: Some(Duration::from_millis(30)),
        ..Default::default()
    };
    db.put_with("default", "session", Value::Json(json!("s1")), ttl)
        .unwrap();
    db.put("default", "x", Value::Json(json!(1))).unwrap();
    db.put("default", "x", Value::Json(json!(2))).unwrap();
    db.delete("default", "x").unwrap();
    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events
        .iter()
        .any(|e: &std::sync::Arc<cairn_core::Event>| e.kind == EventKind::Expired)
    {
        assert!(Instant::now() < deadline, "no expired event");
        events.extend(sub.poll(100).unwrap());
        sub.wait_timeout(Duration::from_millis(20));
    }
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::*;
    assert_eq!(kinds, [Created, Created, Updated, Deleted, Expired]);
    assert_eq!(events[2].old_value.as_deref(), Some(&Value::Json(json!(1))));
    assert_eq!(events[2].new_value.as_deref(), Some(&Value::Json(json!(2))));
    assert_eq!(events[3].old_value.as_deref(), Some(&Value::Json(json!(2))));
    assert_eq!(events[4].old_value.as_deref(), Some(&Value::Json(json!("s1"))));
    assert!(events.iter().all(|e| e.timestamp > 1_600_000_000_000));
    db.put("default", "y", Value::Json(json!(1))).unwrap();
    db.clear("default").unwrap();
    let rest = drain_until(&mut sub, db.revision());
    assert_eq!(rest.last().map(|e| e.2), Some(Cleared));
}

#[test]
fn catch_up_reads_multi_revision_chunks_resumes_inside_them_and_survives_trimming() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        event_buffer: 16,
        changelog_retention: 1000,
        expiry_interval_ms: 20,
        durability: cairn_core::Durability::Relaxed,
        ..Default::default()
    };
    let db = Db::builder(dir.path()).config(cfg).open().unwrap();
    // Concurrent writers share commits, so one change-log entry holds many revisions.
    std::thread::scope(|s| {
        for w in 0..16 {
            let db = db.clone();
            s.spawn(move || {
                for i in 0..250 {
                    db.put("default", format!("w{w}-{}", i % 10), Value::Json(json!(i)))
                        .unwrap();
                }
            });
        }
    });
    let stats = db.stats();
    let (commands, commits) = (stats.commands.load(Relaxed), stats.commits.load(Relaxed));
    assert!(commits < commands, "no shared commits ({commits} of {commands})");
    let deadline = Instant::now() + Duration::from_secs(10);
    while db.oldest_revision() <= 1 {
        assert!(Instant::now() < deadline, "retention never trimmed");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (oldest, last) = (db.oldest_revision(), db.revision());
    assert!(
        last - oldest >= 999,
        "trimmed inside the retention window: {oldest}..{last}"
    );
    // From the floor and from inside the log, in pages of 7 (which end inside chunks).
    for from in [oldest, oldest + 123, last - 3] {
        let mut sub = db.subscribe(Filter::default(), Some(from)).unwrap();
        let mut revs = Vec::new();
        loop {
            let page = sub.poll(7).unwrap();
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 7);
            revs.extend(page.iter().map(|e| e.revision));
        }
        assert_eq!(revs, (from..=last).collect::<Vec<_>>(), "replay from {from}");
    }
}

#[test]
fn skip_to_current_drops_the_backlog_and_keeps_later_events() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    let mut sub = db.subscribe(Filter::default(), None).unwrap();
    for i in 0..3 {
        db.put("default", format!("old{i}"), Value::Json(json!(i))).unwrap();
    }
    sub.skip_to_current();
    assert_eq!(sub.next_revision(), db.revision() + 1);
    assert!(sub.poll(100).unwrap().is_empty(), "the backlog was skipped");
    db.put("default", "new", Value::Json(json!(1))).unwrap();
    let got = sub.poll(100).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].key.as_deref(), Some("new"));
    assert_eq!(got[0].revision, db.revision());
}

#[test]
fn key_filters_read_keys_as_the_store_does() {
    use cairn_core::{KeyType, StoreSpec};
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.create_store(StoreSpec::new("ints").key_type(KeyType::Int)).unwrap();
    db.create_store(StoreSpec::new("ids").key_type(KeyType::Uuid)).unwrap();
    let watch = |store: &str, key: &str| {
        db.subscribe(
            Filter {
                store: Some(store.into()),
                key: Some(key.into()),
                ..Default::default()
            },
            None,
        )
    };
    let mut padded = watch("ints", "007").unwrap();
    let mut signed = watch("ints", "+7").unwrap();
    let upper = "3F2504E0-4F89-11D3-9A0C-0305E82C3301";
    let mut uuid = watch("ids", upper).unwrap();
    db.put("ints", "7", Value::Json(json!(1))).unwrap();
    let r = db.put("ids", upper.to_lowercase(), Value::Json(json!(1))).unwrap();
    let rev = r.revision.unwrap();
    for sub in [&mut padded, &mut signed] {
        let got = drain_until(sub, rev);
        assert_eq!(got, vec![(rev - 1, "7".to_owned(), EventKind::Created)]);
    }
    let got = drain_until(&mut uuid, rev);
    assert_eq!(got, vec![(rev, upper.to_lowercase(), EventKind::Created)]);

    let err = watch("ints", "abc")
        .map(|_| ())
        .expect_err("a key an int store refuses");
    assert_eq!(err.code(), "invalid_key", "{err}");
    let err = db
        .subscribe(
            Filter {
                store: Some("ints".into()),
                prefix: Some("1".into()),
                ..Default::default()
            },
            None,
        )
        .map(|_| ())
        .expect_err("a prefix on an int store");
    assert_eq!(err.code(), "invalid_argument", "{err}");
}
