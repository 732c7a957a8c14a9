//! Whole-database commands: backup, restore, export, import and check,
//! offline on a data directory (`--data-dir`, server stopped) or, for
//! backup, export and import, over HTTP.

use super::out_json;
use crate::Global;
use crate::client::{Body, enc, read_all, server_error};
use crate::progress;
use anyhow::{Context, anyhow, bail};
use cairn_core::{Db, ExportItem, ExportLine, ExportOptions, OnConflict, StoreSpec, Value};
use serde_json::{Value as Json, json};
use std::io::{BufRead, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Opens a data directory for an offline tool; refuses a directory that holds no database.
fn open_offline(dir: &Path) -> anyhow::Result<Db> {
    if !dir.join("fjall").is_dir() {
        bail!(
            "no cairn database in {} (expected a data directory made by `cairn serve`)",
            dir.display()
        );
    }
    Db::open(dir).with_context(|| format!("cannot open data directory {}", dir.display()))
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn report(g: &Global, j: &Json, human: String) -> anyhow::Result<()> {
    if g.json {
        out_json(j)
    } else {
        eprintln!("{human}");
        Ok(())
    }
}

/// `backup FILE [--data-dir DIR]`.
pub fn backup(g: &Global, file: &Path, data_dir: Option<&Path>) -> anyhow::Result<()> {
    // Before any download or snapshot, not after it.
    if file.is_dir() {
        anyhow::bail!(
            "{} is a directory: give the backup file's path, e.g. {}",
            file.display(),
            file.join("cairn.backup").display()
        );
    }
    let pb = progress::bar("backup", None);
    let info = match data_dir {
        Some(dir) => {
            let db = open_offline(dir)?;
            db.backup_to_file(file, progress::updater(&pb, "records"))
                .with_context(|| format!("backup to {} failed", file.display()))?
        }
        None => backup_http(g, file, &pb)?,
    };
    pb.finish_and_clear();
    let j = json!({"file": file, "revision": info.revision, "records": info.records, "bytes": info.bytes});
    report(
        g,
        &j,
        format!(
            "backup of revision {} written to {}: {} records, {} bytes",
            info.revision,
            file.display(),
            info.records,
            info.bytes
        ),
    )
}

/// Downloads `POST /v1/admin/backup` into `<file>.tmp`, verifies it, then renames it into place.
fn backup_http(g: &Global, file: &Path, pb: &indicatif::ProgressBar) -> anyhow::Result<cairn_core::BackupInfo> {
    let client = g.client_for(true)?;
    let mut r = client.send("POST", "/v1/admin/backup", Body::None)?;
    let status = r.status().as_u16();
    if status >= 400 {
        let body = read_all(&mut r)?;
        return Err(server_error(status, &body));
    }
    let tmp = sibling(file, ".tmp");
    let result = (|| {
        let mut reader = r.into_body().into_reader();
        let mut out =
            BufWriter::new(std::fs::File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?);
        let mut buf = vec![0u8; 1 << 16];
        let mut total = 0u64;
        loop {
            let n = reader.read(&mut buf).context("the backup download broke")?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])?;
            total += n as u64;
            pb.set_position(total);
        }
        let f = out.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        let info = cairn_core::verify_backup(&tmp, |_, _| {}).context("the downloaded backup does not verify")?;
        std::fs::rename(&tmp, file)?;
        Ok(info)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// `restore FILE --data-dir DIR [--force]`.
pub fn restore(g: &Global, file: &Path, dir: &Path, force: bool) -> anyhow::Result<()> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("cannot read backup file {}", file.display()))?
        .len();
    let pb = progress::bar("restore", Some(size));
    let info = cairn_core::restore(file, dir, force, progress::updater(&pb, "records"))
        .with_context(|| format!("restore of {} into {} failed", file.display(), dir.display()))?;
    pb.finish_and_clear();
    let j = json!({"data_dir": dir, "revision": info.revision, "records": info.records, "bytes": info.bytes});
    report(
        g,
        &j,
        format!(
            "restored {} records into {} at revision {}",
            info.records,
            dir.display(),
            info.revision
        ),
    )
}

fn output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path.filter(|p| p.as_os_str() != "-") {
        Some(p) => Box::new(std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?),
        None => Box::new(std::io::stdout().lock()),
    })
}

/// `export [--store S] [--prefix P] [--output FILE] [--data-dir DIR]`.
pub fn export(g: &Global, prefix: Option<&str>, out: Option<&Path>, data_dir: Option<&Path>) -> anyhow::Result<()> {
    let pb = progress::bar("export", None);
    let (revision, (stores, entries)) = match data_dir {
        Some(dir) => {
            let db = open_offline(dir)?;
            let o = ExportOptions {
                store: g.store.clone(),
                prefix: prefix.map(|p| p.as_bytes().to_vec()),
            };
            let info = db.export(output(out)?, &o, progress::updater(&pb, "lines"))?;
            (Some(info.revision), (info.stores, info.entries))
        }
        None => (None, export_http(g, prefix, BufWriter::new(output(out)?), &pb)?),
    };
    pb.finish_and_clear();
    let at = revision.map(|r| format!(" at revision {r}")).unwrap_or_default();
    let plural = |n: u64, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    eprintln!(
        "exported {} of {}{at}",
        plural(entries, "entry", "entries"),
        plural(stores, "store", "stores")
    );
    Ok(())
}

fn export_http(
    g: &Global,
    prefix: Option<&str>,
    mut w: impl Write,
    pb: &indicatif::ProgressBar,
) -> anyhow::Result<(u64, u64)> {
    let client = g.client()?;
    let specs: Vec<StoreSpec> = match &g.store {
        Some(s) => {
            let (status, body) = client.json("GET", &format!("/v1/stores/{}", enc(s)), Body::None)?;
            if status >= 400 {
                return Err(server_error(status, body.to_string().as_bytes()));
            }
            vec![serde_json::from_value(body).context("the server's store spec does not parse")?]
        }
        None => {
            let (status, body) = client.json("GET", "/v1/stores", Body::None)?;
            if status >= 400 {
                return Err(server_error(status, body.to_string().as_bytes()));
            }
            let list = body["stores"]
                .as_array()
                .ok_or_else(|| anyhow!("the server's store list is not an array"))?;
            list.iter()
                .map(|s| serde_json::from_value(s.clone()))
                .collect::<Result<_, _>>()
                .context("the server's store list does not parse")?
        }
    };
    // Across all stores, a prefix matches nothing in int and uuid stores:
    // they are left out, and the user told so.
    let (specs, skipped): (Vec<StoreSpec>, Vec<StoreSpec>) = specs
        .into_iter()
        .partition(|s| prefix.is_none() || g.store.is_some() || s.key_type.supports_prefix());
    if !skipped.is_empty() {
        let names: Vec<&str> = skipped.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "note: --prefix does not apply to int and uuid keys; left out: {}",
            names.join(", ")
        );
    }
    let (mut lines, mut bytes) = (0u64, 0u64);
    for spec in &specs {
        let text = serde_json::to_string(&ExportItem::store_line(spec))?;
        w.write_all(text.as_bytes())?;
        w.write_all(b"\n")?;
        bytes += text.len() as u64 + 1;
    }
    let stores: Vec<String> = specs.iter().map(|s| s.name.clone()).collect();
    for store in stores {
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/v1/stores/{}/keys?limit=1000", enc(&store));
            if let Some(p) = prefix {
                path.push_str(&format!("&prefix={}", enc(p)));
            }
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", enc(c)));
            }
            let (status, body) = client.json("GET", &path, Body::None)?;
            if status >= 400 {
                return Err(server_error(status, body.to_string().as_bytes()));
            }
            let items = body["items"]
                .as_array()
                .ok_or_else(|| anyhow!("the server's list answer has no items"))?;
            for e in items {
                let line = ExportLine {
                    store: store.clone(),
                    key: e["key"].clone(),
                    value: Value::from_json(e["value"].clone()),
                    revision: e["revision"].as_u64().unwrap_or(0),
                    created_revision: e["created_revision"].as_u64().unwrap_or(0),
                    version: e["version"].as_u64().unwrap_or(0),
                    updated_at: e["updated_at"].as_u64().unwrap_or(0),
                    expires_at: e["expires_at"].as_u64(),
                };
                let text = serde_json::to_string(&line)?;
                w.write_all(text.as_bytes())?;
                w.write_all(b"\n")?;
                lines += 1;
                bytes += text.len() as u64 + 1;
                pb.set_position(bytes);
            }
            cursor = body["next_cursor"].as_str().map(str::to_owned);
            if cursor.is_none() || items.is_empty() {
                break;
            }
        }
    }
    w.flush()?;
    Ok((specs.len() as u64, lines))
}

fn input(file: &Path) -> anyhow::Result<(Box<dyn BufRead>, Option<u64>)> {
    if file.as_os_str() == "-" {
        return Ok((Box::new(std::io::stdin().lock()), None));
    }
    let f = std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let size = f.metadata().ok().map(|m| m.len());
    Ok((Box::new(std::io::BufReader::with_capacity(1 << 20, f)), size))
}

/// `import FILE [--on-conflict skip|overwrite|fail] [--data-dir DIR]`.
pub fn import(g: &Global, file: &Path, on_conflict: &str, data_dir: Option<&Path>) -> anyhow::Result<()> {
    let on_conflict: OnConflict = on_conflict.parse()?;
    let (r, size) = input(file)?;
    let pb = progress::bar("import", size);
    let info = match data_dir {
        Some(dir) => {
            let db = open_offline(dir)?;
            db.import(r, on_conflict, progress::updater(&pb, "lines"))
                .with_context(|| format!("import of {} failed", file.display()))?
        }
        None => super::import_http::import(g, r, on_conflict, &pb)
            .with_context(|| format!("import of {} failed", file.display()))?,
    };
    pb.finish_and_clear();
    let j = serde_json::to_value(info)?;
    report(
        g,
        &j,
        format!(
            "imported {} entries from {} lines ({} skipped as existing, {} already expired; {} stores created)",
            info.written, info.lines, info.skipped, info.expired, info.stores_created
        ),
    )
}

/// `check [--data-dir DIR] [--backup FILE]`: exit 2 when anything is wrong.
pub fn check(g: &Global, data_dir: Option<&Path>, backup: Option<&Path>) -> anyhow::Result<()> {
    if let Some(file) = backup {
        let size = std::fs::metadata(file)
            .with_context(|| format!("cannot read backup file {}", file.display()))?
            .len();
        let pb = progress::bar("check", Some(size));
        let info = cairn_core::verify_backup(file, progress::updater(&pb, "records"))
            .with_context(|| format!("backup {} is damaged", file.display()))?;
        pb.finish_and_clear();
        let j = json!({"ok": true, "backup": file, "revision": info.revision, "records": info.records, "bytes": info.bytes});
        return report(
            g,
            &j,
            format!(
                "backup {} is sound: revision {}, {} records, {} bytes",
                file.display(),
                info.revision,
                info.records,
                info.bytes
            ),
        );
    }
    let dir = data_dir.ok_or_else(|| anyhow!("check needs --data-dir DIR (or CAIRN_DATA_DIR) or --backup FILE"))?;
    let db = open_offline(dir)?;
    let pb = progress::bar("check", None);
    let rep = db.check(|n| pb.set_message(format!("{n} records")))?;
    pb.finish_and_clear();
    let ok = rep.problems.is_empty();
    if g.json {
        out_json(&json!({
            "ok": ok, "revision": rep.revision, "oldest_revision": rep.oldest, "stores": rep.stores,
            "entries": rep.entries, "history": rep.history, "content": rep.content,
            "content_bytes": rep.content_bytes, "events": rep.events, "problems": rep.problems,
        }))?;
    } else {
        println!(
            "revision {} (change log from {}): {} stores, {} entries, {} history versions, {} content objects ({} bytes), {} events",
            rep.revision, rep.oldest, rep.stores, rep.entries, rep.history, rep.content, rep.content_bytes, rep.events
        );
        for p in &rep.problems {
            println!("problem: {p}");
        }
        println!("{}", if ok { "OK" } else { "PROBLEMS FOUND" });
    }
    if ok {
        Ok(())
    } else {
        bail!("{} problem(s) found in {}", rep.problems.len(), dir.display())
    }
}
