//! What can stop the pipeline from starting, running or stopping cleanly:
//! the stage that failed, with that stage's own typed error inside.

use std::time::Duration;

use crate::config::SectionError;
use crate::core::ConfigError;
use crate::detect::DetectError;
use crate::embed::EmbedError;
use crate::events::mqtt::MqttError;
use crate::events::EventsError;
use crate::gallery::store::StoreError;
use crate::gallery::GalleryError;
use crate::ingest::IngestError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("invalid config: {0}")]
    Config(#[from] SectionError),
    #[error(transparent)]
    Setting(#[from] ConfigError),
    #[error("cannot start the embedder for the gallery: {0}")]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Gallery(#[from] GalleryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Events(#[from] EventsError),
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    #[error(transparent)]
    Api(#[from] crate::api::ServerError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("camera '{camera}': cannot open detector: {source}")]
    OpenDetector { camera: String, source: DetectError },
    #[error("camera '{camera}': {source}")]
    Detect { camera: String, source: DetectError },
    #[error("cannot start the {0} thread: {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("{0} panicked")]
    Panicked(String),
    #[error("cannot start the async runtime (API, MQTT, signals): {0}")]
    Runtime(std::io::Error),
    #[error("cannot install SIGTERM/SIGINT handlers: {0}")]
    Signals(std::io::Error),
    #[error("writing finished tracks: {0}")]
    Tracks(String),
    #[error("cannot send {what} to systemd's NOTIFY_SOCKET: {source}")]
    Notify { what: &'static str, source: std::io::Error },
    #[error("watchdog intervals must be positive: check WatchdogSec= in the unit file")]
    Watchdog,
    #[error(
        "draining in-flight work did not finish within {0:?}: some sightings may not be saved; \
         raise TimeoutStopSec= in the unit and the drain deadline if this box is slow"
    )]
    DrainTimeout(Duration),
    #[error("the drain thread panicked: in-flight sightings were not saved")]
    DrainPanicked,
    /// The build lacks a feature the plan needs.
    #[error("{0}")]
    Unavailable(&'static str),
}

pub type PipelineResult<T> = Result<T, PipelineError>;
