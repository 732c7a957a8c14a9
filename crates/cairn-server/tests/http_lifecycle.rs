//! Server lifecycle over HTTP: persistence across restarts, graceful
//! shutdown, health, metrics and the OpenAPI document.

mod common;

use common::{PATIENCE, TestServer};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(tmp.path(), |_| {}).await;
    t.put("/v1/stores/notes", &json!({"value_type": "string"})).await;
    let (_, p) = t.put("/v1/stores/notes/keys/n1", &json!("remember me")).await;
    let rev = p["revision"].as_u64().unwrap();
    let (_, c) = common::send(t.client.post(t.url("/v1/content")).body("kept")).await;
    t.shutdown().await;

    let t = TestServer::start_in(tmp.path(), |_| {}).await;
    let (s, e) = t.get("/v1/stores/notes/keys/n1").await;
    assert_eq!(s, 200);
    assert_eq!(
        (e["value"].as_str(), e["revision"].as_u64()),
        (Some("remember me"), Some(rev))
    );
    assert_eq!(t.get("/v1/stores/notes").await.1["value_type"], "string");
    assert_eq!(
        t.head(&format!("/v1/content/{}", c["hash"].as_str().unwrap())).await,
        200
    );
    let (_, h) = t.get("/v1/health").await;
    assert_eq!(
        h["revision"].as_u64(),
        Some(rev + 1),
        "revisions continue, never reused"
    );
    let (_, p2) = t.put("/v1/stores/notes/keys/n2", &json!("new")).await;
    assert!(p2["revision"].as_u64().unwrap() > rev + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_ends_watch_streams_and_stops_accepting() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(tmp.path(), |_| {}).await;
    let mut sse = t.watch("", None).await;
    t.put("/v1/stores/default/keys/a", &json!(1)).await;
    assert_eq!(sse.next_event().await.json()["key"], "a");
    let base = t.base.clone();
    tokio::time::timeout(PATIENCE, t.shutdown())
        .await
        .expect("shutdown hung with an open watch stream");
    assert!(sse.next().await.is_none(), "the watch stream ends on shutdown");
    let after = reqwest::Client::new().get(format!("{base}/v1/health")).send().await;
    assert!(after.is_err(), "the listener is closed after shutdown");
    // The data dir is released and intact.
    let db = cairn_core::Db::open(tmp.path()).unwrap();
    assert_eq!(db.get("default", "a").unwrap().unwrap().value, json!(1).into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_by_route_and_status() {
    let t = TestServer::start().await;
    t.put("/v1/stores/default/keys/m", &json!(1)).await;
    t.get("/v1/stores/default/keys/m").await;
    t.get("/v1/stores/default/keys/missing").await;
    let resp = t.client.get(t.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = resp.text().await.unwrap();
    let route = "route=\"/v1/stores/{store}/keys/{key}\"";
    assert!(
        text.contains(&format!(
            "cairn_requests_total{{frontend=\"http\",{route},status=\"200\"}} 2"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cairn_requests_total{{frontend=\"http\",{route},status=\"404\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "cairn_request_duration_seconds_count{{frontend=\"http\",{route}}} 3"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("cairn_revision {}", t.db().revision())),
        "{text}"
    );
    assert!(text.contains("cairn_engine_commands_total "));
    assert!(text.contains("cairn_connections{frontend=\"http\"} "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_describes_every_route() {
    let t = TestServer::start().await;
    let (s, doc) = t.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/v1/health", &["get"][..]),
        ("/v1/stores", &["get"]),
        ("/v1/stores/{store}", &["get", "put", "delete"]),
        ("/v1/stores/{store}/clear", &["post"]),
        ("/v1/stores/{store}/keys", &["get"]),
        ("/v1/stores/{store}/keys/{key}", &["get", "put", "delete", "head"]),
        ("/v1/stores/{store}/keys/{key}/history", &["get"]),
        ("/v1/stores/{store}/keys/{key}/incr", &["post"]),
        ("/v1/batch", &["post"]),
        ("/v1/watch", &["get"]),
        ("/v1/content", &["post"]),
        ("/v1/content/{hash}", &["get", "head", "delete"]),
        ("/v1/ws", &["get"]),
        ("/v1/admin/backup", &["post"]),
    ] {
        for m in methods {
            assert!(
                paths.get(path).and_then(|p| p.get(*m)).is_some(),
                "{m} {path} missing from the OpenAPI document"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let entry = &schemas["EntryOut"]["properties"];
    for field in [
        "key",
        "value",
        "revision",
        "created_revision",
        "version",
        "updated_at",
        "expires_at",
    ] {
        assert!(entry.get(field).is_some(), "EntryOut.{field}");
    }
    // A value is any JSON, not only an object.
    assert!(
        entry["value"].get("type").is_none(),
        "EntryOut.value: {}",
        entry["value"]
    );
    // A key is text or {"$base64"}, as answers give it.
    assert_eq!(entry["key"]["$ref"], "#/components/schemas/KeyJson");
    assert_eq!(schemas["KeyJson"]["oneOf"].as_array().map(Vec::len), Some(2));
    // GET answers the entry, or with ?default= the default and found: false.
    let get = &paths["/v1/stores/{store}/keys/{key}"]["get"];
    assert_eq!(
        get["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/GetOut"
    );
    let (_, d) = t.get("/v1/stores/default/keys/absent?default=42").await;
    let documented = schemas["DefaultOut"]["properties"].as_object().unwrap();
    for field in d.as_object().unwrap().keys() {
        assert!(documented.contains_key(field), "DefaultOut lacks {field}: {d}");
    }
    // Tokens: the bearer scheme, and 401/403 on routes that need one.
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(paths["/v1/stores"]["get"]["responses"]["401"].is_object());
    assert!(paths["/v1/stores/{store}/keys/{key}"]["put"]["responses"]["403"].is_object());
    assert!(paths["/v1/health"]["get"]["responses"].get("401").is_none());
    assert_eq!(paths["/v1/health"]["get"]["security"], serde_json::json!([{}]));
    // List limits as the server checks them.
    let limit = paths["/v1/stores/{store}/keys"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "limit")
        .unwrap();
    assert_eq!(
        (limit["schema"]["minimum"].as_u64(), limit["schema"]["maximum"].as_u64()),
        (Some(1), Some(10000))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spec_schema_matches_engine() {
    // StoreSpecDoc documents cairn_core::StoreSpec: every field the engine
    // renders must be documented.
    let t = TestServer::start().await;
    t.put(
        "/v1/stores/full",
        &json!({"schema": {"type": "object"}, "default_ttl": 5, "history": 2}),
    )
    .await;
    let (_, spec) = t.get("/v1/stores/full").await;
    let (_, doc) = t.get("/openapi.json").await;
    let documented = doc["components"]["schemas"]["StoreSpecDoc"]["properties"]
        .as_object()
        .unwrap();
    for field in spec.as_object().unwrap().keys() {
        assert!(documented.contains_key(field), "StoreSpecDoc lacks {field}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_in_flight_requests() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(tmp.path(), |_| {}).await;
    let addr = t.base.trim_start_matches("http://").to_owned();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // A request whose handler is waiting for its body: with `Expect: 100-continue`
    // the server says "100 Continue" exactly when the handler starts reading it.
    conn.write_all(
        b"PUT /v1/stores/default/keys/inflight HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
          content-length: 8\r\nexpect: 100-continue\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        tokio::time::timeout(PATIENCE, conn.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 100"), "{}", String::from_utf8_lossy(&head));
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let server = t.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    // The listener closes first...
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the listener stayed open during shutdown"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!shutdown.is_finished(), "shutdown must wait for the in-flight request");
    // ...then the in-flight request completes normally.
    conn.write_all(b"\"in-fly\"").await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(PATIENCE, conn.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(resp).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    tokio::time::timeout(PATIENCE, shutdown).await.unwrap().unwrap();
    let db = cairn_core::Db::open(tmp.path()).unwrap();
    assert_eq!(
        db.get("default", "inflight").unwrap().unwrap().value,
        json!("in-fly").into()
    );
}

#[tokio::test]
async fn a_port_in_use_fails_the_start_before_the_data_dir_is_made() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut cfg = cairn_server::ServerConfig::for_tests(&data);
    cfg.http = cairn_server::Listen::At(taken.local_addr().unwrap());
    let err = cairn_server::start(cfg).await.err().expect("the port is taken");
    assert!(matches!(err, cairn_server::StartError::Bind { .. }), "{err}");
    assert!(!data.exists(), "no data dir left behind");
}
