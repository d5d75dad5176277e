//! HTTP API and dashboard (axum on tokio).
