//! Bearer tokens over HTTP: 401 without or with a bad token, 403 out of
//! role or scope, `/v1/health` open.

mod common;

use common::{TestServer, assert_error, send};
use serde_json::json;

async fn server() -> (TestServer, tempfile::TempDir) {
    let tokens = tempfile::tempdir().unwrap();
    let file = tokens.path().join("tokens");
    std::fs::write(
        &file,
        "admin-tok admin\nreader read\nwriter write\napp-writer write app-*\n",
    )
    .unwrap();
    let t = TestServer::start_with(|c| c.auth_token_file = Some(file)).await;
    (t, tokens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_unknown_tokens_are_401_and_health_is_open() {
    let (t, _keep) = server().await;
    let (s, h) = t.get("/v1/health").await;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")));

    let none = t.get("/v1/stores/default/keys/k").await;
    assert_error(&none, 401, "unauthorized");
    let resp = t.client.get(t.url("/v1/stores")).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    let bad = send(t.client.get(t.url("/v1/stores")).bearer_auth("guess")).await;
    assert_error(&bad, 401, "unauthorized");
    let basic = send(t.client.get(t.url("/v1/stores")).basic_auth("admin-tok", Some("x"))).await;
    assert_error(&basic, 401, "unauthorized");
    let write = send(t.client.put(t.url("/v1/stores/default/keys/k")).json(&json!(1))).await;
    assert_error(&write, 401, "unauthorized");
    assert!(t.db().get("default", "k").unwrap().is_none());
    assert_error(&t.get("/v1/watch").await, 401, "unauthorized");
    // A browser's EventSource cannot set headers: `?token=` instead.
    assert_error(&t.get("/v1/watch?token=guess").await, 401, "unauthorized");
    let resp = t.client.get(t.url("/v1/watch?token=reader")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_store_scopes() {
    let (t, _keep) = server().await;
    let put = |tok: &str, store: &str| {
        t.client
            .put(t.url(&format!("/v1/stores/{store}/keys/k")))
            .bearer_auth(tok)
            .json(&json!("v"))
    };
    // A read token reads but cannot write.
    assert_eq!(
        send(t.client.get(t.url("/v1/stores/default/keys/k")).bearer_auth("reader"))
            .await
            .0,
        404
    );
    assert_error(&send(put("reader", "default")).await, 403, "forbidden");
    assert!(t.db().get("default", "k").unwrap().is_none());
    // A write token writes but cannot create stores.
    assert_eq!(send(put("writer", "default")).await.0, 200);
    let create = |tok: &str, store: &str| t.client.put(t.url(&format!("/v1/stores/{store}"))).bearer_auth(tok);
    assert_error(&send(create("writer", "app-one")).await, 403, "forbidden");
    assert_eq!(send(create("admin-tok", "app-one")).await.0, 201);
    assert_eq!(send(create("admin-tok", "other")).await.0, 201);
    // A token scoped to app-* writes there and nowhere else.
    assert_eq!(send(put("app-writer", "app-one")).await.0, 200);
    let out = send(put("app-writer", "other")).await;
    assert_error(&out, 403, "forbidden");
    assert!(out.1["error"]["message"].as_str().unwrap().contains("\"other\""));
    assert!(t.db().get("other", "k").unwrap().is_none());
    // Non-store routes need a token for all stores.
    assert_error(
        &send(t.client.post(t.url("/v1/content")).bearer_auth("app-writer").body("x")).await,
        403,
        "forbidden",
    );
    assert_eq!(
        send(t.client.post(t.url("/v1/content")).bearer_auth("writer").body("x"))
            .await
            .0,
        201
    );
    let all = send(t.client.get(t.url("/v1/watch")).bearer_auth("app-writer")).await;
    assert_error(&all, 403, "forbidden");
    assert!(
        all.1["error"]["message"].as_str().unwrap().contains("store="),
        "{}",
        all.1
    );
    // Batches check every store they touch.
    let batch = json!({"ops": [{"op": "put", "store": "app-one", "key": "a", "value": 1},
                               {"op": "put", "store": "other", "key": "a", "value": 1}]});
    assert_error(
        &send(t.client.post(t.url("/v1/batch")).bearer_auth("app-writer").json(&batch)).await,
        403,
        "forbidden",
    );
    assert!(t.db().get("app-one", "a").unwrap().is_none());
    // The store listing shows only what the caller may read.
    let (_, list) = send(t.client.get(t.url("/v1/stores")).bearer_auth("app-writer")).await;
    let names: Vec<_> = list["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["app-one"]);
}
