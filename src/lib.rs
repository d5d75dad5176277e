//! vireid: visible–infrared person re-identification on dual-spectrum camera boxes.
//!
//! The modules follow the data, camera to event (docs/ARCHITECTURE.md has the
//! map, the threads and the module graph; `scripts/check_modules.py` keeps it true):
//!
//! `core` → `ingest` → `detect` → `track` → `pair` → `embed` → `gallery` →
//! `events` / `api`, gathered by `config`, wired and run by `pipeline`,
//! driven from `cli`. A module uses only what is upstream of it.
//!
//! Beside the flow: `synth` renders synthetic dual-spectrum people and scenes,
//! `eval` holds the VI-ReID benchmark protocols, `score` scores a run against
//! a synthetic scene's ground truth.

pub mod core;
#[cfg(feature = "infer")]
pub mod onnx_runtime;

pub mod api;
pub mod detect;
pub mod embed;
pub mod events;
pub mod gallery;
pub mod ingest;
pub mod pair;
pub mod track;

pub mod cli;
pub mod config;
pub mod pipeline;

pub mod eval;
pub mod score;
pub mod synth;
