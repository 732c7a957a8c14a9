//! The WebSocket protocol's socket-free layer: `dispatch` and `Session`.

#[path = "ws_support/mod.rs"]
mod support;

use cairn_server::auth::{Auth, Principal};
use cairn_server::http::ws::{Session, dispatch};
use serde_json::json;
use support::start;

#[tokio::test]
async fn dispatch_answers_without_a_socket() {
    let t = start().await;
    let state = t.server.state().clone();
    let admin = Principal::anonymous_admin();
    let r = dispatch(
        &state,
        &admin,
        json!({"type": "set", "id": 1, "key": "k", "value": [1, 2]}),
    )
    .await;
    assert_eq!(
        (r["type"].as_str(), &r["id"], &r["success"]),
        (Some("set_response"), &json!(1), &json!(true))
    );
    let r = dispatch(&state, &admin, json!({"type": "get", "key": "k"})).await;
    assert_eq!(r["value"], json!([1, 2]));
    let r = dispatch(&state, &admin, json!("get")).await;
    assert_eq!(r["code"], "invalid_message");
    let r = dispatch(&state, &admin, json!({"type": "subscribe", "id": 2})).await;
    assert_eq!((r["code"].as_str(), &r["id"]), (Some("unsupported"), &json!(2)));

    let reader = Auth::parse("r read\n").unwrap().authenticate(Some("r")).unwrap();
    let r = dispatch(&state, &reader, json!({"type": "delete", "key": "k"})).await;
    assert_eq!(r["code"], "forbidden");
    assert_eq!(
        dispatch(&state, &reader, json!({"type": "contains", "key": "k"})).await["exists"],
        true
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn session_pushes_follow_the_subscribe_response() {
    let t = start().await;
    let (session, mut pushes) = Session::new(t.server.state().clone(), Principal::anonymous_admin());
    let r = session.handle(r#"{"type":"subscribe","id":"s","key":"k"}"#).await;
    assert_eq!(r["type"], "subscribe_response");
    let sub = r["subscription"].as_u64().unwrap();
    assert!(session.is_active(sub) && session.has_subscriptions());
    let w = session.handle(r#"{"type":"set","key":"k","value":"v"}"#).await;
    let p = tokio::time::timeout(support::WAIT, pushes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(p.subscription, sub);
    assert_eq!(
        (&p.message["event"], &p.message["revision"]),
        (&json!("created"), &w["revision"])
    );
    let r = session
        .handle(&format!(r#"{{"type":"unsubscribe","subscription":{sub}}}"#))
        .await;
    assert_eq!(r["success"], true);
    assert!(!session.is_active(sub) && !session.has_subscriptions());
    t.server.shutdown().await;
}
