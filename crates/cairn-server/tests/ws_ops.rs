//! Every request type of the WebSocket message protocol, over a real socket.

#[path = "ws_support/mod.rs"]
mod support;

use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::json;
use support::{Client, set, start, start_with};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn seed_flow_set_get_delete_echoes_key_and_id() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;

    let r = c
        .call(json!({"type": "set", "id": "a1", "key": "user:1", "value": {"name": "Ada"}}))
        .await;
    assert_eq!(r["type"], "set_response");
    assert_eq!(r["id"], "a1");
    assert_eq!(r["key"], "user:1");
    assert_eq!(r["success"], true);
    assert_eq!(r["created"], true);
    let rev = r["revision"].as_u64().unwrap();

    let r = c.call(json!({"type": "get", "id": 2, "key": "user:1"})).await;
    assert_eq!(r["type"], "get_response");
    assert_eq!(r["id"], 2);
    assert_eq!(r["key"], "user:1");
    assert_eq!(r["value"], json!({"name": "Ada"}));
    assert_eq!(r["found"], true);
    assert_eq!(r["revision"], rev);
    assert_eq!((&r["created_revision"], &r["version"]), (&json!(rev), &json!(1)));

    let r = c.call(json!({"type": "delete", "id": [3], "key": "user:1"})).await;
    assert_eq!(r["type"], "delete_response");
    assert_eq!(r["id"], json!([3]));
    assert_eq!(r["key"], "user:1");
    assert_eq!(r["success"], true);

    let r = c.call(json!({"type": "get", "key": "user:1"})).await;
    assert_eq!(r["found"], false);
    assert_eq!(r["value"], json!(null));
    assert!(r.get("id").is_none(), "no id sent, none echoed: {r}");

    let r = c.call(json!({"type": "delete", "key": "user:1"})).await;
    assert_eq!(r["success"], false, "deleting a missing key reports it: {r}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    for i in 0..50 {
        c.send(json!({"type": "set", "id": i, "key": "k", "value": i})).await;
        c.send(json!({"type": "get", "id": format!("g{i}"), "key": "k"})).await;
    }
    for i in 0..50 {
        let s = c.recv().await;
        assert_eq!((s["type"].as_str(), &s["id"]), (Some("set_response"), &json!(i)));
        let g = c.recv().await;
        assert_eq!(g["id"], format!("g{i}"));
        assert_eq!(g["value"], i, "a get sees the set sent before it");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn put_conditions_ttl_and_get_default() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let r = c
        .call(json!({"type": "put", "key": "a", "value": 1, "if_present": true}))
        .await;
    assert_eq!(
        (r["type"].as_str(), &r["success"]),
        (Some("put_response"), &json!(false))
    );
    let r = c
        .call(json!({"type": "put", "key": "a", "value": 1, "if_absent": true}))
        .await;
    assert_eq!((&r["success"], &r["created"]), (&json!(true), &json!(true)));
    let rev = r["revision"].as_u64().unwrap();
    let r = c
        .call(json!({"type": "put", "key": "a", "value": 2, "if_absent": true}))
        .await;
    assert_eq!(r["success"], false);
    assert_eq!(r["revision"], rev, "a failed condition reports the current revision");
    let r = c
        .call(json!({"type": "put", "key": "a", "value": 3, "if_revision": rev + 100}))
        .await;
    assert_eq!(r["success"], false);
    let r = c
        .call(json!({"type": "put", "key": "a", "value": 3, "if_revision": rev}))
        .await;
    assert_eq!((&r["success"], &r["created"]), (&json!(true), &json!(false)));
    let r = c.call(json!({"type": "delete", "key": "a", "if_revision": rev})).await;
    assert_eq!(r["success"], false, "stale revision: not deleted");
    assert_eq!(c.call(json!({"type": "get", "key": "a"})).await["value"], 3);

    let r = c
        .call(json!({"type": "set", "key": "t", "value": "x", "ttl": 3600.5}))
        .await;
    assert_eq!(r["success"], true);
    let r = c.call(json!({"type": "get", "key": "t"})).await;
    assert!(r["expires_at"].as_u64().unwrap() > r["updated_at"].as_u64().unwrap() + 3_599_000);

    let r = c
        .call(json!({"type": "get", "key": "missing", "default": {"d": 1}}))
        .await;
    assert_eq!((&r["found"], &r["value"]), (&json!(false), &json!({"d": 1})));
    t.server.shutdown().await;
}

#[tokio::test]
async fn contains_incr_clear_list_and_batch() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    assert_eq!(c.call(json!({"type": "contains", "key": "n"})).await["exists"], false);
    let r = c.call(json!({"type": "incr", "key": "n"})).await;
    assert_eq!(
        (r["type"].as_str(), &r["key"], &r["value"]),
        (Some("incr_response"), &json!("n"), &json!(1))
    );
    let r = c.call(json!({"type": "incr", "key": "n", "by": -5})).await;
    assert_eq!(r["value"], -4);
    let r = c.call(json!({"type": "contains", "key": "n"})).await;
    assert_eq!(
        (r["type"].as_str(), &r["key"], &r["exists"]),
        (Some("contains_response"), &json!("n"), &json!(true))
    );

    for k in ["p:1", "p:2", "p:3", "q:1"] {
        c.call(set(k, json!(k))).await;
    }
    let r = c.call(json!({"type": "list", "prefix": "p:", "limit": 2})).await;
    assert_eq!(r["type"], "list_response");
    let keys: Vec<_> = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].clone())
        .collect();
    assert_eq!(keys, [json!("p:1"), json!("p:2")]);
    assert_eq!(r["items"][0]["value"], "p:1");
    let cursor = r["next_cursor"].as_str().unwrap().to_owned();
    let r = c
        .call(json!({"type": "list", "prefix": "p:", "limit": 2, "cursor": cursor}))
        .await;
    assert_eq!(r["items"][0]["key"], "p:3");
    assert_eq!(r["next_cursor"], json!(null));
    let r = c
        .call(json!({"type": "list", "reverse": true, "keys_only": true, "limit": 1}))
        .await;
    assert_eq!(
        (&r["items"][0]["key"], &r["items"][0]["value"]),
        (&json!("q:1"), &json!(null))
    );

    let rev_p1 = c.call(json!({"type": "get", "key": "p:1"})).await["revision"].clone();
    let r = c
        .call(json!({"type": "batch", "id": "b",
            "checks": [{"key": "p:1", "revision": rev_p1}, {"key": "nope", "revision": null}],
            "ops": [{"op": "put", "key": "b1", "value": true}, {"op": "delete", "key": "p:2"},
                    {"op": "incr", "key": "n", "by": 10}]}))
        .await;
    assert_eq!(
        (r["type"].as_str(), &r["id"], &r["success"]),
        (Some("batch_response"), &json!("b"), &json!(true))
    );
    let brev = r["revision"].as_u64().unwrap();
    assert_eq!(c.call(json!({"type": "get", "key": "b1"})).await["revision"], brev);
    assert_eq!(c.call(json!({"type": "get", "key": "n"})).await["value"], 6);
    assert_eq!(c.call(json!({"type": "contains", "key": "p:2"})).await["exists"], false);
    let r = c
        .call(json!({"type": "batch", "checks": [{"key": "b1", "revision": null}],
            "ops": [{"op": "put", "key": "b2", "value": 1}]}))
        .await;
    assert_eq!((&r["success"], &r["failed_check"]), (&json!(false), &json!(0)));
    assert_eq!(
        c.call(json!({"type": "contains", "key": "b2"})).await["exists"],
        false,
        "all or nothing"
    );

    let r = c.call(json!({"type": "clear", "id": 9})).await;
    assert_eq!(
        (r["type"].as_str(), &r["store"], &r["id"]),
        (Some("clear_response"), &json!("default"), &json!(9))
    );
    assert_eq!(r["removed"], 5, "n, p:1, p:3, q:1, b1: {r}");
    assert!(r["revision"].as_u64().unwrap() > brev);
    assert_eq!(c.call(json!({"type": "list"})).await["items"], json!([]));
    t.server.shutdown().await;
}

#[tokio::test]
async fn named_stores_and_bytes_values() {
    let t = start().await;
    let db = t.server.db().clone();
    let spec = cairn_core::StoreSpec::new("ints").key_type(cairn_core::KeyType::Int);
    tokio::task::spawn_blocking(move || db.create_store(spec))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client::connect(t.addr, None).await;
    let r = c
        .call(json!({"type": "set", "store": "ints", "key": 42, "value": {"$base64": "AAEC"}}))
        .await;
    assert_eq!((&r["success"], &r["key"]), (&json!(true), &json!("42")));
    let r = c.call(json!({"type": "get", "store": "ints", "key": "42"})).await;
    assert_eq!(r["value"], json!({"$base64": "AAEC"}));
    assert_eq!(
        t.server.db().get("ints", "42").unwrap().unwrap().value,
        cairn_core::Value::Bytes(vec![0, 1, 2])
    );
    let r = c.call(json!({"type": "get", "store": "default", "key": "42"})).await;
    assert_eq!(r["found"], false, "stores are separate");

    // Keys that are not UTF-8, in a bytes-keyed store.
    let db = t.server.db().clone();
    let spec = cairn_core::StoreSpec::new("raw").key_type(cairn_core::KeyType::Bytes);
    tokio::task::spawn_blocking(move || db.create_store(spec))
        .await
        .unwrap()
        .unwrap();
    let r = c
        .call(json!({"type": "set", "store": "raw", "key_base64": "/wA=", "value": 7}))
        .await;
    assert_eq!(r["success"], true, "{r}");
    assert_eq!(
        t.server.db().get("raw", [0xff, 0x00]).unwrap().unwrap().value,
        json!(7).into()
    );
    let r = c
        .call(json!({"type": "get", "store": "raw", "key_base64": "/wA="}))
        .await;
    assert_eq!((&r["found"], &r["value"]), (&json!(true), &json!(7)));
    // Answers give such a key as {"$base64": ...}, and requests take it back so.
    assert_eq!(r["key"], json!({"$base64": "/wA="}), "{r}");
    let r = c
        .call(json!({"type": "get", "store": "raw", "key": {"$base64": "/wA="}}))
        .await;
    assert_eq!(
        (&r["found"], &r["key"]),
        (&json!(true), &json!({"$base64": "/wA="})),
        "{r}"
    );
    let r = c
        .call(json!({"type": "incr", "store": "raw", "key_base64": "/wA="}))
        .await;
    assert_eq!(r["value"], 8);
    let r = c
        .call(json!({"type": "get", "store": "raw", "key": "k", "key_base64": "aw=="}))
        .await;
    assert_eq!(r["code"], "invalid_field");
    let r = c
        .call(json!({"type": "delete", "store": "raw", "key_base64": "/wA="}))
        .await;
    assert_eq!(r["success"], true);
    t.server.shutdown().await;
}

#[tokio::test]
async fn content_round_trip_and_dedup() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    let doc = json!({"title": "cairn", "tags": ["kv", "store"]});
    let r = c.call(json!({"type": "store_content", "id": 1, "content": doc})).await;
    assert_eq!(r["type"], "store_content_response");
    assert_eq!((&r["algorithm"], &r["stored"]), (&json!("sha256"), &json!(true)));
    let compact = serde_json::to_vec(&doc).unwrap();
    assert_eq!(r["size"], compact.len());
    let hash = r["hash"].as_str().unwrap().to_owned();
    assert_eq!(hash.len(), 64);

    let again = c.call(json!({"type": "store_content", "content": doc})).await;
    assert_eq!(
        (&again["hash"], &again["stored"]),
        (&json!(hash), &json!(false)),
        "identical content is deduplicated"
    );

    let r = c.call(json!({"type": "get_content", "hash": hash})).await;
    assert_eq!(r["type"], "get_content_response");
    assert_eq!((&r["found"], &r["content"]), (&json!(true), &doc));
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&compact);
    assert_eq!(r["content_base64"], b64);

    // Bytes with SHA-1, the seed's algorithm: a known answer.
    let r = c
        .call(json!({"type": "store_content", "content_base64": "YWJj", "algorithm": "sha1"}))
        .await;
    assert_eq!(r["hash"], "a9993e364706816aba3e25717850c26c9cd0d89d");
    let r = c
        .call(json!({"type": "get_content", "hash": "a9993e364706816aba3e25717850c26c9cd0d89d"}))
        .await;
    assert_eq!(
        (&r["content_base64"], &r["content"]),
        (&json!("YWJj"), &json!(null)),
        "abc is not JSON"
    );

    let r = c.call(json!({"type": "get_content", "hash": "0".repeat(64)})).await;
    assert_eq!((&r["found"], &r["content"]), (&json!(false), &json!(null)));
    let r = c.call(json!({"type": "get_content", "hash": "xyz"})).await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("invalid_hash"))
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn answers_ping_and_accepts_json_in_binary_frames() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    c.ws.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let pong = tokio::time::timeout(support::WAIT, c.ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(pong, Message::Pong(b"hi".to_vec().into()));
    c.ws.send(Message::Binary(set("bin", json!(1)).to_string().into_bytes().into()))
        .await
        .unwrap();
    assert_eq!(c.recv().await["type"], "set_response");
    c.ws.send(Message::Binary(vec![0xff, 0xfe].into())).await.unwrap();
    assert_eq!(c.recv().await["code"], "invalid_message");
    t.server.shutdown().await;
}

#[tokio::test]
async fn messages_and_connections_show_in_metrics() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    c.call(set("m", json!(1))).await;
    c.call(set("m", json!(2))).await;
    c.call(json!({"type": "get"})).await;
    c.send_text("{").await;
    c.recv().await;
    let text = reqwest::get(format!("http://{}/metrics", t.addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        r#"cairn_requests_total{frontend="ws",route="set",status="200"} 2"#,
        r#"cairn_requests_total{frontend="ws",route="get",status="400"} 1"#,
        r#"cairn_requests_total{frontend="ws",route="invalid",status="400"} 1"#,
        r#"cairn_connections{frontend="ws"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn pipelined_writes_commit_in_request_order() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    for i in 0..200 {
        c.send(json!({"type": "incr", "id": i, "key": "n"})).await;
        if i % 50 == 49 {
            c.send(json!({"type": "bogus", "id": format!("e{i}")})).await;
        }
    }
    c.send(json!({"type": "get", "id": "last", "key": "n"})).await;
    let mut prev_rev = 0;
    for i in 0..200 {
        let r = c.recv().await;
        assert_eq!((&r["type"], &r["id"]), (&json!("incr_response"), &json!(i)), "{r}");
        assert_eq!(r["value"], i + 1, "increments apply in the order sent");
        let rev = r["revision"].as_u64().unwrap();
        assert!(rev > prev_rev);
        prev_rev = rev;
        if i % 50 == 49 {
            let e = c.recv().await;
            assert_eq!(
                (&e["code"], &e["id"]),
                (&json!("unknown_type"), &json!(format!("e{i}")))
            );
        }
    }
    let r = c.recv().await;
    assert_eq!(
        (&r["id"], &r["value"], &r["revision"]),
        (&json!("last"), &json!(200), &json!(prev_rev))
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn pipelining_large_writes_is_bounded_but_complete() {
    // Only about two of these fit in the in-flight budget (twice max_body_bytes).
    let t = start_with(|c, _| {
        c.max_body_bytes = 4096;
        c.max_value_bytes = 4096;
    })
    .await;
    let mut c = Client::connect(t.addr, None).await;
    let big = "b".repeat(3000);
    for i in 0..60 {
        c.send(json!({"type": "set", "id": i, "key": format!("k{i}"), "value": big}))
            .await;
    }
    c.send(json!({"type": "list", "id": "l", "keys_only": true, "limit": 1000}))
        .await;
    for i in 0..60 {
        let r = c.recv().await;
        assert_eq!((&r["id"], &r["success"]), (&json!(i), &json!(true)), "{r}");
    }
    let r = c.recv().await;
    assert_eq!((&r["id"], r["items"].as_array().unwrap().len()), (&json!("l"), 60));
    t.server.shutdown().await;
}
