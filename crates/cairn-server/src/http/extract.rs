//! Request extractors that enforce the edge limits and turn every rejection
//! into an [`ApiError`] with a JSON body.

use super::error::ApiError;
use crate::AppState;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde::de::DeserializeOwned;

/// Path parameters; a malformed one is a 400 `invalid_path`.
#[derive(Debug)]
pub struct Path<T>(pub T);

impl<T> FromRequestParts<AppState> for Path<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e: PathRejection| ApiError::bad_request("invalid_path", e.body_text()))
    }
}

/// Query parameters; a malformed one is a 400 `invalid_argument` naming it.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T> FromRequestParts<AppState> for Query<T>
where
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request("invalid_argument", e.body_text()))
    }
}

/// The bytes of query parameter `name`, percent-decoded (`+` as a space),
/// for keys of `bytes` stores that are not UTF-8: [`Query`] reads
/// parameters as strings, which turns such bytes into U+FFFD.
pub fn query_bytes(uri: &axum::http::Uri, name: &str) -> Option<Vec<u8>> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| {
            let v = v.replace('+', " ");
            percent_encoding::percent_decode_str(&v).collect()
        })
    })
}

/// For routes that take no query parameters: any given is a 400
/// `invalid_argument` naming it, instead of being silently ignored (a
/// mistyped `?by=5` on incr or `?dry_run=true` on batch would otherwise do
/// something other than what was asked).
#[derive(Debug)]
pub struct NoQuery;

impl FromRequestParts<AppState> for NoQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        match parts.uri.query().filter(|q| !q.is_empty()) {
            None => Ok(NoQuery),
            Some(q) => {
                let name = q.split('&').next().unwrap_or(q);
                let name = name.split('=').next().unwrap_or(name);
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                Err(ApiError::bad_request(
                    "invalid_argument",
                    format!("unknown query parameter `{name}`: this route takes none"),
                ))
            }
        }
    }
}

/// The raw request body, at most `max_body_bytes` (else 413 `payload_too_large`).
#[derive(Debug)]
pub struct Body(pub Bytes);

impl FromRequest<AppState> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(Body)
            .map_err(|e: BytesRejection| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "payload_too_large",
                        format!(
                            "request body is over the limit of {} bytes",
                            state.config.max_body_bytes
                        ),
                    )
                } else {
                    ApiError::bad_request("invalid_body", e.body_text())
                }
            })
    }
}

/// Parses JSON after checking its nesting depth (400 `invalid_json` naming the problem).
pub fn parse_json<T: DeserializeOwned>(body: &[u8], max_depth: usize) -> Result<T, ApiError> {
    check_depth(body, max_depth)?;
    serde_json::from_slice(body).map_err(|e| json_error("request body", &e))
}

/// As [`parse_json`] for a body that must be a JSON object. serde would
/// otherwise also read a struct from an array, by position
/// (`["name","int","int"]` as a store spec), which nobody means.
pub fn parse_object<T: DeserializeOwned>(body: &[u8], max_depth: usize) -> Result<T, ApiError> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => parse_json(body, max_depth),
        Some(_) => {
            let v: serde_json::Value = parse_json(body, max_depth)?;
            Err(ApiError::invalid_json(format!(
                "request body must be a JSON object, got {}",
                json_kind(&v)
            )))
        }
    }
}

/// A 400 `invalid_json` that tells malformed JSON from JSON of the wrong shape.
pub fn json_error(what: &str, e: &serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::invalid_json(format!("{what} has the wrong shape: {e}")),
        _ => ApiError::invalid_json(format!("{what} is not valid JSON: {e}")),
    }
}

/// "an array", "a string", ... for error messages.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Rejects JSON nested deeper than `max` before it is parsed, so that a
/// hostile document cannot make the parser recurse without bound, and
/// integers wider than 64 bits, which the parser would silently round.
pub fn check_depth(json: &[u8], max: usize) -> Result<(), ApiError> {
    if crate::json_scan::depth_over(json, max).is_some() {
        return Err(ApiError::invalid_json(format!(
            "JSON is nested deeper than the limit of {max} levels"
        )));
    }
    match crate::json_scan::wide_integer(json) {
        Some(tok) => Err(ApiError::bad_request(
            "invalid_value",
            crate::json_scan::wide_integer_message(tok),
        )),
        None => Ok(()),
    }
}

/// Checks a key against `max_key_bytes` before it reaches the engine.
pub fn check_key(state: &AppState, key: &[u8]) -> Result<(), ApiError> {
    let max = state.config.max_key_bytes;
    if key.len() > max {
        return Err(ApiError::bad_request(
            "key_too_large",
            format!("key is {} bytes, over the limit of {max}", key.len()),
        ));
    }
    Ok(())
}

/// `{store}` and `{key}` of a key route (`/v1/stores/{store}/keys/{key}...`),
/// the key as raw bytes: percent-decoding may yield any bytes, which is how
/// keys of `bytes` stores are written. The key is checked against
/// `max_key_bytes` here.
#[derive(Debug)]
pub struct KeyPath {
    /// Store name.
    pub store: String,
    /// The key, percent-decoded.
    pub key: Vec<u8>,
}

impl FromRequestParts<AppState> for KeyPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        // Segments: "", "v1", "stores", {store}, "keys", {key}, ...
        let mut segs = parts.uri.path().split('/');
        let (Some(store), Some(key)) = (segs.nth(3), segs.nth(1)) else {
            return Err(ApiError::bad_request(
                "invalid_path",
                "expected /v1/stores/{store}/keys/{key}",
            ));
        };
        let store = percent_encoding::percent_decode_str(store)
            .decode_utf8()
            .map_err(|_| ApiError::bad_request("invalid_path", "store name is not valid UTF-8"))?
            .into_owned();
        let key: Vec<u8> = percent_encoding::percent_decode_str(key).collect();
        check_key(state, &key)?;
        Ok(KeyPath { store, key })
    }
}

/// A boolean query flag: absent is false; present with no value, `true` or `1` is true.
pub fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    let s: Option<String> = serde::Deserialize::deserialize(d)?;
    match s.as_deref() {
        None | Some("false" | "0") => Ok(false),
        Some("" | "true" | "1") => Ok(true),
        Some(other) => Err(serde::de::Error::custom(format!(
            "expected true or false, got {other:?}"
        ))),
    }
}

/// Refuses a request whose declared `Content-Length` is over the body limit
/// before its body is read: with `Expect: 100-continue` the client is told
/// 413 instead of `100 Continue` and never uploads it. `None` lets it
/// through (run by the `edge` middleware).
pub fn declared_length_refusal(state: &AppState, headers: &HeaderMap) -> Option<axum::response::Response> {
    use axum::response::IntoResponse;
    let max = state.config.max_body_bytes;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    declared.filter(|len| *len > max as u64).map(|len| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body is {len} bytes, over the limit of {max} bytes"),
        )
        .into_response()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_only_structure_outside_strings() {
        assert!(check_depth(br#"[[["[[[[[["]]]"#, 3).is_ok());
        assert!(check_depth(br#"[[[[1]]]]"#, 3).is_err());
        assert!(check_depth(br#"{"a":"\"[[[[[[["}"#, 1).is_ok());
    }
}
