//! Bad input over HTTP: each case gets the right status and error code,
//! and nothing in the database changes.

mod common;

use common::{TestServer, assert_error, send};
use serde_json::{Value, json};

const TOKEN: &str = "good-token";

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    body: Option<Vec<u8>>,
    token: &'static str,
    status: u16,
    code: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: &str,
    body: Option<&[u8]>,
    status: u16,
    code: &'static str,
) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        body: body.map(<[u8]>::to_vec),
        token: TOKEN,
        status,
        code,
    }
}

/// Everything observable: revision, stores and their entries.
async fn snapshot(t: &TestServer) -> Value {
    let db = t.db();
    let mut stores = serde_json::Map::new();
    for s in db.stores() {
        let page = db.list(&s.name, &cairn_core::ListOptions::default()).unwrap();
        stores.insert(
            s.name.clone(),
            json!({"spec": serde_json::to_value(&s).unwrap(), "items": page.items}),
        );
    }
    json!({"revision": db.revision(), "stores": stores})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_refused_and_change_nothing() {
    let tokens = tempfile::tempdir().unwrap();
    let file = tokens.path().join("tokens");
    std::fs::write(&file, format!("{TOKEN} admin\n")).unwrap();
    let t = TestServer::start_with(|c| {
        c.auth_token_file = Some(file);
        c.max_body_bytes = 2048;
        c.max_value_bytes = 1024;
        c.max_key_bytes = 64;
        c.max_batch_ops = 4;
        c.max_json_depth = 8;
    })
    .await;
    let auth = |r: reqwest::RequestBuilder| r.bearer_auth(TOKEN);
    for (path, body) in [
        ("/v1/stores/ints", json!({"key_type": "int", "value_type": "int"})),
        (
            "/v1/stores/docs",
            json!({"schema": {"type": "object", "required": ["title"]}}),
        ),
    ] {
        assert_eq!(send(auth(t.client.put(t.url(path))).json(&body)).await.0, 201);
    }
    for (path, body) in [
        ("/v1/stores/default/keys/k", json!("v")),
        ("/v1/stores/ints/keys/1", json!(1)),
    ] {
        assert_eq!(send(auth(t.client.put(t.url(path))).json(&body)).await.0, 200);
    }

    let deep = format!("{}1{}", "[".repeat(20), "]".repeat(20));
    let big_body = vec![b'"'; 4000];
    let big_value = format!("\"{}\"", "x".repeat(1500));
    let long_key = "k".repeat(65);
    let too_many =
        json!({"ops": (0..5).map(|i| json!({"op": "put", "key": format!("b{i}"), "value": i})).collect::<Vec<_>>()});
    let too_many = serde_json::to_vec(&too_many).unwrap();
    let mut cases = vec![
        case(
            "malformed JSON",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(b"{\"a\": "),
            400,
            "invalid_json",
        ),
        case(
            "trailing garbage",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(b"1 2"),
            400,
            "invalid_json",
        ),
        case(
            "empty JSON body",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(b""),
            400,
            "invalid_json",
        ),
        case(
            "JSON too deep",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(deep.as_bytes()),
            400,
            "invalid_json",
        ),
        case(
            "string into an int store",
            "PUT",
            "/v1/stores/ints/keys/1",
            Some(b"\"one\""),
            400,
            "invalid_value",
        ),
        case(
            "float into an int store",
            "PUT",
            "/v1/stores/ints/keys/1",
            Some(b"1.5"),
            400,
            "invalid_value",
        ),
        case(
            "non-int key in an int store",
            "PUT",
            "/v1/stores/ints/keys/one",
            Some(b"1"),
            400,
            "invalid_key",
        ),
        case(
            "schema violation",
            "PUT",
            "/v1/stores/docs/keys/d",
            Some(b"{\"body\": 1}"),
            400,
            "invalid_value",
        ),
        case(
            "body over the limit",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(&big_body),
            413,
            "payload_too_large",
        ),
        case(
            "value over the limit",
            "PUT",
            "/v1/stores/default/keys/k",
            Some(big_value.as_bytes()),
            413,
            "value_too_large",
        ),
        case(
            "key over the limit",
            "PUT",
            &format!("/v1/stores/default/keys/{long_key}"),
            Some(b"1"),
            400,
            "key_too_large",
        ),
        case(
            "key over the limit (get)",
            "GET",
            &format!("/v1/stores/default/keys/{long_key}"),
            None,
            400,
            "key_too_large",
        ),
        case(
            "unknown store (put)",
            "PUT",
            "/v1/stores/nope/keys/k",
            Some(b"1"),
            404,
            "unknown_store",
        ),
        case(
            "unknown store (get)",
            "GET",
            "/v1/stores/nope/keys/k",
            None,
            404,
            "unknown_store",
        ),
        case(
            "unknown store (list)",
            "GET",
            "/v1/stores/nope/keys",
            None,
            404,
            "unknown_store",
        ),
        case(
            "bad cursor",
            "GET",
            "/v1/stores/default/keys?cursor=%21%21%21",
            None,
            400,
            "invalid_cursor",
        ),
        case(
            "cursor of another store",
            "GET",
            "/v1/stores/default/keys?cursor=AQAAAAAAAA",
            None,
            400,
            "invalid_cursor",
        ),
        case(
            "limit zero",
            "GET",
            "/v1/stores/default/keys?limit=0",
            None,
            400,
            "invalid_argument",
        ),
        case(
            "negative ttl",
            "PUT",
            "/v1/stores/default/keys/k?ttl=-1",
            Some(b"1"),
            400,
            "invalid_ttl",
        ),
        case(
            "zero ttl",
            "PUT",
            "/v1/stores/default/keys/k?ttl=0",
            Some(b"1"),
            400,
            "invalid_ttl",
        ),
        case(
            "ttl beyond 317 years",
            "PUT",
            "/v1/stores/default/keys/k?ttl=1e30",
            Some(b"1"),
            400,
            "invalid_ttl",
        ),
        case(
            "ttl not a number",
            "PUT",
            "/v1/stores/default/keys/k?ttl=soon",
            Some(b"1"),
            400,
            "invalid_argument",
        ),
        case(
            "if_revision not a number",
            "PUT",
            "/v1/stores/default/keys/k?if_revision=x",
            Some(b"1"),
            400,
            "invalid_argument",
        ),
        case(
            "unknown query parameter",
            "PUT",
            "/v1/stores/default/keys/k?tll=5",
            Some(b"1"),
            400,
            "invalid_argument",
        ),
        case(
            "bad default",
            "GET",
            "/v1/stores/default/keys/zz?default=%7B",
            None,
            400,
            "invalid_json",
        ),
        case(
            "incr by a string",
            "POST",
            "/v1/stores/default/keys/n/incr",
            Some(b"{\"by\": \"2\"}"),
            400,
            "invalid_json",
        ),
        case(
            "incr a string value",
            "POST",
            "/v1/stores/default/keys/k/incr",
            Some(b"{}"),
            400,
            "not_a_number",
        ),
        case(
            "batch too large",
            "POST",
            "/v1/batch",
            Some(&too_many),
            400,
            "batch_too_large",
        ),
        case(
            "batch unknown op",
            "POST",
            "/v1/batch",
            Some(b"{\"ops\": [{\"op\": \"upsert\", \"key\": \"a\"}]}"),
            400,
            "invalid_json",
        ),
        case(
            "batch ttl",
            "POST",
            "/v1/batch",
            Some(b"{\"ops\": [{\"op\": \"put\", \"key\": \"a\", \"value\": 1, \"ttl\": -2}]}"),
            400,
            "invalid_ttl",
        ),
        case(
            "batch unknown store",
            "POST",
            "/v1/batch",
            Some(b"{\"ops\": [{\"op\": \"delete\", \"store\": \"nope\", \"key\": \"a\"}]}"),
            404,
            "unknown_store",
        ),
        case(
            "spec with unknown field",
            "PUT",
            "/v1/stores/new",
            Some(b"{\"ttl\": 5}"),
            400,
            "invalid_spec",
        ),
        case(
            "spec with bad key type",
            "PUT",
            "/v1/stores/new",
            Some(b"{\"key_type\": \"float\"}"),
            400,
            "invalid_spec",
        ),
        case(
            "spec with bad schema",
            "PUT",
            "/v1/stores/new",
            Some(b"{\"schema\": {\"type\": 5}}"),
            400,
            "invalid_spec",
        ),
        case("bad content hash", "GET", "/v1/content/xyz", None, 400, "invalid_hash"),
        // Parameters a route does not take are refused, not ignored.
        case(
            "incr amount in the query",
            "POST",
            "/v1/stores/default/keys/n/incr?by=100",
            None,
            400,
            "invalid_argument",
        ),
        case(
            "batch with a made-up flag",
            "POST",
            "/v1/batch?dry_run=true",
            Some(b"{\"ops\": [{\"op\": \"put\", \"key\": \"dry\", \"value\": 1}]}"),
            400,
            "invalid_argument",
        ),
        case(
            "history with a query",
            "GET",
            "/v1/stores/default/keys/k/history?limit=abc",
            None,
            400,
            "invalid_argument",
        ),
        case(
            "store create with a query",
            "PUT",
            "/v1/stores/new?foo=1",
            None,
            400,
            "invalid_argument",
        ),
        case(
            "store clear with a query",
            "POST",
            "/v1/stores/default/clear?foo=1",
            None,
            400,
            "invalid_argument",
        ),
        // Arrays where an object belongs are not read by position.
        case(
            "spec as an array",
            "PUT",
            "/v1/stores/x2",
            Some(b"[\"x2\", \"int\", \"int\"]"),
            400,
            "invalid_json",
        ),
        case(
            "spec as an empty array",
            "PUT",
            "/v1/stores/x1",
            Some(b"[]"),
            400,
            "invalid_json",
        ),
        case(
            "incr body as an array",
            "POST",
            "/v1/stores/default/keys/n/incr",
            Some(b"[5]"),
            400,
            "invalid_json",
        ),
        case(
            "batch as an array",
            "POST",
            "/v1/batch",
            Some(b"[[], [{\"op\": \"put\", \"key\": \"arr\", \"value\": 1}]]"),
            400,
            "invalid_json",
        ),
        case(
            "batch check as an array",
            "POST",
            "/v1/batch",
            Some(b"{\"checks\": [[\"default\", \"k\", null]], \"ops\": []}"),
            400,
            "invalid_json",
        ),
        // An integer JSON cannot carry in 64 bits would be rounded.
        case(
            "integer wider than 64 bits",
            "PUT",
            "/v1/stores/default/keys/big",
            Some(b"123456789012345678901234567890"),
            400,
            "invalid_value",
        ),
        case(
            "wide integer in a batch",
            "POST",
            "/v1/batch",
            Some(b"{\"ops\": [{\"op\": \"put\", \"key\": \"big\", \"value\": [18446744073709551616]}]}"),
            400,
            "invalid_value",
        ),
        case(
            "contradictory conditions",
            "PUT",
            "/v1/stores/default/keys/k?if_absent=true&if_present=true",
            Some(b"\"x\""),
            400,
            "invalid_argument",
        ),
        case(
            "watch a key and a prefix",
            "GET",
            "/v1/watch?store=default&key=k&prefix=z",
            None,
            400,
            "invalid_argument",
        ),
        case("unknown route", "GET", "/v2/anything", None, 404, "no_route"),
        case(
            "wrong method",
            "PATCH",
            "/v1/stores/default/keys/k",
            Some(b"1"),
            405,
            "method_not_allowed",
        ),
    ];
    let mut bad_token = case(
        "bad token",
        "PUT",
        "/v1/stores/default/keys/k",
        Some(b"2"),
        401,
        "unauthorized",
    );
    bad_token.token = "not-the-token";
    cases.push(bad_token);

    let before = snapshot(&t).await;
    for c in &cases {
        let method = reqwest::Method::from_bytes(c.method.as_bytes()).unwrap();
        let mut req = t.client.request(method, t.url(&c.path)).bearer_auth(c.token);
        if let Some(b) = &c.body {
            req = req.header("content-type", "application/json").body(b.clone());
        }
        let got = send(req).await;
        assert_eq!(got.0, c.status, "{}: {}", c.name, got.1);
        assert_error(&got, c.status, c.code);
        assert_eq!(snapshot(&t).await, before, "{} changed the database", c.name);
    }
}
