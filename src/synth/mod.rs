//! Synthetic dual-spectrum people, datasets and scene videos (`vireid synth`).
//!
//! No VI-ReID dataset or thermal footage can reach the machines this project
//! runs on, so everything that needs people — training, evaluation, INT8
//! calibration, pipeline tests, benchmarks, the demo — gets them from here:
//! - [`identity`]: who a person is, deterministic from `(seed, id)`;
//! - [`render`]: a person in a pose → coverage + what each sensor sees;
//! - [`sensor`]: backgrounds and the RGB (day/night), thermal and NIR sensors;
//! - [`crop`]: detector-like person crops;
//! - [`dataset`]: SYSU-MM01 and RegDB folder layouts;
//! - [`scene`]: day/night dual-camera videos with ground truth ([`video`]:
//!   the MP4 encoder, feature `media`);
//! - [`sheet`]: a contact sheet for people to look at.
//!
//! Determinism: every image draws from its own ChaCha8 stream derived from
//! `(seed, identity, camera, index)` ([`rng_for`]), so output is byte-identical
//! for a seed however rayon schedules the work.

pub mod crop;
pub mod dataset;
pub mod ground_truth;
pub mod identity;
pub mod render;
pub mod scene;
pub mod scene_crops;
pub mod sensor;
pub mod sheet;
#[cfg(feature = "media")]
pub mod video;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// What can go wrong rendering synthetic data, by what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An option or input that cannot work; the message says what to give instead.
    #[error("{0}")]
    Invalid(String),
    /// A file or folder that cannot be created, written or read (the message names it).
    #[error("{what}: {source}")]
    File { what: String, source: Box<dyn std::error::Error + Send + Sync> },
    /// The video encoder (GStreamer) failed or is missing.
    #[error("{0}")]
    Video(String),
}

pub type Result<T> = std::result::Result<T, SynthError>;

/// Names the file an I/O (or encoding) error is about, keeping the error as the source.
pub(crate) trait FileContext<T> {
    fn file(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> FileContext<T> for std::result::Result<T, E> {
    fn file(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| SynthError::File { what: what(), source: Box::new(e) })
    }
}

/// `return Err(SynthError::Invalid(format!(…)))`.
macro_rules! invalid {
    ($($msg:tt)+) => { return Err($crate::synth::SynthError::Invalid(format!($($msg)+))) };
}
pub(crate) use invalid;

/// The random stream for one thing (`parts` names it: kind, identity, camera, index…).
pub fn rng_for(seed: u64, parts: &[u64]) -> ChaCha8Rng {
    // splitmix64 mixing: distinct inputs give unrelated seeds.
    let mix = |mut z: u64| {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut h = mix(seed);
    for &p in parts {
        h = mix(h ^ p);
    }
    ChaCha8Rng::seed_from_u64(h)
}

/// Creates the output directory and checks it can be written to.
pub(crate) fn ensure_out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).file(|| {
        format!(
            "cannot create output directory {}: check the path and its permissions, or pick another --out",
            dir.display()
        )
    })?;
    let probe = dir.join(".vireid-write-test");
    std::fs::write(&probe, b"").file(|| {
        format!("output directory {} is not writable: fix its permissions or pick another --out", dir.display())
    })?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub(crate) fn progress_bar(len: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// `vireid synth …`
#[derive(Debug, Clone, clap::Args)]
pub struct SynthArgs {
    #[command(subcommand)]
    pub what: SynthCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SynthCommand {
    /// A dataset in the SYSU-MM01 layout (cams 3 and 6 near-infrared).
    Sysu(dataset::SysuArgs),
    /// A dataset in the RegDB layout (visible + thermal, 10 trials).
    Regdb(dataset::RegdbArgs),
    /// Dual-spectrum day/night scene videos with ground truth.
    Scene(scene::SceneArgs),
    /// A contact sheet: identities side by side in RGB, night RGB, thermal and NIR.
    Sheet(sheet::SheetArgs),
}

/// Runs a `vireid synth` subcommand.
pub fn run(args: &SynthArgs) -> Result<()> {
    match &args.what {
        SynthCommand::Sysu(a) => dataset::run_sysu(a),
        SynthCommand::Regdb(a) => dataset::run_regdb(a),
        SynthCommand::Scene(a) => scene::run(a),
        SynthCommand::Sheet(a) => sheet::run(a),
    }
}
