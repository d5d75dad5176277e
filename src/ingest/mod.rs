//! Ingest: one GStreamer pipeline per camera → bounded, leaky frame hand-off.
//!
//! * [`source`] parses a camera's `source` string; [`gst_pipeline`] turns it
//!   into a GStreamer pipeline.
//! * [`camera`] runs that pipeline on its own supervisor thread, reconnects
//!   live sources with exponential back-off and hands frames over through a
//!   bounded channel that drops the oldest frame when the consumer is slow.
//! * [`stats`]: a camera's state and counters, read by the pipeline and the API.
//! * [`timeline`]: timestamps that run forward across reconnects and loops, in segments.
//!
//! Everything that touches GStreamer is behind the `media` feature; the
//! config types, source parsing and counters build without it.

#[cfg(feature = "media")]
pub mod camera;
#[cfg(feature = "media")]
pub mod gst_pipeline;
#[cfg(feature = "media")]
pub mod rtsp_server;
pub mod source;
pub mod stats;
pub mod timeline;

use serde::Deserialize;
use std::collections::HashSet;

use crate::core::{ConfigError, Modality};

#[cfg(feature = "media")]
pub use camera::{start_camera, CameraHandle};
#[cfg(feature = "media")]
pub use gst_pipeline::check_camera;
pub use source::SourceError;

/// A camera (or the RTSP test server) that cannot start or run. The message
/// names the camera and, where there is one, the fix.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// GStreamer is missing, lacks an element, or refused a pipeline.
    #[error("{0}")]
    Gstreamer(String),
    /// A `source` or `--mount` that cannot work.
    #[error("{0}")]
    Invalid(String),
    /// The camera failed for good (a fatal error, not a reconnectable one).
    #[error("camera '{camera}' ({source_uri}): {message}")]
    Failed { camera: String, source_uri: String, message: String },
    #[error("camera '{0}': ingest thread panicked")]
    Panicked(String),
    #[error("cannot start a thread: {0}")]
    Spawn(std::io::Error),
}
pub use source::SourceKind;
pub use stats::{CameraState, CameraStats, StatsSnapshot};

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
    /// A GStreamer decoder element to prefer over the software decoders
    /// (e.g. `nvv4l2decoder` on a Jetson). It must exist on this machine.
    #[serde(default)]
    pub decoder: Option<String>,
}

fn default_box() -> String {
    "box0".to_string()
}

/// How file sources are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FilePace {
    /// At the file's own frame rate, like a live camera: frames the detector
    /// cannot keep up with are dropped (oldest first) and counted.
    #[default]
    Realtime,
    /// As fast as the consumer takes frames; nothing is dropped (offline processing).
    Fast,
}

/// The `[ingest]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Frames held per camera between GStreamer and the detector; the oldest is dropped past this.
    pub queue_frames: usize,
    /// Scale frames to this size before hand-off (0 = keep the source size).
    pub width: u32,
    pub height: u32,
    /// How file sources are paced (`realtime` or `fast`).
    pub file_pace: FilePace,
    /// First reconnection delay for live sources, doubled after each failure.
    pub reconnect_initial_ms: u64,
    /// Upper bound of the reconnection delay. 2 s: the first try at a camera
    /// that has just come back often fails, and with a 4 s cap 4 of 100
    /// returns took 7.7–11.7 s (bench/soak_cameras.sh, BENCHMARKS.md).
    pub reconnect_max_ms: u64,
    /// RTSP jitter-buffer latency.
    pub rtsp_latency_ms: u32,
    /// A live source that delivers no frame for this long is restarted.
    pub stall_timeout_ms: u64,
    /// A box is at night while its colour camera's mean luma (0–255) is below
    /// this; each track is tagged day or night by it (`core::light`). Synthetic
    /// scenes run 71–96 by day and 25–35 at night (crop means).
    pub night_luma: u8,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            queue_frames: 4,
            width: 0,
            height: 0,
            file_pace: FilePace::Realtime,
            reconnect_initial_ms: 500,
            reconnect_max_ms: 2_000,
            rtsp_latency_ms: 200,
            stall_timeout_ms: 5_000,
            night_luma: 50,
        }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.queue_frames == 0 {
            crate::invalid_config!("ingest.queue_frames", "ingest.queue_frames must be at least 1");
        }
        if self.queue_frames > 256 {
            crate::invalid_config!(
                "ingest.queue_frames",
                "ingest.queue_frames = {} is too large (frames are held in memory): use at most 256",
                self.queue_frames
            );
        }
        if (self.width == 0) != (self.height == 0) {
            crate::invalid_config!(
                "ingest.width",
                "ingest.width and ingest.height must both be set (or both 0 to keep the source size)"
            );
        }
        if self.reconnect_initial_ms == 0 || self.reconnect_max_ms < self.reconnect_initial_ms {
            crate::invalid_config!(
                "ingest.reconnect_initial_ms",
                "ingest.reconnect_initial_ms must be > 0 and ingest.reconnect_max_ms at least as large"
            );
        }
        if self.stall_timeout_ms < 500 {
            crate::invalid_config!("ingest.stall_timeout_ms", "ingest.stall_timeout_ms must be at least 500");
        }
        Ok(())
    }
}

/// Checks what only the whole list can tell: unique names, non-empty fields,
/// a source this build understands and, for files, that the file exists.
pub fn validate_cameras(cameras: &[CameraConfig]) -> Result<(), ConfigError> {
    let mut seen = HashSet::new();
    for (i, cam) in cameras.iter().enumerate() {
        if cam.name.trim().is_empty() {
            crate::invalid_config!(
                format!("camera[{i}].name"),
                "camera[{i}].name is empty: give every camera a unique name"
            );
        }
        if !seen.insert(cam.name.as_str()) {
            crate::invalid_config!(
                format!("camera[{i}].name"),
                "camera[{i}].name '{}' is used by two cameras: camera names must be unique",
                cam.name
            );
        }
        if cam.source.trim().is_empty() {
            crate::invalid_config!(
                format!("camera[{i}].source"),
                "camera[{i}].source (camera '{}') is empty: give a file path, rtsp://, v4l2:// or test: source",
                cam.name
            );
        }
        let kind = SourceKind::parse(&cam.source).map_err(|e| {
            ConfigError::new(format!("camera[{i}].source"), format!("camera[{i}].source (camera '{}'): {e}", cam.name))
        })?;
        if let SourceKind::File(path) = &kind {
            if !path.is_file() {
                crate::invalid_config!(
                    format!("camera[{i}].source"),
                    "camera[{i}].source (camera '{}'): video file {} does not exist: check the path",
                    cam.name,
                    path.display()
                );
            }
        } else if cam.loop_file {
            crate::invalid_config!(
                format!("camera[{i}].loop"),
                "camera[{i}].loop (camera '{}') only applies to file sources; remove it",
                cam.name
            );
        }
        if let Some(dec) = &cam.decoder {
            if dec.trim().is_empty() {
                crate::invalid_config!(
                    format!("camera[{i}].decoder"),
                    "camera[{i}].decoder (camera '{}') is empty: name a GStreamer decoder element or remove the key",
                    cam.name
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(name: &str, source: &str) -> CameraConfig {
        CameraConfig {
            name: name.into(),
            modality: Modality::Rgb,
            source: source.into(),
            box_name: "box0".into(),
            loop_file: false,
            decoder: None,
        }
    }

    #[test]
    fn duplicate_names_and_bad_sources_are_named() {
        let err = validate_cameras(&[cam("a", "test:"), cam("a", "test:")]).unwrap_err().to_string();
        assert!(err.contains("camera[1].name 'a'") && err.contains("unique"), "{err}");
        let err = validate_cameras(&[cam("a", "ftp://x/y.mp4")]).unwrap_err().to_string();
        assert!(err.contains("camera[0].source") && err.contains("ftp"), "{err}");
        let err = validate_cameras(&[cam("a", "/no/such/file.mp4")]).unwrap_err().to_string();
        assert!(err.contains("/no/such/file.mp4") && err.contains("does not exist"), "{err}");
        let mut looped = cam("a", "rtsp://127.0.0.1/x");
        looped.loop_file = true;
        assert!(validate_cameras(&[looped]).unwrap_err().to_string().contains("loop"));
        validate_cameras(&[cam("a", "test:"), cam("b", "rtsp://127.0.0.1:8554/x")]).unwrap();
    }
}
