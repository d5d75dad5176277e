//! The wiring: the only module that knows every stage. It starts them, joins
//! them with bounded channels, runs them and stops them.
//!
//! * [`front`] (feature `media`): per camera, ingest → detect → track on a
//!   worker thread.
//! * [`back`]: finished tracks → embed worker → gallery actor (pairing,
//!   SQLite) → sinks (events file, MQTT).
//! * [`service`]: the lifecycle `vireid run` and `vireid serve` share —
//!   start, run until stopped, shut down in the order data flows.
//! * [`process`]: the one tokio runtime (API, MQTT, signals) and the one
//!   [`Shutdown`](crate::core::Shutdown) of the process.
//! * [`systemd`]: readiness, the progress watchdog.
//!
//! Threads, channels and who owns what: docs/ARCHITECTURE.md.

pub mod back;
pub mod error;
#[cfg(feature = "media")]
pub mod front;
pub mod process;
pub mod service;
pub mod systemd;

pub use back::{BackHalf, BackHalfStats};
pub use error::{PipelineError, PipelineResult};
#[cfg(feature = "media")]
pub use front::{CameraReport, FrontHalf};
pub use process::{drain_within, Process};
pub use service::{Plan, Report, Service, StopReason, Until};
