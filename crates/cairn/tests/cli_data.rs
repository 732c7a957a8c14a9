//! Server lifecycle and the whole-database tools: SIGTERM, restart,
//! backup/restore (online and offline), export/import, check.

mod support;

use support::*;

fn p(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn sigterm_exits_0_and_data_persists() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    ok(s.cairn(&["set", "durable", r#"{"kept": true}"#]));
    ok(s.cairn(&["incr", "n", "5"]));
    let status = s.stop();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let s = Server::start(&data);
    assert_eq!(ok(s.cairn(&["get", "durable"])), "{\"kept\":true}\n");
    assert_eq!(ok(s.cairn(&["incr", "n"])), "6\n");
    assert_eq!(s.stop().code(), Some(0));
}

#[test]
fn online_backup_restores_offline_and_serves() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    for i in 0..50 {
        ok(s.cairn(&["set", &format!("k{i:02}"), &format!("[{i}]")]));
    }
    let blob = dir.path().join("blob");
    std::fs::write(&blob, b"content kept by the backup").unwrap();
    let hash = ok(s.cairn(&["content", "put", p(&blob)])).trim().to_owned();
    let file = dir.path().join("online.backup");
    let info = json(&ok(s.cairn(&["backup", p(&file), "--json"])));
    let rev = info["revision"].as_u64().unwrap();
    assert!(rev >= 51, "{info}");
    ok(s.cairn(&["set", "after-backup", "1"]));
    // The server keeps its lock: offline tools on its directory are refused.
    let o = cairn(&["check", "--data-dir", p(&s.dir)]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("locked"), "{}", stderr(&o));
    assert_eq!(s.stop().code(), Some(0));

    let checked = json(&ok(cairn(&["check", "--backup", p(&file), "--json"])));
    assert_eq!(checked["revision"], rev);
    let restored = dir.path().join("restored");
    ok(cairn(&["restore", p(&file), "--data-dir", p(&restored)]));
    let report = json(&ok(cairn(&["check", "--data-dir", p(&restored), "--json"])));
    assert_eq!(report["ok"], true, "{report}");
    assert_eq!(report["revision"], rev);
    assert_eq!(report["entries"], 50);
    assert_eq!(report["content"], 1);

    let r = Server::start(&restored);
    assert_eq!(ok(r.cairn(&["get", "k07"])), "[7]\n");
    expect_code(&r.cairn(&["get", "after-backup"]), 1);
    let got = r.cairn(&["content", "get", &hash]);
    assert_eq!(got.stdout, b"content kept by the backup");
    let next = json(&ok(r.cairn(&["set", "new", "1", "--json"])));
    assert_eq!(next["revision"], rev + 1);
}

#[test]
fn offline_backup_restore_export_import() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data);
    for i in 0..30 {
        ok(s.cairn(&["set", &format!("user:{i}"), &format!(r#"{{"id": {i}}}"#)]));
    }
    ok(s.cairn(&["set", "other", "x"]));
    s.stop();

    let file = dir.path().join("offline.backup");
    let out = json(&ok(cairn(&["backup", p(&file), "--data-dir", p(&data), "--json"])));
    assert!(out["records"].as_u64().unwrap() > 31, "{out}");
    // Restore refuses a non-empty directory without --force.
    let o = cairn(&["restore", p(&file), "--data-dir", p(&data)]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    ok(cairn(&["restore", p(&file), "--data-dir", p(&data), "--force"]));

    let ndjson = ok(cairn(&["export", "--data-dir", p(&data), "--prefix", "user:"]));
    let (stores, entries) = split(&ndjson);
    assert_eq!((stores.len(), entries.len()), (1, 30));
    assert_eq!(stores[0]["store"], "default");
    assert_eq!(stores[0]["spec"]["key_type"], "string");
    assert_eq!(entries[0]["store"], "default");
    assert!(entries[0]["key"].as_str().unwrap().starts_with("user:"));
    let export_file = dir.path().join("all.ndjson");
    ok(cairn(&["export", "--data-dir", p(&data), "-o", p(&export_file)]));
    let (_, entries) = split(&std::fs::read_to_string(&export_file).unwrap());
    assert_eq!(entries.len(), 31);

    let fresh = dir.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    // An empty directory is no database for export, check or import...
    expect_code(&cairn(&["export", "--data-dir", p(&fresh)]), 2);
    // ...but `serve` makes one.
    Server::start(&fresh).stop();
    let imported = json(&ok(cairn(&[
        "import",
        p(&export_file),
        "--data-dir",
        p(&fresh),
        "--json",
    ])));
    assert_eq!(imported["written"], 31);
    let again = ok(cairn(&["export", "--data-dir", p(&fresh), "-o", "-"]));
    let strip = |s: &str| -> Vec<(serde_json::Value, serde_json::Value)> {
        s.lines()
            .map(json)
            .map(|j| (j["key"].clone(), j["value"].clone()))
            .collect()
    };
    assert_eq!(strip(&again), strip(&std::fs::read_to_string(&export_file).unwrap()));
    let skipped = json(&ok(cairn(&[
        "import",
        p(&export_file),
        "--data-dir",
        p(&fresh),
        "--on-conflict",
        "skip",
        "--json",
    ])));
    assert_eq!(skipped["skipped"], 31);
    let o = cairn(&[
        "import",
        p(&export_file),
        "--data-dir",
        p(&fresh),
        "--on-conflict",
        "fail",
    ]);
    expect_code(&o, 2);
    // Line 1 is the default store's line; line 2 the first entry.
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
}

/// Store lines and entries of an export.
fn split(ndjson: &str) -> (Vec<serde_json::Value>, Vec<serde_json::Value>) {
    ndjson.lines().map(json).partition(|l| l.get("spec").is_some())
}

#[test]
fn bad_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    Server::start(&data).stop();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"store\":\"default\",\"key\":\"a\",\"value\":1}\nnot json\n").unwrap();
    let o = cairn(&["import", p(&bad), "--data-dir", p(&data)]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("line 2"), "{}", stderr(&o));
    let o = cairn(&["export", "--data-dir", p(&data)]);
    assert_eq!(
        split(&ok(o)).1,
        Vec::<serde_json::Value>::new(),
        "nothing of the bad batch was written"
    );

    let file = dir.path().join("b.backup");
    ok(cairn(&["backup", p(&file), "--data-dir", p(&data)]));
    let mut bytes = std::fs::read(&file).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();
    let o = cairn(&["check", "--backup", p(&file)]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("byte offset"), "{}", stderr(&o));
    let target = dir.path().join("t");
    let o = cairn(&["restore", p(&file), "--data-dir", p(&target)]);
    expect_code(&o, 2);
    assert!(!target.exists());
    let o = cairn(&["check"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--data-dir"), "{}", stderr(&o));
    let o = cairn(&["check", "--data-dir", p(&dir.path().join("missing"))]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("no cairn database"), "{}", stderr(&o));
}

#[test]
fn export_and_import_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(&dir.path().join("a"));
    for i in 0..5 {
        ok(a.cairn(&["set", &format!("k{i}"), &i.to_string()]));
    }
    let file = dir.path().join("x.ndjson");
    // A typed store is exported too, except under a prefix (int keys have none).
    let spec = serde_json::json!({"name": "nums", "key_type": "int"});
    ureq::put(&format!("{}/v1/stores/nums", a.url))
        .send_json(&spec)
        .unwrap();
    ok(a.cairn(&["set", "7", "seven", "--store", "nums"]));
    let (stores, entries) = split(&ok(a.cairn(&["export", "--prefix", "k"])));
    assert_eq!((stores.len(), entries.len()), (1, 5));
    let (stores, entries) = split(&ok(a.cairn(&["export", "--store", "nums"])));
    assert_eq!((stores.len(), entries.len()), (1, 1));
    assert_eq!(
        stores[0],
        serde_json::json!({"store": "nums", "spec": {"key_type": "int", "value_type": "any", "history": 1}})
    );
    ok(a.cairn(&["del", "7", "--store", "nums"]));
    ok(a.cairn(&["export", "-o", p(&file)]));
    let text = std::fs::read_to_string(&file).unwrap();
    let (stores, entries) = split(&text);
    assert_eq!((stores.len(), entries.len()), (2, 5), "an empty store keeps its line");
    let b = Server::start(&dir.path().join("b"));
    let r = json(&ok(b.cairn(&["import", p(&file), "--json"])));
    assert_eq!(
        (r["written"].as_u64(), r["stores_created"].as_u64()),
        (Some(5), Some(1)),
        "{r}"
    );
    assert_eq!(ok(b.cairn(&["get", "k3"])), "3\n");
    let nums: serde_json::Value = ureq::get(&format!("{}/v1/stores/nums", b.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(nums["key_type"], "int", "the store came over with its spec: {nums}");
    let o = b.cairn(&["import", p(&file), "--on-conflict", "fail"]);
    expect_code(&o, 2);
    let first_entry = text.lines().position(|l| !l.contains("\"spec\"")).unwrap() + 1;
    assert!(stderr(&o).contains(&format!("line {first_entry}")), "{}", stderr(&o));
    // A store that exists with another spec is named, and nothing is written.
    let c = Server::start(&dir.path().join("c"));
    ureq::put(&format!("{}/v1/stores/nums", c.url))
        .send_json(serde_json::json!({"name": "nums", "key_type": "uuid"}))
        .unwrap();
    let o = c.cairn(&["import", p(&file)]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("different spec"), "{}", stderr(&o));
    expect_code(&c.cairn(&["get", "k3"]), 1);
    // Skip keeps existing keys and writes the rest.
    ok(b.cairn(&["set", "k3", "changed"]));
    ok(b.cairn(&["del", "k1"]));
    let r = json(&ok(b.cairn(&["import", p(&file), "--on-conflict", "skip", "--json"])));
    assert_eq!(
        (r["written"].as_u64(), r["skipped"].as_u64()),
        (Some(1), Some(4)),
        "{r}"
    );
    assert_eq!(ok(b.cairn(&["get", "k3"])), "changed\n");
    assert_eq!(ok(b.cairn(&["get", "k1"])), "1\n");
}

#[test]
fn http_export_import_keeps_expiry_and_bytes_keys_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let a = Server::start(&dir.path().join("a"));
    let put = |url: &str, body: serde_json::Value| ureq::put(url).send_json(body).unwrap();
    put(
        &format!("{}/v1/stores/dtt", a.url),
        serde_json::json!({"default_ttl": 3600}),
    );
    put(
        &format!("{}/v1/stores/by", a.url),
        serde_json::json!({"key_type": "bytes"}),
    );
    let batch = serde_json::json!({"ops": [
        {"op": "put", "store": "dtt", "key": "forever", "value": 1, "expires_at": null},
        {"op": "put", "store": "dtt", "key": "exact", "value": 2, "expires_at": 4_000_000_000_000u64},
        {"op": "put", "store": "by", "key": {"$base64": "AP+A"}, "value": 3}
    ]});
    ureq::post(&format!("{}/v1/batch", a.url)).send_json(batch).unwrap();
    let file = dir.path().join("x.ndjson");
    ok(a.cairn(&["export", "-o", p(&file)]));
    let b = Server::start(&dir.path().join("b"));
    ok(b.cairn(&["import", p(&file)]));
    let get = |path: &str| -> serde_json::Value {
        ureq::get(&format!("{}{path}", b.url))
            .call()
            .unwrap()
            .body_mut()
            .read_json()
            .unwrap()
    };
    let e = get("/v1/stores/dtt/keys/forever");
    assert!(
        e.get("expires_at").is_none(),
        "no TTL stays no TTL, not default_ttl: {e}"
    );
    assert_eq!(get("/v1/stores/dtt/keys/exact")["expires_at"], 4_000_000_000_000u64);
    let e = get("/v1/stores/by/keys/%00%FF%80");
    assert_eq!(e["key"], serde_json::json!({"$base64": "AP+A"}), "{e}");
    assert_eq!(e["value"], 3);
    // A hand-written file without store lines: the store is made with
    // bytes keys for a $base64 key, as the offline import does.
    let hand = dir.path().join("hand.ndjson");
    std::fs::write(
        &hand,
        "{\"store\":\"newb\",\"key\":{\"$base64\":\"/wA=\"},\"value\":1}\n",
    )
    .unwrap();
    ok(b.cairn(&["import", p(&hand)]));
    assert_eq!(get("/v1/stores/newb")["key_type"], "bytes");
    assert_eq!(get("/v1/stores/newb/keys/%FF%00")["value"], 1);
}
