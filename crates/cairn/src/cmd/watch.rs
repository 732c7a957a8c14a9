//! `watch`: follows `GET /v1/watch` (Server-Sent Events) and prints one line per change.

use super::{inline_value, out_json, out_line};
use crate::Global;
use crate::client::{Body, Client, enc, read_all, server_error};
use anyhow::anyhow;
use serde_json::Value as Json;
use std::io::BufRead;
use std::time::{Duration, Instant};

/// A change event as one human-readable line, e.g. `rev 12 updated default/k = v`.
#[must_use]
pub fn human_event(e: &Json) -> Vec<u8> {
    let kind = e["type"].as_str().unwrap_or("?");
    let store = e["store"].as_str().unwrap_or("?");
    let mut line = format!("rev {} {kind} {store}", e["revision"]).into_bytes();
    match &e["key"] {
        Json::Null => {}
        Json::String(k) => line.extend_from_slice(format!("/{k}").as_bytes()),
        // Bytes that are not UTF-8: `{"$base64": ...}`, shown as JSON.
        other => line.extend_from_slice(format!("/{other}").as_bytes()),
    }
    if matches!(kind, "created" | "updated") {
        line.extend_from_slice(b" = ");
        line.extend(inline_value(&e["new_value"]));
    }
    line
}

/// Why one connection's stream stopped.
enum Stop {
    /// The connection failed or dropped: worth reconnecting.
    Lost(anyhow::Error),
    /// The server refused the watch, sent an error, or stdout closed: give up.
    Fatal(anyhow::Error),
}

/// `watch [--key K | --prefix P] [--from REV]`: runs until stopped. When an
/// established stream drops (a server restart), it reconnects from the
/// revision after the last one seen, for up to `reconnect_secs`.
pub fn watch(
    g: &Global,
    key: Option<&str>,
    prefix: Option<&str>,
    from: Option<u64>,
    reconnect_secs: u64,
) -> anyhow::Result<()> {
    let mut q = Vec::new();
    // A key or prefix only makes sense within a store; without one, watch all stores.
    if g.store.is_some() || key.is_some() || prefix.is_some() {
        q.push(format!("store={}", enc(g.store())));
    }
    if let Some(k) = key {
        q.push(format!("key={}", enc(k)));
    }
    if let Some(p) = prefix {
        q.push(format!("prefix={}", enc(p)));
    }
    let client = g.client_for(true)?;
    let mut next = from;
    let mut connected = false;
    let mut lost_since: Option<Instant> = None;
    loop {
        let mut params = q.clone();
        if let Some(r) = next {
            params.push(format!("from_revision={r}"));
        }
        let path = if params.is_empty() {
            "/v1/watch".to_owned()
        } else {
            format!("/v1/watch?{}", params.join("&"))
        };
        match stream(g, &client, &path, &mut next, &mut connected, &mut lost_since) {
            Stop::Fatal(e) => return Err(e),
            Stop::Lost(e) => {
                let since = *lost_since.get_or_insert_with(Instant::now);
                if !connected || since.elapsed() >= Duration::from_secs(reconnect_secs) {
                    return Err(e);
                }
                let at = next.map_or_else(|| "now".to_owned(), |r| format!("revision {r}"));
                eprintln!("watch: {e:#}; reconnecting from {at}");
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
}

fn stream(
    g: &Global,
    client: &Client,
    path: &str,
    next: &mut Option<u64>,
    connected: &mut bool,
    lost_since: &mut Option<Instant>,
) -> Stop {
    let mut r = match client.send("GET", path, Body::None) {
        Ok(r) => r,
        Err(e) => return Stop::Lost(e),
    };
    let status = r.status().as_u16();
    if status >= 400 {
        return Stop::Fatal(read_all(&mut r).map_or_else(|e| e, |body| server_error(status, &body)));
    }
    if lost_since.take().is_some() {
        eprintln!("watch: reconnected to {}", client.base());
    }
    *connected = true;
    let reader = std::io::BufReader::new(r.into_body().into_reader());
    let mut event = String::new();
    let mut data = String::new();
    for line in reader.lines() {
        let line = match line {
            Ok(l) => l,
            Err(e) => return Stop::Lost(anyhow!("the watch stream from {} broke: {e}", client.base())),
        };
        if line.is_empty() {
            if !data.is_empty()
                && let Err(e) = dispatch(g, &event, &data, next)
            {
                return Stop::Fatal(e);
            }
            event.clear();
            data.clear();
            continue;
        }
        if let Some(v) = field(&line, "data") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(v);
        } else if let Some(v) = field(&line, "event") {
            v.clone_into(&mut event);
        }
    }
    Stop::Lost(anyhow!("the server at {} closed the watch stream", client.base()))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// Prints one SSE message; advances `next` past the revisions seen.
fn dispatch(g: &Global, event: &str, data: &str, next: &mut Option<u64>) -> anyhow::Result<()> {
    let j: Json = serde_json::from_str(data).unwrap_or_else(|_| Json::String(data.to_owned()));
    if event == "error" {
        let msg = j["error"]["message"]
            .as_str()
            .or(j["message"].as_str())
            .map_or_else(|| j.to_string(), str::to_owned);
        return Err(anyhow!("the watch stopped: {msg}"));
    }
    if !j.is_object() {
        return Err(anyhow!("watch event is not a JSON object: {data}"));
    }
    if let Some(r) = j["revision"].as_u64() {
        *next = Some(next.map_or(r + 1, |n| n.max(r + 1)));
    }
    if event == "progress" || j["type"] == "progress" {
        return Ok(());
    }
    if g.json {
        out_json(&j)
    } else {
        out_line(&human_event(&j))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_read_as_one_line() {
        let e = json!({"revision": 12, "store": "default", "key": "k", "type": "updated", "new_value": "v"});
        assert_eq!(human_event(&e), b"rev 12 updated default/k = v");
        let d = json!({"revision": 13, "store": "s", "key": "k", "type": "deleted", "old_value": 1});
        assert_eq!(human_event(&d), b"rev 13 deleted s/k");
        let c = json!({"revision": 14, "store": "s", "key": null, "type": "cleared"});
        assert_eq!(human_event(&c), b"rev 14 cleared s");
        // What would break the line shows as JSON.
        let nl = json!({"revision": 15, "store": "s", "key": "k", "type": "created", "new_value": "a\nb"});
        assert_eq!(human_event(&nl), br#"rev 15 created s/k = "a\nb""#);
        let raw =
            json!({"revision": 16, "store": "s", "key": "k", "type": "created", "new_value": {"$base64": "AP8="}});
        assert_eq!(human_event(&raw), br#"rev 16 created s/k = {"$base64":"AP8="}"#);
        assert_eq!(field("data: {}", "data"), Some("{}"));
        assert_eq!(field("data:x", "data"), Some("x"));
        assert_eq!(field("database: x", "data"), None);
    }
}
