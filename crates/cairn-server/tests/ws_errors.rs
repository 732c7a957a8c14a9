//! Bad messages, limits, auth and connection lifecycle of the WebSocket protocol.

#[path = "ws_support/mod.rs"]
mod support;

use futures_util::StreamExt as _;
use serde_json::json;
use support::{Client, set, start, start_with};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_stays_usable() {
    let t = start_with(|c, _| {
        c.max_key_bytes = 16;
        c.max_value_bytes = 64;
        c.max_json_depth = 8;
        c.max_body_bytes = 4096;
    })
    .await;
    let mut c = Client::connect(t.addr, None).await;
    let deep = format!(
        r#"{{"type":"set","id":"deep","key":"k","value":{}1{}}}"#,
        "[".repeat(20),
        "]".repeat(20)
    );
    let big = format!(r#"{{"type":"set","key":"k","value":"{}"}}"#, "x".repeat(5000));
    let cases: Vec<(String, &str, Option<serde_json::Value>, &str)> = vec![
        ("not json".into(), "invalid_json", None, "not valid JSON"),
        ("[1,2]".into(), "invalid_message", None, "JSON object"),
        ("42".into(), "invalid_message", None, "JSON object"),
        (r#"{"id":1}"#.into(), "missing_field", Some(json!(1)), "\"type\""),
        (
            r#"{"type":7,"id":2}"#.into(),
            "invalid_field",
            Some(json!(2)),
            "\"type\"",
        ),
        (
            r#"{"type":"frobnicate","id":3}"#.into(),
            "unknown_type",
            Some(json!(3)),
            "frobnicate",
        ),
        (
            r#"{"type":"get","id":4}"#.into(),
            "missing_field",
            Some(json!(4)),
            "\"key\"",
        ),
        (
            r#"{"type":"get","id":5,"key":{"a":1}}"#.into(),
            "invalid_field",
            Some(json!(5)),
            "\"key\"",
        ),
        (
            r#"{"type":"get","id":6,"key":"k","store":5}"#.into(),
            "invalid_field",
            Some(json!(6)),
            "\"store\"",
        ),
        (
            r#"{"type":"set","id":7,"key":"k"}"#.into(),
            "missing_field",
            Some(json!(7)),
            "\"value\"",
        ),
        (
            r#"{"type":"set","id":8,"key":"k","value":1,"ttl":"soon"}"#.into(),
            "invalid_field",
            Some(json!(8)),
            "ttl",
        ),
        (
            r#"{"type":"set","key":"k","value":1,"if_revision":-3}"#.into(),
            "invalid_field",
            None,
            "if_revision",
        ),
        (
            r#"{"type":"set","key":"k","value":1,"if_absent":"yes"}"#.into(),
            "invalid_field",
            None,
            "if_absent",
        ),
        (
            r#"{"type":"get","key":"0123456789abcdefX"}"#.into(),
            "key_too_large",
            None,
            "limit of 16",
        ),
        (
            format!(r#"{{"type":"set","key":"k","value":"{}"}}"#, "v".repeat(100)),
            "value_too_large",
            None,
            "limit of 64",
        ),
        (deep, "too_deep", None, "limit of 8"),
        (big, "message_too_large", None, "limit of 4096"),
        (
            r#"{"type":"get","key":"k","store":"nope"}"#.into(),
            "unknown_store",
            None,
            "\"nope\"",
        ),
        (r#"{"type":"get","key":""}"#.into(), "invalid_key", None, "empty"),
        (
            r#"{"type":"incr","key":"k","by":"2"}"#.into(),
            "invalid_field",
            None,
            "\"by\"",
        ),
        (
            r#"{"type":"list","limit":"ten"}"#.into(),
            "invalid_field",
            None,
            "\"limit\"",
        ),
        (
            r#"{"type":"list","cursor":"@@@"}"#.into(),
            "invalid_cursor",
            None,
            "cursor",
        ),
        (
            r#"{"type":"batch","checks":[]}"#.into(),
            "missing_field",
            None,
            "\"ops\"",
        ),
        (
            r#"{"type":"batch","ops":[{"key":"a"}]}"#.into(),
            "missing_field",
            None,
            "ops[0].op",
        ),
        (
            r#"{"type":"batch","ops":[{"op":"put","key":"a"}]}"#.into(),
            "missing_field",
            None,
            "ops[0].value",
        ),
        (r#"{"type":"batch","ops":[5]}"#.into(), "invalid_field", None, "ops[0]"),
        (
            r#"{"type":"batch","checks":[{"key":"a"}],"ops":[]}"#.into(),
            "missing_field",
            None,
            "checks[0].revision",
        ),
        (
            r#"{"type":"store_content","content_base64":"%%"}"#.into(),
            "invalid_field",
            None,
            "content_base64",
        ),
        (
            r#"{"type":"store_content","content":1,"algorithm":"md5"}"#.into(),
            "invalid_field",
            None,
            "md5",
        ),
        (r#"{"type":"get_content"}"#.into(), "missing_field", None, "\"hash\""),
        // A misspelt condition must not turn into an unconditional write.
        (
            r#"{"type":"put","id":9,"key":"k","value":5,"if_absnt":true}"#.into(),
            "unknown_field",
            Some(json!(9)),
            "\"if_absnt\"",
        ),
        (
            r#"{"type":"batch","ops":[{"op":"put","key":"k","value":1,"if_absent":true}]}"#.into(),
            "unknown_field",
            None,
            "ops[0]",
        ),
        (
            r#"{"type":"batch","checks":[{"key":"k","revision":null,"rev":3}],"ops":[]}"#.into(),
            "unknown_field",
            None,
            "\"rev\"",
        ),
        (
            r#"{"type":"list","limit":0}"#.into(),
            "invalid_field",
            None,
            "1..=10000",
        ),
        (
            r#"{"type":"subscribe","key":"k","prefix":"z"}"#.into(),
            "invalid_field",
            None,
            "not both",
        ),
        (
            r#"{"type":"set","key":"k","value":123456789012345678901234567890}"#.into(),
            "invalid_value",
            None,
            "64 bits",
        ),
        (
            r#"{"type":"get_content","hash":"abc"}"#.into(),
            "invalid_hash",
            None,
            "abc",
        ),
    ];
    for (text, code, id, mentions) in cases {
        c.send_text(text.clone()).await;
        let r = c.recv().await;
        assert_eq!(r["type"], "error", "{text} -> {r}");
        assert_eq!(r["code"], code, "{text} -> {r}");
        assert_eq!(r.get("id"), id.as_ref(), "{text} -> {r}");
        let msg = r["message"].as_str().unwrap();
        assert!(
            msg.contains(mentions),
            "{text}: message {msg:?} should mention {mentions:?}"
        );
        // Still usable after every error.
        let ok = c.call(json!({"type": "contains", "key": "k"})).await;
        assert_eq!(ok["type"], "contains_response", "after {text}");
    }
    // A set that hit a limit wrote nothing.
    assert_eq!(c.call(json!({"type": "get", "key": "k"})).await["found"], false);
    t.server.shutdown().await;
}

#[tokio::test]
async fn engine_errors_map_to_their_codes() {
    let t = start().await;
    let db = t.server.db().clone();
    let spec = cairn_core::StoreSpec::new("nums").value_type(cairn_core::ValueType::Int);
    tokio::task::spawn_blocking(move || db.create_store(spec))
        .await
        .unwrap()
        .unwrap();
    let mut c = Client::connect(t.addr, None).await;
    let r = c
        .call(json!({"type": "set", "id": "x", "store": "nums", "key": "a", "value": "text"}))
        .await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("invalid_value"), &json!("x")));
    c.call(set("s", json!("text"))).await;
    assert_eq!(
        c.call(json!({"type": "incr", "key": "s"})).await["code"],
        "not_a_number"
    );
    c.call(set("max", json!(u64::MAX))).await;
    assert_eq!(c.call(json!({"type": "incr", "key": "max"})).await["code"], "overflow");
    t.server.shutdown().await;
}

fn token_file(dir: &std::path::Path) -> std::path::PathBuf {
    let p = dir.join("tokens");
    std::fs::write(&p, "reader read\nwriter write\napp-writer write app-*\n").unwrap();
    p
}

#[tokio::test]
async fn upgrade_needs_a_token_when_auth_is_on() {
    let t = start_with(|c, dir| c.auth_token_file = Some(token_file(dir))).await;
    let url = format!("ws://{}/v1/ws", t.addr);
    for req in [url.clone(), format!("{url}?token=wrong")] {
        match tokio_tungstenite::connect_async(req.as_str()).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 401, "{req}"),
            other => panic!("{req}: expected 401, got {:?}", other.map(|_| ())),
        }
    }
    let mut bad_header = url.as_str().into_client_request().unwrap();
    bad_header
        .headers_mut()
        .insert("authorization", "Bearer nope".parse().unwrap());
    assert!(tokio_tungstenite::connect_async(bad_header).await.is_err());

    // The query parameter works for browsers, the header for everyone else.
    let (ws, _) = tokio_tungstenite::connect_async(format!("{url}?token=writer"))
        .await
        .unwrap();
    let mut w = Client { ws };
    assert_eq!(w.call(set("k", json!(1))).await["success"], true);
    let mut r = Client::connect(t.addr, Some("reader")).await;
    assert_eq!(r.call(json!({"type": "get", "key": "k"})).await["value"], 1);
    t.server.shutdown().await;
}

#[tokio::test]
async fn roles_and_store_scopes_are_checked_per_message() {
    let t = start_with(|c, dir| c.auth_token_file = Some(token_file(dir))).await;
    let mut r = Client::connect(t.addr, Some("reader")).await;
    for req in [
        set("k", json!(1)),
        json!({"type": "put", "key": "k", "value": 1}),
        json!({"type": "delete", "key": "k"}),
        json!({"type": "clear"}),
        json!({"type": "incr", "key": "k"}),
        json!({"type": "batch", "ops": [{"op": "delete", "key": "k"}]}),
        json!({"type": "store_content", "content": 1}),
    ] {
        let resp = r.call(req.clone()).await;
        assert_eq!(
            (resp["type"].as_str(), resp["code"].as_str()),
            (Some("error"), Some("forbidden")),
            "{req}"
        );
        assert!(resp["message"].as_str().unwrap().contains("may not write"), "{resp}");
    }
    // Reads are fine, and the connection stayed open through the refusals.
    assert_eq!(r.call(json!({"type": "get", "key": "k"})).await["found"], false);
    assert_eq!(r.call(json!({"type": "subscribe"})).await["type"], "subscribe_response");

    // A write token scoped to app-* can write there but not to default, nor watch every store.
    let db = t.server.db().clone();
    tokio::task::spawn_blocking(move || db.create_store(cairn_core::StoreSpec::new("app-1")))
        .await
        .unwrap()
        .unwrap();
    let mut a = Client::connect(t.addr, Some("app-writer")).await;
    assert_eq!(
        a.call(json!({"type": "set", "store": "app-1", "key": "k", "value": 1}))
            .await["success"],
        true
    );
    let resp = a.call(json!({"type": "set", "id": 1, "key": "k", "value": 1})).await;
    assert_eq!((resp["code"].as_str(), &resp["id"]), (Some("forbidden"), &json!(1)));
    assert!(resp["message"].as_str().unwrap().contains("\"default\""), "{resp}");
    assert_eq!(a.call(json!({"type": "subscribe"})).await["code"], "forbidden");
    assert_eq!(
        a.call(json!({"type": "subscribe", "store": "app-1"})).await["type"],
        "subscribe_response"
    );
    let resp = a
        .call(
            json!({"type": "batch", "ops": [{"op": "put", "store": "app-1", "key": "x", "value": 1},
                                             {"op": "put", "key": "y", "value": 1}]}),
        )
        .await;
    assert_eq!(
        resp["code"], "forbidden",
        "one op outside the scope refuses the whole batch"
    );
    t.server.shutdown().await;
}

async fn expect_close(c: &mut Client) -> CloseCode {
    loop {
        match tokio::time::timeout(support::WAIT, c.ws.next())
            .await
            .expect("no close within the wait")
        {
            Some(Ok(Message::Close(Some(f)))) => return f.code,
            Some(Ok(Message::Text(_) | Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn idle_connections_close_unless_subscribed() {
    // A heartbeat above the idle timeout is brought under half of it, so the
    // subscriber also gets `progress` pushes; they are skipped below.
    let t = start_with(|c, _| {
        c.idle_timeout_secs = 1;
        c.heartbeat_ms = 60_000;
    })
    .await;
    let mut idle = Client::connect(t.addr, None).await;
    let mut watching = Client::connect(t.addr, None).await;
    assert_eq!(
        watching.call(json!({"type": "subscribe"})).await["type"],
        "subscribe_response"
    );
    assert_eq!(expect_close(&mut idle).await, CloseCode::Normal);
    // Well past two idle periods, the subscribed connection is still open and answers.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    watching.send(json!({"type": "contains", "key": "k"})).await;
    let (r, skipped) = watching.recv_until("contains_response").await;
    assert_eq!(r["type"], "contains_response");
    assert!(skipped.iter().all(|m| m["type"] == "progress"), "{skipped:?}");
    assert!(!skipped.is_empty(), "no heartbeat within 2.5 s of a 1 s idle timeout");
    t.server.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_cleanly() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    assert_eq!(c.call(json!({"type": "subscribe"})).await["type"], "subscribe_response");
    let state = t.server.state().clone();
    state.shutdown.cancel();
    assert_eq!(expect_close(&mut c).await, CloseCode::Away);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_client_that_stops_reading_never_blocks_writers() {
    let t = start_with(|c, _| c.durability = cairn_core::Durability::Relaxed).await;
    let mut stalled = Client::connect(t.addr, None).await;
    assert_eq!(
        stalled.call(json!({"type": "subscribe"})).await["type"],
        "subscribe_response"
    );
    // Values big enough that the stalled socket's buffers fill long before the end.
    let value = json!("v".repeat(128 * 1024));
    let mut w = Client::connect(t.addr, None).await;
    let mut last = 0;
    for i in 0..200 {
        let r = w
            .call(json!({"type": "set", "key": format!("k{i}"), "value": value}))
            .await;
        assert_eq!(r["success"], true);
        last = r["revision"].as_u64().unwrap();
    }
    // The stalled client then catches up on everything, in order.
    let mut prev = 0;
    let mut n = 0;
    while prev < last {
        let m = stalled.recv().await;
        if m["type"] == "value_changed" {
            let rev = m["revision"].as_u64().unwrap();
            assert!(rev > prev, "revision order");
            prev = rev;
            n += 1;
        }
    }
    assert_eq!(n, 200);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_message_over_the_hard_cap_closes_with_1009() {
    // Over max_body_bytes: an error reply. Far over it (the WebSocket layer's cap): a close.
    let t = start_with(|c, _| c.max_body_bytes = 4096).await;
    let mut c = Client::connect(t.addr, None).await;
    c.send_text(format!(r#"{{"type":"set","key":"k","value":"{}"}}"#, "x".repeat(5000)))
        .await;
    assert_eq!(c.recv().await["code"], "message_too_large");
    c.send_text(format!(
        r#"{{"type":"set","key":"k","value":"{}"}}"#,
        "x".repeat(2 << 20)
    ))
    .await;
    assert_eq!(expect_close(&mut c).await, CloseCode::Size);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_client_close_is_answered() {
    let t = start().await;
    let mut c = Client::connect(t.addr, None).await;
    c.call(set("k", json!(1))).await;
    c.ws.close(None).await.unwrap();
    match tokio::time::timeout(support::WAIT, c.ws.next()).await.unwrap() {
        Some(Ok(Message::Close(_))) | None => {}
        other => panic!("expected the closing handshake to complete, got {other:?}"),
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn without_auth_only_local_browser_origins_may_connect() {
    let t = start().await;
    let url = format!("ws://{}/v1/ws", t.addr);
    let with_origin = |o: &str| {
        let mut req = url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("origin", o.parse().unwrap());
        req
    };
    match tokio_tungstenite::connect_async(with_origin("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let (ws, _) = tokio_tungstenite::connect_async(with_origin("http://localhost:5173"))
        .await
        .unwrap();
    let mut c = Client { ws };
    assert_eq!(
        c.call(json!({"type": "contains", "key": "k"})).await["type"],
        "contains_response"
    );
    t.server.shutdown().await;

    // With tokens configured, the token is what counts, whatever the origin.
    let t = start_with(|c, dir| c.auth_token_file = Some(token_file(dir))).await;
    let mut req = format!("ws://{}/v1/ws?token=reader", t.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("origin", "https://app.example".parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut c = Client { ws };
    assert_eq!(
        c.call(json!({"type": "contains", "key": "k"})).await["type"],
        "contains_response"
    );
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_open_websockets_releases_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let server = cairn_server::start(cairn_server::ServerConfig::for_tests(dir.path()))
        .await
        .unwrap();
    let mut watching = Client::connect(server.http_addr.unwrap(), None).await;
    let mut idle = Client::connect(server.http_addr.unwrap(), None).await;
    assert_eq!(
        watching.call(json!({"type": "subscribe"})).await["type"],
        "subscribe_response"
    );
    assert_eq!(idle.call(set("a", json!(1))).await["success"], true);
    server.shutdown().await;
    // Every connection task lets go of the engine: the data dir opens again.
    // (Upgraded connections are not among what `Server::shutdown` awaits, so
    // this may take the few milliseconds a task needs to send its close frame.)
    let deadline = tokio::time::Instant::now() + support::WAIT;
    let db = loop {
        match cairn_core::Db::open(dir.path()) {
            Ok(db) => break db,
            Err(cairn_core::Error::Locked { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("data dir still held after shutdown: {e}"),
        }
    };
    assert_eq!(db.get("default", "a").unwrap().unwrap().value, json!(1).into());
}
