//! `watch`: follows `GET /v1/watch` (Server-Sent Events) and prints one line per change.

use super::{human_value, out_json, out_line};
use crate::Global;
use crate::client::{Body, Client, enc, read_all, server_error};
use anyhow::{Context, anyhow};
use serde_json::Value as Json;
use std::io::BufRead;

/// A change event as one human-readable line, e.g. `rev 12 updated default/k = v`.
#[must_use]
pub fn human_event(e: &Json) -> Vec<u8> {
    let kind = e["type"].as_str().unwrap_or("?");
    let store = e["store"].as_str().unwrap_or("?");
    let mut line = format!("rev {} {kind} {store}", e["revision"]).into_bytes();
    if let Some(k) = e["key"].as_str() {
        line.extend_from_slice(format!("/{k}").as_bytes());
    }
    if matches!(kind, "created" | "updated") {
        line.extend_from_slice(b" = ");
        line.extend(human_value(&e["new_value"]));
    }
    line
}

/// `watch [--key K | --prefix P] [--from REV]`: runs until the stream ends or the process is stopped.
pub fn watch(g: &Global, key: Option<&str>, prefix: Option<&str>, from: Option<u64>) -> anyhow::Result<()> {
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
    if let Some(r) = from {
        q.push(format!("from_revision={r}"));
    }
    let path = if q.is_empty() {
        "/v1/watch".to_owned()
    } else {
        format!("/v1/watch?{}", q.join("&"))
    };
    let client = Client::new(&g.server, g.token.clone(), true);
    let mut r = client.send("GET", &path, Body::None)?;
    let status = r.status().as_u16();
    if status >= 400 {
        let body = read_all(&mut r)?;
        return Err(server_error(status, &body));
    }
    let reader = std::io::BufReader::new(r.into_body().into_reader());
    let mut event = String::new();
    let mut data = String::new();
    for line in reader.lines() {
        let line = line.with_context(|| format!("the watch stream from {} broke", client.base()))?;
        if line.is_empty() {
            if !data.is_empty() {
                dispatch(g, &event, &data)?;
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
    Err(anyhow!("the server at {} closed the watch stream", client.base()))
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

fn dispatch(g: &Global, event: &str, data: &str) -> anyhow::Result<()> {
    match event {
        "progress" => Ok(()),
        "error" => {
            let j: Json = serde_json::from_str(data).unwrap_or(Json::String(data.to_owned()));
            let msg = j["error"]["message"]
                .as_str()
                .or(j["message"].as_str())
                .map_or_else(|| j.to_string(), str::to_owned);
            Err(anyhow!("the watch stopped: {msg}"))
        }
        _ => {
            let j: Json = serde_json::from_str(data).with_context(|| format!("watch event is not JSON: {data}"))?;
            if j["type"] == "progress" {
                return Ok(());
            }
            if g.json {
                out_json(&j)
            } else {
                out_line(&human_event(&j))
            }
        }
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
        assert_eq!(field("data: {}", "data"), Some("{}"));
        assert_eq!(field("data:x", "data"), Some("x"));
        assert_eq!(field("database: x", "data"), None);
    }
}
