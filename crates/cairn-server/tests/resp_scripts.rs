//! Lua scripts (EVAL, EVALSHA, SCRIPT) over real sockets, with Redis's
//! conversions, errors and isolation.

mod resp_util;

use redis::{AsyncCommands, Value};
use resp_util::{cmd, reply, start, start_with};

fn error_text(e: &redis::RedisError) -> String {
    format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))
}

#[tokio::test]
async fn eval_converts_values_as_redis_does() {
    let t = start().await;
    let mut c = t.conn().await;
    let n: i64 = cmd(
        &mut c,
        &["EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "n", "5"],
    )
    .await
    .unwrap();
    assert_eq!(n, 5);
    // Numbers truncate, false is nil, tables are arrays up to their first nil.
    let v: Value = cmd(&mut c, &["EVAL", "return {1, 2.9, 'x', false, {3}, nil, 7}", "0"])
        .await
        .unwrap();
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Int(1),
            Value::Int(2),
            Value::BulkString(b"x".to_vec()),
            Value::Nil,
            Value::Array(vec![Value::Int(3)]),
        ])
    );
    // A missing key reads as false in Lua, which converts back to nil.
    let v: Value = cmd(
        &mut c,
        &["EVAL", "local v = redis.call('GET', 'absent'); return v == false", "0"],
    )
    .await
    .unwrap();
    assert_eq!(v, Value::Int(1));
    let ok: String = cmd(&mut c, &["EVAL", "return redis.status_reply('FINE')", "0"])
        .await
        .unwrap();
    assert_eq!(ok, "FINE");
    let status: Value = cmd(&mut c, &["EVAL", "return redis.call('SET', 'k', 'v')", "0"])
        .await
        .unwrap();
    assert_eq!(status, Value::Okay);
    // Numbers as arguments are sent as Lua prints them.
    let _: () = cmd(
        &mut c,
        &["EVAL", "redis.call('SET', 'f', 1.5); redis.call('SET', 'i', 42)", "0"],
    )
    .await
    .unwrap();
    assert_eq!(c.get::<_, String>("f").await.unwrap(), "1.5");
    assert_eq!(c.get::<_, String>("i").await.unwrap(), "42");
    // cjson and bit, which scripts in the wild use.
    let j: String = cmd(
        &mut c,
        &[
            "EVAL",
            "return cjson.encode(cjson.decode(ARGV[1]))",
            "0",
            r#"{"a":[1,2]}"#,
        ],
    )
    .await
    .unwrap();
    assert_eq!(j, r#"{"a":[1,2]}"#);
    let b: i64 = cmd(&mut c, &["EVAL", "return bit.bxor(bit.band(12, 10), 1)", "0"])
        .await
        .unwrap();
    assert_eq!(b, 9);
    t.server.shutdown().await;
}

#[tokio::test]
async fn errors_name_what_failed_and_keep_earlier_writes() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("text", "abc").await.unwrap();
    // redis.call raises the command's error, with the script and line.
    let e = cmd::<Value>(
        &mut c,
        &[
            "EVAL",
            "redis.call('SET', 'before', 1)\nreturn redis.call('INCR', 'text')",
            "0",
        ],
    )
    .await
    .unwrap_err();
    let text = error_text(&e);
    assert!(text.contains("value is not an integer or out of range"), "{text}");
    assert!(text.contains("@user_script:2"), "{text}");
    // As in Redis, what the script wrote before the error stays.
    assert_eq!(c.get::<_, String>("before").await.unwrap(), "1");
    // redis.pcall hands the error to the script as a table.
    let v: String = cmd(
        &mut c,
        &["EVAL", "local r = redis.pcall('INCR', 'text'); return r.err", "0"],
    )
    .await
    .unwrap();
    assert_eq!(v, "ERR value is not an integer or out of range");
    for (script, expected) in [
        ("return (", "Error compiling script"),
        ("x = 1", "Attempt to modify a readonly table"),
        ("return y", "nonexistent global variable 'y'"),
        (
            "return redis.call('NOSUCH')",
            "Unknown Redis command called from script",
        ),
        (
            "return redis.call('GET')",
            "Wrong number of args calling Redis command from script",
        ),
        ("return redis.call('SET', 'k', {})", "must be strings or integers"),
        ("return redis.call('FLUSHDB')", "not allowed from script"),
        ("return redis.call('EVAL', 'return 1', '0')", "not allowed from script"),
        ("error('boom')", "user_script:1: boom"),
    ] {
        let e = cmd::<Value>(&mut c, &["EVAL", script, "0"]).await.unwrap_err();
        assert!(error_text(&e).contains(expected), "{script}: {}", error_text(&e));
    }
    let e = cmd::<Value>(&mut c, &["EVAL", "return 1", "2", "only-one"])
        .await
        .unwrap_err();
    assert!(
        error_text(&e).contains("greater than number of args"),
        "{}",
        error_text(&e)
    );
    let e = cmd::<Value>(&mut c, &["EVAL", "return 1", "-1"]).await.unwrap_err();
    assert!(error_text(&e).contains("can't be negative"), "{}", error_text(&e));
    // A returned error table is the reply, text as given.
    let e = cmd::<Value>(&mut c, &["EVAL", "return redis.error_reply('MYCODE went wrong')", "0"])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MYCODE"));
    // EVAL_RO refuses writes.
    let e = cmd::<Value>(&mut c, &["EVAL_RO", "return redis.call('SET', 'k', 'v')", "0"])
        .await
        .unwrap_err();
    assert!(
        error_text(&e).contains("not allowed from read-only scripts"),
        "{}",
        error_text(&e)
    );
    assert_eq!(c.get::<_, Option<String>>("k").await.unwrap(), None);
    t.server.shutdown().await;
}

#[tokio::test]
async fn evalsha_and_the_script_cache() {
    let t = start().await;
    let mut c = t.conn().await;
    let sha: String = cmd(&mut c, &["SCRIPT", "LOAD", "return ARGV[1] .. KEYS[1]"])
        .await
        .unwrap();
    // The SHA-1 of the body, as Redis names it (sha1sum of the text).
    assert_eq!(sha, "facee73595c1e83e3ea47cba8d250fc2710fd050");
    let v: String = cmd(&mut c, &["EVALSHA", &sha, "1", "k", "v-"]).await.unwrap();
    assert_eq!(v, "v-k");
    // Any case of the hex digits.
    let v: String = cmd(&mut c, &["EVALSHA", &sha.to_uppercase(), "1", "k", "w-"])
        .await
        .unwrap();
    assert_eq!(v, "w-k");
    let exists: Vec<i64> = cmd(&mut c, &["SCRIPT", "EXISTS", &sha, "0000"]).await.unwrap();
    assert_eq!(exists, vec![1, 0]);
    // EVAL caches too, under the SHA-1 of its body (Redis's name for it).
    let seven = "59b6ab2fbe0ee4b25733de0f62e6cda4899ef8e9";
    let e = cmd::<Value>(&mut c, &["EVALSHA", seven, "0"]).await.unwrap_err();
    assert_eq!(e.code(), Some("NOSCRIPT"));
    let _: i64 = cmd(&mut c, &["EVAL", "return 7", "0"]).await.unwrap();
    assert_eq!(cmd::<i64>(&mut c, &["EVALSHA", seven, "0"]).await.unwrap(), 7);
    let hex: String = cmd(&mut c, &["EVAL", "return redis.sha1hex('return 7')", "0"])
        .await
        .unwrap();
    assert_eq!(hex, seven);
    let e = cmd::<Value>(&mut c, &["SCRIPT", "LOAD", "return ("]).await.unwrap_err();
    assert!(error_text(&e).contains("Error compiling script"), "{}", error_text(&e));
    let _: () = cmd(&mut c, &["SCRIPT", "FLUSH"]).await.unwrap();
    let e = cmd::<Value>(&mut c, &["EVALSHA", &sha, "1", "k", "v"])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NOSCRIPT"), "{}", error_text(&e));
    let e = cmd::<Value>(&mut c, &["SCRIPT", "KILL"]).await.unwrap_err();
    assert_eq!(e.code(), Some("NOTBUSY"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn no_other_write_lands_inside_a_script() {
    let t = start().await;
    let script =
        "local v = tonumber(redis.call('GET', KEYS[1]) or '0'); redis.call('SET', KEYS[1], v + 1); return v + 1";
    let (tasks, rounds) = (6, 60);
    let mut handles = Vec::new();
    for i in 0..tasks {
        let mut c = t.conn().await;
        handles.push(tokio::spawn(async move {
            for _ in 0..rounds {
                if i % 3 == 0 {
                    // Plain INCRs beside the scripts.
                    let _: i64 = c.incr("n", 1).await.unwrap();
                } else {
                    let _: i64 = cmd(&mut c, &["EVAL", script, "1", "n"]).await.unwrap();
                }
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut c = t.conn().await;
    // A read-then-write that another write slipped into would lose an increment.
    assert_eq!(c.get::<_, i64>("n").await.unwrap(), tasks * rounds);
    t.server.shutdown().await;
}

#[tokio::test]
async fn script_kill_stops_a_runaway_script_and_keeps_none_of_its_writes() {
    let t = start().await;
    let mut busy = t.conn().await;
    let mut other = t.conn().await;
    let run = tokio::spawn(async move {
        cmd::<Value>(
            &mut busy,
            &["EVAL", "redis.call('SET', 'during', 1) while true do end", "0"],
        )
        .await
    });
    // Reads go on while it runs; KILL answers once there is a script to stop.
    let mut killed = false;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(other.get::<_, Option<String>>("during").await.unwrap(), None);
        if cmd::<()>(&mut other, &["SCRIPT", "KILL"]).await.is_ok() {
            killed = true;
            break;
        }
    }
    assert!(killed, "SCRIPT KILL never found the script");
    let e = run.await.unwrap().unwrap_err();
    assert!(error_text(&e).contains("Script killed"), "{}", error_text(&e));
    assert_eq!(other.get::<_, Option<String>>("during").await.unwrap(), None);
    // Writes go on afterwards.
    let _: () = other.set("after", 1).await.unwrap();
}

#[tokio::test]
async fn each_call_needs_the_tokens_permission() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "root admin\nreader read\n").unwrap();
    let t = start_with(|c| c.auth_token_file = Some(tokens.clone())).await;
    let mut s = t.raw().await;
    assert_eq!(reply(&mut s, b"AUTH reader\r\n").await, b"+OK\r\n");
    let r = reply(&mut s, b"EVAL \"return redis.call('GET', 'k')\" 0\r\n").await;
    assert_eq!(r, b"$-1\r\n", "{}", String::from_utf8_lossy(&r));
    let r = reply(&mut s, b"EVAL \"return redis.call('SET', 'k', 'v')\" 0\r\n").await;
    assert!(r.starts_with(b"-NOPERM"), "{}", String::from_utf8_lossy(&r));
    let r = reply(&mut s, b"EVAL \"return redis.pcall('SET', 'k', 'v')['err']\" 0\r\n").await;
    assert!(r.starts_with(b"$"), "{}", String::from_utf8_lossy(&r));
    assert!(String::from_utf8_lossy(&r).contains("NOPERM"));
    t.server.shutdown().await;
}

#[tokio::test]
async fn scripts_inside_multi_run_in_order_and_commit_together() {
    let t = start().await;
    let mut c = t.conn().await;
    let out = resp_util::transaction(
        &mut c,
        &[
            &["SET", "a", "1"],
            &["EVAL", "return redis.call('INCRBY', KEYS[1], ARGV[1])", "1", "a", "10"],
            &["GET", "a"],
            &["SELECT", "4"],
            &["SET", "b", "in-4"],
        ],
    )
    .await;
    assert_eq!(
        out,
        Value::Array(vec![
            Value::Okay,
            Value::Int(11),
            Value::BulkString(b"11".to_vec()),
            Value::Okay,
            Value::Okay,
        ])
    );
    // SELECT inside the transaction moved the connection to store "4".
    assert_eq!(c.get::<_, String>("b").await.unwrap(), "in-4");
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("b").await.unwrap(), None);
    // A WATCHed key that changed aborts it, scripts and all.
    let mut other = t.conn().await;
    let _: () = cmd(&mut c, &["WATCH", "a"]).await.unwrap();
    let _: () = other.set("a", 100).await.unwrap();
    let _: () = cmd(&mut c, &["MULTI"]).await.unwrap();
    let _: () = cmd(&mut c, &["EVAL", "return redis.call('SET', 'x', 1)", "0"])
        .await
        .unwrap();
    let aborted: Value = cmd(&mut c, &["EXEC"]).await.unwrap();
    assert_eq!(aborted, Value::Nil);
    assert_eq!(other.get::<_, Option<String>>("x").await.unwrap(), None);
    t.server.shutdown().await;
}

#[tokio::test]
async fn one_script_cannot_change_what_the_next_one_sees() {
    let t = start().await;
    let mut c = t.conn().await;
    for script in [
        "rawset(_G, 'leak', 42)",
        "string.rep = nil",
        "redis.sha1hex = function() return 'pwned' end",
        "setmetatable(_G, nil)",
        "getmetatable('').__index = {}",
        "rawset(string, 'upper', nil)",
        "collectgarbage('stop')",
        "setfenv(1, {})",
    ] {
        assert!(
            cmd::<Value>(&mut c, &["EVAL", script, "0"]).await.is_err(),
            "{script} was allowed"
        );
    }
    let e = cmd::<Value>(&mut c, &["EVAL", "return leak", "0"]).await.unwrap_err();
    assert!(
        error_text(&e).contains("nonexistent global variable 'leak'"),
        "{}",
        error_text(&e)
    );
    let v: Vec<String> = cmd(
        &mut c,
        &[
            "EVAL",
            "return {string.rep('a', 2), redis.sha1hex(''), ('x'):upper()}",
            "0",
        ],
    )
    .await
    .unwrap();
    assert_eq!(v, ["aa", "da39a3ee5e6b4b0d3255bfef95601890afd80709", "X"]);
    // A script that fills its Lua state fails; the next one runs.
    let e = cmd::<Value>(
        &mut c,
        &[
            "EVAL",
            "local s = string.rep('x', 100 * 1024 * 1024) local t = {s .. 'a', s .. 'b', s .. 'c'} return #t",
            "0",
        ],
    )
    .await
    .unwrap_err();
    assert!(error_text(&e).contains("memory"), "{}", error_text(&e));
    assert_eq!(cmd::<i64>(&mut c, &["EVAL", "return 2", "0"]).await.unwrap(), 2);
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_script_publishes_after_its_writes_are_visible_and_selects_only_for_itself() {
    let t = start().await;
    let mut c = t.conn().await;
    let mut pubsub = t.client().get_async_pubsub().await.unwrap();
    pubsub.subscribe("ch").await.unwrap();
    let mut messages = pubsub.on_message();
    let receivers: i64 = cmd(
        &mut c,
        &["EVAL", "redis.call('SET', 'k', ARGV[1]); local n = redis.call('PUBLISH', 'ch', ARGV[1]); for i = 1, 300000 do end; return n", "0", "v1"],
    )
    .await
    .unwrap();
    assert_eq!(receivers, 1);
    let (channel, payload) = resp_util::next(&mut messages).await;
    assert_eq!((channel.as_str(), payload.as_str()), ("ch", "v1"));
    // By the time the message is out, the write is visible.
    assert_eq!(c.get::<_, String>("k").await.unwrap(), "v1");
    // A script's SELECT inside MULTI stays inside the script.
    let _: () = cmd(&mut c, &["SELECT", "5"]).await.unwrap();
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    let out = resp_util::transaction(
        &mut c,
        &[
            &[
                "EVAL",
                "redis.call('SELECT', '5'); return redis.call('SET', 'in5', 1)",
                "0",
            ],
            &["SET", "in0", "1"],
        ],
    )
    .await;
    assert_eq!(out, Value::Array(vec![Value::Okay, Value::Okay]));
    assert_eq!(c.get::<_, Option<String>>("in0").await.unwrap(), Some("1".into()));
    assert_eq!(c.get::<_, Option<String>>("in5").await.unwrap(), None);
    let _: () = cmd(&mut c, &["SELECT", "5"]).await.unwrap();
    assert_eq!(c.get::<_, Option<String>>("in5").await.unwrap(), Some("1".into()));
    t.server.shutdown().await;
}

#[tokio::test]
async fn pipelined_scripts_answer_in_order_with_the_writes_around_them() {
    let t = start().await;
    let mut c = t.conn().await;
    let incr = "return redis.call('INCR', KEYS[1])";
    let out: (String, i64, String, i64, i64, i64) = redis::pipe()
        .cmd("SET")
        .arg("a")
        .arg(1)
        .cmd("EVAL")
        .arg(incr)
        .arg(1)
        .arg("a")
        .cmd("GET")
        .arg("a")
        .cmd("EVAL")
        .arg(incr)
        .arg(1)
        .arg("a")
        .cmd("INCR")
        .arg("a")
        .cmd("EVAL")
        .arg(incr)
        .arg(1)
        .arg("a")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(out, ("OK".into(), 2, "2".into(), 3, 4, 5));
    t.server.shutdown().await;
}
