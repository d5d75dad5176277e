//! HTTP API and dashboard (axum on tokio).
//!
//! | route | auth | what |
//! | --- | --- | --- |
//! | `GET /healthz` | no | liveness: `{"status":"ok"}` |
//! | `GET /` | no | the dashboard page (static; it holds no data and fetches the API with the token) |
//! | `GET /metrics` | yes | Prometheus text |
//! | `GET /api/v1/identities?offset=&limit=` | yes | identities, most recently seen first |
//! | `GET /api/v1/identities/{id}` | yes | one identity with sightings and crops in both modalities |
//! | `DELETE /api/v1/identities/{id}` | yes | forget an identity |
//! | `GET /api/v1/sightings?since=&camera=&modality=&limit=` | yes | sightings, newest first |
//! | `POST /api/v1/enrol` | yes | multipart: `image` (JPEG/PNG), `modality`, optional `label` |
//! | `POST /api/v1/query` | yes | multipart: `image`, `modality`, optional `k` → top-k identities |
//! | `GET /api/v1/crops/{id}` | yes | a crop image |
//! | `GET /api/v1/cameras` | yes | camera state |
//!
//! Auth: `Authorization: Bearer <token>`. Errors: JSON `{"error":{"code","message"}}`:
//! 400/404 say what to fix, 503 `busy` (with `Retry-After`) when the database
//! is locked, 500 says only "internal error" (the details go to the log).
//! Binds 127.0.0.1 unless `[api] bind` says otherwise.
//!
//! Everything the API shows comes through the [`GalleryApi`] trait
//! ([`gallery`]); [`gallery_handle`] implements it over the running gallery.
//! [`server`] serves the router on the process's runtime.

pub mod error;
pub mod gallery;
pub mod gallery_handle;
pub mod metrics;
pub mod server;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::core::{ConfigError, Modality};
pub use error::{ApiError, GalleryApiError};
pub use gallery::*;
pub use gallery_handle::GalleryApiHandle;
pub use metrics::{CameraState, CameraStatus, PipelineMetrics};
pub use server::ApiServer;

/// The `[api]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Off unless configured: turning it on needs a token anyway.
    pub enabled: bool,
    /// Address to listen on. Loopback by default: exposing the API to the
    /// network is a decision the user makes explicitly.
    pub bind: SocketAddr,
    /// The bearer token, inline…
    pub token: Option<String>,
    /// …or in a file (first line), e.g. `/etc/vireid/api-token` (mode 0640).
    pub token_file: Option<PathBuf>,
    /// Largest accepted request body (enrol/query uploads), bytes.
    pub max_upload_bytes: usize,
    /// Largest accepted image side, pixels (guards against decompression bombs).
    pub max_image_side: u32,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            enabled: false,
            bind: SocketAddr::from(([127, 0, 0, 1], 8088)),
            token: None,
            token_file: None,
            max_upload_bytes: 4 * 1024 * 1024,
            max_image_side: 4096,
        }
    }
}

impl ApiConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.token.is_some() && self.token_file.is_some() {
            crate::invalid_config!("api.token", "api.token and api.token_file are both set: keep one");
        }
        if self.token.is_none() && self.token_file.is_none() {
            crate::invalid_config!(
                "api.token_file",
                "the API is enabled but has no token: set api.token_file (recommended) or api.token, or api.enabled = false"
            );
        }
        if let Some(t) = &self.token {
            check_token("api.token", t)?;
        }
        if self.max_upload_bytes < 1024 {
            crate::invalid_config!(
                "api.max_upload_bytes",
                "api.max_upload_bytes is {}: allow at least 1024 bytes for an image upload",
                self.max_upload_bytes
            );
        }
        if self.max_image_side < 16 {
            crate::invalid_config!(
                "api.max_image_side",
                "api.max_image_side is {}: use at least 16 pixels",
                self.max_image_side
            );
        }
        Ok(())
    }

    /// The token, reading `token_file` if that is where it lives.
    pub fn resolve_token(&self) -> Result<String, ConfigError> {
        let token = match (&self.token, &self.token_file) {
            (Some(t), _) => t.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    ConfigError::new(
                        "api.token_file",
                        format!(
                            "cannot read api.token_file {}: create it with a random token (e.g. `openssl rand -hex 24`): {e}",
                            path.display()
                        ),
                    )
                })?
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string(),
            (None, None) => crate::invalid_config!("api.token_file", "no API token configured: set api.token_file or api.token"),
        };
        check_token(if self.token.is_some() { "api.token" } else { "api.token_file" }, &token)?;
        Ok(token)
    }
}

fn check_token(key: &str, t: &str) -> Result<(), ConfigError> {
    if t.len() < 16 || !t.chars().all(|c| c.is_ascii_graphic()) {
        crate::invalid_config!(
            key,
            "{key}: the API token must be at least 16 printable ASCII characters without spaces"
        );
    }
    Ok(())
}

/// The HTTP server could not start or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on api.bind = {bind}: is another process using the port? ({source})")]
    Bind { bind: SocketAddr, source: std::io::Error },
    #[error("the HTTP server failed: {0}")]
    Serve(std::io::Error),
    #[error("the API task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub gallery: Arc<dyn GalleryApi>,
    pub metrics: Arc<PipelineMetrics>,
    token: Arc<str>,
    max_image_side: u32,
}

impl ApiState {
    pub fn new(
        gallery: Arc<dyn GalleryApi>,
        metrics: Arc<PipelineMetrics>,
        token: String,
        max_image_side: u32,
    ) -> ApiState {
        ApiState { gallery, metrics, token: token.into(), max_image_side }
    }
}

const DASHBOARD_HTML: &str = include_str!("dashboard.html");

/// The whole HTTP surface.
pub fn router(state: ApiState, max_upload_bytes: usize) -> Router {
    let protected = Router::new()
        .route("/metrics", get(metrics_text))
        .route("/api/v1/identities", get(list_identities))
        .route("/api/v1/identities/{id}", get(get_identity).delete(forget_identity))
        .route("/api/v1/sightings", get(list_sightings))
        .route("/api/v1/enrol", axum::routing::post(enrol))
        .route("/api/v1/query", axum::routing::post(query))
        .route("/api/v1/crops/{id}", get(get_crop))
        .route("/api/v1/cameras", get(cameras))
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .route("/healthz", get(|| async { Json(serde_json::json!({"status": "ok"})) }))
        .route("/", get(|| async { Html(DASHBOARD_HTML) }))
        .merge(protected)
        .fallback(|| async { ApiError::not_found("no such route: see the route table in the README") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
        })
        .layer(DefaultBodyLimit::max(max_upload_bytes))
        .with_state(state)
}

pub async fn bind(config: &ApiConfig) -> Result<tokio::net::TcpListener, ServerError> {
    tokio::net::TcpListener::bind(config.bind).await.map_err(|source| ServerError::Bind { bind: config.bind, source })
}

/// Serves until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    max_upload_bytes: usize,
    state: ApiState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!("API and dashboard on http://{addr}/");
    }
    axum::serve(listener, router(state, max_upload_bytes))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(ServerError::Serve)
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn token_matches(given: &[u8], expected: &[u8]) -> bool {
    if given.len() != expected.len() {
        return false;
    }
    given.iter().zip(expected).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

async fn require_token(State(state): State<ApiState>, headers: HeaderMap, request: Request, next: Next) -> Response {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return ApiError::unauthorized("missing Authorization header: send `Authorization: Bearer <token>`")
            .into_response();
    };
    let Some(token) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
        return ApiError::unauthorized("Authorization header must be `Bearer <token>`").into_response();
    };
    if !token_matches(token.trim().as_bytes(), state.token.as_bytes()) {
        return ApiError::unauthorized("invalid token").into_response();
    }
    next.run(request).await
}

/// Runs a blocking gallery call on tokio's blocking pool.
async fn gallery_call<T: Send + 'static>(
    state: &ApiState,
    f: impl FnOnce(&dyn GalleryApi) -> Result<T, GalleryApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let gallery = state.gallery.clone();
    tokio::task::spawn_blocking(move || f(gallery.as_ref()))
        .await
        .map_err(GalleryApiError::internal)?
        .map_err(ApiError::from)
}

async fn metrics_text(State(state): State<ApiState>) -> Response {
    let stats = gallery_call(&state, |g| g.stats()).await;
    let stats = match stats {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!("metrics without gallery figures: {}", e.message);
            None
        }
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render(stats)).into_response()
}

fn query_error(e: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("bad query string: {}", crate::core::in_words(&e.body_text())))
}

fn path_id(p: Result<Path<u64>, PathRejection>) -> Result<u64, ApiError> {
    p.map(|Path(id)| id).map_err(|_| ApiError::bad_request("the id in the path must be a non-negative integer"))
}

#[derive(Deserialize)]
struct Paging {
    offset: Option<usize>,
    limit: Option<usize>,
}

const MAX_PAGE: usize = 1000;

fn page_limit(limit: Option<usize>, default: usize) -> Result<usize, ApiError> {
    match limit.unwrap_or(default) {
        0 => Err(ApiError::bad_request("limit must be at least 1")),
        n if n > MAX_PAGE => Err(ApiError::bad_request(format!("limit {n} is above the maximum {MAX_PAGE}"))),
        n => Ok(n),
    }
}

async fn list_identities(
    State(state): State<ApiState>,
    q: Result<Query<Paging>, QueryRejection>,
) -> Result<Json<Vec<IdentityBody>>, ApiError> {
    let Query(p) = q.map_err(query_error)?;
    let limit = page_limit(p.limit, 100)?;
    let offset = p.offset.unwrap_or(0);
    Ok(Json(gallery_call(&state, move |g| g.identities(offset, limit)).await?))
}

async fn get_identity(
    State(state): State<ApiState>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<IdentityDetail>, ApiError> {
    let id = path_id(id)?;
    gallery_call(&state, move |g| g.identity(id))
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no identity {id}")))
}

async fn forget_identity(
    State(state): State<ApiState>,
    id: Result<Path<u64>, PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = path_id(id)?;
    if gallery_call(&state, move |g| g.forget(id)).await? {
        Ok(Json(serde_json::json!({"forgotten": id})))
    } else {
        Err(ApiError::not_found(format!("no identity {id}")))
    }
}

#[derive(Deserialize)]
struct SightingQuery {
    since: Option<String>,
    camera: Option<String>,
    modality: Option<String>,
    limit: Option<usize>,
}

async fn list_sightings(
    State(state): State<ApiState>,
    q: Result<Query<SightingQuery>, QueryRejection>,
) -> Result<Json<Vec<SightingBody>>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let since = match q.since.as_deref() {
        None | Some("") => None,
        Some(s) => Some(s.parse::<f64>().ok().filter(|v| v.is_finite() && *v >= 0.0).ok_or_else(|| {
            ApiError::bad_request(format!("since='{s}' is not a time: give unix seconds, e.g. since=1763700000"))
        })?),
    };
    let modality = match q.modality.as_deref() {
        None | Some("") => None,
        Some(m) => Some(m.parse::<Modality>().map_err(|e| ApiError::bad_request(format!("modality: {e}")))?),
    };
    let filter = SightingFilter {
        since,
        camera: q.camera.filter(|c| !c.is_empty()),
        modality,
        limit: page_limit(q.limit, 100)?,
    };
    Ok(Json(gallery_call(&state, move |g| g.sightings(&filter)).await?))
}

async fn get_crop(State(state): State<ApiState>, id: Result<Path<u64>, PathRejection>) -> Result<Response, ApiError> {
    let id = path_id(id)?;
    let crop =
        gallery_call(&state, move |g| g.crop(id)).await?.ok_or_else(|| ApiError::not_found(format!("no crop {id}")))?;
    Ok(([(header::CONTENT_TYPE, crop.content_type), (header::CACHE_CONTROL, "private, max-age=3600")], crop.bytes)
        .into_response())
}

async fn cameras(State(state): State<ApiState>) -> Json<Vec<CameraStatus>> {
    Json(state.metrics.cameras())
}

/// The fields of an enrol/query form, checked.
struct ImageForm {
    image: UploadedImage,
    label: Option<String>,
    k: Option<usize>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("upload too large: see api.max_upload_bytes")
    } else {
        ApiError::bad_request(format!("malformed multipart body: {}", e.body_text()))
    }
}

async fn read_image_form(
    state: &ApiState,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<ImageForm, ApiError> {
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!(
            "expected a multipart/form-data body with fields image, modality: {}",
            e.body_text()
        ))
    })?;
    let (mut bytes, mut modality, mut label, mut k) = (None, None, None, None);
    while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "image" => bytes = Some(field.bytes().await.map_err(multipart_error)?),
            "modality" => {
                let text = field.text().await.map_err(multipart_error)?;
                modality =
                    Some(text.trim().parse::<Modality>().map_err(|e| ApiError::bad_request(format!("modality: {e}")))?);
            }
            "label" => {
                let text = field.text().await.map_err(multipart_error)?.trim().to_string();
                if text.chars().count() > 128 {
                    return Err(ApiError::bad_request("label is longer than 128 characters"));
                }
                label = Some(text).filter(|t| !t.is_empty());
            }
            "k" => {
                let text = field.text().await.map_err(multipart_error)?;
                let n: usize = text
                    .trim()
                    .parse()
                    .map_err(|_| ApiError::bad_request(format!("k='{}' is not a number", text.trim())))?;
                if !(1..=100).contains(&n) {
                    return Err(ApiError::bad_request("k must be between 1 and 100"));
                }
                k = Some(n);
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown form field '{other}': use image, modality, label, k"
                )))
            }
        }
    }
    let bytes = bytes.ok_or_else(|| ApiError::bad_request("missing form field 'image' (a JPEG or PNG file)"))?;
    let modality = modality.ok_or_else(|| ApiError::bad_request("missing form field 'modality' (rgb or thermal)"))?;
    let max_side = state.max_image_side;
    let image = tokio::task::spawn_blocking(move || decode_image(&bytes, max_side))
        .await
        .map_err(GalleryApiError::internal)??;
    Ok(ImageForm { image: UploadedImage { image, modality }, label, k })
}

fn decode_image(bytes: &[u8], max_side: u32) -> Result<image::DynamicImage, ApiError> {
    let format =
        image::guess_format(bytes).map_err(|_| ApiError::bad_request("field 'image' is not a JPEG or PNG image"))?;
    if !matches!(format, image::ImageFormat::Jpeg | image::ImageFormat::Png) {
        return Err(ApiError::bad_request(format!("image format {format:?} is not accepted: send JPEG or PNG")));
    }
    let mut reader = image::ImageReader::with_format(std::io::Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    limits.max_alloc = Some(256 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => {
            ApiError::too_large(format!("image is larger than {max_side}×{max_side} pixels: see api.max_image_side"))
        }
        other => ApiError::bad_request(format!("cannot decode the image: {other}")),
    })?;
    if image.width() < 8 || image.height() < 8 {
        return Err(ApiError::bad_request("image is smaller than 8×8 pixels: send a person crop"));
    }
    Ok(image)
}

async fn enrol(
    State(state): State<ApiState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let form = read_image_form(&state, multipart).await?;
    if form.k.is_some() {
        return Err(ApiError::bad_request("'k' is a query field, not an enrol field"));
    }
    let label = form.label;
    let enrolled = gallery_call(&state, move |g| g.enrol(form.image, label)).await?;
    Ok((StatusCode::CREATED, Json(enrolled)))
}

async fn query(
    State(state): State<ApiState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let form = read_image_form(&state, multipart).await?;
    if form.label.is_some() {
        return Err(ApiError::bad_request("'label' is an enrol field, not a query field"));
    }
    let k = form.k.unwrap_or(5);
    let matches = gallery_call(&state, move |g| g.query(form.image, k)).await?;
    Ok(Json(serde_json::json!({ "matches": matches })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_requires_a_token_and_names_the_key() {
        ApiConfig::default().validate().unwrap();
        let err = ApiConfig { enabled: true, ..Default::default() }.validate().unwrap_err().to_string();
        assert!(err.contains("api.token_file"), "{err}");
        let short = ApiConfig { enabled: true, token: Some("abc".into()), ..Default::default() };
        assert!(format!("{:#}", short.validate().unwrap_err()).contains("16"));
        let ok = ApiConfig { enabled: true, token: Some("0123456789abcdef0123".into()), ..Default::default() };
        ok.validate().unwrap();
        assert!(ok.bind.ip().is_loopback(), "binds loopback unless configured");
    }

    #[test]
    fn token_compare() {
        assert!(token_matches(b"abc", b"abc"));
        assert!(!token_matches(b"abd", b"abc"));
        assert!(!token_matches(b"ab", b"abc"));
    }
}
