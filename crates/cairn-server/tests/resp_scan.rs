//! SCAN cursors are server-wide (pooled clients continue a scan on another
//! connection), unknown cursors are refused, and INFO keyspace counts keys
//! with an expiry.

mod resp_util;

use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use resp_util::{cmd, start};
use std::collections::BTreeSet;

async fn scan_page(c: &mut MultiplexedConnection, cursor: &str, count: &str) -> (String, Vec<String>) {
    cmd(c, &["SCAN", cursor, "COUNT", count]).await.unwrap()
}

#[tokio::test]
async fn scan_continues_on_another_connection() {
    let t = start().await;
    // Separate TCP connections, like a pool hands out.
    let mut a = t.conn().await;
    let mut b = t.conn().await;
    let mut c = t.conn().await;
    let want: BTreeSet<String> = (0..23).map(|i| format!("k{i:02}")).collect();
    for k in &want {
        let _: () = a.set(k, 1).await.unwrap();
    }

    let mut seen = BTreeSet::new();
    let (mut cursor, keys) = scan_page(&mut a, "0", "5").await;
    seen.extend(keys);
    let conns = [&mut b, &mut c, &mut a];
    let mut pages = 1;
    while cursor != "0" {
        let id: u64 = cursor.parse().expect("numeric cursor");
        assert!(id > 0 && id < 1 << 53, "cursor {id} is not a safe JavaScript integer");
        let conn = &mut *conns[pages % 3];
        let (next, keys) = scan_page(conn, &cursor, "5").await;
        for k in keys {
            assert!(seen.insert(k.clone()), "{k} came twice");
        }
        cursor = next;
        pages += 1;
        assert!(pages < 100, "the scan does not end");
    }
    assert_eq!(seen, want, "every key exactly once over three connections");
    assert!(pages >= 5, "{pages} pages of 5 for 23 keys");
    t.server.shutdown().await;
}

#[tokio::test]
async fn unknown_scan_cursors_are_errors() {
    let t = start().await;
    let mut c = t.conn().await;
    for i in 0..12 {
        let _: () = c.set(format!("k{i}"), i).await.unwrap();
    }
    for bad in ["12345", "garbage", "-1"] {
        let err = cmd::<(String, Vec<String>)>(&mut c, &["SCAN", bad]).await.unwrap_err();
        assert!(err.to_string().contains("invalid cursor"), "SCAN {bad}: {err}");
    }
    // Unknown even with TYPE (which ends a scan that has no such keys).
    let err = cmd::<(String, Vec<String>)>(&mut c, &["SCAN", "12345", "TYPE", "hash"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid cursor"), "{err}");

    // A cursor sent again (a retry) gives the same page and the same next cursor.
    let (cursor, first) = scan_page(&mut c, "0", "5").await;
    assert_ne!(cursor, "0");
    let (next, page) = scan_page(&mut c, &cursor, "5").await;
    assert_ne!(next, "0");
    assert_eq!(scan_page(&mut c, &cursor, "5").await, (next.clone(), page.clone()));
    let (last, keys) = scan_page(&mut c, &next, "5").await;
    assert_eq!((last.as_str(), keys.len()), ("0", 2));
    assert_eq!(scan_page(&mut c, &next, "5").await, (last, keys.clone()));
    let mut all: Vec<String> = first.into_iter().chain(page).chain(keys).collect();
    all.sort();
    assert_eq!(all.len(), 12);
    all.dedup();
    assert_eq!(all.len(), 12, "no key twice");

    // A cursor from another server (as from before a restart) is unknown there.
    let (theirs, _) = scan_page(&mut c, "0", "5").await;
    let other = start().await;
    let mut o = other.conn().await;
    let _: () = o.set("x", 1).await.unwrap();
    let err = cmd::<(String, Vec<String>)>(&mut o, &["SCAN", &theirs])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("invalid cursor"), "{err}");
    other.server.shutdown().await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn scan_cursor_keeps_its_store_after_select() {
    let t = start().await;
    let mut c = t.conn().await;
    for i in 0..5 {
        let _: () = c.set(format!("default-{i}"), i).await.unwrap();
    }
    let _: () = cmd(&mut c, &["SELECT", "3"]).await.unwrap();
    let want: BTreeSet<String> = (0..7).map(|i| format!("three-{i}")).collect();
    for k in &want {
        let _: () = c.set(k, 1).await.unwrap();
    }
    let (mut cursor, keys) = scan_page(&mut c, "0", "3").await;
    let mut seen: BTreeSet<String> = keys.into_iter().collect();
    // The scan goes on in store 3 after SELECT 0, and on a connection that
    // never selected it.
    let _: () = cmd(&mut c, &["SELECT", "0"]).await.unwrap();
    let mut other = t.conn().await;
    let mut turn = 0;
    while cursor != "0" {
        let conn = if turn % 2 == 0 { &mut c } else { &mut other };
        let (next, keys) = scan_page(conn, &cursor, "3").await;
        for k in keys {
            assert!(seen.insert(k.clone()), "{k} came twice");
        }
        cursor = next;
        turn += 1;
    }
    assert_eq!(seen, want);
    // SCAN 0 starts over in the selected store.
    let (_, keys) = scan_page(&mut c, "0", "100").await;
    assert_eq!(keys.len(), 5);
    assert!(keys.iter().all(|k| k.starts_with("default-")), "{keys:?}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn info_keyspace_counts_keys_with_an_expiry() {
    let t = start().await;
    let mut c = t.conn().await;
    let _: () = c.set("plain", "v").await.unwrap();
    let _: () = cmd(&mut c, &["SET", "infottl", "v", "EX", "1000"]).await.unwrap();
    let info: String = cmd(&mut c, &["INFO", "keyspace"]).await.unwrap();
    let line = info
        .lines()
        .find(|l| l.starts_with("db0:"))
        .unwrap_or_else(|| panic!("no db0 line: {info}"));
    let fields: std::collections::HashMap<&str, u64> = line["db0:".len()..]
        .split(',')
        .map(|f| {
            let (k, v) = f.split_once('=').unwrap();
            (k, v.parse().unwrap())
        })
        .collect();
    assert_eq!(fields["keys"], 2, "{line}");
    assert_eq!(fields["expires"], 1, "{line}");
    let avg = fields["avg_ttl"];
    assert!(avg > 900_000 && avg <= 1_000_000, "avg_ttl in ms: {line}");

    let _: () = cmd(&mut c, &["PERSIST", "infottl"]).await.unwrap();
    let info: String = cmd(&mut c, &["INFO", "keyspace"]).await.unwrap();
    assert!(info.contains("db0:keys=2,expires=0,avg_ttl=0"), "{info}");
    // As Redis writes it: a blank line between sections, none at the end.
    let all: String = cmd(&mut c, &["INFO"]).await.unwrap();
    assert!(all.contains("\r\n\r\n# Keyspace\r\n"), "{all:?}");
    assert!(all.ends_with("avg_ttl=0\r\n") && !all.ends_with("\r\n\r\n"), "{all:?}");
    t.server.shutdown().await;
}

#[tokio::test]
async fn info_has_memory_persistence_and_expired_keys_for_exporters() {
    let t = start().await;
    let mut c = t.conn().await;
    let info: String = cmd(&mut c, &["INFO"]).await.unwrap();
    let field = |name: &str| -> u64 {
        let prefix = format!("{name}:");
        info.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .unwrap_or_else(|| panic!("no {name} in {info}"))
            .parse()
            .unwrap()
    };
    assert!(field("used_memory") > 1 << 20, "a running server uses more than 1 MB");
    assert_eq!(field("maxmemory"), 0);
    assert_eq!(field("rdb_bgsave_in_progress"), 0);
    assert_eq!(
        field("rdb_last_save_time") as i64,
        cmd::<i64>(&mut c, &["LASTSAVE"]).await.unwrap()
    );
    assert_eq!(field("expired_keys"), 0);
    let mem: String = cmd(&mut c, &["INFO", "memory"]).await.unwrap();
    assert!(
        mem.starts_with("# Memory\r\nused_memory:") && !mem.contains("# Server"),
        "{mem}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn info_keyspace_lists_databases_by_number_then_named_stores() {
    let t = start().await;
    let mut c = t.conn().await;
    t.with_db(|db| db.create_store(cairn_core::StoreSpec::new("named")).unwrap())
        .await;
    for db in ["10", "2", "0", "named"] {
        let _: () = cmd(&mut c, &["SELECT", db]).await.unwrap();
        let _: () = c.set("k", "v").await.unwrap();
    }
    let info: String = cmd(&mut c, &["INFO", "keyspace"]).await.unwrap();
    let dbs: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split_once(':').map(|(db, _)| db))
        .collect();
    assert_eq!(dbs, ["db0", "db2", "db10", "dbnamed"], "{info}");
    t.server.shutdown().await;
}
