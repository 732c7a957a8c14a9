//! Browser protection while auth is off.
//!
//! Without tokens, anything that can reach the port can read and write. A
//! local user's browser can reach it too, on behalf of any web page: a page
//! may send a "simple" cross-site POST (no preflight) or open a WebSocket,
//! and with DNS rebinding a page's own host name resolves to 127.0.0.1, so
//! it may even read the answers. So, with auth off:
//!
//! - a request carrying an `Origin` that is not a loopback origin is refused
//!   (browsers send `Origin` on cross-site requests and WebSockets;
//!   curl, the CLI and client libraries send none);
//! - on a loopback listener, a request whose `Host` is not a loopback name
//!   or address is refused (a rebinding page's requests carry its own host
//!   name).
//!
//! With tokens configured the token is what counts, and both checks are off.

use super::error::ApiError;
use crate::AppState;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The check: see the module documentation. `Some(403)` to refuse the
/// request, `None` to let it through (run by the `edge` middleware).
pub fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    if state.auth.enabled() {
        return None;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("?");
        if !is_loopback_origin(origin) {
            return Some(
                ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!(
                        "request from the web page origin {origin:?} refused: without auth tokens only pages \
                     served from localhost may use this server (configure --auth-token-file to allow others)"
                    ),
                )
                .into_response(),
            );
        }
    }
    let loopback_listener = state.config.http.addr().is_some_and(|a| a.ip().is_loopback());
    if loopback_listener
        && let Some(host) = headers.get(header::HOST)
        && !host.to_str().is_ok_and(is_loopback_authority)
    {
        return Some(
            ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "Host {:?} refused: this server listens on loopback without auth tokens, so it answers only \
                 to localhost and loopback addresses (a guard against DNS rebinding)",
                    host.to_str().unwrap_or("?")
                ),
            )
            .into_response(),
        );
    }
    None
}

/// True for `scheme://localhost`, `scheme://127.x.x.x` and `scheme://[::1]`
/// (any port).
pub fn is_loopback_origin(origin: &str) -> bool {
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| is_loopback_authority(rest.split('/').next().unwrap_or_default()))
}

/// True for `localhost`, a loopback address, either with a port.
fn is_loopback_authority(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::{is_loopback_authority, is_loopback_origin};

    #[test]
    fn loopback_origins_and_hosts() {
        for o in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:8080",
            "http://LOCALHOST/x",
        ] {
            assert!(is_loopback_origin(o), "{o}");
        }
        for o in [
            "null",
            "http://evil.example",
            "http://localhost.evil.example",
            "http://10.0.0.1",
            "file://",
        ] {
            assert!(!is_loopback_origin(o), "{o}");
        }
        for h in ["localhost", "127.0.0.1:7070", "[::1]:7070", "127.1.2.3"] {
            assert!(is_loopback_authority(h), "{h}");
        }
        for h in ["attacker.example", "attacker.example:7070", "192.168.1.2:7070", ""] {
            assert!(!is_loopback_authority(h), "{h}");
        }
    }
}
