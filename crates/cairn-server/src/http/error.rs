//! `ApiError`: every failure of the HTTP front end, rendered as
//! `{"error": {"code", "message"}}` with the matching status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// For `compacted`: where a watch can resume.
    oldest_revision: Option<u64>,
}

/// The JSON body of an error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Machine-readable code, e.g. `unknown_store`, `invalid_json`, `not_found`.
    pub code: String,
    /// What was wrong, for humans.
    pub message: String,
    /// With `compacted` (410): the oldest revision a watch can resume from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oldest_revision: Option<u64>,
}

impl ApiError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            oldest_revision: None,
        }
    }

    /// 400 with `code`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 400 `invalid_json`.
    pub fn invalid_json(message: impl Into<String>) -> ApiError {
        ApiError::bad_request("invalid_json", message)
    }

    /// 500 `internal` with an opaque message; the cause is logged.
    pub fn internal(cause: &dyn std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error")
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The human-readable message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.message)
    }
}

impl From<cairn_core::Error> for ApiError {
    fn from(e: cairn_core::Error) -> ApiError {
        use cairn_core::Error as E;
        let code = e.code();
        let status = match &e {
            E::UnknownStore { .. } => StatusCode::NOT_FOUND,
            E::StoreExists { .. } => StatusCode::CONFLICT,
            E::Compacted { .. } => StatusCode::GONE,
            E::ValueTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            E::Closed | E::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            E::Corrupted { .. } | E::CorruptRecord(_) => {
                // Integrity failures are the operator's business: say what broke.
                tracing::error!(error = %e, "data corruption detected");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            _ if e.is_client_error() => StatusCode::BAD_REQUEST,
            _ => return ApiError::internal(&e),
        };
        ApiError {
            status,
            code,
            message: e.to_string(),
            oldest_revision: match &e {
                E::Compacted { oldest, .. } => Some(*oldest),
                _ => None,
            },
        }
    }
}

impl From<crate::auth::Denied> for ApiError {
    fn from(d: crate::auth::Denied) -> ApiError {
        match d {
            crate::auth::Denied::Unauthenticated => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", d.to_string())
            }
            crate::auth::Denied::Forbidden => ApiError::new(StatusCode::FORBIDDEN, "forbidden", d.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                oldest_revision: self.oldest_revision,
            },
        };
        let mut resp = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
