//! WAIT, SAVE, BGSAVE, LASTSAVE, OBJECT and MEMORY over a real socket;
//! replies as redis-server 7.0 gives them (checked side by side).

mod resp_util;

use redis::AsyncCommands;
use resp_util::{cmd, start};

#[tokio::test]
async fn object_and_memory_describe_a_key_as_redis_does() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("s", "hello").await.unwrap();
    let _: () = c.set("i", "12345").await.unwrap();
    let _: () = c.set("l", "x".repeat(60)).await.unwrap();
    let enc = |k: &'static str| ["OBJECT", "ENCODING", k];
    assert_eq!(cmd::<String>(&mut c, &enc("s")).await.unwrap(), "embstr");
    assert_eq!(cmd::<String>(&mut c, &enc("i")).await.unwrap(), "int");
    assert_eq!(cmd::<String>(&mut c, &enc("l")).await.unwrap(), "raw");
    assert_eq!(cmd::<Option<String>>(&mut c, &enc("nope")).await.unwrap(), None);
    assert_eq!(cmd::<i64>(&mut c, &["OBJECT", "REFCOUNT", "s"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["object", "idletime", "s"]).await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["OBJECT", "FREQ", "s"]).await.unwrap_err();
    assert!(
        err.to_string().contains("LFU maxmemory policy is not selected"),
        "{err}"
    );
    let err = cmd::<i64>(&mut c, &["OBJECT", "BOGUS", "s"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("unknown subcommand 'BOGUS'. Try OBJECT HELP."));
    let err = cmd::<i64>(&mut c, &["OBJECT", "ENCODING"]).await.unwrap_err();
    assert_eq!(
        err.detail(),
        Some("wrong number of arguments for 'object|encoding' command")
    );

    let small = cmd::<i64>(&mut c, &["MEMORY", "USAGE", "s"]).await.unwrap();
    let large = cmd::<i64>(&mut c, &["MEMORY", "USAGE", "l", "SAMPLES", "5"])
        .await
        .unwrap();
    assert!(small > 6 && large >= small + 55, "{small} {large}");
    assert_eq!(
        cmd::<Option<i64>>(&mut c, &["MEMORY", "USAGE", "nope"]).await.unwrap(),
        None
    );
    let err = cmd::<i64>(&mut c, &["MEMORY", "USAGE", "s", "BOGUS"])
        .await
        .unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    let err = cmd::<i64>(&mut c, &["MEMORY", "USAGE", "s", "SAMPLES", "-1"])
        .await
        .unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    let twice = ["MEMORY", "USAGE", "s", "SAMPLES", "5", "SAMPLES", "3"];
    assert_eq!(cmd::<i64>(&mut c, &twice).await.unwrap(), small);
    let help = cmd::<redis::Value>(&mut c, &["OBJECT", "HELP"]).await.unwrap();
    let redis::Value::Array(lines) = help else {
        panic!("{help:?}")
    };
    assert!(matches!(&lines[0], redis::Value::SimpleString(l) if l.starts_with("OBJECT <subcommand>")));
    let out = resp_util::transaction(&mut c, &[&["OBJECT", "ENCODING", "i"], &["MEMORY", "USAGE", "nope"]]).await;
    assert_eq!(
        out,
        redis::Value::Array(vec![redis::Value::BulkString(b"int".to_vec()), redis::Value::Nil])
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn wait_save_and_lastsave_answer_as_a_server_without_replicas() {
    let t = start().await;
    let mut c = t.conn().await;
    assert_eq!(cmd::<i64>(&mut c, &["WAIT", "1", "10"]).await.unwrap(), 0);
    let err = cmd::<i64>(&mut c, &["WAIT", "0", "-1"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("timeout is negative"));
    let err = cmd::<i64>(&mut c, &["WAIT", "a", "0"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("value is not an integer or out of range"));
    let started = cmd::<i64>(&mut c, &["LASTSAVE"]).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - 60..=now).contains(&started), "{started} vs {now}");
    let _: () = c.set("k", "v").await.unwrap();
    let _: () = cmd(&mut c, &["SAVE"]).await.unwrap();
    assert!(cmd::<i64>(&mut c, &["LASTSAVE"]).await.unwrap() >= started);
    assert_eq!(
        cmd::<String>(&mut c, &["BGSAVE"]).await.unwrap(),
        "Background saving started"
    );
    let err = cmd::<String>(&mut c, &["BGSAVE", "NOW"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    t.server.stop().await.expect("a clean stop fsyncs fine");
}
