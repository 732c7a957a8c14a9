//! `import` over HTTP: NDJSON lines sent as `POST /v1/batch` requests.

use crate::Global;
use crate::client::{Body, enc, server_error};
use anyhow::{Context, anyhow, bail};
use cairn_core::{ExportItem, ExportLine, ImportInfo, OnConflict, StoreSpec};
use serde_json::{Value as Json, json};
use std::collections::HashSet;
use std::io::BufRead;

/// Sends the lines of `r` in atomic batches. `fail` and `skip` add an absence
/// check per key: a batch with an existing key is refused whole, and then
/// `fail` names the line while `skip` drops that line and resends the rest.
pub fn import(
    g: &Global,
    r: impl BufRead,
    on_conflict: OnConflict,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<ImportInfo> {
    let client = g.client()?;
    let (status, body) = client.json("GET", "/v1/stores", Body::None)?;
    if status >= 400 {
        return Err(server_error(status, body.to_string().as_bytes()));
    }
    let list = body
        .as_array()
        .or_else(|| body["stores"].as_array())
        .or_else(|| body["items"].as_array());
    let mut known: HashSet<String> = list
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str().map(str::to_owned))
        .collect();
    // Checks count toward the server's batch limit.
    let per_batch = if on_conflict == OnConflict::Overwrite {
        1000
    } else {
        500
    };
    let mut info = ImportInfo::default();
    let mut bytes = 0u64;
    let mut batch: Vec<(u64, ExportLine)> = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut send = |batch: &mut Vec<(u64, ExportLine)>, info: &mut ImportInfo| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut ops = Vec::new();
        let mut checks = Vec::new();
        let mut lines = Vec::new();
        for (n, l) in batch.drain(..) {
            if !known.contains(&l.store) {
                // As the offline import: a store the file does not describe
                // gets default types, with bytes keys when its first key is
                // `$base64`.
                let mut spec = json!({"name": l.store});
                if l.key.is_object() {
                    spec["key_type"] = json!("bytes");
                }
                let (s, b) = client.json("PUT", &format!("/v1/stores/{}", enc(&l.store)), Body::Json(&spec))?;
                if s >= 400 && s != 409 {
                    return Err(server_error(s, b.to_string().as_bytes()))
                        .with_context(|| format!("line {n}: creating store {:?}", l.store));
                }
                if s == 201 {
                    info.stores_created += 1;
                }
                known.insert(l.store.clone());
            }
            if l.expires_at.is_some_and(|t| t <= now) {
                info.expired += 1;
                continue;
            }
            let key = &l.key;
            // `expires_at` as exported: the same instant, and `null` (no
            // expiry) rather than the store's default TTL.
            let op = json!({"op": "put", "store": l.store, "key": key, "value": l.value.to_json(),
                "expires_at": l.expires_at});
            if on_conflict != OnConflict::Overwrite {
                checks.push(json!({"store": l.store, "key": key, "revision": Json::Null}));
            }
            ops.push(op);
            lines.push(n);
        }
        if ops.is_empty() {
            return Ok(());
        }
        let (s, b) = loop {
            if ops.is_empty() {
                return Ok(());
            }
            let (s, b) = client.json("POST", "/v1/batch", Body::Json(&json!({"checks": checks, "ops": ops})))?;
            let failed = b["failed_check"]
                .as_u64()
                .map(|i| i as usize)
                .filter(|i| *i < lines.len());
            match failed {
                Some(i) if (s == 409 || b["success"] == false) && on_conflict == OnConflict::Skip => {
                    checks.remove(i);
                    ops.remove(i);
                    lines.remove(i);
                    info.skipped += 1;
                }
                _ => break (s, b),
            }
        };
        if s == 409 || b["success"] == false {
            let at = b["failed_check"]
                .as_u64()
                .and_then(|i| lines.get(i as usize))
                .map_or_else(String::new, |n| format!("line {n}: "));
            bail!(
                "{at}the key already exists (use --on-conflict overwrite or skip); nothing of lines {}-{} was written",
                lines[0],
                lines[lines.len() - 1]
            );
        }
        if s >= 400 {
            return Err(server_error(s, b.to_string().as_bytes()))
                .with_context(|| format!("lines {}-{} not written", lines[0], lines[lines.len() - 1]));
        }
        info.written += ops.len() as u64;
        info.revision = b["revision"].as_u64().unwrap_or(info.revision);
        Ok(())
    };
    for (i, line) in r.lines().enumerate() {
        let n = i as u64 + 1;
        let line = line.with_context(|| format!("line {n}: cannot read"))?;
        info.lines = n;
        bytes += line.len() as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = match ExportItem::parse(&line).map_err(|e| anyhow!("line {n}: {e}"))? {
            ExportItem::Entry(e) => e,
            ExportItem::Store(spec) => {
                // Entries before this line go in first, in file order.
                send(&mut batch, &mut info)?;
                create_store(g, n, &spec, &mut info)?;
                continue;
            }
        };
        batch.push((n, parsed));
        if batch.len() == per_batch {
            send(&mut batch, &mut info)?;
            pb.set_position(bytes);
        }
    }
    send(&mut batch, &mut info)?;
    Ok(info)
}

/// A store line: creates the store with its spec (201), accepts an identical
/// one (200), and stops on one with another spec (409): the file's entries
/// would not import as they were exported.
fn create_store(g: &Global, n: u64, spec: &StoreSpec, info: &mut ImportInfo) -> anyhow::Result<()> {
    let (s, b) = g.client()?.json(
        "PUT",
        &format!("/v1/stores/{}", enc(&spec.name)),
        Body::Json(&serde_json::to_value(spec)?),
    )?;
    match s {
        201 => info.stores_created += 1,
        409 => bail!(
            "line {n}: store {:?} exists on the server with a different spec than the file's ({}); \
             drop it or import into another database",
            spec.name,
            ExportItem::store_line(spec)["spec"]
        ),
        s if s >= 400 => {
            return Err(server_error(s, b.to_string().as_bytes()))
                .with_context(|| format!("line {n}: creating store {:?}", spec.name));
        }
        _ => {}
    }
    Ok(())
}
