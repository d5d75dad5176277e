//! Ingest: one GStreamer pipeline per camera → bounded, leaky frame hand-off.

use anyhow::{bail, Result};
use serde::Deserialize;
use std::collections::HashSet;

use crate::modality::Modality;

/// One `[[camera]]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Unique name; sightings and metrics carry it.
    pub name: String,
    pub modality: Modality,
    /// `file:///…` or a plain path, `rtsp://…`, `v4l2:///dev/videoN`, `test:` (test pattern).
    pub source: String,
    /// The box (device) this sensor belongs to: an RGB and a thermal camera share one.
    #[serde(default = "default_box", rename = "box")]
    pub box_name: String,
    /// Files only: start again at the end instead of finishing.
    #[serde(default, rename = "loop")]
    pub loop_file: bool,
}

fn default_box() -> String {
    "box0".to_string()
}

/// The `[ingest]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Frames held per camera between GStreamer and the detector; the oldest is dropped past this.
    pub queue_frames: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig { queue_frames: 4 }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Result<()> {
        if self.queue_frames == 0 {
            bail!("ingest.queue_frames must be at least 1");
        }
        Ok(())
    }
}

/// Checks what only the whole list can tell: unique names, non-empty fields.
pub fn validate_cameras(cameras: &[CameraConfig]) -> Result<()> {
    let mut seen = HashSet::new();
    for (i, cam) in cameras.iter().enumerate() {
        if cam.name.trim().is_empty() {
            bail!("camera[{i}].name is empty: give every camera a unique name");
        }
        if !seen.insert(cam.name.as_str()) {
            bail!("camera[{i}].name '{}' is used by two cameras: camera names must be unique", cam.name);
        }
        if cam.source.trim().is_empty() {
            bail!("camera[{i}].source (camera '{}') is empty: give a file path, rtsp://, v4l2:// or test: source", cam.name);
        }
    }
    Ok(())
}

/// One decoded frame, as it leaves GStreamer.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The camera's configured name.
    pub camera: std::sync::Arc<str>,
    pub modality: Modality,
    /// Presentation timestamp in nanoseconds from the stream start, if the stream has one.
    pub pts_ns: Option<u64>,
    /// When the frame was pulled from GStreamer.
    pub wall_time: std::time::SystemTime,
    pub width: u32,
    pub height: u32,
    /// Packed pixels: RGB (3 bytes/pixel) for `rgb`, GRAY8 for `thermal`, no row padding.
    pub data: Vec<u8>,
}
