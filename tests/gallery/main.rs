//! Gallery, events and scoring through the library: open-set assignment,
//! day/night links, the actor behind the API, kill -9 safety, `score`.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod actor_api;
mod crash_restart;
mod erasure;
mod refit;
mod score;
mod store;
