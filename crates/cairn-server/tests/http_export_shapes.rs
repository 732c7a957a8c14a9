//! What `export` and `import` over HTTP rely on: keys of `bytes` stores
//! that are not UTF-8 come back as `{"$base64": ...}` everywhere (answers,
//! entries, lists, events) and are accepted that way by `/v1/batch`; a batch
//! put sets an exact `expires_at`, or none at all (`null`) even in a store
//! with a `default_ttl`.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_are_not_utf8_are_base64_everywhere() {
    let t = TestServer::start().await;
    let (s, _) = t
        .put("/v1/stores/by", &json!({"key_type": "bytes", "value_type": "any"}))
        .await;
    assert_eq!(s, 201);
    let mut watch = t.watch("?store=by", None).await;
    let b64 = json!({"$base64": "AP+A"});
    let (s, put) = t.put("/v1/stores/by/keys/%00%FF%80", &json!(1)).await;
    assert_eq!((s, &put["key"]), (200, &b64), "{put}");
    let (_, e) = t.get("/v1/stores/by/keys/%00%FF%80").await;
    assert_eq!(e["key"], b64, "{e}");
    let (_, list) = t.get("/v1/stores/by/keys").await;
    assert_eq!(list["items"][0]["key"], b64, "{list}");
    let ev = watch.next_event().await.json();
    assert_eq!((&ev["type"], &ev["key"]), (&json!("created"), &b64), "{ev}");
    // Prefix, start and end take raw percent-encoded bytes too.
    let (_, list) = t.get("/v1/stores/by/keys?prefix=%00%FF").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, c) = t.get("/v1/stores/by/count?prefix=%00%FF").await;
    assert_eq!(c["count"], 1, "{c}");
    let (_, list) = t.get("/v1/stores/by/keys?start=%00%FF&end=%00%FF%81").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, list) = t.get("/v1/stores/by/keys?end=%00%FF%80").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "end is exclusive: {list}");
    // UTF-8 keys of a bytes store stay strings.
    let (_, put) = t.put("/v1/stores/by/keys/plain", &json!(2)).await;
    assert_eq!(put["key"], "plain");

    // A batch takes the key back in the same form.
    let (s, b) = t
        .post(
            "/v1/batch",
            &json!({"checks": [{"store": "by", "key": {"$base64": "AP+A"}, "revision": e["revision"]}],
                    "ops": [{"op": "put", "store": "by", "key": {"$base64": "wyg="}, "value": 3}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, e) = t.get("/v1/stores/by/keys/%C3%28").await;
    assert_eq!(
        (s, &e["key"], &e["value"]),
        (200, &json!({"$base64": "wyg="}), &json!(3))
    );
    let bad = t
        .post(
            "/v1/batch",
            &json!({"ops": [{"op": "put", "store": "by", "key": {"$base64": "!!"}, "value": 1}]}),
        )
        .await;
    assert_error(&bad, 400, "invalid_json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_expires_at_is_exact_and_null_means_never() {
    let t = TestServer::start().await;
    let (s, _) = t.put("/v1/stores/dtt", &json!({"default_ttl": 3600})).await;
    assert_eq!(s, 201);
    let at = 4_000_000_000_000u64;
    let (s, b) = t
        .post(
            "/v1/batch",
            &json!({"ops": [
                {"op": "put", "store": "dtt", "key": "forever", "value": 1, "expires_at": null},
                {"op": "put", "store": "dtt", "key": "exact", "value": 2, "expires_at": at},
                {"op": "put", "store": "dtt", "key": "default", "value": 3}
            ]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, e) = t.get("/v1/stores/dtt/keys/forever").await;
    assert!(
        e.get("expires_at").is_none(),
        "no default TTL for an explicit null: {e}"
    );
    let (_, e) = t.get("/v1/stores/dtt/keys/exact").await;
    assert_eq!(e["expires_at"], at, "{e}");
    let (_, e) = t.get("/v1/stores/dtt/keys/default").await;
    assert!(
        e["expires_at"].as_u64().is_some(),
        "absent: the store's default TTL: {e}"
    );

    let both = t
        .post(
            "/v1/batch",
            &json!({"ops": [{"op": "put", "store": "dtt", "key": "x", "value": 1, "ttl": 5, "expires_at": at}]}),
        )
        .await;
    assert_error(&both, 400, "invalid_ttl");
    assert_error(&t.get("/v1/stores/dtt/keys/x").await, 404, "not_found");
    let far = t
        .post(
            "/v1/batch",
            &json!({"ops": [{"op": "put", "store": "dtt", "key": "x", "value": 1, "expires_at": u64::MAX}]}),
        )
        .await;
    assert_error(&far, 400, "invalid_ttl");
    assert!(
        far.1["error"]["message"].as_str().unwrap().contains("year 9999"),
        "{}",
        far.1
    );
}
