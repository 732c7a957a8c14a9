//! MULTI / EXEC / WATCH over real sockets.

mod resp_util;

use redis::AsyncCommands;
use resp_util::{cmd, start, transaction};

#[tokio::test]
async fn exec_applies_all_and_replies_per_command() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("text", "10").await.unwrap();
    let out: (String, i64, i64, i64, String, i64) = redis::pipe()
        .atomic()
        .cmd("SET")
        .arg("a")
        .arg("1")
        .cmd("INCRBY")
        .arg("a")
        .arg(5)
        .cmd("INCR")
        .arg("text")
        .cmd("DEL")
        .arg("a")
        .arg("nothing")
        .cmd("GET")
        .arg("text")
        .cmd("EXPIRE")
        .arg("text")
        .arg(100)
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(out, ("OK".into(), 6, 11, 1, "11".into(), 1));
    assert!(c.ttl::<_, i64>("text").await.unwrap() > 0);
    t.server.shutdown().await;
}

#[tokio::test]
async fn watch_aborts_exec_after_a_concurrent_change() {
    let t = start().await;
    let client = t.client();
    let mut a = client.get_multiplexed_async_connection().await.unwrap();
    let mut b = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = a.set("balance", 100).await.unwrap();

    // Unchanged watched key: EXEC commits.
    let _: () = cmd(&mut a, &["WATCH", "balance", "absent-key"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    assert_eq!(
        cmd::<String>(&mut a, &["DECRBY", "balance", "30"]).await.unwrap(),
        "QUEUED"
    );
    let r: Option<Vec<i64>> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(r, Some(vec![70]));

    // Another connection changes the watched key between WATCH and EXEC: nil.
    let _: () = cmd(&mut a, &["WATCH", "balance"]).await.unwrap();
    let _: () = b.set("balance", 500).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut a, &["DECRBY", "balance", "30"]).await.unwrap();
    let r: Option<Vec<i64>> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(r, None);
    assert_eq!(a.get::<_, i64>("balance").await.unwrap(), 500);

    // A watched key that was absent and got created also aborts.
    let _: () = cmd(&mut a, &["WATCH", "fresh"]).await.unwrap();
    let _: () = b.set("fresh", 1).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut a, &["SET", "fresh", "2"]).await.unwrap();
    assert_eq!(cmd::<Option<Vec<String>>>(&mut a, &["EXEC"]).await.unwrap(), None);

    // EXEC unwatches: the next transaction commits despite the earlier change.
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut a, &["SET", "fresh", "3"]).await.unwrap();
    assert_eq!(
        cmd::<Option<Vec<String>>>(&mut a, &["EXEC"]).await.unwrap(),
        Some(vec!["OK".into()])
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn transaction_errors() {
    let t = start().await;
    let mut c = t.conn().await;
    let err = cmd::<()>(&mut c, &["EXEC"]).await.unwrap_err();
    assert!(err.to_string().contains("EXEC without MULTI"), "{err}");
    let err = cmd::<()>(&mut c, &["DISCARD"]).await.unwrap_err();
    assert!(err.to_string().contains("DISCARD without MULTI"), "{err}");

    // A queueing error dooms the transaction; nothing is written.
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let err = cmd::<()>(&mut c, &["MULTI"]).await.unwrap_err();
    assert!(err.to_string().contains("nested"), "{err}");
    let _: String = cmd(&mut c, &["SET", "x", "1"]).await.unwrap();
    assert!(cmd::<String>(&mut c, &["NOSUCHCOMMAND"]).await.is_err());
    let err = cmd::<()>(&mut c, &["EXEC"]).await.unwrap_err();
    assert_eq!(err.code(), Some("EXECABORT"), "{err}");
    assert_eq!(c.exists::<_, i64>("x").await.unwrap(), 0);

    // DISCARD drops the queue.
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut c, &["SET", "x", "1"]).await.unwrap();
    let _: () = cmd(&mut c, &["DISCARD"]).await.unwrap();
    assert_eq!(c.exists::<_, i64>("x").await.unwrap(), 0);

    t.server.shutdown().await;
}

#[tokio::test]
async fn reads_inside_multi_see_the_commands_queued_before_them() {
    use redis::Value as V;
    let t = start().await;
    let mut c = t.conn().await;
    let bulk = |s: &str| V::BulkString(s.as_bytes().to_vec());
    let _: () = c.set("c", "5").await.unwrap();
    let out = transaction(&mut c, &[&["GET", "c"], &["INCR", "c"], &["GET", "c"]]).await;
    assert_eq!(out, V::Array(vec![bulk("5"), V::Int(6), bulk("6")]));

    let out = transaction(
        &mut c,
        &[
            &["MSET", "a", "1", "b", "2"],
            &["MGET", "a", "b"],
            &["EXISTS", "a", "b", "x"],
            &["DEL", "a", "b"],
            &["MGET", "a", "b"],
            &["EXISTS", "a"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![
            V::Okay,
            V::Array(vec![bulk("1"), bulk("2")]),
            V::Int(2),
            V::Int(2),
            V::Array(vec![V::Nil, V::Nil]),
            V::Int(0),
        ])
    );

    // The old value of SET .. GET, GETSET and GETDEL, at their place.
    let _: () = c.set("t", "1").await.unwrap();
    let out = transaction(
        &mut c,
        &[
            &["SET", "t", "2", "GET"],
            &["GETSET", "t", "3"],
            &["STRLEN", "t"],
            &["GETDEL", "t"],
            &["GET", "t"],
            &["TYPE", "t"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![
            bulk("1"),
            bulk("2"),
            V::Int(1),
            bulk("3"),
            V::Nil,
            V::SimpleString("none".into())
        ])
    );
    assert_eq!(c.exists::<_, i64>("t").await.unwrap(), 0);

    // Expiry as the commands before left it.
    let out = transaction(
        &mut c,
        &[
            &["SET", "e", "v", "EX", "100"],
            &["TTL", "e"],
            &["PERSIST", "e"],
            &["TTL", "e"],
            &["PTTL", "nothing"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![V::Okay, V::Int(100), V::Int(1), V::Int(-1), V::Int(-2)])
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn select_inside_multi_moves_the_commands_after_it() {
    let t = start().await;
    let mut c = t.raw().await;
    let mut other = t.conn().await;
    let ask = async |c: &mut tokio::net::TcpStream, parts: &[&str]| {
        String::from_utf8(resp_util::reply(c, &resp_util::encode(parts)).await).unwrap()
    };
    assert_eq!(ask(&mut c, &["SET", "a", "0db"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["MULTI"]).await, "+OK\r\n");
    for q in [
        &["SET", "a", "x"][..],
        &["SELECT", "3"],
        &["SET", "a", "3db"],
        &["GET", "a"],
        &["DBSIZE"],
        &["SELECT", "99"],
        &["GET", "a"],
    ] {
        assert_eq!(ask(&mut c, q).await, "+QUEUED\r\n", "{q:?}");
    }
    // What redis-server 7 answers to the same transaction.
    assert_eq!(
        ask(&mut c, &["EXEC"]).await,
        "*7\r\n+OK\r\n+OK\r\n+OK\r\n$3\r\n3db\r\n:1\r\n-ERR DB index is out of range\r\n$3\r\n3db\r\n"
    );
    // The connection stays in the store the transaction selected.
    assert_eq!(ask(&mut c, &["GET", "a"]).await, "$3\r\n3db\r\n");
    assert_eq!(ask(&mut c, &["SELECT", "0"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["GET", "a"]).await, "$1\r\nx\r\n");

    // A transaction that does not commit leaves the connection where it was.
    assert_eq!(ask(&mut c, &["WATCH", "a"]).await, "+OK\r\n");
    let _: () = other.set("a", "changed").await.unwrap();
    assert_eq!(ask(&mut c, &["MULTI"]).await, "+OK\r\n");
    assert_eq!(ask(&mut c, &["SELECT", "5"]).await, "+QUEUED\r\n");
    assert_eq!(ask(&mut c, &["EXEC"]).await, "*-1\r\n");
    assert_eq!(ask(&mut c, &["GET", "a"]).await, "$7\r\nchanged\r\n");
    t.server.shutdown().await;
}
