//! The HTTP API and dashboard: the router over a fake gallery, the real
//! gallery (SQLite + ONNX Runtime), a real browser, and the API inside `vireid run`.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod dashboard;
mod fuzz;
mod http;
mod in_run;
mod sqlite;
mod support;
