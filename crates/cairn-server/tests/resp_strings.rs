//! String and key commands over a real socket with the `redis` crate.

mod resp_util;

use cairn_core::{StoreSpec, Value, ValueType};
use redis::AsyncCommands;
use resp_util::{cmd, start};
use serde_json::json;

#[tokio::test]
async fn string_commands_behave_like_redis() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("greeting", "hello").await.unwrap();
    assert_eq!(
        c.get::<_, Option<String>>("greeting").await.unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(c.get::<_, Option<String>>("missing").await.unwrap(), None);
    assert_eq!(c.incr::<_, _, i64>("n", 1).await.unwrap(), 1);
    assert_eq!(c.incr::<_, _, i64>("n", 41).await.unwrap(), 42);
    assert_eq!(c.decr::<_, _, i64>("n", 2).await.unwrap(), 40);
    assert_eq!(cmd::<i64>(&mut c, &["DECR", "n"]).await.unwrap(), 39);

    // A number written as text (how every Redis client writes) increments too.
    let _: () = c.set("text-num", "10").await.unwrap();
    assert_eq!(c.incr::<_, _, i64>("text-num", 5).await.unwrap(), 15);
    assert_eq!(c.get::<_, String>("text-num").await.unwrap(), "15");
    assert_eq!(
        cmd::<String>(&mut c, &["INCRBYFLOAT", "text-num", "0.5"])
            .await
            .unwrap(),
        "15.5"
    );
    // Integers as Redis reads them: no "+", no leading zeros, no "-0".
    for text in ["007", "+1", "-0", "00", " 1"] {
        let _: () = c.set("odd-num", text).await.unwrap();
        let err = c.incr::<_, _, i64>("odd-num", 1).await.unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{text:?}: {err}");
        assert_eq!(c.get::<_, String>("odd-num").await.unwrap(), text);
    }
    for by in ["007", "+1", "-0"] {
        let err = cmd::<i64>(&mut c, &["INCRBY", "n", by]).await.unwrap_err();
        assert!(err.to_string().contains("not an integer"), "{by:?}: {err}");
    }
    let _: () = c.set("five", "5").await.unwrap();
    assert_eq!(
        cmd::<String>(&mut c, &["INCRBYFLOAT", "five", "5"]).await.unwrap(),
        "10"
    );
    assert_eq!(
        c.get::<_, String>("five").await.unwrap(),
        "10",
        "whole, as Redis stores it"
    );
    // A whole INCRBYFLOAT result is stored as Redis leaves it ("10", not
    // "10.0"), so the integer family goes on from it.
    assert_eq!(cmd::<String>(&mut c, &["INCRBYFLOAT", "g", "10"]).await.unwrap(), "10");
    assert_eq!(c.get::<_, String>("g").await.unwrap(), "10");
    assert_eq!(cmd::<i64>(&mut c, &["STRLEN", "g"]).await.unwrap(), 2);
    assert_eq!(c.incr::<_, _, i64>("g", 1).await.unwrap(), 11);
    let _: String = cmd(&mut c, &["INCRBYFLOAT", "z", "0.5"]).await.unwrap();
    assert_eq!(cmd::<String>(&mut c, &["INCRBYFLOAT", "z", "-0.5"]).await.unwrap(), "0");
    assert_eq!(c.get::<_, String>("z").await.unwrap(), "0");

    let err = c.incr::<_, _, i64>("greeting", 1).await.unwrap_err();
    assert!(
        err.to_string().contains("value is not an integer or out of range"),
        "{err}"
    );
    // A fractional number (INCRBYFLOAT stores one; so can HTTP) is not an
    // integer: the integer family refuses it and leaves it as it was.
    let _: String = cmd(&mut c, &["INCRBYFLOAT", "price", "3.5"]).await.unwrap();
    let _: () = t
        .with_db(|db| {
            db.put("default", "whole-float", Value::Json(json!(2.0))).unwrap();
        })
        .await;
    for op in [
        &["INCR", "price"][..],
        &["DECR", "price"],
        &["INCRBY", "price", "2"],
        &["DECRBY", "price", "2"],
        &["INCR", "whole-float"],
    ] {
        let err = cmd::<i64>(&mut c, op).await.unwrap_err();
        assert!(
            err.to_string().contains("value is not an integer or out of range"),
            "{op:?}: {err}"
        );
    }
    let (price, whole, rev) = t
        .with_db(|db| {
            let p = db.get("default", "price").unwrap().unwrap();
            let w = db.get("default", "whole-float").unwrap().unwrap();
            (p.value, w.value, p.version)
        })
        .await;
    assert_eq!(price, Value::Json(json!(3.5)));
    assert_eq!(whole, Value::Json(json!(2.0)));
    assert_eq!(rev, 1, "a refused INCR wrote a new version");
    assert_eq!(
        cmd::<String>(&mut c, &["INCRBYFLOAT", "price", "1"]).await.unwrap(),
        "4.5"
    );

    let err = cmd::<i64>(&mut c, &["INCRBY", "n", "x"]).await.unwrap_err();
    assert!(
        err.to_string().contains("value is not an integer or out of range"),
        "{err}"
    );

    let _: () = c.mset(&[("a", "1"), ("b", "2")]).await.unwrap();
    let got: Vec<Option<String>> = c.mget(&["a", "b", "zz"]).await.unwrap();
    assert_eq!(got, vec![Some("1".into()), Some("2".into()), None]);
    assert_eq!(c.exists::<_, i64>(&["a", "b", "zz"]).await.unwrap(), 2);
    assert_eq!(c.del::<_, i64>(&["a", "zz"]).await.unwrap(), 1);
    assert_eq!(cmd::<String>(&mut c, &["GETDEL", "b"]).await.unwrap(), "2");
    assert_eq!(c.exists::<_, i64>("b").await.unwrap(), 0);

    assert_eq!(
        cmd::<Option<String>>(&mut c, &["SET", "once", "1", "NX"])
            .await
            .unwrap()
            .as_deref(),
        Some("OK")
    );
    assert_eq!(
        cmd::<Option<String>>(&mut c, &["SET", "once", "2", "NX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cmd::<Option<String>>(&mut c, &["SET", "nope", "2", "XX"])
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        cmd::<Option<String>>(&mut c, &["SET", "once", "3", "GET"])
            .await
            .unwrap()
            .as_deref(),
        Some("1")
    );
    assert_eq!(cmd::<i64>(&mut c, &["SETNX", "once", "4"]).await.unwrap(), 0);
    assert_eq!(c.get::<_, String>("once").await.unwrap(), "3");
    assert_eq!(cmd::<String>(&mut c, &["TYPE", "once"]).await.unwrap(), "string");
    assert_eq!(cmd::<i64>(&mut c, &["STRLEN", "once"]).await.unwrap(), 1);
    assert_eq!(cmd::<String>(&mut c, &["TYPE", "nothing"]).await.unwrap(), "none");

    assert_eq!(cmd::<i64>(&mut c, &["APPEND", "once", "45"]).await.unwrap(), 3);
    assert_eq!(cmd::<i64>(&mut c, &["APPEND", "fresh", "ab"]).await.unwrap(), 2);
    assert_eq!(
        cmd::<String>(&mut c, &["GETEX", "once", "EX", "100"]).await.unwrap(),
        "345"
    );
    assert!(c.ttl::<_, i64>("once").await.unwrap() > 0);
    assert_eq!(
        cmd::<String>(&mut c, &["GETEX", "once", "PERSIST"]).await.unwrap(),
        "345"
    );
    assert_eq!(c.ttl::<_, i64>("once").await.unwrap(), -1);
    let _: () = cmd(&mut c, &["RENAME", "once", "twice"]).await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("once").await.unwrap(), None);
    assert_eq!(c.get::<_, String>("twice").await.unwrap(), "345");
    assert_eq!(cmd::<i64>(&mut c, &["RENAMENX", "twice", "fresh"]).await.unwrap(), 0);
    let err = cmd::<()>(&mut c, &["RENAME", "once", "x"]).await.unwrap_err();
    assert!(err.to_string().contains("no such key"), "{err}");
    let err = cmd::<String>(&mut c, &["SET", "k", "v", "NX", "XX"]).await.unwrap_err();
    assert!(err.to_string().contains("syntax error"), "{err}");
    let err = cmd::<String>(&mut c, &["GET"]).await.unwrap_err();
    assert!(
        err.to_string().contains("wrong number of arguments for 'get' command"),
        "{err}"
    );
    let err = cmd::<String>(&mut c, &["FROBNICATE", "x"]).await.unwrap_err();
    assert!(err.to_string().contains("unknown command 'FROBNICATE'"), "{err}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn ttls_expire_persist() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = cmd(&mut c, &["SET", "s", "v", "EX", "100"]).await.unwrap();
    let ttl: i64 = c.ttl("s").await.unwrap();
    assert!((99..=100).contains(&ttl), "ttl {ttl}");
    let pttl: i64 = c.pttl("s").await.unwrap();
    assert!(pttl > 98_000 && pttl <= 100_000, "pttl {pttl}");
    assert_eq!(c.ttl::<_, i64>("missing").await.unwrap(), -2);
    let _: () = c.set("forever", "v").await.unwrap();
    assert_eq!(c.ttl::<_, i64>("forever").await.unwrap(), -1);
    assert_eq!(c.expire::<_, i64>("forever", 50).await.unwrap(), 1);
    assert!(c.ttl::<_, i64>("forever").await.unwrap() > 0);
    assert_eq!(c.persist::<_, i64>("forever").await.unwrap(), 1);
    assert_eq!(c.persist::<_, i64>("forever").await.unwrap(), 0);
    assert_eq!(c.ttl::<_, i64>("forever").await.unwrap(), -1);
    assert_eq!(c.expire::<_, i64>("missing", 50).await.unwrap(), 0);
    // SET without KEEPTTL drops the TTL; with it keeps it.
    let _: () = cmd(&mut c, &["SET", "s", "w", "KEEPTTL"]).await.unwrap();
    assert!(c.ttl::<_, i64>("s").await.unwrap() > 0);
    let _: () = c.set("s", "x").await.unwrap();
    assert_eq!(c.ttl::<_, i64>("s").await.unwrap(), -1);
    // EXPIRE NX only sets a TTL where there is none.
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "s", "100", "NX"]).await.unwrap(), 1);
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "s", "200", "NX"]).await.unwrap(), 0);
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRE", "s", "200", "GT"]).await.unwrap(), 1);
    // A short TTL really expires.
    let _: () = cmd(&mut c, &["SET", "short", "v", "PX", "50"]).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    assert_eq!(c.get::<_, Option<String>>("short").await.unwrap(), None);
    // A non-positive EXPIRE deletes.
    assert_eq!(c.expire::<_, i64>("s", 0).await.unwrap(), 1);
    assert_eq!(c.exists::<_, i64>("s").await.unwrap(), 0);
    t.server.shutdown().await;
}

#[tokio::test]
async fn pipelines_reply_in_order() {
    let t = start().await;
    let mut c = t.conn().await;
    let mut p = redis::pipe();
    for i in 0..200 {
        p.cmd("SET").arg(format!("k{i}")).arg(i).ignore();
        p.cmd("INCR").arg("counter");
    }
    p.cmd("GET")
        .arg("k199")
        .cmd("SET")
        .arg("k0")
        .arg("v")
        .arg("NX")
        .cmd("DBSIZE");
    let out: Vec<redis::Value> = p.query_async(&mut c).await.unwrap();
    assert_eq!(out.len(), 203);
    for (i, v) in out[..200].iter().enumerate() {
        assert_eq!(*v, redis::Value::Int(i as i64 + 1));
    }
    assert_eq!(out[200], redis::Value::BulkString(b"199".to_vec()));
    assert_eq!(out[201], redis::Value::Nil);
    assert_eq!(out[202], redis::Value::Int(201));
    t.server.shutdown().await;
}

#[tokio::test]
async fn select_by_number_and_name() {
    let t = start().await;
    t.with_db(|db| db.create_store(StoreSpec::new("users")).unwrap()).await;
    let mut c = t.conn().await;
    let _: () = c.set("k", "in-default").await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "3"]).await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("k").await.unwrap(), None);
    let _: () = c.set("k", "in-3").await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "users"]).await.unwrap();
    let _: () = c.set("k", "in-users").await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "in-default");
    let db = t.server.db();
    assert_eq!(db.get("3", "k").unwrap().unwrap().value, Value::Json(json!("in-3")));
    assert_eq!(
        db.get("users", "k").unwrap().unwrap().value,
        Value::Json(json!("in-users"))
    );
    let err = cmd::<()>(&mut c, &["SELECT", "16"]).await.unwrap_err();
    assert!(err.to_string().contains("DB index is out of range"), "{err}");
    // A number too big for Redis's parser makes no store either.
    let err = cmd::<()>(&mut c, &["SELECT", "999999999999999999999"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("out of range"), "{err}");
    assert!(
        db.store_spec("999999999999999999999").is_err(),
        "SELECT created a store"
    );
    let err = cmd::<()>(&mut c, &["SELECT", "nosuchstore"]).await.unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    // The redis URL's database number selects too.
    let client = redis::Client::open(format!("{}3", t.url)).unwrap();
    let mut c3 = client.get_multiplexed_async_connection().await.unwrap();
    assert_eq!(c3.get::<_, String>("k").await.unwrap(), "in-3");
    t.server.shutdown().await;
}

#[tokio::test]
async fn typed_stores_refuse_with_wrongtype() {
    let t = start().await;
    t.with_db(|db| {
        db.create_store(StoreSpec::new("nums").value_type(ValueType::Int))
            .unwrap()
    })
    .await;
    let mut c = t.conn().await;
    let _: () = cmd(&mut c, &["SELECT", "nums"]).await.unwrap();
    let _: () = c.set("n", "5").await.unwrap();
    assert_eq!(
        t.server.db().get("nums", "n").unwrap().unwrap().value,
        Value::Json(json!(5))
    );
    assert_eq!(c.incr::<_, _, i64>("n", 2).await.unwrap(), 7);
    let err = c.set::<_, _, ()>("n", "five").await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    assert!(err.to_string().contains("int"), "{err}");
    let err = cmd::<String>(&mut c, &["INCRBYFLOAT", "n", "0.5"]).await.unwrap_err();
    assert_eq!(err.code(), Some("WRONGTYPE"), "{err}");
    assert_eq!(c.get::<_, String>("n").await.unwrap(), "7");
    t.server.shutdown().await;
}

#[tokio::test]
async fn values_cross_front_ends() {
    let t = start().await;
    let db = t.server.db();
    let mut c = t.conn().await;
    let _: () = c.set("s", "plain text").await.unwrap();
    assert_eq!(
        db.get("default", "s").unwrap().unwrap().value,
        Value::Json(json!("plain text"))
    );
    let _: () = c.set("bin", &[0xffu8, 0x00, 0x01][..]).await.unwrap();
    assert_eq!(
        db.get("default", "bin").unwrap().unwrap().value,
        Value::Bytes(vec![0xff, 0, 1])
    );
    assert_eq!(c.get::<_, Vec<u8>>("bin").await.unwrap(), vec![0xff, 0, 1]);
    t.with_db(|db| db.put("default", "obj", Value::Json(json!({"a": [1, 2]}))).unwrap())
        .await;
    assert_eq!(c.get::<_, String>("obj").await.unwrap(), r#"{"a":[1,2]}"#);
    t.with_db(|db| db.put("default", "num", Value::Json(json!(12))).unwrap())
        .await;
    assert_eq!(c.get::<_, String>("num").await.unwrap(), "12");
    assert_eq!(c.incr::<_, _, i64>("num", 1).await.unwrap(), 13);
    assert_eq!(db.get("default", "num").unwrap().unwrap().value, Value::Json(json!(13)));
    t.server.shutdown().await;
}

#[tokio::test]
async fn scan_keys_dbsize_flushdb() {
    let t = start().await;
    let mut c = t.conn().await;
    for i in 0..57 {
        let _: () = c.set(format!("user:{i}"), i).await.unwrap();
    }
    let _: () = c.set("other", 1).await.unwrap();
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = "0".to_string();
    loop {
        let (next, keys): (String, Vec<String>) = cmd(&mut c, &["SCAN", &cursor, "MATCH", "user:*", "COUNT", "10"])
            .await
            .unwrap();
        for k in keys {
            assert!(seen.insert(k), "a key came twice");
        }
        if next == "0" {
            break;
        }
        assert!(next.parse::<u64>().is_ok(), "numeric cursor {next}");
        cursor = next;
    }
    assert_eq!(seen.len(), 57);
    let mut keys: Vec<String> = c.keys("user:1?").await.unwrap();
    keys.sort();
    assert_eq!(keys.len(), 10);
    assert_eq!(keys[0], "user:10");
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 58);
    let info: String = cmd(&mut c, &["INFO", "keyspace"]).await.unwrap();
    assert!(info.contains("db0:keys=58,"), "{info}");
    // As Redis: at most one of ASYNC / SYNC, else a syntax error and nothing flushed.
    let err = cmd::<()>(&mut c, &["FLUSHDB", "SYNC", "ASYNC"]).await.unwrap_err();
    assert_eq!(err.detail(), Some("syntax error"));
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 58);
    let _: () = cmd(&mut c, &["FLUSHDB", "async"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 0);
    t.server.shutdown().await;
}

#[tokio::test]
async fn command_info_describes_every_command() {
    use redis::Value as V;
    let t = start().await;
    let mut c = t.conn().await;
    let count: i64 = cmd(&mut c, &["COMMAND", "COUNT"]).await.unwrap();
    let all: Vec<V> = cmd(&mut c, &["COMMAND"]).await.unwrap();
    assert_eq!(all.len() as i64, count);
    let info: Vec<V> = cmd(&mut c, &["COMMAND", "INFO", "get", "MSET", "nosuch"])
        .await
        .unwrap();
    let V::Array(get) = &info[0] else { panic!("{info:?}") };
    assert_eq!(get.len(), 10, "Redis 7 shape: {get:?}");
    assert_eq!(get[0], V::BulkString(b"get".to_vec()));
    assert_eq!(
        (&get[1], &get[3], &get[4], &get[5]),
        (&V::Int(2), &V::Int(1), &V::Int(1), &V::Int(1))
    );
    assert_eq!(get[2], V::Array(vec![V::SimpleString("readonly".into())]));
    let V::Array(mset) = &info[1] else { panic!("{info:?}") };
    assert_eq!(
        (&mset[1], &mset[3], &mset[4], &mset[5]),
        (&V::Int(-3), &V::Int(1), &V::Int(-1), &V::Int(2))
    );
    assert_eq!(info[2], V::Nil, "an unknown command is nil, as Redis");
    t.server.shutdown().await;
}

#[tokio::test]
async fn expiretime_rounds_as_redis_does() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("a", "1").await.unwrap();
    let _: i64 = cmd(&mut c, &["PEXPIREAT", "a", "99999999999500"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRETIME", "a"]).await.unwrap(), 100_000_000_000);
    assert_eq!(
        cmd::<i64>(&mut c, &["PEXPIRETIME", "a"]).await.unwrap(),
        99_999_999_999_500
    );
    let _: i64 = cmd(&mut c, &["PEXPIREAT", "a", "99999999999499"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["EXPIRETIME", "a"]).await.unwrap(), 99_999_999_999);
    t.server.shutdown().await;
}

#[tokio::test]
async fn an_increment_past_i64_is_refused_and_writes_nothing() {
    let t = start().await;
    let mut c = t.conn().await;
    let max = i64::MAX.to_string();
    let _: () = c.set("n", &max).await.unwrap();
    // What redis-server 7 answers, and the value stays.
    for q in [&["INCR", "n"][..], &["INCRBY", "n", "1"], &["DECRBY", "n", "-5"]] {
        let err = cmd::<i64>(&mut c, q).await.unwrap_err();
        assert_eq!(err.detail(), Some("increment or decrement would overflow"), "{q:?}");
    }
    assert_eq!(c.get::<_, String>("n").await.unwrap(), max);
    let _: () = c.set("m", "5").await.unwrap();
    let err = cmd::<i64>(&mut c, &["INCRBY", "m", &max]).await.unwrap_err();
    assert_eq!(err.detail(), Some("increment or decrement would overflow"));
    let err = cmd::<i64>(&mut c, &["DECRBY", "m", &i64::MIN.to_string()])
        .await
        .unwrap_err();
    assert_eq!(err.detail(), Some("decrement would overflow"));
    assert_eq!(c.get::<_, i64>("m").await.unwrap(), 5);
    // Inside a transaction: the command's error, nothing written by it.
    let mut s = t.raw().await;
    assert_eq!(resp_util::reply(&mut s, b"MULTI\r\n").await, b"+OK\r\n");
    assert_eq!(resp_util::reply(&mut s, b"INCR n\r\n").await, b"+QUEUED\r\n");
    assert_eq!(resp_util::reply(&mut s, b"INCR m\r\n").await, b"+QUEUED\r\n");
    assert_eq!(
        resp_util::reply(&mut s, b"EXEC\r\n").await,
        b"*2\r\n-ERR increment or decrement would overflow\r\n:6\r\n"
    );
    assert_eq!(c.get::<_, String>("n").await.unwrap(), max);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_command_over_the_batch_limit_says_which_limit_and_changes_nothing() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("k1", "kept").await.unwrap();
    let keys: Vec<String> = (1..=1001).map(|i| format!("k{i}")).collect();
    let mut del = vec!["DEL"];
    del.extend(keys.iter().map(String::as_str));
    let err = cmd::<i64>(&mut c, &del).await.unwrap_err().to_string();
    assert!(
        err.contains("1001 operations") && err.contains("--max-batch-ops"),
        "{err}"
    );
    let mut mset = vec!["MSET"];
    for k in &keys {
        mset.extend([k.as_str(), "v"]);
    }
    let err = cmd::<()>(&mut c, &mset).await.unwrap_err().to_string();
    assert!(err.contains("--max-batch-ops"), "{err}");
    assert_eq!(c.get::<_, String>("k1").await.unwrap(), "kept");
    assert_eq!(cmd::<i64>(&mut c, &["DBSIZE"]).await.unwrap(), 1);
}
