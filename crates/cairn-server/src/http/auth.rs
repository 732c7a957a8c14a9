//! Bearer-token authentication for HTTP: the [`Caller`] extractor.

use super::error::ApiError;
use crate::AppState;
use crate::auth::{Principal, Role};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// The authenticated caller of a request (`Authorization: Bearer TOKEN`).
///
/// With auth off every caller is an admin on every store. A missing,
/// malformed or unknown token is a 401 before the handler runs; role and
/// store checks ([`Caller::allow`]) are a 403.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl Caller {
    /// Checks the caller may act with `need` on `store` (`None`: a route that
    /// is not about one store, which needs a token scoped to `*`).
    ///
    /// # Errors
    /// 403 `forbidden`, naming what was refused.
    pub fn allow(&self, need: Role, store: Option<&str>) -> Result<(), ApiError> {
        self.0.allow(need, store).map_err(|_| {
            let what = match need {
                Role::Read => "read",
                Role::Write => "write",
                Role::Admin => "administer",
            };
            let target = store.map_or_else(
                || "this resource (needs a token for all stores)".to_owned(),
                |s| format!("store {s:?}"),
            );
            ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token may not {what} {target}"),
            )
        })
    }

    /// True when the caller may read every store.
    #[must_use]
    pub fn can_read_all(&self) -> bool {
        self.0.allow(Role::Read, None).is_ok()
    }

    /// True when the caller may read `store` (for filtering listings).
    #[must_use]
    pub fn can_read(&self, store: &str) -> bool {
        self.0.allow(Role::Read, Some(store)).is_ok()
    }
}

impl Caller {
    /// The caller from `Authorization: Bearer`, else from a `?token=`
    /// query parameter: for browsers' `EventSource` and `WebSocket`,
    /// which cannot set headers.
    ///
    /// # Errors
    /// 401 as the extractor.
    pub fn from_headers_or_query(
        state: &AppState,
        headers: &axum::http::HeaderMap,
        query_token: Option<&str>,
    ) -> Result<Caller, ApiError> {
        if !state.auth.enabled() {
            return Ok(Caller(Principal::anonymous_admin()));
        }
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .or(query_token);
        Ok(Caller(state.auth.authenticate(token)?))
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Caller::from_headers_or_query(state, &parts.headers, None)
    }
}

fn bearer(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
