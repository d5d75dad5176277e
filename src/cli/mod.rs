//! The command line's subcommands: each one's arguments (clap) and the
//! function that runs it. This is the CLI edge: the library's typed errors
//! become `anyhow` errors here, with the command's context, and `main.rs`
//! prints them as one line (`error: what failed: why: the fix`).
//!
//! A subcommand that is one tool's whole job keeps its arguments with the
//! tool (`synth`, `eval distmat`); everything that reads the config file or
//! crosses modules is here.

pub mod adapt;
pub mod check_config;
#[cfg(feature = "media")]
pub mod detect;
pub mod embed;
pub mod eval;
pub mod gallery;
#[cfg(feature = "media")]
pub mod run;
pub mod score;
pub mod serve;
#[cfg(feature = "media")]
pub mod serve_rtsp;
pub mod thresholds;

pub use embed::EmbedderArgs;
