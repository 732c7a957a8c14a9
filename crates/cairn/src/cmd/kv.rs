//! Key commands over HTTP: get, set, del, list, stores, incr.

use super::{ConditionFailed, human_value, inline_value, out_json, out_line};
use crate::Global;
use crate::client::{Body, Missing, enc, read_all, server_error};
use anyhow::{Context, anyhow};
use serde_json::{Value as Json, json};
use std::io::Write;

fn key_path(g: &Global, key: &str) -> String {
    format!("/v1/stores/{}/keys/{}", enc(g.store()), enc(key))
}

fn missing_key(g: &Global, key: &str) -> anyhow::Error {
    Missing(format!("key {key:?} not found in store {:?}", g.store())).into()
}

/// A 404 that says the key is absent (`not_found`), as opposed to an
/// unknown store or a URL that names no route (a wrong `--server` path).
fn key_absent(status: u16, body: &Json) -> bool {
    status == 404 && body["error"]["code"] == "not_found"
}

/// Keys are path segments: an empty one would name another route.
fn check_key(key: &str) -> anyhow::Result<()> {
    if key.is_empty() {
        return Err(anyhow!("the key must not be empty"));
    }
    Ok(())
}

/// `get KEY`: the value; with `--json` the entry exactly as the server sends it.
pub fn get(g: &Global, key: &str) -> anyhow::Result<()> {
    check_key(key)?;
    let mut r = g.client()?.send("GET", &key_path(g, key), Body::None)?;
    let status = r.status().as_u16();
    let body = read_all(&mut r)?;
    // A missing key exits 1; an unknown store or a wrong URL is an error.
    if serde_json::from_slice::<Json>(&body).is_ok_and(|j| key_absent(status, &j)) {
        return Err(missing_key(g, key));
    }
    if status >= 400 {
        return Err(server_error(status, &body));
    }
    if g.json {
        return out_line(body.trim_ascii_end());
    }
    let entry: Json = serde_json::from_slice(&body).context("the server's entry is not JSON")?;
    let v = &entry["value"];
    if v.get("$base64").is_some() {
        // Raw bytes go out exactly, so that `cairn get k > file` round-trips them.
        let mut o = std::io::stdout().lock();
        o.write_all(&human_value(v))?;
        return Ok(o.flush()?);
    }
    out_line(&human_value(v))
}

/// Options of `set`.
pub struct SetOpts {
    pub ttl: Option<f64>,
    pub if_absent: bool,
    pub if_revision: Option<u64>,
}

/// A command-line value as a JSON body: the text itself when it is JSON
/// (sent as typed, so the server sees exactly those digits and refuses an
/// integer too wide to store exactly instead of the CLI rounding it), else
/// the text as a JSON string.
#[must_use]
pub fn value_body(raw: &str) -> Vec<u8> {
    if serde_json::from_str::<Json>(raw).is_ok() {
        raw.as_bytes().to_vec()
    } else {
        serde_json::to_vec(&Json::String(raw.to_owned())).unwrap_or_default()
    }
}

/// `set KEY VALUE`.
pub fn set(g: &Global, key: &str, value: &str, o: SetOpts) -> anyhow::Result<()> {
    check_key(key)?;
    let mut q = Vec::new();
    if let Some(t) = o.ttl {
        if !(t.is_finite() && t > 0.0) {
            return Err(anyhow!("--ttl must be a positive number of seconds, not {t}"));
        }
        q.push(format!("ttl={t}"));
    }
    if o.if_absent {
        q.push("if_absent=true".into());
    }
    if let Some(r) = o.if_revision {
        q.push(format!("if_revision={r}"));
    }
    let mut path = key_path(g, key);
    if !q.is_empty() {
        path = format!("{path}?{}", q.join("&"));
    }
    let (v, content_type) = if value == "-" {
        // The value from stdin: JSON or text as on the command line, or,
        // when it is not UTF-8, the raw bytes (`cairn set img - < a.png`).
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut raw).context("reading the value from stdin")?;
        match String::from_utf8(raw) {
            Ok(text) => (value_body(&text), "application/json"),
            Err(e) => (e.into_bytes(), "application/octet-stream"),
        }
    } else {
        (value_body(value), "application/json")
    };
    let (status, body) = g.client()?.json("PUT", &path, Body::Raw(&v, content_type))?;
    if status == 404 {
        return Err(server_error(status, body.to_string().as_bytes()));
    }
    if g.json {
        out_json(&body)?;
    }
    if status == 409 || body["success"] == false {
        let cur = match &body["revision"] {
            Json::Null => "the key is absent".to_owned(),
            r => format!("its current revision is {r}"),
        };
        return Err(ConditionFailed(format!("not written: the condition did not hold ({cur})")).into());
    }
    if !g.json {
        let created = if body["created"] == true { ", created" } else { "" };
        out_line(format!("OK (revision {}{created})", body["revision"]).as_bytes())?;
    }
    Ok(())
}

/// `del KEY`: exit 1 when there was nothing to delete.
pub fn del(g: &Global, key: &str) -> anyhow::Result<()> {
    check_key(key)?;
    let (status, body) = g.client()?.json("DELETE", &key_path(g, key), Body::None)?;
    if status >= 400 && !key_absent(status, &body) {
        return Err(server_error(status, body.to_string().as_bytes()));
    }
    if g.json {
        out_json(&body)?;
    }
    if key_absent(status, &body) || body["success"] == false {
        return Err(missing_key(g, key));
    }
    if !g.json {
        out_line(format!("deleted (revision {})", body["revision"]).as_bytes())?;
    }
    Ok(())
}

/// `list [--prefix P] [--limit N]`: follows cursors until the limit or the end.
pub fn list(g: &Global, prefix: Option<&str>, limit: Option<usize>, keys_only: bool) -> anyhow::Result<()> {
    if limit == Some(0) {
        return Err(anyhow!("--limit must be at least 1"));
    }
    let client = g.client()?;
    let mut cursor: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let want = limit.map_or(1000, |l| (l - all.len()).min(1000));
        if want == 0 {
            break;
        }
        let mut path = format!("/v1/stores/{}/keys?limit={want}", enc(g.store()));
        if let Some(p) = prefix {
            path.push_str(&format!("&prefix={}", enc(p)));
        }
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={}", enc(c)));
        }
        let (status, body) = client.json("GET", &path, Body::None)?;
        if status == 404 {
            return Err(server_error(status, body.to_string().as_bytes()));
        }
        let items = body["items"]
            .as_array()
            .ok_or_else(|| anyhow!("the server's list answer has no items"))?;
        for it in items {
            if !g.json {
                let k = it["key"].as_str().map_or_else(|| it["key"].to_string(), str::to_owned);
                if keys_only {
                    out_line(k.as_bytes())?;
                } else {
                    let mut line = format!("{k} = ").into_bytes();
                    line.extend(inline_value(&it["value"]));
                    out_line(&line)?;
                }
            }
            all.push(it.clone());
        }
        cursor = body["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() || items.is_empty() {
            break;
        }
    }
    if g.json {
        if keys_only {
            let keys: Vec<Json> = all.iter().map(|e| e["key"].clone()).collect();
            out_json(&json!({ "keys": keys }))?;
        } else {
            out_json(&json!({ "items": all, "next_cursor": cursor }))?;
        }
    }
    Ok(())
}

/// `stores`.
pub fn stores(g: &Global) -> anyhow::Result<()> {
    let (status, body) = g.client()?.json("GET", "/v1/stores", Body::None)?;
    if status >= 400 {
        return Err(server_error(status, body.to_string().as_bytes()));
    }
    if g.json {
        return out_json(&body);
    }
    let list = match &body {
        Json::Array(a) => a.clone(),
        Json::Object(m) => m
            .get("stores")
            .or_else(|| m.get("items"))
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    for s in list {
        let name = s["name"].as_str().unwrap_or("?");
        let mut line = format!(
            "{name}\tkey_type={}\tvalue_type={}",
            s["key_type"].as_str().unwrap_or("string"),
            s["value_type"].as_str().unwrap_or("any")
        );
        if let Some(t) = s["default_ttl"].as_f64() {
            line.push_str(&format!("\tdefault_ttl={t}s"));
        }
        if let Some(h) = s["history"].as_u64().filter(|h| *h > 1) {
            line.push_str(&format!("\thistory={h}"));
        }
        out_line(line.as_bytes())?;
    }
    Ok(())
}

/// `incr KEY [BY]`.
pub fn incr(g: &Global, key: &str, by: &str) -> anyhow::Result<()> {
    let by: serde_json::Number =
        serde_json::from_str(by).map_err(|_| anyhow!("the increment must be a number, not {by:?}"))?;
    let path = format!("{}/incr", key_path(g, key));
    let (status, body) = g.client()?.json("POST", &path, Body::Json(&json!({ "by": by })))?;
    if status >= 400 {
        return Err(server_error(status, body.to_string().as_bytes()));
    }
    if g.json {
        out_json(&body)
    } else {
        out_line(body["value"].to_string().as_bytes())
    }
}
