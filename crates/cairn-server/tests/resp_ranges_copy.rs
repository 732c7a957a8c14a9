//! GETRANGE, SUBSTR, SETRANGE, TOUCH, RANDOMKEY, COPY and the keyspace
//! notifications of APPEND, SETRANGE, RENAME and COPY. Replies were checked
//! against redis-server 7.0 with the same commands.

mod resp_util;

use redis::AsyncCommands;
use resp_util::{cmd, next, start};

#[tokio::test]
async fn getrange_and_substr_follow_redis_indexes() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("k", "This is a string").await.unwrap();
    for (start, end, want) in [
        ("0", "3", "This"),
        ("-3", "-1", "ing"),
        ("0", "-1", "This is a string"),
        ("10", "100", "string"),
        ("5", "3", ""),
        ("-1", "-5", ""),
        ("-100", "2", "Thi"),
    ] {
        let got: String = cmd(&mut c, &["GETRANGE", "k", start, end]).await.unwrap();
        assert_eq!(got, want, "GETRANGE k {start} {end}");
    }
    let got: String = cmd(&mut c, &["SUBSTR", "k", "0", "3"]).await.unwrap();
    assert_eq!(got, "This");
    let got: String = cmd(&mut c, &["GETRANGE", "missing", "0", "-1"]).await.unwrap();
    assert_eq!(got, "");
    let err = cmd::<String>(&mut c, &["GETRANGE", "k", "x", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn setrange_pads_with_zero_bytes_and_checks_its_arguments() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("k", "Hello World").await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["SETRANGE", "k", "6", "Redis"]).await.unwrap(), 11);
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "Hello Redis");
    assert_eq!(cmd::<i64>(&mut c, &["SETRANGE", "pad", "3", "x"]).await.unwrap(), 4);
    assert_eq!(c.get::<_, Vec<u8>>("pad").await.unwrap(), b"\0\0\0x");
    // An empty value writes nothing: the length, or 0 for a missing key.
    assert_eq!(cmd::<i64>(&mut c, &["SETRANGE", "k", "100", ""]).await.unwrap(), 11);
    assert_eq!(cmd::<i64>(&mut c, &["SETRANGE", "none", "1", ""]).await.unwrap(), 0);
    assert_eq!(c.exists::<_, i64>("none").await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["SETRANGE", "k", "-1", "x"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("offset is out of range"));
    let err = cmd::<i64>(&mut c, &["SETRANGE", "k", "536870912", "x"])
        .await
        .unwrap_err();
    assert!(
        err.detail().unwrap().starts_with("string exceeds maximum allowed size"),
        "{err}"
    );
    // The limit is the engine's value limit (8 MiB by default).
    let err = cmd::<i64>(&mut c, &["SETRANGE", "k", "8388608", "x"])
        .await
        .unwrap_err();
    assert!(err.detail().unwrap().contains("8388608 bytes"), "{err}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn touch_counts_and_randomkey_picks_a_live_key() {
    let t = start().await;
    let mut c = t.conn().await;
    assert_eq!(cmd::<Option<String>>(&mut c, &["RANDOMKEY"]).await.unwrap(), None);
    let _: () = c.mset(&[("a", "1"), ("b", "2"), ("c", "3")]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["TOUCH", "a", "b", "zz", "a"]).await.unwrap(), 3);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        seen.insert(cmd::<String>(&mut c, &["RANDOMKEY"]).await.unwrap());
    }
    let all: std::collections::BTreeSet<String> = ["a", "b", "c"].map(String::from).into();
    assert_eq!(seen, all, "60 draws from 3 keys see every key");
    t.server.shutdown().await;
}

#[tokio::test]
async fn copy_keeps_the_expiry_and_needs_replace_to_overwrite() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = cmd(&mut c, &["SET", "src", "v", "EX", "100"]).await.unwrap();
    let _: () = c.set("dst", "old").await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "src", "new"]).await.unwrap(), 1);
    assert_eq!(c.ttl::<_, i64>("new").await.unwrap(), 100);
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "src", "dst"]).await.unwrap(), 0);
    assert_eq!(c.get::<_, String>("dst").await.unwrap(), "old");
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "src", "dst", "REPLACE"]).await.unwrap(), 1);
    assert_eq!(c.get::<_, String>("dst").await.unwrap(), "v");
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "missing", "x"]).await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["COPY", "src", "src"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("source and destination objects are the same"));
    let err = cmd::<i64>(&mut c, &["COPY", "src", "x", "BOGUS"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));

    // DB n copies into that database's store, the same key name included.
    let _: () = cmd(&mut c, &["SELECT", "3"]).await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["COPY", "src", "src", "DB", "3"]).await.unwrap(), 1);
    let _: () = cmd(&mut c, &["SELECT", "3"]).await.unwrap();
    assert_eq!(c.get::<_, String>("src").await.unwrap(), "v");
    t.server.shutdown().await;
}

#[tokio::test]
async fn incr_family_reads_numeric_strings_written_by_append() {
    let t = start().await;
    let mut c = t.conn().await;
    assert_eq!(cmd::<i64>(&mut c, &["APPEND", "x", "1"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["APPEND", "x", "2"]).await.unwrap(), 2);
    assert_eq!(cmd::<i64>(&mut c, &["INCRBY", "x", "8"]).await.unwrap(), 20);
    let _: () = c.set("w", "abc").await.unwrap();
    let err = cmd::<String>(&mut c, &["INCRBYFLOAT", "w", "1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not a valid float"));
    let err = cmd::<i64>(&mut c, &["INCR", "w"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn command_info_describes_the_new_commands() {
    let t = start().await;
    let mut c = t.conn().await;
    let info: Vec<redis::Value> = cmd(
        &mut c,
        &["COMMAND", "INFO", "getrange", "setrange", "copy", "touch", "randomkey"],
    )
    .await
    .unwrap();
    let head = |v: &redis::Value| -> (String, i64, i64, i64) {
        let redis::Value::Array(a) = v else { panic!("{v:?}") };
        let name = redis::from_redis_value(&a[0]).unwrap();
        let n = |i: usize| redis::from_redis_value::<i64>(&a[i]).unwrap();
        (name, n(1), n(3), n(4))
    };
    let got: Vec<_> = info.iter().map(head).collect();
    assert_eq!(
        got,
        [
            ("getrange".into(), 4, 1, 1),
            ("setrange".into(), 4, 1, 1),
            ("copy".into(), -3, 1, 2),
            ("touch".into(), -2, 1, -1),
            ("randomkey".into(), 1, 0, 0),
        ]
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn keyspace_events_are_named_as_redis_names_them() {
    let t = start().await;
    let mut ps = t.client().get_async_pubsub().await.unwrap();
    ps.psubscribe("__keyspace@0__:*").await.unwrap();
    let mut msgs = ps.on_message();
    let mut c = t.conn().await;
    let ev = |k: &str, op: &str| (format!("__keyspace@0__:{k}"), op.to_owned());
    let _: i64 = c.append("k", "ab").await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("k", "append"));
    let _: i64 = cmd(&mut c, &["SETRANGE", "k", "1", "x"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("k", "setrange"));
    let _: () = cmd(&mut c, &["RENAME", "k", "r"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("k", "rename_from"));
    assert_eq!(next(&mut msgs).await, ev("r", "rename_to"));
    let _: i64 = cmd(&mut c, &["COPY", "r", "c"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("c", "copy_to"));
    // A SETNX that fails and a PERSIST without an expiry send nothing.
    let _: i64 = cmd(&mut c, &["SETNX", "c", "x"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["PERSIST", "c"]).await.unwrap();
    let _: i64 = cmd(&mut c, &["SETNX", "n", "x"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("n", "set"));
    let _: i64 = cmd(&mut c, &["MOVE", "n", "5"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ev("n", "move_from"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn copy_into_a_database_not_used_yet_creates_it() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("cp", "1").await.unwrap();
    let copied = cmd::<i64>(&mut c, &["COPY", "cp", "cp", "DB", "15"]).await.unwrap();
    assert_eq!(copied, 1, "outside MULTI");
    let out = resp_util::transaction(
        &mut c,
        &[&["COPY", "cp", "cp", "DB", "9"], &["COPY", "cp", "cp", "DB", "9"]],
    )
    .await;
    assert_eq!(
        out,
        redis::Value::Array(vec![redis::Value::Int(1), redis::Value::Int(0)]),
        "inside MULTI"
    );
    cmd::<()>(&mut c, &["SELECT", "15"]).await.unwrap();
    assert_eq!(c.get::<_, String>("cp").await.unwrap(), "1");
    cmd::<()>(&mut c, &["SELECT", "9"]).await.unwrap();
    assert_eq!(c.get::<_, String>("cp").await.unwrap(), "1");
    t.server.shutdown().await;
}

/// Replies as redis-server 7.0 gives them (checked side by side).
#[tokio::test]
async fn move_takes_a_key_to_another_database_only_when_absent_there() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = cmd(&mut c, &["SET", "k", "v", "EX", "100"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["MOVE", "k", "3"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["EXISTS", "k"]).await.unwrap(), 0);
    let _: () = c.set("k", "v2").await.unwrap();
    assert_eq!(
        cmd::<i64>(&mut c, &["MOVE", "k", "3"]).await.unwrap(),
        0,
        "present there"
    );
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v2", "left in place");
    assert_eq!(cmd::<i64>(&mut c, &["MOVE", "missing", "3"]).await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["MOVE", "k", "0"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("source and destination objects are the same"));
    let out = resp_util::transaction(&mut c, &[&["MOVE", "k", "4"], &["MOVE", "nope", "4"]]).await;
    assert_eq!(
        out,
        redis::Value::Array(vec![redis::Value::Int(1), redis::Value::Int(0)])
    );
    cmd::<()>(&mut c, &["SELECT", "3"]).await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v");
    assert_eq!(c.ttl::<_, i64>("k").await.unwrap(), 100, "the expiry goes along");
    cmd::<()>(&mut c, &["SELECT", "4"]).await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v2");
    t.server.shutdown().await;
}
