//! The client commands against a real `cairn serve`: output, `--json`, exit codes.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use support::*;

#[test]
fn set_get_del_list_incr_stores() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));

    let out = ok(s.cairn(&["set", "greeting", "hello world"]));
    assert!(out.starts_with("OK (revision "), "{out}");
    assert_eq!(ok(s.cairn(&["get", "greeting"])), "hello world\n");
    // VALUE is JSON when it parses.
    ok(s.cairn(&["set", "doc", r#"{"a": [1, 2]}"#]));
    ok(s.cairn(&["set", "num", "42"]));
    ok(s.cairn(&["set", "neg", "-5"]));
    assert_eq!(json(&ok(s.cairn(&["get", "neg", "--json"])))["value"], -5);
    ok(s.cairn(&["set", "quoted", r#""42""#]));
    assert_eq!(ok(s.cairn(&["get", "doc"])), "{\"a\":[1,2]}\n");
    let entry = json(&ok(s.cairn(&["get", "num", "--json"])));
    assert_eq!(entry["value"], 42);
    assert_eq!(entry["key"], "num");
    assert_eq!(entry["version"], 1);
    assert!(entry["revision"].as_u64().unwrap() > 0);
    assert_eq!(json(&ok(s.cairn(&["get", "quoted", "--json"])))["value"], "42");
    // An integer too wide for 64 bits is refused, not rounded.
    let wide = "123456789012345678901234567890";
    let o = s.cairn(&["set", "wide", wide]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("64 bits") && stderr(&o).contains(wide),
        "{}",
        stderr(&o)
    );
    expect_code(&s.cairn(&["get", "wide"]), 1);
    ok(s.cairn(&["set", "wide", &format!("\"{wide}\"")]));
    assert_eq!(ok(s.cairn(&["get", "wide"])), format!("{wide}\n"));

    // Bytes values print as raw bytes, nothing added.
    ok(s.cairn(&["set", "raw", r#"{"$base64": "AAEC/w=="}"#]));
    assert_eq!(s.cairn(&["get", "raw"]).stdout, [0, 1, 2, 255]);
    assert_eq!(
        json(&ok(s.cairn(&["get", "raw", "--json"])))["value"]["$base64"],
        "AAEC/w=="
    );

    // Keys with URL-reserved characters survive the trip.
    ok(s.cairn(&["set", "a/b c?d#e", "odd"]));
    assert_eq!(ok(s.cairn(&["get", "a/b c?d#e"])), "odd\n");

    // A missing key: exit 1, nothing on stdout, a message on stderr.
    let o = s.cairn(&["get", "absent"]);
    expect_code(&o, 1);
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("absent"), "{}", stderr(&o));

    assert_eq!(ok(s.cairn(&["incr", "counter"])), "1\n");
    assert_eq!(ok(s.cairn(&["incr", "counter", "10"])), "11\n");
    let inc = json(&ok(s.cairn(&["incr", "counter", "-3", "--json"])));
    assert_eq!(inc["value"], 8);
    let o = s.cairn(&["incr", "greeting"]);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("not a number") || stderr(&o).contains("not_a_number"),
        "{}",
        stderr(&o)
    );

    let listing = ok(s.cairn(&["list"]));
    assert!(listing.contains("greeting = hello world\n"), "{listing}");
    assert!(listing.contains("counter = 8\n"), "{listing}");
    let page = json(&ok(s.cairn(&["list", "--json", "--limit", "2"])));
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(ok(s.cairn(&["list", "--prefix", "gr", "--keys-only"])), "greeting\n");

    let o = s.cairn(&["del", "greeting"]);
    expect_code(&o, 0);
    expect_code(&s.cairn(&["get", "greeting"]), 1);
    expect_code(&s.cairn(&["del", "greeting"]), 1);

    assert!(ok(s.cairn(&["stores"])).contains("default"));
    let stores = json(&ok(s.cairn(&["stores", "--json"])));
    assert!(stores.to_string().contains("\"default\""), "{stores}");
    // An unknown store is an error, not a missing key.
    let o = s.cairn(&["get", "k", "--store", "nope"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));
}

#[test]
fn conditions_and_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    ok(s.cairn(&["set", "k", "1", "--if-absent"]));
    let o = s.cairn(&["set", "k", "2", "--if-absent"]);
    expect_code(&o, 1);
    assert!(stderr(&o).contains("condition"), "{}", stderr(&o));
    let rev = json(&ok(s.cairn(&["get", "k", "--json"])))["revision"]
        .as_u64()
        .unwrap();
    expect_code(
        &s.cairn(&["set", "k", "3", "--if-revision", &(rev + 100).to_string()]),
        1,
    );
    ok(s.cairn(&["set", "k", "3", "--if-revision", &rev.to_string()]));
    assert_eq!(ok(s.cairn(&["get", "k"])), "3\n");

    ok(s.cairn(&["set", "t", "v", "--ttl", "300"]));
    let e = json(&ok(s.cairn(&["get", "t", "--json"])));
    let ttl_ms = e["expires_at"].as_u64().unwrap() - e["updated_at"].as_u64().unwrap();
    assert!((299_000..=300_000).contains(&ttl_ms), "{e}");
    let o = s.cairn(&["set", "t", "v", "--ttl", "0"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("--ttl"), "{}", stderr(&o));
}

#[test]
fn content_put_and_get() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let file = dir.path().join("blob");
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    std::fs::write(&file, &data).unwrap();
    let hash = ok(s.cairn(&["content", "put", file.to_str().unwrap()]))
        .trim()
        .to_owned();
    assert_eq!(hash.len(), 64, "{hash}");
    let got = s.cairn(&["content", "get", &hash]);
    expect_code(&got, 0);
    assert_eq!(got.stdout, data);
    let from_stdin = cairn_with(
        &[("CAIRN_SERVER", &s.url)],
        &["content", "put", "-", "--json"],
        Some(b"abc"),
    );
    expect_code(&from_stdin, 0);
    let info = json(&stdout(&from_stdin));
    assert_eq!(
        info["hash"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    expect_code(&s.cairn(&["content", "get", &"0".repeat(64)]), 1);
    expect_code(&s.cairn(&["content", "get", "not-a-hash"]), 2);
}

#[test]
fn server_down_is_exit_2_naming_the_server() {
    // Nothing listens on a port we just bound and released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let o = cairn_with(&[], &["get", "k", "--server", &url], None);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("cannot connect") && stderr(&o).contains(&url),
        "{}",
        stderr(&o)
    );
    let o = cairn_with(&[("CAIRN_SERVER", &url)], &["set", "k", "v"], None);
    expect_code(&o, 2);
    assert!(stderr(&o).contains(&url));
    // Not a URL: said before any request, naming the flag and the value.
    for bad in ["notaurl", "http://", "ftp://host"] {
        let o = cairn_with(&[], &["get", "k", "--server", bad], None);
        expect_code(&o, 2);
        assert!(
            stderr(&o).contains("--server") && stderr(&o).contains(bad),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn watch_prints_changes_as_they_happen() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    ok(s.cairn(&["set", "before", "1"]));
    let mut human = Command::new(BIN)
        .args(["watch", "--server", &s.url, "--store", "default", "--from", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut scripted = Command::new(BIN)
        .args(["watch", "--server", &s.url, "--prefix", "w", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The replayed event proves the human watcher is connected.
    let mut h = BufReader::new(human.stdout.take().unwrap()).lines();
    let first = h.next().unwrap().unwrap();
    assert!(first.ends_with("created default/before = 1"), "{first}");
    // The prefix watcher has nothing to replay: write until it has seen its first event.
    let mut j = BufReader::new(scripted.stdout.take().unwrap()).lines();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in j.by_ref() {
            if tx.send(l.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut i = 0;
    let first_json = loop {
        ok(s.cairn(&["set", &format!("w{i}"), "x"]));
        i += 1;
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            break l;
        }
        assert!(i < 100, "the prefix watcher never printed");
    };
    ok(s.cairn(&["set", "other", "ignored"]));
    ok(s.cairn(&["set", "wkey", "[1]"]));
    ok(s.cairn(&["del", "wkey"]));
    assert_eq!(json(&first_json)["type"], "created");
    let mut events = Vec::new();
    while events.len() < 2 {
        let e = json(&rx.recv_timeout(std::time::Duration::from_secs(10)).expect("event"));
        assert!(e["key"].as_str().unwrap().starts_with('w'), "outside the prefix: {e}");
        if e["key"] == "wkey" {
            events.push(e);
        }
    }
    assert_eq!(events[0]["type"], "created");
    assert_eq!(events[0]["new_value"], serde_json::json!([1]));
    assert_eq!(events[1]["type"], "deleted");
    let mut seen = Vec::new();
    for l in h.by_ref() {
        let l = l.unwrap();
        let done = l.contains("deleted default/wkey");
        seen.push(l);
        if done {
            break;
        }
    }
    assert!(
        seen.iter()
            .any(|l| l.ends_with("updated default/wkey = [1]") || l.ends_with("created default/wkey = [1]"))
    );
    assert!(
        seen.iter().any(|l| l.ends_with("created default/other = ignored")),
        "{seen:?}"
    );
    let _ = human.kill();
    let _ = scripted.kill();
    let _ = human.wait();
    let _ = scripted.wait();
}

#[test]
fn tokens_from_flag_or_env_and_admin_only_backup() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "reader-tok read\nwriter-tok write\nadmin-tok admin\n").unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--auth-token-file", tokens.to_str().unwrap()],
    );
    let o = s.cairn(&["set", "k", "v"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("401"), "{}", stderr(&o));
    ok(s.cairn(&["set", "k", "v", "--token", "writer-tok"]));
    let env = [("CAIRN_SERVER", s.url.as_str()), ("CAIRN_TOKEN", "reader-tok")];
    assert_eq!(stdout(&cairn_with(&env, &["get", "k"], None)), "v\n");
    let o = cairn_with(&env, &["set", "k", "w"], None);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    let file = dir.path().join("b");
    let o = s.cairn(&["backup", file.to_str().unwrap(), "--token", "writer-tok"]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("403"), "{}", stderr(&o));
    assert!(!file.exists());
    ok(s.cairn(&["backup", file.to_str().unwrap(), "--token", "admin-tok"]));
    assert!(file.exists());
}

#[test]
fn watch_resumes_after_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let s = Server::start_at(&data, &addr, &[]);
    ok(s.cairn(&["set", "a", "1"]));
    let mut w = Command::new(BIN)
        .args(["watch", "--server", &s.url, "--from", "1", "--reconnect", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(w.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().ends_with("created default/a = 1"));
    assert_eq!(s.stop().code(), Some(0));
    let s = Server::start_at(&data, &addr, &[]);
    ok(s.cairn(&["set", "b", "2"]));
    // The next line is b's event: a is not replayed, b is not missed.
    let next = lines.next().unwrap().unwrap();
    assert!(next.ends_with("created default/b = 2"), "{next}");
    let _ = w.kill();
    let out = w.wait_with_output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("reconnect"));
}

#[test]
fn https_servers_with_the_public_roots_or_a_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let url = s.url.replace("http://", "https://");
    // Trusting the server's own certificate.
    let ca = cert.to_str().unwrap();
    ok(cairn_with(
        &[],
        &["set", "k", "over tls", "--server", &url, "--tls-ca", ca],
        None,
    ));
    let o = cairn_with(&[("CAIRN_TLS_CA", ca)], &["get", "k", "--server", &url], None);
    assert_eq!(ok(o), "over tls\n");
    // A self-signed certificate is not among the public roots: refused, named.
    let o = cairn_with(&[], &["get", "k", "--server", &url], None);
    expect_code(&o, 2);
    assert!(stderr(&o).to_lowercase().contains("certificate"), "{}", stderr(&o));
    // A CA file without certificates is refused up front.
    let o = cairn_with(
        &[],
        &["get", "k", "--server", &url, "--tls-ca", key.to_str().unwrap()],
        None,
    );
    expect_code(&o, 2);
    assert!(stderr(&o).contains("no PEM certificate"), "{}", stderr(&o));
}

#[test]
fn json_mode_answers_one_json_document_even_on_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let lines = |o: &std::process::Output| -> Vec<serde_json::Value> { stdout(o).lines().map(json).collect() };
    let o = s.cairn(&["get", "nokey", "--json"]);
    expect_code(&o, 1);
    assert_eq!(lines(&o).len(), 1, "{}", stdout(&o));
    assert_eq!(lines(&o)[0]["error"]["code"], "not_found");
    assert!(stderr(&o).is_empty(), "{}", stderr(&o));
    // The server's answer is the document: no second one after it.
    let o = s.cairn(&["del", "nokey", "--json"]);
    expect_code(&o, 1);
    assert_eq!(lines(&o).len(), 1, "{}", stdout(&o));
    assert_eq!(lines(&o)[0]["success"], false);
    let o = s.cairn(&["get", "k", "--json", "--store", "nosuchstore"]);
    expect_code(&o, 2);
    // The server's own error object, code included.
    assert_eq!(lines(&o)[0]["error"]["code"], "unknown_store");
    assert!(
        lines(&o)[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nosuchstore")
    );
}

#[test]
fn a_wrong_server_url_or_an_empty_key_is_an_error_not_a_missing_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    // `--server .../v1` makes every path `/v1/v1/...`: no route there.
    let wrong = format!("{}/v1", s.url);
    for args in [&["get", "color"][..], &["del", "color"], &["content", "get", "ab"]] {
        let mut a = args.to_vec();
        a.extend(["--server", wrong.as_str()]);
        let o = cairn(&a);
        expect_code(&o, 2);
        assert!(stderr(&o).contains("no_route"), "{args:?}: {}", stderr(&o));
    }
    let o = cairn(&["get", "color", "--json", "--server", wrong.as_str()]);
    expect_code(&o, 2);
    assert_eq!(json(stdout(&o).trim())["error"]["code"], "no_route");
    let o = s.cairn(&["get", ""]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("must not be empty"), "{}", stderr(&o));
}

#[test]
fn a_ca_certificate_as_the_servers_own_is_refused_with_the_fix_named() {
    // What `openssl req -x509` makes by default: basicConstraints CA:TRUE.
    let dir = tempfile::tempdir().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key_pair = rcgen::KeyPair::generate().unwrap();
    let c = params.self_signed(&key_pair).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, c.pem()).unwrap();
    std::fs::write(&key, key_pair.serialize_pem()).unwrap();
    let s = Server::start_with(
        &dir.path().join("data"),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
    );
    let url = s.url.replace("http://", "https://");
    let o = cairn_with(
        &[],
        &["get", "k", "--server", &url, "--tls-ca", cert.to_str().unwrap()],
        None,
    );
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("basicConstraints=critical,CA:FALSE"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn set_reads_the_value_from_stdin_with_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(&dir.path().join("data"));
    let env = [("CAIRN_SERVER", s.url.as_str())];
    ok(cairn_with(&env, &["set", "doc", "-"], Some(b"{\"a\": 1}\n")));
    assert_eq!(
        json(&ok(s.cairn(&["get", "doc", "--json"])))["value"],
        json(r#"{"a":1}"#)
    );
    ok(cairn_with(&env, &["set", "text", "-"], Some(b"two\nlines")));
    assert_eq!(json(&ok(s.cairn(&["get", "text", "--json"])))["value"], "two\nlines");
    // Bytes that are not UTF-8 are stored as bytes and come back exactly.
    let raw = [0u8, 159, 146, 150, 255];
    ok(cairn_with(&env, &["set", "blob", "-"], Some(&raw)));
    let o = s.cairn(&["get", "blob"]);
    assert_eq!(o.stdout, raw);
    // The string "-" itself, as JSON.
    ok(s.cairn(&["set", "dash", r#""-""#]));
    assert_eq!(ok(s.cairn(&["get", "dash"])), "-\n");
}
