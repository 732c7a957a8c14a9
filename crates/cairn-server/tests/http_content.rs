//! Content-addressed storage over HTTP.

mod common;

use common::{TestServer, assert_error, send};

const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const ABC_SHA1: &str = "a9993e364706816aba3e25717850c26c9cd0d89d";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_dedup_get_head_delete() {
    let t = TestServer::start().await;
    let (s, c) = send(t.client.post(t.url("/v1/content")).body("abc")).await;
    assert_eq!(s, 201, "{c}");
    assert_eq!(
        c,
        serde_json::json!({"hash": ABC_SHA256, "algorithm": "sha256", "size": 3, "stored": true})
    );
    let (s, again) = send(t.client.post(t.url("/v1/content")).body("abc")).await;
    assert_eq!((s, &again["stored"]), (200, &serde_json::json!(false)));

    let (s, sha1) = send(t.client.post(t.url("/v1/content?algorithm=sha1")).body("abc")).await;
    assert_eq!(
        (s, sha1["hash"].as_str(), sha1["algorithm"].as_str()),
        (201, Some(ABC_SHA1), Some("sha1"))
    );

    let got = t
        .client
        .get(t.url(&format!("/v1/content/{ABC_SHA256}")))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/octet-stream");
    let etag = got.headers()["etag"].clone();
    assert_eq!(got.bytes().await.unwrap().as_ref(), b"abc");
    let head = t
        .client
        .head(t.url(&format!("/v1/content/{ABC_SHA256}")))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "3", "HEAD answers GET's headers");
    assert_eq!(head.headers()["etag"], etag);
    assert_eq!(head.headers()["content-type"], "application/octet-stream");
    assert_eq!(t.head(&format!("/v1/content/{ABC_SHA1}")).await, 200);
    assert_eq!(
        t.head(&format!("/v1/content/{}", ABC_SHA1.to_uppercase())).await,
        200,
        "hex is case-insensitive"
    );

    let (s, d) = t.delete(&format!("/v1/content/{ABC_SHA256}")).await;
    assert_eq!((s, &d["success"]), (200, &serde_json::json!(true)));
    assert_eq!(t.head(&format!("/v1/content/{ABC_SHA256}")).await, 404);
    assert_error(&t.get(&format!("/v1/content/{ABC_SHA256}")).await, 404, "not_found");
    assert_error(&t.delete(&format!("/v1/content/{ABC_SHA256}")).await, 404, "not_found");
    assert!(
        t.db().has_content(ABC_SHA1).unwrap(),
        "deleting one algorithm's copy leaves the other"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_content_round_trips() {
    let t = TestServer::start().await;
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let (s, c) = send(t.client.post(t.url("/v1/content")).body(data.clone())).await;
    assert_eq!((s, c["size"].as_u64()), (201, Some(100_000)));
    let hash = c["hash"].as_str().unwrap();
    let got = t
        .client
        .get(t.url(&format!("/v1/content/{hash}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.to_vec(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_hashes_and_algorithms_are_400() {
    let t = TestServer::start().await;
    for bad in ["abc", "zz", &"g".repeat(64), &"a".repeat(63)] {
        assert_error(&t.get(&format!("/v1/content/{bad}")).await, 400, "invalid_hash");
        assert_error(&t.delete(&format!("/v1/content/{bad}")).await, 400, "invalid_hash");
        assert_eq!(t.head(&format!("/v1/content/{bad}")).await, 400);
    }
    let before = t.db().revision();
    assert_error(
        &send(t.client.post(t.url("/v1/content?algorithm=md5")).body("x")).await,
        400,
        "invalid_argument",
    );
    assert_eq!(t.db().revision(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_content_is_a_500_never_wrong_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut t = TestServer::start_in(tmp.path(), |_| {}).await;
    assert_eq!(send(t.client.post(t.url("/v1/content")).body("abc")).await.0, 201);
    t.shutdown().await;

    // Flip the stored bytes behind the engine's back (its storage layout:
    // keyspace "content", key = algorithm tag 2 (sha256) ++ digest).
    {
        let fj = fjall::Database::builder(tmp.path().join("fjall")).open().unwrap();
        let ks = fj.keyspace("content", fjall::KeyspaceCreateOptions::default).unwrap();
        let mut key = vec![2u8];
        key.extend(
            (0..ABC_SHA256.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&ABC_SHA256[i..i + 2], 16).unwrap()),
        );
        assert!(ks.get(&key).unwrap().is_some(), "the layout assumption no longer holds");
        ks.insert(&key, b"abd").unwrap();
        fj.persist(fjall::PersistMode::SyncAll).unwrap();
    }

    let t = TestServer::start_in(tmp.path(), |_| {}).await;
    let got = t.get(&format!("/v1/content/{ABC_SHA256}")).await;
    assert_error(&got, 500, "corrupted");
    assert!(got.1["error"]["message"].as_str().unwrap().contains(ABC_SHA256));
}
