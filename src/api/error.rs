//! Every error the API returns is JSON: `{"error": {"code": "…", "message": "…"}}`
//! with a matching HTTP status, so clients never have to parse text bodies.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn too_large(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!("API {}: {}", self.status, self.message);
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: &self.message } };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(axum::http::header::WWW_AUTHENTICATE, axum::http::HeaderValue::from_static("Bearer"));
        }
        if self.code == "busy" {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
        }
        response
    }
}

/// What a gallery implementation reports, by what the client should do.
#[derive(Debug, thiserror::Error)]
pub enum GalleryApiError {
    /// 404.
    #[error("{0}")]
    NotFound(String),
    /// 400: the request is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// 503 with `Retry-After`: the database is locked by another process.
    #[error("{0}")]
    Busy(String),
    /// 503: the gallery is shutting down or did not answer in time.
    #[error("{0}")]
    Unavailable(String),
    /// 500: logged in full; the client only learns that it failed.
    #[error(transparent)]
    Internal(Box<dyn std::error::Error + Send + Sync>),
}

impl GalleryApiError {
    pub fn internal(e: impl std::error::Error + Send + Sync + 'static) -> GalleryApiError {
        GalleryApiError::Internal(Box::new(e))
    }
}

impl From<GalleryApiError> for ApiError {
    fn from(e: GalleryApiError) -> ApiError {
        match e {
            GalleryApiError::NotFound(m) => ApiError::not_found(m),
            GalleryApiError::Invalid(m) => ApiError::bad_request(m),
            GalleryApiError::Busy(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", m),
            GalleryApiError::Unavailable(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m),
            GalleryApiError::Internal(e) => {
                // The chain names files and internals: the log gets it, the client does not.
                tracing::error!("API: {}", crate::core::error_chain(e.as_ref()));
                ApiError::internal("internal error: see the vireid log on the box")
            }
        }
    }
}
