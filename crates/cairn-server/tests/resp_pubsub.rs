//! Keyspace notifications and plain pub/sub.

mod resp_util;

use redis::AsyncCommands;
use resp_util::{cmd, next, start};

#[tokio::test]
async fn keyspace_notifications_follow_writes() {
    let t = start().await;
    let mut ps = t.client().get_async_pubsub().await.unwrap();
    ps.psubscribe("__keyspace@0__:*").await.unwrap();
    ps.subscribe("__keyevent@0__:del").await.unwrap();
    let mut msgs = ps.on_message();
    let mut c = t.conn().await;
    let _: () = c.set("k", "v").await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:k".into(), "set".into()));
    let _: i64 = c.incr("n", 2).await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:n".into(), "incrby".into()));
    let _: i64 = c.expire("k", 100).await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:k".into(), "expire".into()));
    let _: i64 = c.del("k").await.unwrap();
    // Both subscriptions match a delete, in either order.
    let mut got = vec![next(&mut msgs).await, next(&mut msgs).await];
    got.sort();
    assert_eq!(
        got,
        vec![
            ("__keyevent@0__:del".into(), "k".into()),
            ("__keyspace@0__:k".into(), "del".into())
        ]
    );
    // A key that expires on its own is announced as `expired`.
    // (A SET with an expiry is `set` then `expire`, as Redis notifies it.)
    let _: () = cmd(&mut c, &["SET", "brief", "v", "PX", "20"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:brief".into(), "set".into()));
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:brief".into(), "expire".into()));
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:brief".into(), "expired".into()));
    // SETEX too; KEEPTTL keeps the expiry without setting one: `set` only.
    let _: () = cmd(&mut c, &["SETEX", "held", "100", "v"]).await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:held".into(), "set".into()));
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:held".into(), "expire".into()));
    let _: () = cmd(&mut c, &["SET", "held", "w", "KEEPTTL"]).await.unwrap();
    let _: () = c.set("after", "x").await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:held".into(), "set".into()));
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:after".into(), "set".into()));
    t.server.shutdown().await;
}

#[tokio::test]
async fn config_set_narrows_notifications() {
    let t = start().await;
    let mut c = t.conn().await;
    let flags: Vec<String> = cmd(&mut c, &["CONFIG", "GET", "notify-keyspace-events"]).await.unwrap();
    assert_eq!(flags, vec!["notify-keyspace-events".to_string(), "AKE".into()]);
    // Only keyevent notifications of generic commands (del, expire...).
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Eg"])
        .await
        .unwrap();
    let mut ps = t.client().get_async_pubsub().await.unwrap();
    ps.psubscribe("__key*__:*").await.unwrap();
    let mut msgs = ps.on_message();
    let _: () = c.set("k", "v").await.unwrap();
    let _: i64 = c.del("k").await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyevent@0__:del".into(), "k".into()));
    let err = cmd::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "Q"])
        .await
        .unwrap_err();
    // Redis's exact text.
    assert_eq!(
        err.detail(),
        Some(
            "CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'."
        )
    );
    // Settings that ask for what cairn does anyway are accepted; others
    // are refused, naming the setting.
    for (name, value) in [
        ("maxmemory", "0"),
        ("timeout", "0"),
        ("appendonly", "yes"),
        ("save", ""),
    ] {
        let _: () = cmd(&mut c, &["CONFIG", "SET", name, value]).await.unwrap();
    }
    for (name, value) in [("maxmemory", "100mb"), ("appendonly", "no"), ("timeout", "300")] {
        let err = cmd::<()>(&mut c, &["CONFIG", "SET", name, value]).await.unwrap_err();
        assert!(err.to_string().contains(name), "{name}: {err}");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn publish_reaches_subscribers() {
    let t = start().await;
    let mut ps = t.client().get_async_pubsub().await.unwrap();
    ps.subscribe("news").await.unwrap();
    ps.psubscribe("sport.*").await.unwrap();
    let mut c = t.conn().await;
    assert_eq!(
        cmd::<Vec<String>>(&mut c, &["PUBSUB", "CHANNELS"]).await.unwrap(),
        vec!["news".to_string()]
    );
    assert_eq!(
        cmd::<(String, i64)>(&mut c, &["PUBSUB", "NUMSUB", "news"])
            .await
            .unwrap(),
        ("news".into(), 1)
    );
    assert_eq!(cmd::<i64>(&mut c, &["PUBSUB", "NUMPAT"]).await.unwrap(), 1);
    assert_eq!(c.publish::<_, _, i64>("news", "hello").await.unwrap(), 1);
    assert_eq!(c.publish::<_, _, i64>("sport.tennis", "ace").await.unwrap(), 1);
    assert_eq!(c.publish::<_, _, i64>("weather", "rain").await.unwrap(), 0);
    // Subscribed to a channel and a pattern matching it: two messages, and
    // PUBLISH counts both, as Redis does.
    let mut both = t.client().get_async_pubsub().await.unwrap();
    both.subscribe("sport.golf").await.unwrap();
    both.psubscribe("sport.*").await.unwrap();
    assert_eq!(c.publish::<_, _, i64>("sport.golf", "putt").await.unwrap(), 3);
    let mut msgs = ps.on_message();
    assert_eq!(next(&mut msgs).await, ("news".into(), "hello".into()));
    assert_eq!(next(&mut msgs).await, ("sport.tennis".into(), "ace".into()));
    assert_eq!(next(&mut msgs).await, ("sport.golf".into(), "putt".into()));
    let mut b = both.on_message();
    assert_eq!(next(&mut b).await, ("sport.golf".into(), "putt".into()));
    assert_eq!(next(&mut b).await, ("sport.golf".into(), "putt".into()));
    t.server.shutdown().await;
}

#[tokio::test]
async fn new_key_events_with_n_and_keymiss_refused() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = cmd(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "KEn$"])
        .await
        .unwrap();
    let mut ps = t.client().get_async_pubsub().await.unwrap();
    ps.psubscribe("__key*@0__:*").await.unwrap();
    let mut msgs = ps.on_message();
    let _: () = c.set("fresh", "1").await.unwrap();
    // As Redis 7: `new` before `set`, on both channels.
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next(&mut msgs).await);
    }
    assert_eq!(
        got,
        [
            ("__keyspace@0__:fresh".to_string(), "new".to_string()),
            ("__keyevent@0__:new".into(), "fresh".into()),
            ("__keyspace@0__:fresh".into(), "set".into()),
            ("__keyevent@0__:set".into(), "fresh".into()),
        ]
    );
    // An overwrite is no new key.
    let _: () = c.set("fresh", "2").await.unwrap();
    assert_eq!(next(&mut msgs).await, ("__keyspace@0__:fresh".into(), "set".into()));
    // keymiss events are not sent, so `m` is refused rather than ignored.
    let err = cmd::<()>(&mut c, &["CONFIG", "SET", "notify-keyspace-events", "AKEm"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("keymiss"), "{err}");
    t.server.shutdown().await;
}
