//! Scoring against a synthetic scene's ground truth (`ground_truth.jsonl`,
//! written by `vireid synth scene`, see [`crate::synth::ground_truth`]):
//!
//! - [`sightings`]: `vireid score` — the sightings a run emitted (identity
//!   purity, day/night and night→day link rates, pair precision, false links);
//! - [`detection`]: `vireid detect --ground-truth` — per-frame boxes and track
//!   ids (recall, precision, identity consistency).

pub mod detection;
pub mod sightings;

pub use crate::synth::ground_truth::{read_ground_truth, GroundTruthLine};
pub use sightings::{run_score, score, Score, ScoreArgs};
