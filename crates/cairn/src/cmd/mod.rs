//! The CLI's commands: `kv` (get, set, del, list, stores, incr), `watch`,
//! `content`, and `data` (backup, restore, export, import, check).

pub mod content;
pub mod data;
mod import_http;
pub mod kv;
pub mod watch;

use base64::Engine as _;
use serde_json::Value as Json;
use std::io::Write;

/// A conditional write whose condition did not hold: exit code 1.
#[derive(Debug)]
pub struct ConditionFailed(pub String);

impl std::fmt::Display for ConditionFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConditionFailed {}

/// A value inside a one-line listing (`list`, `watch`): as
/// [`human_value`], except that what would break the line or the
/// terminal (a string with a newline or another control character, raw
/// bytes) is shown as JSON: `"line1\nline2"`, `{"$base64": ...}`.
#[must_use]
pub fn inline_value(v: &Json) -> Vec<u8> {
    match v {
        Json::String(s) if s.chars().any(char::is_control) => v.to_string().into_bytes(),
        Json::Object(m) if m.len() == 1 && m.contains_key("$base64") => v.to_string().into_bytes(),
        other => human_value(other),
    }
}

/// A value as a human reads it: strings bare, bytes raw, other JSON compact.
#[must_use]
pub fn human_value(v: &Json) -> Vec<u8> {
    match v {
        Json::String(s) => s.as_bytes().to_vec(),
        Json::Object(m) if m.len() == 1 => match m.get("$base64").and_then(Json::as_str) {
            Some(b) => base64::engine::general_purpose::STANDARD
                .decode(b)
                .unwrap_or_else(|_| v.to_string().into()),
            None => v.to_string().into_bytes(),
        },
        other => other.to_string().into_bytes(),
    }
}

/// Writes bytes and a newline to stdout.
///
/// # Errors
/// Stdout is closed.
pub fn out_line(bytes: &[u8]) -> anyhow::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(bytes)?;
    o.write_all(b"\n")?;
    o.flush()?;
    Ok(())
}

/// Prints a JSON value on one line.
///
/// # Errors
/// Stdout is closed.
pub fn out_json(v: &Json) -> anyhow::Result<()> {
    PRINTED_JSON.store(true, std::sync::atomic::Ordering::Relaxed);
    out_line(v.to_string().as_bytes())
}

/// Set once a command printed its JSON answer: with `--json`, an error that
/// follows it (a missing key, a failed condition) adds no second document.
pub static PRINTED_JSON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
