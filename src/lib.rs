//! vireid: visible–infrared person re-identification on dual-spectrum camera boxes.
//!
//! One module per pipeline stage (see `DESIGN.md`):
//! ingest → detect → track → embed → gallery → events/api.
//! `synth` renders synthetic dual-spectrum people and scenes; `eval` holds the
//! VI-ReID benchmark protocols.

pub mod config;
pub mod modality;
pub mod bbox;

pub mod ingest;
pub mod detect;
pub mod track;
pub mod pair;
#[cfg(feature = "media")]
pub mod pipeline;
pub mod embed;
pub mod gallery;
pub mod events;
pub mod score;
pub mod api;
pub mod service;
pub mod eval;
pub mod synth;
