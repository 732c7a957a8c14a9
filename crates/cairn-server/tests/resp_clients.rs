//! CLIENT LIST and CLIENT KILL over real connections, with and without tokens.

mod resp_util;

use resp_util::{read_to_close, reply, start, start_with};

fn text(b: Vec<u8>) -> String {
    String::from_utf8(b).unwrap()
}

/// The `id=` of every line of a CLIENT LIST bulk reply.
fn ids(list: &str) -> Vec<String> {
    list.lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")).map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn client_list_shows_every_connection_and_kill_closes_one() {
    let t = start().await;
    let mut a = t.raw().await;
    let mut b = t.raw().await;
    assert_eq!(reply(&mut b, b"CLIENT SETNAME worker-b\r\n").await, b"+OK\r\n");
    assert_eq!(reply(&mut b, b"SELECT 3\r\n").await, b"+OK\r\n");
    let b_id = text(reply(&mut b, b"CLIENT ID\r\n").await);
    let b_id = b_id.trim_start_matches(':').trim().to_owned();
    let list = text(reply(&mut a, b"CLIENT LIST\r\n").await);
    assert_eq!(ids(&list).len(), 2, "{list}");
    let line_b = list
        .lines()
        .find(|l| l.contains(&format!("id={b_id} ")))
        .unwrap_or_else(|| panic!("{list}"));
    for field in ["name=worker-b", "db=3", "cmd=client", "flags=N", "resp=2"] {
        assert!(line_b.contains(field), "{field} in {line_b}");
    }
    let info = text(reply(&mut a, b"CLIENT INFO\r\n").await);
    assert_eq!(ids(&info).len(), 1, "{info}");
    assert!(info.contains("cmd=client|info"), "{info}");

    // The old form answers OK; the new one counts.
    let addr_b = line_b
        .split(' ')
        .find_map(|f| f.strip_prefix("addr="))
        .unwrap()
        .to_owned();
    let r = reply(&mut a, format!("CLIENT KILL {addr_b}\r\n").as_bytes()).await;
    assert_eq!(r, b"+OK\r\n");
    assert!(read_to_close(&mut b).await.is_empty(), "b is closed");
    assert_eq!(
        reply(&mut a, format!("CLIENT KILL {addr_b}\r\n").as_bytes()).await,
        b"-ERR No such client\r\n"
    );
    let mut c = t.raw().await;
    let c_id = text(reply(&mut c, b"CLIENT ID\r\n").await);
    let c_id = c_id.trim_start_matches(':').trim();
    let r = reply(&mut a, format!("CLIENT KILL ID {c_id}\r\n").as_bytes()).await;
    assert_eq!(r, b":1\r\n");
    // SKIPME (yes by default) keeps the caller.
    let a_id = text(reply(&mut a, b"CLIENT ID\r\n").await);
    let a_id = a_id.trim_start_matches(':').trim();
    assert_eq!(
        reply(&mut a, format!("CLIENT KILL ID {a_id}\r\n").as_bytes()).await,
        b":0\r\n"
    );
    assert_eq!(reply(&mut a, b"PING\r\n").await, b"+PONG\r\n");
    t.server.shutdown().await;
}

#[tokio::test]
async fn only_an_admin_token_sees_and_kills_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "root admin\napp write app*\n").unwrap();
    let t = start_with(|c| c.auth_token_file = Some(tokens.clone())).await;
    let mut root = t.raw().await;
    assert_eq!(reply(&mut root, b"AUTH root\r\n").await, b"+OK\r\n");
    let mut app = t.raw().await;
    assert_eq!(reply(&mut app, b"AUTH app\r\n").await, b"+OK\r\n");
    let list = text(reply(&mut app, b"CLIENT LIST\r\n").await);
    assert_eq!(
        ids(&list).len(),
        1,
        "a scoped token sees its own connection only: {list}"
    );
    let r = text(reply(&mut app, b"CLIENT KILL ID 1\r\n").await);
    assert!(r.starts_with("-NOPERM"), "{r}");
    let list = text(reply(&mut root, b"CLIENT LIST\r\n").await);
    assert_eq!(ids(&list).len(), 2, "{list}");
    t.server.shutdown().await;
}
