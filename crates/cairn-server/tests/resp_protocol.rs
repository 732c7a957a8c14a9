//! Byte-level protocol behaviour: framing, RESP3, protocol errors, limits,
//! auth, subscribed mode, connection limits.

mod resp_util;

use resp_util::{read_n, read_to_close, reply, roundtrip, start, start_with};
use tokio::io::AsyncWriteExt;

#[tokio::test]
async fn replies_at_the_byte_level() {
    let t = start().await;
    let mut s = t.raw().await;
    assert_eq!(reply(&mut s, b"*1\r\n$4\r\nPING\r\n").await, b"+PONG\r\n");
    assert_eq!(reply(&mut s, b"PING\r\n").await, b"+PONG\r\n");
    assert_eq!(reply(&mut s, b"ECHO \"a b\"\r\n").await, b"$3\r\na b\r\n");
    assert_eq!(reply(&mut s, b"GET nothing\r\n").await, b"$-1\r\n");
    // Three pipelined commands, split mid-frame across two writes.
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n*2\r\n$3\r\nGET\r\n$1")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let want = b"+OK\r\n$2\r\nv1\r\n:1\r\n";
    assert_eq!(
        roundtrip(&mut s, b"\r\nk\r\n*2\r\n$3\r\nDEL\r\n$1\r\nk\r\n", want.len()).await,
        want
    );
    // RESP3 after HELLO 3: nulls and maps change shape.
    let mut s = t.raw().await;
    s.write_all(b"HELLO 3\r\n").await.unwrap();
    let mut r = Vec::new();
    while !r.ends_with(b"$7\r\nmodules\r\n*0\r\n") {
        r.extend(read_n(&mut s, 1).await);
    }
    assert!(
        r.starts_with(b"%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(roundtrip(&mut s, b"GET nothing\r\n", 3).await, b"_\r\n");
    let err = reply(&mut s, b"HELLO 4\r\n").await;
    assert!(err.starts_with(b"-NOPROTO"), "{}", String::from_utf8_lossy(&err));
    t.server.shutdown().await;
}

#[tokio::test]
async fn protocol_errors_close_the_connection_not_the_server() {
    let t = start().await;
    for (bad, msg) in [
        (&b"*1\r\n$x\r\n"[..], "invalid bulk length"),
        (&b"*abc\r\n"[..], "invalid multibulk length"),
        (&b"*1\r\n$999999999999\r\n"[..], "over the limit"),
        (&b"*2\r\n$3\r\nGET\r\n*1\r\n$1\r\nk\r\n"[..], "expected a bulk string"),
        (&b"SET k \"unclosed\r\n"[..], "unbalanced quotes"),
    ] {
        let mut s = t.raw().await;
        s.write_all(bad).await.unwrap();
        let r = String::from_utf8(read_to_close(&mut s).await).unwrap();
        assert!(
            r.starts_with("-ERR Protocol error: ") && r.contains(msg),
            "{r:?} for {bad:?}"
        );
    }
    // A bulk header over the limit is refused before its body is sent.
    let t2 = start_with(|c| c.max_value_bytes = 1000).await;
    let mut s = t2.raw().await;
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100000\r\n").await.unwrap();
    let r = String::from_utf8(read_to_close(&mut s).await).unwrap();
    assert!(r.contains("bulk length 100000 over the limit"), "{r}");
    // Replies to commands before the bad frame still arrive, in order.
    let mut s = t.raw().await;
    s.write_all(b"PING\r\n*1\r\n$x\r\n").await.unwrap();
    let r = String::from_utf8(read_to_close(&mut s).await).unwrap();
    assert!(r.starts_with("+PONG\r\n-ERR Protocol error"), "{r}");
    // The server keeps serving.
    let mut s = t.raw().await;
    assert_eq!(reply(&mut s, b"PING\r\n").await, b"+PONG\r\n");
    t.server.shutdown().await;
    t2.server.shutdown().await;
}

#[tokio::test]
async fn auth_with_a_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "s3cret admin\nreader read\n").unwrap();
    let t = start_with(|c| c.auth_token_file = Some(tokens.clone())).await;
    let mut s = t.raw().await;
    let r = reply(&mut s, b"GET k\r\n").await;
    assert!(
        r.starts_with(b"-NOAUTH Authentication required."),
        "{}",
        String::from_utf8_lossy(&r)
    );
    let r = reply(&mut s, b"AUTH wrong\r\n").await;
    assert!(r.starts_with(b"-WRONGPASS"), "{}", String::from_utf8_lossy(&r));
    assert_eq!(reply(&mut s, b"AUTH s3cret\r\n").await, b"+OK\r\n");
    assert_eq!(reply(&mut s, b"SET k v\r\n").await, b"+OK\r\n");
    // A read token reads but cannot write.
    let mut r = t.raw().await;
    assert_eq!(reply(&mut r, b"AUTH default reader\r\n").await, b"+OK\r\n");
    assert_eq!(reply(&mut r, b"GET k\r\n").await, b"$1\r\nv\r\n");
    let e = reply(&mut r, b"SET k w\r\n").await;
    assert!(e.starts_with(b"-NOPERM"), "{}", String::from_utf8_lossy(&e));
    // The redis crate authenticates from the URL.
    let addr = t.server.resp_addr.unwrap();
    let client = redis::Client::open(format!("redis://:s3cret@{addr}/")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let v: String = redis::cmd("GET").arg("k").query_async(&mut c).await.unwrap();
    assert_eq!(v, "v");
    t.server.shutdown().await;
}

#[tokio::test]
async fn copy_into_another_database_needs_write_there() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "root admin\nscoped write default\n").unwrap();
    let t = start_with(|c| c.auth_token_file = Some(tokens.clone())).await;
    let mut s = t.raw().await;
    assert_eq!(reply(&mut s, b"AUTH scoped\r\n").await, b"+OK\r\n");
    assert_eq!(reply(&mut s, b"SET k v\r\n").await, b"+OK\r\n");
    for db in ["DB 9", "DB default2"] {
        let e = reply(&mut s, format!("COPY k k {db}\r\n").as_bytes()).await;
        assert!(e.starts_with(b"-NOPERM"), "{db}: {}", String::from_utf8_lossy(&e));
    }
    assert!(
        t.server.db().store_spec("9").is_err(),
        "a token without write on it does not make store 9"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn scoped_tokens_see_and_fake_nothing_of_other_stores() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "root admin\nr1 read app*\n").unwrap();
    let t = start_with(|c| c.auth_token_file = Some(tokens.clone())).await;
    let db = t.server.db().clone();
    tokio::task::spawn_blocking(move || {
        for store in ["app1", "secret"] {
            db.create_store(cairn_core::StoreSpec::new(store)).unwrap();
            db.put(store, "k", cairn_core::Value::Json(serde_json::json!(1)))
                .unwrap();
        }
    })
    .await
    .unwrap();
    let mut root = t.raw().await;
    assert_eq!(reply(&mut root, b"AUTH root\r\n").await, b"+OK\r\n");
    let sub = reply(&mut root, b"SUBSCRIBE __keyspace@secret__:k\r\n").await;
    assert!(sub.starts_with(b"*3"), "{}", String::from_utf8_lossy(&sub));
    let mut r1 = t.raw().await;
    assert_eq!(reply(&mut r1, b"AUTH r1\r\n").await, b"+OK\r\n");
    let info = String::from_utf8_lossy(&reply(&mut r1, b"INFO keyspace\r\n").await).into_owned();
    assert!(info.contains("dbapp1:keys=1"), "{info}");
    assert!(!info.contains("secret"), "another store's name and counts: {info}");
    let e = reply(&mut r1, b"PUBLISH __keyspace@secret__:k del\r\n").await;
    assert!(e.starts_with(b"-NOPERM"), "{}", String::from_utf8_lossy(&e));
    let chans = reply(&mut r1, b"PUBSUB CHANNELS\r\n").await;
    assert_eq!(chans, b"*0\r\n", "{}", String::from_utf8_lossy(&chans));
    let n = reply(&mut r1, b"PUBSUB NUMSUB __keyspace@secret__:k\r\n").await;
    assert!(n.ends_with(b":0\r\n"), "{}", String::from_utf8_lossy(&n));
    // The admin still publishes there (as Redis allows), and lists it.
    assert_eq!(
        reply(&mut root_pub(&t).await, b"PUBLISH __keyspace@secret__:k x\r\n").await,
        b":1\r\n"
    );
    t.server.shutdown().await;
}

async fn root_pub(t: &resp_util::TestServer) -> tokio::net::TcpStream {
    let mut s = t.raw().await;
    assert_eq!(reply(&mut s, b"AUTH root\r\n").await, b"+OK\r\n");
    s
}

#[tokio::test]
async fn subscribed_resp2_connections_only_take_pubsub_commands() {
    let t = start().await;
    let mut s = t.raw().await;
    let r = reply(&mut s, b"SUBSCRIBE ch\r\n").await;
    assert_eq!(r, b"*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n");
    let e = reply(&mut s, b"GET k\r\n").await;
    assert!(
        e.starts_with(b"-ERR Can't execute 'get'"),
        "{}",
        String::from_utf8_lossy(&e)
    );
    let p = reply(&mut s, b"PING\r\n").await;
    assert_eq!(p, b"*2\r\n$4\r\npong\r\n$0\r\n\r\n");
    let u = reply(&mut s, b"UNSUBSCRIBE\r\n").await;
    assert_eq!(u, b"*3\r\n$11\r\nunsubscribe\r\n$2\r\nch\r\n:0\r\n");
    assert_eq!(reply(&mut s, b"GET k\r\n").await, b"$-1\r\n");
    t.server.shutdown().await;
}

#[tokio::test]
async fn connection_limit_and_quit() {
    let t = start_with(|c| c.max_connections = 1).await;
    let mut first = t.raw().await;
    assert_eq!(reply(&mut first, b"PING\r\n").await, b"+PONG\r\n");
    let mut second = t.raw().await;
    let r = String::from_utf8(read_to_close(&mut second).await).unwrap();
    assert_eq!(r, "-ERR max number of clients reached\r\n");
    first.write_all(b"QUIT\r\n").await.unwrap();
    assert_eq!(read_to_close(&mut first).await, b"+OK\r\n");
    // The slot is free again once the first connection is gone.
    let mut third = None;
    for _ in 0..100 {
        let mut s = t.raw().await;
        let r = reply(&mut s, b"PING\r\n").await;
        if r == b"+PONG\r\n" {
            third = Some(s);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(third.is_some(), "a new connection is accepted after QUIT");
    t.server.shutdown().await;
}

#[tokio::test]
async fn connections_run_over_any_stream() {
    use tokio::io::AsyncReadExt;
    let t = start().await;
    let (mut client, server_side) = tokio::io::duplex(64 * 1024);
    let shared = cairn_server::resp::Shared::new(t.server.state().clone());
    let conn = tokio::spawn(cairn_server::resp::serve_connection(
        server_side,
        "duplex".into(),
        shared,
    ));
    client
        .write_all(b"SET k 1\r\nINCR k\r\nGET k\r\nQUIT\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    client.read_to_end(&mut out).await.unwrap();
    assert_eq!(out, b"+OK\r\n:2\r\n$1\r\n2\r\n+OK\r\n");
    conn.await.unwrap();
    t.server.shutdown().await;
}

#[tokio::test]
async fn auth_without_tokens_answers_as_redis_default_user_without_a_password() {
    let t = start().await;
    let mut s = t.raw().await;
    // `redis://default:anything@host` URLs connect, as to a Redis without a password.
    assert_eq!(reply(&mut s, b"AUTH default anything\r\n").await, b"+OK\r\n");
    let r = reply(&mut s, b"HELLO 2 AUTH default pw\r\n").await;
    assert!(r.starts_with(b"*14\r\n"), "{}", String::from_utf8_lossy(&r));
    let r = reply(&mut s, b"AUTH bob pw\r\n").await;
    assert!(r.starts_with(b"-WRONGPASS"), "{}", String::from_utf8_lossy(&r));
    let r = reply(&mut s, b"AUTH pw\r\n").await;
    assert!(
        r.starts_with(b"-ERR AUTH <password> called without any password"),
        "{}",
        String::from_utf8_lossy(&r)
    );
    assert_eq!(reply(&mut s, b"AUTH a b c\r\n").await, b"-ERR syntax error\r\n");
    // Database numbers as Redis reads them.
    assert_eq!(
        reply(&mut s, b"SELECT 03\r\n").await,
        b"-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        reply(&mut s, b"SELECT 16\r\n").await,
        b"-ERR DB index is out of range\r\n"
    );
    assert_eq!(reply(&mut s, b"SELECT 3\r\n").await, b"+OK\r\n");
    t.server.shutdown().await;
}

#[tokio::test]
async fn subcommand_errors_read_as_redis_7() {
    let t = start().await;
    let mut s = t.raw().await;
    for (req, want) in [
        (
            &b"CLIENT SETNAME\r\n"[..],
            &b"-ERR wrong number of arguments for 'client|setname' command\r\n"[..],
        ),
        (
            b"CLIENT GETNAME x\r\n",
            b"-ERR wrong number of arguments for 'client|getname' command\r\n",
        ),
        (
            b"CLIENT BOGUS\r\n",
            b"-ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.\r\n",
        ),
        (b"CLIENT NO-EVICT maybe\r\n", b"-ERR syntax error\r\n"),
        (b"CLIENT NO-EVICT on\r\n", b"+OK\r\n"),
        (b"CLIENT SETINFO bogus x\r\n", b"-ERR Unrecognized option 'bogus'\r\n"),
        (b"CLIENT SETINFO lib-name redis-py\r\n", b"+OK\r\n"),
        (
            b"PUBSUB NUMPAT x\r\n",
            b"-ERR wrong number of arguments for 'pubsub|numpat' command\r\n",
        ),
        (
            b"PUBSUB BOGUS\r\n",
            b"-ERR unknown subcommand 'BOGUS'. Try PUBSUB HELP.\r\n",
        ),
        (
            b"PUBSUB CHANNELS a b\r\n",
            b"-ERR unknown subcommand or wrong number of arguments for 'CHANNELS'. Try PUBSUB HELP.\r\n",
        ),
        (
            b"HELLO 2 SETNAME \"a b\"\r\n",
            b"-ERR Client names cannot contain spaces, newlines or special characters.\r\n",
        ),
    ] {
        assert_eq!(reply(&mut s, req).await, want, "{}", String::from_utf8_lossy(req));
    }
    t.server.shutdown().await;
}
