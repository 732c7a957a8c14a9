//! Subscriptions over the WebSocket protocol: events, resume, heartbeats,
//! unsubscribe and compaction.

#[path = "ws_support/mod.rs"]
mod support;

use serde_json::{Value as Json, json};
use support::{Client, set, start, start_with};

/// Receives `value_changed` messages until `n` have arrived, skipping heartbeats.
async fn events(c: &mut Client, n: usize) -> Vec<Json> {
    let mut out = Vec::new();
    while out.len() < n {
        let m = c.recv().await;
        match m["type"].as_str() {
            Some("value_changed") => out.push(m),
            Some("progress") => {}
            _ => panic!("unexpected message while waiting for events: {m}"),
        }
    }
    out
}

#[tokio::test]
async fn created_updated_deleted_in_revision_order() {
    let t = start().await;
    let mut watcher = Client::connect(t.addr, None).await;
    let mut writer = Client::connect(t.addr, None).await;
    let r = watcher
        .call(json!({"type": "subscribe", "id": "s", "prefix": "user:"}))
        .await;
    assert_eq!(
        (r["type"].as_str(), &r["id"]),
        (Some("subscribe_response"), &json!("s"))
    );
    let sub = r["subscription"].as_u64().unwrap();
    let start_rev = r["revision"].as_u64().unwrap();

    let r1 = writer.call(set("user:1", json!({"v": 1}))).await["revision"]
        .as_u64()
        .unwrap();
    writer.call(set("other", json!("ignored"))).await;
    let r2 = writer.call(set("user:1", json!({"v": 2}))).await["revision"]
        .as_u64()
        .unwrap();
    let r3 = writer.call(json!({"type": "delete", "key": "user:1"})).await["revision"]
        .as_u64()
        .unwrap();
    assert!(start_rev < r1 && r1 < r2 && r2 < r3);

    let ev = events(&mut watcher, 3).await;
    for e in &ev {
        assert_eq!(
            (&e["subscription"], &e["store"], &e["key"]),
            (&json!(sub), &json!("default"), &json!("user:1"))
        );
        assert!(
            e["timestamp"].as_u64().unwrap() > 1_600_000_000_000,
            "epoch milliseconds: {e}"
        );
    }
    assert_eq!((&ev[0]["event"], &ev[0]["revision"]), (&json!("created"), &json!(r1)));
    assert_eq!(
        (&ev[0]["new_value"], &ev[0]["value"]),
        (&json!({"v": 1}), &json!({"v": 1}))
    );
    assert!(ev[0].get("old_value").is_none());
    assert_eq!((&ev[1]["event"], &ev[1]["revision"]), (&json!("updated"), &json!(r2)));
    assert_eq!(
        (&ev[1]["old_value"], &ev[1]["new_value"]),
        (&json!({"v": 1}), &json!({"v": 2}))
    );
    assert_eq!((&ev[2]["event"], &ev[2]["revision"]), (&json!("deleted"), &json!(r3)));
    assert_eq!((&ev[2]["old_value"], &ev[2]["value"]), (&json!({"v": 2}), &json!(null)));
    assert!(ev[2].get("new_value").is_none());
    t.server.shutdown().await;
}

#[tokio::test]
async fn resumes_from_revision_without_gap_or_duplicate() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let mut revs = Vec::new();
    for i in 0..5 {
        revs.push(c.call(set("k", json!(i))).await["revision"].as_u64().unwrap());
    }
    // A client that saw revs[1] reconnects and resumes right after it.
    let r = c
        .call(json!({"type": "subscribe", "key": "k", "from_revision": revs[1] + 1}))
        .await;
    assert_eq!(
        r["revision"], revs[4],
        "subscribe_response carries the current revision"
    );
    let replayed = events(&mut c, 3).await;
    let got: Vec<_> = replayed.iter().map(|e| e["revision"].as_u64().unwrap()).collect();
    assert_eq!(got, revs[2..]);
    assert_eq!(replayed[0]["new_value"], 2);
    // Then live, continuing the same sequence.
    c.send(set("k", json!(5))).await;
    let (resp, _) = c.recv_until("set_response").await;
    let live = events(&mut c, 1).await;
    assert_eq!(live[0]["revision"], resp["revision"]);
    assert_eq!(live[0]["new_value"], 5);
    t.server.shutdown().await;
}

#[tokio::test]
async fn quiet_subscription_gets_progress_heartbeats() {
    let t = start_with(|c, _| c.heartbeat_ms = 50).await;
    let mut c = Client::connect(t.addr, None).await;
    let rev = c.call(set("a", json!(1))).await["revision"].as_u64().unwrap();
    let r = c
        .call(json!({"type": "subscribe", "store": "default", "key": "b"}))
        .await;
    let sub = r["subscription"].clone();
    for _ in 0..2 {
        let p = c.recv().await;
        assert_eq!((p["type"].as_str(), &p["subscription"]), (Some("progress"), &sub));
        assert_eq!(p["revision"], rev);
    }
    // A write the filter skips still moves the caught-up revision forward.
    let rev2 = c.call(set("a", json!(2))).await;
    let rev2 = if rev2["type"] == "set_response" {
        rev2
    } else {
        c.recv_until("set_response").await.0
    };
    loop {
        let p = c.recv().await;
        assert_eq!(p["type"], "progress", "no event for a key outside the filter: {p}");
        if p["revision"] == rev2["revision"] {
            break;
        }
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn unsubscribe_stops_events() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let s1 = c.call(json!({"type": "subscribe", "key": "x"})).await["subscription"].clone();
    let s2 = c.call(json!({"type": "subscribe", "key": "y"})).await["subscription"].clone();
    assert_ne!(s1, s2);
    c.call(set("x", json!(1))).await;
    assert_eq!(events(&mut c, 1).await[0]["subscription"], s1);

    let r = c
        .call(json!({"type": "unsubscribe", "id": 5, "subscription": s1}))
        .await;
    assert_eq!(
        (r["type"].as_str(), &r["id"], &r["success"]),
        (Some("unsubscribe_response"), &json!(5), &json!(true))
    );
    let r = c.call(json!({"type": "unsubscribe", "subscription": s1})).await;
    assert_eq!(r["success"], false, "already gone");

    // x changes again, then y: the only event that arrives is y's.
    c.call(set("x", json!(2))).await;
    c.call(set("y", json!(1))).await;
    let ev = events(&mut c, 1).await;
    assert_eq!((&ev[0]["subscription"], &ev[0]["key"]), (&s2, &json!("y")));
    t.server.shutdown().await;
}

#[tokio::test]
async fn compacted_from_revision_names_the_oldest() {
    let t = start_with(|c, _| c.changelog_retention = 5).await;
    let mut c = Client::connect(t.addr, None).await;
    for i in 0..30 {
        c.call(set(&format!("k{i}"), json!(i))).await;
    }
    // Retention runs in the background: wait until it has dropped revision 1.
    let deadline = tokio::time::Instant::now() + support::WAIT;
    while t.server.db().oldest_revision() <= 1 {
        assert!(tokio::time::Instant::now() < deadline, "change log retention never ran");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let r = c.call(json!({"type": "subscribe", "from_revision": 1})).await;
    assert_eq!(r["code"], "compacted", "{r}");
    let oldest = t.server.db().oldest_revision();
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains(&format!("oldest available revision is {oldest}")),
        "{r}"
    );
    assert_eq!(r["oldest_revision"], json!(oldest), "a field, as in HTTP's 410: {r}");
    // The named revision works, and the connection is still usable.
    let r = c.call(json!({"type": "subscribe", "from_revision": oldest})).await;
    assert_eq!(r["type"], "subscribe_response");
    t.server.shutdown().await;
}

#[tokio::test]
async fn subscribe_errors() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let r = c.call(json!({"type": "subscribe", "id": 1, "store": "nope"})).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str(), &r["id"]),
        (Some("error"), Some("unknown_store"), &json!(1))
    );
    let r = c.call(json!({"type": "unsubscribe"})).await;
    assert_eq!(r["code"], "missing_field");
    let r = c.call(json!({"type": "subscribe", "from_revision": "x"})).await;
    assert_eq!(r["code"], "invalid_field");
    t.server.shutdown().await;
}

#[tokio::test]
async fn expired_and_cleared_events_are_pushed() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let sub = c
        .call(json!({"type": "subscribe", "store": "default", "key": "tmp"}))
        .await["subscription"]
        .clone();
    c.call(json!({"type": "set", "key": "tmp", "value": "soon gone", "ttl": 0.2}))
        .await;
    let ev = events(&mut c, 2).await;
    assert_eq!(ev[0]["event"], "created");
    assert_eq!((&ev[1]["event"], &ev[1]["subscription"]), (&json!("expired"), &sub));
    assert_eq!(
        (&ev[1]["key"], &ev[1]["old_value"]),
        (&json!("tmp"), &json!("soon gone"))
    );
    // A clear reaches a key filter too: every key of the store is gone.
    c.call(set("other", json!(1))).await;
    let r = c.call(json!({"type": "clear"})).await;
    let (r, _) = if r["type"] == "clear_response" {
        (r, vec![])
    } else {
        c.recv_until("clear_response").await
    };
    let ev = events(&mut c, 1).await;
    assert_eq!(
        (&ev[0]["event"], &ev[0]["key"], &ev[0]["revision"]),
        (&json!("cleared"), &json!(null), &r["revision"])
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_and_subscribers_see_every_event_in_order() {
    let t = start_with(|c, _| c.durability = cairn_core::Durability::Relaxed).await;
    let mut all = Client::connect(t.addr, None).await;
    let mut one = Client::connect(t.addr, None).await;
    assert_eq!(
        all.call(json!({"type": "subscribe"})).await["type"],
        "subscribe_response"
    );
    assert_eq!(
        one.call(json!({"type": "subscribe", "prefix": "w1-"})).await["type"],
        "subscribe_response"
    );
    let (writers, per) = (4, 100);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let addr = t.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr, None).await;
            for i in 0..per {
                c.send(json!({"type": "set", "key": format!("w{w}-{i}"), "value": i}))
                    .await;
            }
            for _ in 0..per {
                assert_eq!(c.recv().await["success"], true);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for (c, n, prefix) in [(&mut all, writers * per, ""), (&mut one, per, "w1-")] {
        let ev = events(c, n).await;
        let revs: Vec<u64> = ev.iter().map(|e| e["revision"].as_u64().unwrap()).collect();
        assert!(revs.windows(2).all(|w| w[0] < w[1]), "revision order, no duplicates");
        assert!(ev.iter().all(|e| e["key"].as_str().unwrap().starts_with(prefix)));
        // Each writer's keys arrive in the order that writer sent them.
        let w1: Vec<_> = ev
            .iter()
            .filter(|e| e["key"].as_str().unwrap().starts_with("w1-"))
            .collect();
        let expect: Vec<_> = (0..per).map(|i| json!(format!("w1-{i}"))).collect();
        assert_eq!(w1.iter().map(|e| e["key"].clone()).collect::<Vec<_>>(), expect);
    }
    t.server.shutdown().await;
}
