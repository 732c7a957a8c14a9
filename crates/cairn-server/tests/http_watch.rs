//! `GET /v1/watch` as Server-Sent Events: events, resume, heartbeat, compaction.

mod common;

use common::{PATIENCE, TestServer, assert_error};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn created_updated_deleted_events_with_payloads() {
    let t = TestServer::start().await;
    let mut sse = t.watch("?store=default&prefix=user:", None).await;
    let (_, p1) = t.put("/v1/stores/default/keys/user:1", &json!({"name": "ann"})).await;
    t.put("/v1/stores/default/keys/other", &json!("filtered out")).await;
    let (_, p2) = t.put("/v1/stores/default/keys/user:1", &json!({"name": "bea"})).await;
    let (_, d) = t.delete("/v1/stores/default/keys/user:1").await;

    let created = sse.next_event().await;
    assert_eq!(created.id.as_deref(), Some(p1["revision"].to_string().as_str()));
    let c = created.json();
    assert_eq!(
        (c["type"].as_str(), c["store"].as_str(), c["key"].as_str()),
        (Some("created"), Some("default"), Some("user:1"))
    );
    assert_eq!(c["new_value"], json!({"name": "ann"}));
    assert_eq!(c["revision"], p1["revision"]);
    assert!(c.get("old_value").is_none());
    assert!(c["timestamp"].as_u64().unwrap() > 1_600_000_000_000);

    let u = sse.next_event().await.json();
    assert_eq!(u["type"], "updated");
    assert_eq!(u["old_value"], json!({"name": "ann"}));
    assert_eq!(u["new_value"], json!({"name": "bea"}));
    assert_eq!(u["revision"], p2["revision"]);

    let del = sse.next_event().await.json();
    assert_eq!(del["type"], "deleted");
    assert_eq!(del["old_value"], json!({"name": "bea"}));
    assert_eq!(del["revision"], d["revision"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_from_revision_and_last_event_id() {
    let t = TestServer::start().await;
    let mut revs = Vec::new();
    for i in 0..5 {
        let (_, p) = t.put("/v1/stores/default/keys/k", &json!(i)).await;
        revs.push(p["revision"].as_u64().unwrap());
    }
    // from_revision is inclusive.
    let mut sse = t.watch(&format!("?key=k&from_revision={}", revs[1]), None).await;
    for (i, r) in revs.iter().enumerate().skip(1) {
        let f = sse.next_event().await;
        assert_eq!(f.id, Some(r.to_string()));
        assert_eq!(f.json()["new_value"], i);
    }
    // Last-Event-ID is the last revision seen: the stream resumes after it.
    let mut sse = t.watch("?key=k&from_revision=1", Some(&revs[2].to_string())).await;
    assert_eq!(sse.next_event().await.json()["revision"], revs[3]);
    assert_eq!(sse.next_event().await.json()["revision"], revs[4]);
    // ...and then follows live.
    let (_, p) = t.put("/v1/stores/default/keys/k", &json!("live")).await;
    let live = sse.next_event().await.json();
    assert_eq!(
        (live["revision"].clone(), live["new_value"].clone()),
        (p["revision"].clone(), json!("live"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_stream_first_tells_the_revision_it_is_caught_up_to() {
    // The default heartbeat (seconds): the first progress must not wait for it.
    let t = TestServer::start().await;
    let (_, p) = t.put("/v1/stores/default/keys/k", &json!(1)).await;
    let mut sse = t.watch("?store=default", None).await;
    let f = tokio::time::timeout(std::time::Duration::from_secs(2), sse.next())
        .await
        .expect("a progress frame at once")
        .unwrap();
    assert_eq!(f.event.as_deref(), Some("progress"));
    assert_eq!(f.json(), json!({"type": "progress", "revision": p["revision"]}));
    // Its id is the resume point a reconnecting client sends back.
    assert_eq!(f.id, Some(p["revision"].to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_streams_get_progress_heartbeats() {
    let t = TestServer::start_with(|c| c.heartbeat_ms = 50).await;
    let (_, p) = t.put("/v1/stores/default/keys/k", &json!(1)).await;
    let mut sse = t.watch("?store=default", None).await;
    let f = sse.next().await.unwrap();
    assert_eq!(f.event.as_deref(), Some("progress"));
    assert_eq!(f.json(), json!({"type": "progress", "revision": p["revision"]}));
    // A write to another store does not match, but progress still advances.
    t.put("/v1/stores/other", &json!({})).await;
    let (_, q) = t.put("/v1/stores/other/keys/x", &json!(2)).await;
    let want = q["revision"].as_u64().unwrap();
    loop {
        let f = sse.next().await.unwrap();
        assert_eq!(f.event.as_deref(), Some("progress"), "unexpected event {f:?}");
        if f.json()["revision"].as_u64().unwrap() >= want {
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compacted_from_revision_is_410_naming_the_oldest() {
    let t = TestServer::start_with(|c| c.changelog_retention = 5).await;
    for i in 0..40 {
        t.put(&format!("/v1/stores/default/keys/k{i}"), &json!(i)).await;
    }
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while t.db().oldest_revision() <= 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "retention never trimmed the change log"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let oldest = t.db().oldest_revision();
    let got = t.get("/v1/watch?from_revision=1").await;
    assert_error(&got, 410, "compacted");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains(&format!("oldest available revision is {oldest}")), "{msg}");
    assert_eq!(got.1["error"]["oldest_revision"], oldest, "a field, not only text");
    // A revision this database has not reached yet is refused, not waited for.
    let current = t.db().revision();
    let got = t.get(&format!("/v1/watch?from_revision={}", current + 100)).await;
    assert_error(&got, 400, "invalid_argument");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("beyond the current revision")
    );
    // From the oldest retained revision it works.
    let mut sse = t
        .watch(&format!("?from_revision={}", t.db().oldest_revision()), None)
        .await;
    assert_eq!(sse.next_event().await.json()["type"], "created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_on_unknown_store_is_404_and_bad_last_event_id_is_400() {
    let t = TestServer::start().await;
    assert_error(&t.get("/v1/watch?store=missing").await, 404, "unknown_store");
    let got = common::send(t.client.get(t.url("/v1/watch")).header("last-event-id", "yesterday")).await;
    assert_error(&got, 400, "invalid_argument");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_events_share_a_revision() {
    let t = TestServer::start().await;
    let mut sse = t.watch("", None).await;
    let (s, b) = t
        .post(
            "/v1/batch",
            &json!({"ops": [{"op": "put", "store": "default", "key": "a", "value": 1},
                            {"op": "put", "store": "default", "key": "b", "value": 2}]}),
        )
        .await;
    assert_eq!(s, 200);
    let first = sse.next_event().await;
    let second = sse.next_event().await;
    assert_eq!(first.json()["revision"], b["revision"]);
    assert_eq!(second.json()["revision"], b["revision"]);
    // Only the last event of a revision carries the id, so resuming never skips half a batch.
    assert_eq!(first.id, None);
    assert_eq!(second.id, Some(b["revision"].to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_client_does_not_slow_writers_and_loses_nothing() {
    let t = TestServer::start_with(|c| c.durability = cairn_core::Durability::Relaxed).await;
    let mut sse = t.watch("?prefix=big", None).await;
    // ~16 MiB of events while the client reads nothing: far more than socket buffers hold.
    let value = json!("x".repeat(16 * 1024));
    let mut last = 0;
    for i in 0..1000 {
        let (s, p) = t.put(&format!("/v1/stores/default/keys/big{i}"), &value).await;
        assert_eq!(s, 200);
        last = p["revision"].as_u64().unwrap();
    }
    let mut expect = last - 999;
    while expect <= last {
        let e = sse.next_event().await.json();
        assert_eq!(
            e["revision"].as_u64(),
            Some(expect),
            "events arrive in order, without gaps"
        );
        expect += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_continue_while_unmatched_writes_stream_in() {
    let t = TestServer::start_with(|c| {
        c.heartbeat_ms = 100;
        c.durability = cairn_core::Durability::Relaxed;
    })
    .await;
    let mut sse = t.watch("?key=watched", None).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (client, url, stop) = (t.client.clone(), t.url("/v1/stores/default/keys/noise"), stop.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                client.put(&url).json(&n).send().await.unwrap();
                n += 1;
            }
            n
        })
    };
    let mut last = 0;
    for _ in 0..3 {
        let f = sse.next().await.expect("stream ended");
        assert_eq!(f.event.as_deref(), Some("progress"), "{f:?}");
        let rev = f.json()["revision"].as_u64().unwrap();
        assert!(rev >= last, "progress never goes back");
        last = rev;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(writer.await.unwrap() > 0);
}
