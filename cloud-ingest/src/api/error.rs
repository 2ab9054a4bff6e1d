use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// What every error response carries (`{"error": "…"}`), as documented
/// in the OpenAPI document.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong, safe to show (English).
    pub error: String,
}

/// One error type for every handler: a status code and a message safe to show.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Input the handler cannot use (malformed JSON, a missing field, an
    /// unknown filter value): 400 with the message.
    #[error("{0}")]
    BadRequest(String),
    /// The resource is not in a state the request applies to: 409.
    #[error("{0}")]
    Conflict(String),
    /// No valid session, token or anonymous access: 401.
    #[error("sign in first")]
    Unauthorized,
    /// Signed in, but not allowed this: 403 with the reason.
    #[error("{0}")]
    Forbidden(String),
    /// Too many failed sign-ins: 429 with `Retry-After`.
    #[error("too many failed sign-ins; try again in {} min", .0.as_secs().div_ceil(60))]
    TooManyAttempts(std::time::Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, self.to_string()),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, self.to_string()),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, self.to_string()),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, self.to_string()),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, self.to_string()),
            ApiError::TooManyAttempts(wait) => {
                let mut response = (
                    StatusCode::TOO_MANY_REQUESTS,
                    Json(ErrorBody {
                        error: self.to_string(),
                    }),
                )
                    .into_response();
                response.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(wait.as_secs().max(1)),
                );
                return response;
            }
            ApiError::Store(error) => {
                // Internals go to the log, not to the client.
                tracing::error!(error = %error, "API request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal error".to_owned(),
                )
            }
        };
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

/// A JSON body, or a 400 JSON error naming what is wrong with it (axum's
/// own rejection is plain text).
pub fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(b)| b)
        .map_err(|r| ApiError::BadRequest(r.body_text()))
}

/// `limit` (default `default`, 1 to `max`) and `offset` (not negative) of
/// a list query.
pub fn page(
    limit: Option<i64>,
    offset: Option<i64>,
    default: i64,
    max: i64,
) -> Result<(i64, i64), ApiError> {
    let limit = limit.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(format!("`limit` must be 1 to {max}")));
    }
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ApiError::BadRequest("`offset` must not be negative".into()));
    }
    Ok((limit, offset))
}
