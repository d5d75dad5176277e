//! Detection: `trait Detector` → person boxes with scores.

use anyhow::Result;
use serde::Deserialize;

use crate::bbox::BBox;
use crate::ingest::Frame;

/// A person box in frame pixels with the detector's confidence.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

/// Finds people in a frame (RGB or GRAY8).
pub trait Detector: Send {
    fn detect(&mut self, frame: &Frame) -> Result<Vec<Detection>>;
}

/// The `[detect]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {}

impl DetectConfig {
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}
