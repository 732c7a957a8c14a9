//! Conditional commands inside MULTI / EXEC: a condition that fails answers
//! nil or 0 and the rest of the transaction still applies, as in Redis.
//! Replies were checked against redis-server 7.0 with the same sequences.

mod resp_util;

use redis::AsyncCommands;
use redis::Value as V;
use resp_util::{cmd, encode, start, transaction};

/// One transaction over a raw connection; EXEC's reply as text (errors
/// inside it stay visible, where client libraries turn them into `Err`).
async fn exec_raw(t: &resp_util::TestServer, cmds: &[&[&str]]) -> String {
    let mut s = t.raw().await;
    assert_eq!(resp_util::reply(&mut s, &encode(&["MULTI"])).await, b"+OK\r\n");
    for c in cmds {
        assert_eq!(resp_util::reply(&mut s, &encode(c)).await, b"+QUEUED\r\n", "{c:?}");
    }
    String::from_utf8(resp_util::reply(&mut s, &encode(&["EXEC"])).await).unwrap()
}

fn bulk(s: &str) -> V {
    V::BulkString(s.as_bytes().to_vec())
}

#[tokio::test]
async fn a_failing_setnx_does_not_stop_the_rest_of_the_transaction() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("taken", "old").await.unwrap();
    let out = transaction(
        &mut c,
        &[
            &["SET", "a", "1"],
            &["SETNX", "taken", "new"],
            &["SETNX", "free", "yes"],
            &["SET", "taken", "x", "NX"],
            &["SET", "missing", "x", "XX"],
            &["SET", "taken", "y", "XX", "GET"],
            &["MSETNX", "free", "1", "other", "2"],
            &["MSETNX", "m1", "1", "m2", "2"],
            &["INCR", "a"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![
            V::Okay,
            V::Int(0),
            V::Int(1),
            V::Nil,
            V::Nil,
            bulk("old"),
            V::Int(0),
            V::Int(1),
            V::Int(2),
        ])
    );
    let got: Vec<Option<String>> = c
        .mget(&["a", "taken", "free", "missing", "other", "m1", "m2"])
        .await
        .unwrap();
    let want = [Some("2"), Some("y"), Some("yes"), None, None, Some("1"), Some("2")];
    assert_eq!(got, want.map(|s| s.map(String::from)));
    t.server.shutdown().await;
}

#[tokio::test]
async fn conditions_see_the_commands_queued_before_them() {
    let t = start().await;
    let mut c = t.conn().await;
    let out = transaction(
        &mut c,
        &[
            &["SETNX", "k", "first"],
            &["SETNX", "k", "second"],
            &["DEL", "k"],
            &["SET", "k", "third", "NX"],
            &["GET", "k"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![V::Int(1), V::Int(0), V::Int(1), V::Okay, bulk("third")])
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn expire_options_persist_and_getex_inside_multi() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("p", "v").await.unwrap();
    let out = transaction(
        &mut c,
        &[
            &["EXPIRE", "p", "100", "XX"],
            &["EXPIRE", "p", "100", "GT"],
            &["EXPIRE", "p", "100", "NX"],
            &["EXPIRE", "p", "50", "NX"],
            &["EXPIRE", "p", "200", "GT"],
            &["EXPIRE", "p", "300", "LT"],
            &["TTL", "p"],
            &["PERSIST", "p"],
            &["PERSIST", "p"],
            &["GETEX", "p", "EX", "70"],
            &["TTL", "p"],
            &["GETEX", "p", "PERSIST"],
            &["TTL", "p"],
            &["EXPIRE", "nothing", "10"],
            &["EXPIRE", "p", "10", "LT"],
            &["EXPIRE", "p", "-1", "NX"],
            &["EXISTS", "p"],
        ],
    )
    .await;
    assert_eq!(
        out,
        V::Array(vec![
            V::Int(0),
            V::Int(0),
            V::Int(1),
            V::Int(0),
            V::Int(1),
            V::Int(0),
            V::Int(200),
            V::Int(1),
            V::Int(0),
            bulk("v"),
            V::Int(70),
            bulk("v"),
            V::Int(-1),
            V::Int(0),
            V::Int(1),
            V::Int(0),
            V::Int(1),
        ])
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn append_setrange_rename_and_copy_inside_multi() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("s", "Hello").await.unwrap();
    let out = exec_raw(
        &t,
        &[
            &["APPEND", "s", " World"],
            &["SETRANGE", "s", "6", "Redis"],
            &["GETRANGE", "s", "-5", "-1"],
            &["RENAME", "s", "t"],
            &["RENAME", "s", "u"],
            &["SET", "n", "10"],
            &["APPEND", "n", "5"],
            &["INCR", "n"],
            &["RENAMENX", "n", "t"],
            &["COPY", "t", "c"],
            &["COPY", "t", "c"],
            &["GET", "c"],
            &["EXISTS", "s", "t", "n"],
        ],
    )
    .await;
    // RENAME of a missing key answers its error at its place; the rest applies.
    assert_eq!(
        out,
        "*13\r\n:11\r\n:11\r\n$5\r\nRedis\r\n+OK\r\n-ERR no such key\r\n+OK\r\n:3\r\n:106\r\n\
         :0\r\n:1\r\n:0\r\n$11\r\nHello Redis\r\n:2\r\n"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn watch_with_a_conditional_command() {
    let t = start().await;
    let client = t.client();
    let mut a = client.get_multiplexed_async_connection().await.unwrap();
    let mut b = client.get_multiplexed_async_connection().await.unwrap();

    // Unchanged watched key: the SETNX fails on its own, the rest commits.
    let _: () = a.set("lock", "held").await.unwrap();
    let _: () = cmd(&mut a, &["WATCH", "lock"]).await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut a, &["SETNX", "lock", "mine"]).await.unwrap();
    let _: String = cmd(&mut a, &["INCR", "attempts"]).await.unwrap();
    let r: Option<Vec<i64>> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(r, Some(vec![0, 1]));

    // The watched key changes (here: disappears) before EXEC: nothing
    // runs, not even the SETNX that would now succeed.
    let _: () = cmd(&mut a, &["WATCH", "lock"]).await.unwrap();
    let _: i64 = b.del("lock").await.unwrap();
    let _: () = cmd(&mut a, &["MULTI"]).await.unwrap();
    let _: String = cmd(&mut a, &["SETNX", "lock", "mine"]).await.unwrap();
    let _: String = cmd(&mut a, &["INCR", "attempts"]).await.unwrap();
    let r: Option<Vec<i64>> = cmd(&mut a, &["EXEC"]).await.unwrap();
    assert_eq!(r, None);
    assert_eq!(a.exists::<_, i64>("lock").await.unwrap(), 0);
    assert_eq!(a.get::<_, i64>("attempts").await.unwrap(), 1);
    t.server.shutdown().await;
}

#[tokio::test]
async fn argument_errors_answer_in_exec_and_the_rest_applies() {
    let t = start().await;
    let mut c = t.conn().await;
    let out = exec_raw(
        &t,
        &[
            &["SET", "a", "1"],
            &["SET", "b", "2", "BADOPTION"],
            &["SETRANGE", "c", "-1", "x"],
            &["EXPIRE", "a", "10", "NX", "XX"],
            &["INCR", "a"],
        ],
    )
    .await;
    assert_eq!(
        out,
        "*5\r\n+OK\r\n-ERR syntax error\r\n-ERR offset is out of range\r\n\
         -ERR NX and XX, GT or LT options at the same time are not compatible\r\n:2\r\n"
    );
    assert_eq!(c.exists::<_, i64>("b").await.unwrap(), 0);
    t.server.shutdown().await;
}

#[tokio::test]
async fn runtime_errors_answer_in_exec_and_the_rest_applies() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("word", "abc").await.unwrap();
    let _: () = c.set("fz", "1.5").await.unwrap();
    let out = exec_raw(
        &t,
        &[
            &["SET", "y", "1"],
            &["INCR", "word"],
            &["GET", "word"],
            &["INCR", "fz"],
            &["INCRBYFLOAT", "fz", "1"],
            &["APPEND", "y", "2"],
            &["INCRBYFLOAT", "word", "1"],
        ],
    )
    .await;
    // What redis-server 7 answers to the same transaction.
    assert_eq!(
        out,
        "*7\r\n+OK\r\n-ERR value is not an integer or out of range\r\n$3\r\nabc\r\n\
         -ERR value is not an integer or out of range\r\n$3\r\n2.5\r\n:2\r\n\
         -ERR value is not a valid float\r\n"
    );
    assert_eq!(c.get::<_, String>("word").await.unwrap(), "abc");
    assert_eq!(c.get::<_, String>("fz").await.unwrap(), "2.5");
    assert_eq!(c.get::<_, String>("y").await.unwrap(), "12");
    t.server.shutdown().await;
}

#[tokio::test]
async fn server_commands_queue_and_answer_after_the_commit() {
    let t = start().await;
    let mut c = t.conn().await;
    let out = transaction(
        &mut c,
        &[
            &["SET", "a", "1"],
            &["CONFIG", "GET", "maxmemory"],
            &["PUBLISH", "ch", "x"],
            &["SCAN", "0"],
            &["CLIENT", "GETNAME"],
        ],
    )
    .await;
    let V::Array(items) = out else {
        panic!("EXEC answered {out:?}")
    };
    assert_eq!(items.len(), 5, "{items:?}");
    assert_eq!(items[0], V::Okay);
    assert_eq!(items[2], V::Int(0), "no subscribers");
    let V::Array(scan) = &items[3] else {
        panic!("SCAN answered {:?}", items[3])
    };
    assert_eq!(
        scan[1],
        V::Array(vec![V::BulkString(b"a".to_vec())]),
        "the scan ran after the SET"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn reads_do_not_count_toward_the_write_limit_and_unknown_subcommands_discard() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("a", "1").await.unwrap();
    let gets: Vec<&[&str]> = (0..1001).map(|_| &["GET", "a"][..]).collect();
    let V::Array(out) = transaction(&mut c, &gets).await else {
        panic!("EXEC failed")
    };
    assert_eq!(out.len(), 1001);
    assert!(out.iter().all(|v| *v == V::BulkString(b"1".to_vec())));

    let mut p = redis::pipe();
    p.atomic().cmd("PUBSUB").arg("BOGUS").cmd("SET").arg("atomic1").arg("x");
    let err = p.query_async::<V>(&mut c).await.unwrap_err();
    // redis-rs reports the queueing error; the server then refused EXEC.
    assert!(err.to_string().contains("unknown subcommand 'BOGUS'"), "{err}");
    assert_eq!(
        c.get::<_, Option<String>>("atomic1").await.unwrap(),
        None,
        "nothing written"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn exec_with_arguments_discards_the_transaction() {
    let t = start().await;
    let mut s = t.raw().await;
    assert_eq!(resp_util::reply(&mut s, &encode(&["MULTI"])).await, b"+OK\r\n");
    assert_eq!(
        resp_util::reply(&mut s, &encode(&["SET", "a", "1"])).await,
        b"+QUEUED\r\n"
    );
    // What redis-server 7 answers.
    assert_eq!(
        String::from_utf8(resp_util::reply(&mut s, &encode(&["EXEC", "x"])).await).unwrap(),
        "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command\r\n"
    );
    assert_eq!(
        resp_util::reply(&mut s, &encode(&["EXEC"])).await,
        b"-ERR EXEC without MULTI\r\n"
    );
    assert_eq!(resp_util::reply(&mut s, &encode(&["GET", "a"])).await, b"$-1\r\n");
    t.server.shutdown().await;
}
