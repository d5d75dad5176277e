//! What a camera is doing and how much it has done: counters written by its
//! ingest thread and read from any other (the pipeline's reports, `/metrics`).
//! Plain atomics, no GStreamer: the API and the portable build use them too.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// What a camera is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CameraState {
    /// Pipeline built, no frame yet.
    Starting = 0,
    /// Frames are arriving.
    Running = 1,
    /// The source failed or ended; waiting to reconnect.
    Retrying = 2,
    /// Finished (file ended, fatal error, or asked to stop).
    Stopped = 3,
}

impl CameraState {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraState::Starting => "starting",
            CameraState::Running => "running",
            CameraState::Retrying => "retrying",
            CameraState::Stopped => "stopped",
        }
    }

    fn from_u8(v: u8) -> CameraState {
        match v {
            0 => CameraState::Starting,
            1 => CameraState::Running,
            2 => CameraState::Retrying,
            _ => CameraState::Stopped,
        }
    }
}

/// Counters a camera exposes while it runs (read from any thread).
#[derive(Debug)]
pub struct CameraStats {
    pub name: Arc<str>,
    state: AtomicU8,
    /// Frames copied out of GStreamer into the queue.
    pub frames: AtomicU64,
    /// Frames thrown away because the consumer was behind (oldest first).
    pub dropped: AtomicU64,
    /// Times the pipeline was restarted after an error, stall or end of a live stream.
    pub reconnects: AtomicU64,
    /// Nanoseconds spent in the appsink callback (copying frames out).
    pub copy_ns: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A point-in-time copy of [`CameraStats`].
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsSnapshot {
    pub camera: String,
    pub state: CameraState,
    pub frames: u64,
    pub dropped: u64,
    pub reconnects: u64,
    pub copy_ms: f64,
    pub last_error: Option<String>,
}

impl CameraStats {
    pub fn new(name: Arc<str>) -> Self {
        CameraStats {
            name,
            state: AtomicU8::new(CameraState::Starting as u8),
            frames: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            copy_ns: AtomicU64::new(0),
            last_error: Mutex::new(None),
        }
    }

    pub fn state(&self) -> CameraState {
        CameraState::from_u8(self.state.load(Ordering::Acquire))
    }

    pub fn set_state(&self, state: CameraState) {
        let old = self.state.swap(state as u8, Ordering::AcqRel);
        if old != state as u8 {
            tracing::info!(camera = %self.name, state = ?state, "camera state");
        }
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().map(|e| e.clone()).unwrap_or(None)
    }

    pub fn set_error(&self, msg: String) {
        if let Ok(mut e) = self.last_error.lock() {
            *e = Some(msg);
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            camera: self.name.to_string(),
            state: self.state(),
            frames: self.frames.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            reconnects: self.reconnects.load(Ordering::Relaxed),
            copy_ms: self.copy_ns.load(Ordering::Relaxed) as f64 / 1e6,
            last_error: self.last_error(),
        }
    }
}
