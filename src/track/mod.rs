//! Tracking: per-camera multi-object tracker (Kalman + IoU assignment).

use anyhow::Result;
use serde::Deserialize;
use std::sync::Arc;
use std::time::SystemTime;

use crate::bbox::BBox;
use crate::embed::Crop;
use crate::modality::Modality;

/// One of a track's best crops, kept for the embedder.
#[derive(Debug, Clone)]
pub struct TrackCrop {
    pub crop: Crop,
    pub bbox: BBox,
    pub score: f32,
    pub sharpness: f32,
    pub pts_ns: Option<u64>,
}

/// A track that has ended: the unit of a sighting.
#[derive(Debug, Clone)]
pub struct FinishedTrack {
    /// Unique per camera for the life of the process.
    pub track_id: u64,
    pub camera: Arc<str>,
    pub modality: Modality,
    pub first_pts_ns: Option<u64>,
    pub last_pts_ns: Option<u64>,
    pub start_time: SystemTime,
    pub end_time: SystemTime,
    /// Number of frames the track was matched to a detection.
    pub hits: u32,
    /// The box of the best crop.
    pub best_box: BBox,
    pub best_score: f32,
    /// Best crops, best first (bounded by config).
    pub crops: Vec<TrackCrop>,
}

/// The `[track]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TrackConfig {}

impl TrackConfig {
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}
