//! Scoring against a synthetic scene's ground truth (`ground_truth.jsonl`,
//! written by `vireid synth scene`, see [`crate::synth::ground_truth`]):
//!
//! - [`sightings`]: what `vireid score` (`cli::score`) reports — the sightings a run emitted (identity
//!   purity, day/night and night→day link rates, pair precision, false links);
//! - [`detection`]: `vireid detect --ground-truth` — per-frame boxes and track
//!   ids (recall, precision, identity consistency).

pub mod detection;
pub mod sightings;

/// Why a run cannot be scored: its ground truth or its sightings file.
#[derive(Debug, thiserror::Error)]
pub enum ScoreError {
    #[error(transparent)]
    GroundTruth(#[from] crate::synth::SynthError),
    #[error(transparent)]
    Sightings(#[from] crate::events::EventsError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, ScoreError>;

pub use crate::synth::ground_truth::{read_ground_truth, GroundTruthLine};
pub use sightings::{explain, score, Explanation, JoinedBy, MissedLink, NightSighting, Score, WrongJoin};
