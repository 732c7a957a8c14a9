//! A small blocking HTTP client for the cairn server's `/v1` API.
//!
//! Every failure becomes an error that names what went wrong: the server
//! that cannot be reached, or the server's own `{"error": {"code", "message"}}`.

use anyhow::{Context, anyhow};
use serde_json::Value as Json;
use std::path::Path;
use std::time::Duration;
use ureq::http::{Request, Response};

/// A key (or other value) that is not there: the CLI exits with code 1.
#[derive(Debug)]
pub struct Missing(pub String);

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Missing {}

/// Connection options shared by every client command.
#[derive(Debug, Clone)]
pub struct Client {
    agent: ureq::Agent,
    base: String,
    token: Option<String>,
}

/// A request body.
pub enum Body<'a> {
    /// No body.
    None,
    /// A JSON document.
    Json(&'a Json),
    /// Raw bytes with a content type.
    Raw(&'a [u8], &'static str),
}

/// Percent-encodes a path segment or query value (everything but unreserved characters).
#[must_use]
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    /// A client for the server at `base` (e.g. `http://127.0.0.1:7070`).
    ///
    /// `https://` servers are verified against the public web roots, or
    /// against the PEM certificates in `ca` (a self-signed server's own
    /// certificate, or a private CA).
    ///
    /// # Errors
    /// `ca` cannot be read or holds no certificate.
    pub fn new(base: &str, token: Option<String>, streaming: bool, ca: Option<&Path>) -> anyhow::Result<Client> {
        let mut cfg = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(5)));
        if !streaming {
            cfg = cfg.timeout_global(Some(Duration::from_secs(300)));
        }
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).with_context(|| format!("cannot read --tls-ca {}", ca.display()))?;
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if certs.is_empty() {
                anyhow::bail!("--tls-ca {} holds no PEM certificate", ca.display());
            }
            let tls = ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&certs))
                .build();
            cfg = cfg.tls_config(tls);
        }
        Ok(Client {
            agent: cfg.build().new_agent(),
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    /// The server's base URL.
    #[must_use]
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Sends a request; any answer, whatever its status, is `Ok`.
    ///
    /// # Errors
    /// The server cannot be reached.
    pub fn send(&self, method: &str, path: &str, body: Body<'_>) -> anyhow::Result<Response<ureq::Body>> {
        let url = format!("{}{path}", self.base);
        let mut b = Request::builder()
            .method(method)
            .uri(&url)
            .header("Accept", "application/json");
        if let Some(t) = &self.token {
            b = b.header("Authorization", format!("Bearer {t}"));
        }
        let r = match body {
            Body::None => self.agent.run(b.body(()).context("building the request")?),
            Body::Json(j) => self.agent.run(
                b.header("Content-Type", "application/json")
                    .body(serde_json::to_vec(j)?)
                    .context("building the request")?,
            ),
            Body::Raw(bytes, ct) => self.agent.run(
                b.header("Content-Type", ct)
                    .body(bytes)
                    .context("building the request")?,
            ),
        };
        r.map_err(|e| match e {
            e if e.to_string().contains("CaUsedAsEndEntity") => anyhow!(
                "cannot connect to the cairn server at {}: {e}: its certificate is a CA certificate \
                 (basicConstraints CA:TRUE), which TLS refuses as a server's own; make the self-signed \
                 certificate with `-addext basicConstraints=critical,CA:FALSE` (see the README), or sign \
                 the server's certificate with that CA and pass the CA to --tls-ca",
                self.base
            ),
            ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Timeout(_) => {
                anyhow!("cannot connect to the cairn server at {}: {e}", self.base)
            }
            other => anyhow!("request {method} {url} failed: {other}"),
        })
    }

    /// Sends a request and reads a JSON answer. A 404 is `Ok((404, body))`;
    /// other error statuses become errors carrying the server's message.
    ///
    /// # Errors
    /// Connection failures, error statuses, a body that is not JSON.
    pub fn json(&self, method: &str, path: &str, body: Body<'_>) -> anyhow::Result<(u16, Json)> {
        let mut r = self.send(method, path, body)?;
        let status = r.status().as_u16();
        let bytes = read_all(&mut r)?;
        if status >= 400 && status != 404 && status != 409 {
            return Err(server_error(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok((status, Json::Null));
        }
        let j = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "the server answered {status} with a body that is not JSON: {}",
                String::from_utf8_lossy(&bytes)
            )
        })?;
        Ok((status, j))
    }

    /// Sends a request and returns the raw body of a 2xx answer.
    ///
    /// # Errors
    /// As [`Client::json`]; a 404 becomes [`Missing`] with `what_missing`.
    pub fn raw(&self, method: &str, path: &str, body: Body<'_>, what_missing: &str) -> anyhow::Result<Vec<u8>> {
        let mut r = self.send(method, path, body)?;
        let status = r.status().as_u16();
        let bytes = read_all(&mut r)?;
        if status >= 400 {
            let e = ServerError::from_body(status, &bytes);
            // `not_found` only: a wrong URL (`no_route`) is an error.
            if status == 404 && e.code() == "not_found" {
                return Err(Missing(what_missing.to_owned()).into());
            }
            return Err(e.into());
        }
        Ok(bytes)
    }
}

/// Reads a whole response body with no size limit.
///
/// # Errors
/// The connection breaks.
pub fn read_all(r: &mut Response<ureq::Body>) -> anyhow::Result<Vec<u8>> {
    r.body_mut()
        .with_config()
        .limit(u64::MAX)
        .read_to_vec()
        .context("reading the server's answer")
}

/// The error for an error status, with the server's code and message when it sent them.
#[must_use]
pub fn server_error(status: u16, body: &[u8]) -> anyhow::Error {
    ServerError::from_body(status, body).into()
}

/// An error answer of the server: its status and, when the body is the
/// API's `{"error": {"code", "message", ...}}`, that object, which
/// `--json` prints as it came (with fields such as `oldest_revision`).
#[derive(Debug)]
pub struct ServerError {
    pub status: u16,
    /// The `error` object, when the body had one.
    pub error: Option<Json>,
    /// The body as text, when it had no `error` object.
    pub text: String,
}

impl ServerError {
    pub fn from_body(status: u16, body: &[u8]) -> ServerError {
        let error = serde_json::from_slice::<Json>(body)
            .ok()
            .map(|mut j| j["error"].take())
            .filter(|e| e["code"].is_string() && e["message"].is_string());
        let text = if error.is_some() {
            String::new()
        } else {
            String::from_utf8_lossy(body).trim().to_owned()
        };
        ServerError { status, error, text }
    }

    /// The server's error code (`unauthorized`, `compacted`, ...), or
    /// `server_error` when the body named none.
    pub fn code(&self) -> &str {
        self.error
            .as_ref()
            .and_then(|e| e["code"].as_str())
            .unwrap_or("server_error")
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let status = self.status;
        match &self.error {
            Some(e) => write!(
                f,
                "server error {status} ({}): {}",
                self.code(),
                e["message"].as_str().unwrap_or_default()
            ),
            None if self.text.is_empty() => write!(f, "server error {status}"),
            None => write!(f, "server error {status}: {}", self.text),
        }
    }
}

impl std::error::Error for ServerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_reserved_characters() {
        assert_eq!(enc("a/b c?d"), "a%2Fb%20c%3Fd");
        assert_eq!(enc("plain-key_1.x~"), "plain-key_1.x~");
        assert_eq!(enc("é"), "%C3%A9");
    }

    #[test]
    fn server_errors_carry_the_message() {
        let e = server_error(400, br#"{"error":{"code":"invalid_key","message":"bad key"}}"#);
        assert_eq!(e.to_string(), "server error 400 (invalid_key): bad key");
        assert_eq!(server_error(502, b"").to_string(), "server error 502");
    }
}
