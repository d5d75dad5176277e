//! A decoded video frame, as it leaves ingest and reaches detect and track.

use std::sync::Arc;
use std::time::SystemTime;

use super::modality::Modality;

/// One decoded frame of one camera.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The camera's configured name.
    pub camera: Arc<str>,
    pub modality: Modality,
    /// Presentation timestamp in nanoseconds, if the stream has one: on the
    /// camera's timeline, which never runs backwards (`ingest::timeline`).
    pub pts_ns: Option<u64>,
    /// The unbroken stretch of the camera's stream this frame is in: a
    /// reconnect or a file loop starts the next, and no track spans two.
    pub segment: u64,
    /// When the frame was pulled from GStreamer.
    pub wall_time: SystemTime,
    pub width: u32,
    pub height: u32,
    /// Packed pixels: RGB (3 bytes/pixel) for `rgb`, GRAY8 for `thermal`, no row padding.
    pub data: Vec<u8>,
}

impl Frame {
    pub fn channels(&self) -> usize {
        self.modality.channels()
    }
}
