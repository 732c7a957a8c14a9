//! Key routes over real HTTP: set/get/delete, conditions, TTL, bytes,
//! defaults, HEAD, incr, history and list pagination.

mod common;

use common::{TestServer, assert_error, send};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_get_delete_echo_key_and_value() {
    let t = TestServer::start().await;
    let (s, put) = t
        .put("/v1/stores/default/keys/greeting", &json!({"hello": ["world", 1]}))
        .await;
    assert_eq!(s, 200, "{put}");
    assert_eq!(put["key"], "greeting");
    assert_eq!(put["success"], true);
    assert_eq!(put["created"], true);
    let rev = put["revision"].as_u64().unwrap();

    let (s, e) = t.get("/v1/stores/default/keys/greeting").await;
    assert_eq!(s, 200);
    assert_eq!(e["key"], "greeting");
    assert_eq!(e["value"], json!({"hello": ["world", 1]}));
    assert_eq!(e["revision"], rev);
    assert_eq!(e["created_revision"], rev);
    assert_eq!(e["version"], 1);
    assert!(e["updated_at"].as_u64().unwrap() > 1_600_000_000_000);
    assert!(e.get("expires_at").is_none());

    let (_, put2) = t.put("/v1/stores/default/keys/greeting", &json!("again")).await;
    assert_eq!(put2["created"], false);
    let (_, e) = t.get("/v1/stores/default/keys/greeting").await;
    assert_eq!(
        (e["version"].as_u64(), e["created_revision"].as_u64()),
        (Some(2), Some(rev))
    );

    let (s, d) = t.delete("/v1/stores/default/keys/greeting").await;
    assert_eq!(s, 200);
    assert_eq!(d["key"], "greeting");
    assert_eq!(d["success"], true);
    assert_error(&t.get("/v1/stores/default/keys/greeting").await, 404, "not_found");
    let (s, d) = t.delete("/v1/stores/default/keys/greeting").await;
    assert_eq!((s, &d["success"]), (200, &json!(false)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_with_slashes_and_spaces_round_trip() {
    let t = TestServer::start().await;
    let (s, put) = t.put("/v1/stores/default/keys/a%2Fb%20c", &json!(1)).await;
    assert_eq!(s, 200);
    assert_eq!(put["key"], "a/b c");
    assert_eq!(t.get("/v1/stores/default/keys/a%2Fb%20c").await.1["value"], 1);
    assert!(t.db().get("default", "a/b c").unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_answer_409_with_the_current_revision() {
    let t = TestServer::start().await;
    let k = "/v1/stores/default/keys/cas";
    let (_, first) = t.put(&format!("{k}?if_absent"), &json!(1)).await;
    assert_eq!(first["success"], true);
    let rev = first["revision"].as_u64().unwrap();

    let (s, again) = t.put(&format!("{k}?if_absent=true"), &json!(2)).await;
    assert_eq!(s, 409);
    assert_eq!(
        again,
        json!({"key": "cas", "success": false, "revision": rev, "created": false})
    );

    let (s, stale) = t.put(&format!("{k}?if_revision={}", rev + 100), &json!(3)).await;
    assert_eq!((s, &stale["revision"]), (409, &json!(rev)));
    let (s, ok) = t.put(&format!("{k}?if_revision={rev}"), &json!(4)).await;
    assert_eq!((s, &ok["success"]), (200, &json!(true)));
    let rev2 = ok["revision"].as_u64().unwrap();

    let (s, missing) = t.put("/v1/stores/default/keys/nope?if_present", &json!(1)).await;
    assert_eq!(s, 409);
    assert_eq!(missing["revision"], json!(null));

    let (s, d) = t.delete(&format!("{k}?if_revision={rev}")).await;
    assert_eq!((s, &d["success"], &d["revision"]), (409, &json!(false), &json!(rev2)));
    assert_eq!(t.get(k).await.1["value"], 4);
    let (s, _) = t.delete(&format!("{k}?if_revision={rev2}")).await;
    assert_eq!(s, 200);
    assert_eq!(t.head(k).await, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_expires_keys() {
    let t = TestServer::start().await;
    let (s, _) = t.put("/v1/stores/default/keys/short?ttl=0.3", &json!("brief")).await;
    assert_eq!(s, 200);
    let (_, long) = t.put("/v1/stores/default/keys/long?ttl=3600", &json!("stays")).await;
    assert_eq!(long["success"], true);
    let (_, e) = t.get("/v1/stores/default/keys/long").await;
    let expires = e["expires_at"].as_u64().unwrap();
    let updated = e["updated_at"].as_u64().unwrap();
    assert!((3_599_000..=3_601_000).contains(&(expires - updated)), "{e}");

    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    loop {
        let (s, _) = t.get("/v1/stores/default/keys/short").await;
        if s == 404 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "key with a 0.3 s TTL never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(t.head("/v1/stores/default/keys/short").await, 404);
    assert_eq!(t.get("/v1/stores/default/keys/long").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_round_trip_raw_and_as_base64_json() {
    let t = TestServer::start().await;
    let data: Vec<u8> = vec![0, 1, 2, 254, 255, b'\n'];
    let resp = t
        .client
        .put(t.url("/v1/stores/default/keys/blob"))
        .header("content-type", "application/octet-stream")
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let raw = t
        .client
        .get(t.url("/v1/stores/default/keys/blob"))
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers()["content-type"], "application/octet-stream");
    assert_eq!(raw.bytes().await.unwrap().to_vec(), data);
    let (_, e) = t.get("/v1/stores/default/keys/blob").await;
    assert_eq!(e["value"], json!({"$base64": "AAEC/v8K"}));
    assert_eq!(
        t.db().get("default", "blob").unwrap().unwrap().value,
        cairn_core::Value::Bytes(data)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_with_default_and_head() {
    let t = TestServer::start().await;
    let (s, d) = t.get("/v1/stores/default/keys/absent?default=%7B%22n%22%3A0%7D").await;
    assert_eq!(s, 200);
    assert_eq!(d["value"], json!({"n": 0}));
    assert_eq!(d["found"], false);
    assert!(
        t.db().get("default", "absent").unwrap().is_none(),
        "a default must not be written"
    );
    assert_eq!(t.head("/v1/stores/default/keys/absent").await, 404);
    t.put("/v1/stores/default/keys/present", &json!(true)).await;
    assert_eq!(t.head("/v1/stores/default/keys/present").await, 200);
    let (_, d) = t.get("/v1/stores/default/keys/present?default=1").await;
    assert_eq!(d["value"], true);

    // HEAD answers GET's headers without the body: type, length, revision.
    let (_, put) = t.put("/v1/stores/default/keys/present", &json!("some text")).await;
    let url = t.url("/v1/stores/default/keys/present");
    for accept in ["application/json", "application/octet-stream"] {
        let get = t.client.get(&url).header("accept", accept).send().await.unwrap();
        let head = t.client.head(&url).header("accept", accept).send().await.unwrap();
        assert_eq!(head.status(), 200);
        for h in ["content-type", "content-length", "x-cairn-revision"] {
            assert_eq!(head.headers().get(h), get.headers().get(h), "{h} with accept {accept}");
        }
        assert_eq!(head.headers()["x-cairn-revision"], put["revision"].to_string().as_str());
        let len: usize = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
        assert_eq!(len, get.bytes().await.unwrap().len());
        assert!(head.bytes().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incr_counts_and_reports_the_value() {
    let t = TestServer::start().await;
    let (s, r) = t.post("/v1/stores/default/keys/hits/incr", &json!({})).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!((r["key"].as_str(), r["value"].as_i64()), (Some("hits"), Some(1)));
    let (_, r) = t.post("/v1/stores/default/keys/hits/incr", &json!({"by": 41})).await;
    assert_eq!(r["value"], 42);
    let (_, r) = send(t.client.post(t.url("/v1/stores/default/keys/hits/incr"))).await;
    assert_eq!(r["value"], 43, "an empty body increments by 1");
    let (_, r) = t.post("/v1/stores/default/keys/hits/incr", &json!({"by": -50})).await;
    assert_eq!(r["value"], -7);
    assert_eq!(t.get("/v1/stores/default/keys/hits").await.1["value"], -7);

    t.put("/v1/stores/default/keys/name", &json!("bob")).await;
    assert_error(
        &t.post("/v1/stores/default/keys/name/incr", &json!({"by": 1})).await,
        400,
        "not_a_number",
    );
    assert_eq!(t.get("/v1/stores/default/keys/name").await.1["value"], "bob");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_lists_versions_newest_first() {
    let t = TestServer::start().await;
    let (s, _) = t.put("/v1/stores/versioned", &json!({"history": 3})).await;
    assert_eq!(s, 201);
    for v in 1..=4 {
        t.put("/v1/stores/versioned/keys/doc", &json!(v)).await;
    }
    let (s, h) = t.get("/v1/stores/versioned/keys/doc/history").await;
    assert_eq!(s, 200);
    let values: Vec<_> = h["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].clone())
        .collect();
    assert_eq!(values, vec![json!(4), json!(3), json!(2)]);
    assert_eq!(h["next_cursor"], json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_pages_with_cursor_prefix_range_and_reverse() {
    let t = TestServer::start().await;
    for i in 0..25 {
        t.put(&format!("/v1/stores/default/keys/user:{i:02}"), &json!(i)).await;
    }
    t.put("/v1/stores/default/keys/other", &json!("x")).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
        let (s, page) = t
            .get(&format!("/v1/stores/default/keys?prefix=user:&limit=10{q}"))
            .await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(items.iter().map(|e| e["key"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let want: Vec<String> = (0..25).map(|i| format!("user:{i:02}")).collect();
    assert_eq!(seen, want);

    let (_, rev) = t.get("/v1/stores/default/keys?prefix=user:&reverse=true&limit=3").await;
    let keys: Vec<_> = rev["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["user:24", "user:23", "user:22"]);
    let c = rev["next_cursor"].as_str().unwrap();
    let (_, rev2) = t
        .get(&format!(
            "/v1/stores/default/keys?prefix=user:&reverse=true&limit=3&cursor={c}"
        ))
        .await;
    assert_eq!(rev2["items"][0]["key"], "user:21");

    let (_, range) = t
        .get("/v1/stores/default/keys?start=user:05&end=user:08&keys_only=true")
        .await;
    let items = range["items"].as_array().unwrap();
    let keys: Vec<_> = items.iter().map(|e| e["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["user:05", "user:06", "user:07"]);
    assert!(items.iter().all(|e| e["value"].is_null()));

    let (_, all) = t.get("/v1/stores/default/keys").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 26);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_keys_are_percent_encoded_in_the_path() {
    let t = TestServer::start().await;
    assert_eq!(t.put("/v1/stores/bin", &json!({"key_type": "bytes"})).await.0, 201);
    let (s, p) = t.put("/v1/stores/bin/keys/%00%FFab", &json!("raw key")).await;
    assert_eq!(s, 200, "{p}");
    let raw_key = [0u8, 0xff, b'a', b'b'];
    assert_eq!(
        t.db().get("bin", raw_key).unwrap().unwrap().value,
        json!("raw key").into()
    );
    assert_eq!(t.get("/v1/stores/bin/keys/%00%FFab").await.1["value"], "raw key");
    assert_eq!(t.head("/v1/stores/bin/keys/%00%FF").await, 404);
    assert_eq!(t.delete("/v1/stores/bin/keys/%00%FFab").await.1["success"], true);
    assert!(t.db().get("bin", raw_key).unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_pages_newest_first() {
    let t = TestServer::start().await;
    t.put("/v1/stores/h", &json!({"history": 10})).await;
    for i in 0..5 {
        t.put("/v1/stores/h/keys/k", &json!(i)).await;
    }
    let (s, p1) = t.get("/v1/stores/h/keys/k/history?limit=2").await;
    assert_eq!(s, 200, "{p1}");
    let values = |p: &serde_json::Value| {
        p["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["value"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(values(&p1), vec![json!(4), json!(3)]);
    let c = p1["next_cursor"].as_str().unwrap().to_owned();
    let (_, p2) = t.get(&format!("/v1/stores/h/keys/k/history?limit=2&cursor={c}")).await;
    assert_eq!(values(&p2), vec![json!(2), json!(1)]);
    let c = p2["next_cursor"].as_str().unwrap().to_owned();
    let (_, p3) = t.get(&format!("/v1/stores/h/keys/k/history?limit=2&cursor={c}")).await;
    assert_eq!((values(&p3), &p3["next_cursor"]), (vec![json!(0)], &json!(null)));
    let (_, all) = t.get("/v1/stores/h/keys/k/history").await;
    assert_eq!(all["items"].as_array().unwrap().len(), 5);
    assert_error(
        &t.get("/v1/stores/h/keys/k/history?cursor=x").await,
        400,
        "invalid_cursor",
    );
    assert_error(
        &t.get("/v1/stores/h/keys/k/history?limit=0").await,
        400,
        "invalid_argument",
    );
}
