//! Store routes and batches over real HTTP.

mod common;

use common::{TestServer, assert_error};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_clear_drop() {
    let t = TestServer::start().await;
    let spec = json!({"key_type": "int", "value_type": "string", "default_ttl": 60, "history": 2});
    let (s, c) = t.put("/v1/stores/people", &spec).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(c["created"], true);
    assert_eq!(c["store"]["name"], "people");
    let (s, again) = t.put("/v1/stores/people", &spec).await;
    assert_eq!((s, &again["created"]), (200, &json!(false)));
    assert_error(
        &t.put("/v1/stores/people", &json!({"value_type": "int"})).await,
        409,
        "store_exists",
    );

    let (s, g) = t.get("/v1/stores/people").await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            g["name"].as_str(),
            g["key_type"].as_str(),
            g["value_type"].as_str(),
            g["history"].as_u64()
        ),
        (Some("people"), Some("int"), Some("string"), Some(2))
    );
    assert_eq!(g["default_ttl"].as_f64(), Some(60.0));

    let (_, list) = t.get("/v1/stores").await;
    let names: Vec<_> = list["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "people"]);

    // Int keys sort numerically, negatives first.
    for k in ["10", "-3", "2"] {
        let (s, p) = t
            .put(&format!("/v1/stores/people/keys/{k}"), &json!(format!("n{k}")))
            .await;
        assert_eq!(s, 200, "{p}");
    }
    let (_, page) = t.get("/v1/stores/people/keys").await;
    let keys: Vec<_> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["-3", "2", "10"]);
    assert!(page["items"][0]["expires_at"].is_u64(), "default_ttl applies");

    let (s, cl) = t.post("/v1/stores/people/clear", &json!({})).await;
    assert_eq!((s, cl["removed"].as_u64()), (200, Some(3)));
    assert_eq!(t.get("/v1/stores/people/keys").await.1["items"], json!([]));

    let (s, d) = t.delete("/v1/stores/people").await;
    assert_eq!((s, &d["success"]), (200, &json!(true)));
    assert_error(&t.get("/v1/stores/people").await, 404, "unknown_store");
    assert_error(&t.delete("/v1/stores/people").await, 404, "unknown_store");
    assert!(
        t.delete("/v1/stores/default").await.0 >= 400,
        "default cannot be dropped"
    );
    assert!(t.db().store_spec("default").is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_creates_a_default_store_and_names_must_match() {
    let t = TestServer::start().await;
    let (s, c) = common::send(t.client.put(t.url("/v1/stores/plain"))).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        (c["store"]["key_type"].as_str(), c["store"]["value_type"].as_str()),
        (Some("string"), Some("any"))
    );
    assert_error(&t.put("/v1/stores/a", &json!({"name": "b"})).await, 400, "invalid_spec");
    assert_error(
        &t.put("/v1/stores/a", &json!({"colour": "red"})).await,
        400,
        "invalid_spec",
    );
    assert_error(&t.put("/v1/stores/bad%20name!", &json!({})).await, 400, "invalid_spec");
    assert!(t.db().store_spec("a").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_applies_all_or_nothing() {
    let t = TestServer::start().await;
    let (_, p) = t.put("/v1/stores/default/keys/balance", &json!(100)).await;
    let rev = p["revision"].as_u64().unwrap();
    let req = json!({
        "checks": [{"store": "default", "key": "balance", "revision": rev},
                   {"store": "default", "key": "lock", "revision": null}],
        "ops": [{"op": "put", "store": "default", "key": "balance", "value": 70},
                {"op": "incr", "store": "default", "key": "spent", "by": 30},
                {"op": "put", "store": "default", "key": "receipt", "value": {"amount": 30}, "ttl": 60},
                {"op": "delete", "store": "default", "key": "pending"}]
    });
    let (s, b) = t.post("/v1/batch", &req).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["success"], true);
    let brev = b["revision"].as_u64().unwrap();
    assert!(brev > rev);
    for (k, v) in [
        ("balance", json!(70)),
        ("spent", json!(30)),
        ("receipt", json!({"amount": 30})),
    ] {
        let (_, e) = t.get(&format!("/v1/stores/default/keys/{k}")).await;
        assert_eq!((e["value"].clone(), e["revision"].as_u64()), (v, Some(brev)), "{k}");
    }
    assert!(t.get("/v1/stores/default/keys/receipt").await.1["expires_at"].is_u64());

    // The same checks now fail: the first one (stale revision) is reported, nothing is written.
    let (s, f) = t.post("/v1/batch", &req).await;
    assert_eq!(s, 409, "{f}");
    assert_eq!(
        (f["success"].clone(), f["failed_check"].as_u64()),
        (json!(false), Some(0))
    );
    assert_eq!(t.get("/v1/stores/default/keys/spent").await.1["value"], 30);
    assert_eq!(t.db().revision(), brev);

    let (s, f) = t
        .post(
            "/v1/batch",
            &json!({"checks": [{"store": "default", "key": "balance", "revision": brev},
                               {"store": "default", "key": "balance", "revision": null}],
                    "ops": [{"op": "delete", "store": "default", "key": "balance"}]}),
        )
        .await;
    assert_eq!((s, f["failed_check"].as_u64()), (409, Some(1)));
    assert_eq!(f["current_revision"], brev);
    assert_eq!(t.get("/v1/stores/default/keys/balance").await.0, 200);

    // A key that must have a revision but is absent: current_revision null.
    let (s, f) = t
        .post(
            "/v1/batch",
            &json!({"checks": [{"key": "nobody", "revision": 1}], "ops": []}),
        )
        .await;
    assert_eq!(s, 409);
    assert_eq!(f.get("current_revision"), Some(&json!(null)), "{f}");
    // `revision` is required: forgetting it does not mean "absent".
    let (s, e) = t
        .post("/v1/batch", &json!({"checks": [{"key": "nobody"}], "ops": []}))
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_json")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("revision"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_stores_refuse_values_of_the_wrong_type() {
    let t = TestServer::start().await;
    t.put("/v1/stores/counts", &json!({"value_type": "int"})).await;
    t.put(
        "/v1/stores/docs",
        &json!({"schema": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}}}),
    )
    .await;
    assert_eq!(t.put("/v1/stores/counts/keys/a", &json!(5)).await.0, 200);
    let bad = t.put("/v1/stores/counts/keys/a", &json!("five")).await;
    assert_error(&bad, 400, "invalid_value");
    let msg = bad.1["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("counts") && msg.contains("\"a\""),
        "the message names store and key: {msg}"
    );
    assert_eq!(t.get("/v1/stores/counts/keys/a").await.1["value"], 5);

    assert_eq!(t.put("/v1/stores/docs/keys/d", &json!({"title": "ok"})).await.0, 200);
    assert_error(
        &t.put("/v1/stores/docs/keys/d", &json!({"title": 7})).await,
        400,
        "invalid_value",
    );
    assert_error(
        &t.put("/v1/stores/docs/keys/e", &json!({"body": "no title"})).await,
        400,
        "invalid_value",
    );
    assert_eq!(t.head("/v1/stores/docs/keys/e").await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_incr_with_ttl_sets_an_expiry() {
    let t = TestServer::start().await;
    let (s, b) = t
        .post(
            "/v1/batch",
            &json!({"ops": [{"op": "incr", "key": "visits", "by": 2, "ttl": 600}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (_, e) = t.get("/v1/stores/default/keys/visits").await;
    assert_eq!(e["value"], 2);
    let left = e["expires_at"].as_u64().unwrap() - e["updated_at"].as_u64().unwrap();
    assert!((599_000..=601_000).contains(&left), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_counts_live_keys_under_a_prefix() {
    let t = TestServer::start().await;
    for k in ["a:1", "a:2", "b:1"] {
        let (s, _) = t.put(&format!("/v1/stores/default/keys/{k}"), &json!(1)).await;
        assert_eq!(s, 200);
    }
    let (s, c) = t.get("/v1/stores/default/count").await;
    assert_eq!((s, &c), (200, &json!({"store": "default", "count": 3})));
    let (_, c) = t.get("/v1/stores/default/count?prefix=a:").await;
    assert_eq!(c["count"], 2);
    t.delete("/v1/stores/default/keys/a:1").await;
    let (_, c) = t.get("/v1/stores/default/count?prefix=a:").await;
    assert_eq!(c["count"], 1);
    assert_error(&t.get("/v1/stores/nope/count").await, 404, "unknown_store");
    assert_error(
        &t.get("/v1/stores/default/count?limit=3").await,
        400,
        "invalid_argument",
    );
    t.put("/v1/stores/ints", &json!({"key_type": "int"})).await;
    assert_error(&t.get("/v1/stores/ints/count?prefix=1").await, 400, "invalid_argument");
}
