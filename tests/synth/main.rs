//! Synthetic data: dataset layouts, scene videos and crops, the modality gap,
//! and whether a real detector sees synthetic people.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod common;
mod datasets;
mod gap;
mod hog;
mod scene;
