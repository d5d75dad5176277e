//! Embedding: crops → L2-normalised feature vectors.
//!
//! Every consumer (the pipeline, `vireid eval`, `vireid embed`, thresholds,
//! queries) goes through [`Embedder`] and [`open_embedder`], so a learned ONNX
//! model and the hand-crafted colour-histogram baseline are interchangeable.

use ndarray::Array2;
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::core::{ConfigError, Crop};

pub mod adapter;
pub mod batcher;
pub mod colorhist;
pub mod metadata;
#[cfg(feature = "infer")]
pub mod onnx;
pub mod onnx_graph;
pub mod preprocess;

/// Why an embedder cannot be opened or run, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model file is missing, unreadable, not ONNX, or breaks the input
    /// contract (engines/README.md): the message names the file and the fix.
    #[error("{0}")]
    Model(String),
    /// ONNX Runtime itself is missing or cannot load.
    #[cfg(feature = "infer")]
    #[error(transparent)]
    Runtime(#[from] crate::onnx_runtime::OrtError),
    /// A configured execution provider did not register (`on_provider_failure = "error"`).
    #[error("{0}")]
    Provider(String),
    /// Running a batch failed (the tracks of that batch are dropped and counted).
    #[error("{0}")]
    Inference(String),
    /// This vireid was built without ONNX Runtime.
    #[error(
        "embedding model {}: this vireid was built without the `infer` feature (ONNX Runtime); \
         use --baseline colorhist, or rebuild with default features",
        .0.display()
    )]
    NoRuntime(PathBuf),
}

pub type EmbedResult<T> = Result<T, EmbedError>;

/// Turns crops into features, one L2-normalised row per crop.
pub trait Embedder: Send {
    /// A short name for reports and caches (model file stem, `colorhist`, …).
    fn name(&self) -> String;
    /// Feature dimension.
    fn dim(&self) -> usize;
    /// Embeds a batch; the result has `crops.len()` rows of unit L2 norm.
    fn embed(&mut self, crops: &[Crop]) -> EmbedResult<Array2<f32>>;
}

/// One loaded embedder, shared by every thread that embeds in a process (the
/// embed worker's batches, the API's uploads): the model is loaded once, and
/// calls take turns on it.
#[derive(Clone)]
pub struct SharedEmbedder {
    inner: std::sync::Arc<std::sync::Mutex<Box<dyn Embedder>>>,
    name: String,
    dim: usize,
}

impl SharedEmbedder {
    pub fn new(embedder: Box<dyn Embedder>) -> SharedEmbedder {
        let (name, dim) = (embedder.name(), embedder.dim());
        SharedEmbedder { inner: std::sync::Arc::new(std::sync::Mutex::new(embedder)), name, dim }
    }
}

impl Embedder for SharedEmbedder {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn embed(&mut self, crops: &[Crop]) -> EmbedResult<Array2<f32>> {
        // A panic while embedding leaves the model as it was: go on with it.
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).embed(crops)
    }
}

/// Which embedder to use: a learned model or a hand-crafted baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedderSpec {
    Model(PathBuf),
    Baseline(Baseline),
}

/// Hand-crafted baselines (`--baseline NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Baseline {
    /// HSV histograms on horizontal stripes.
    Colorhist,
}

/// An ONNX Runtime execution provider, in `[embed].providers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionProviderKind {
    Cpu,
    Cuda,
    Tensorrt,
}

impl std::fmt::Display for ExecutionProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ExecutionProviderKind::Cpu => "cpu",
            ExecutionProviderKind::Cuda => "cuda",
            ExecutionProviderKind::Tensorrt => "tensorrt",
        })
    }
}

/// What to do when a configured execution provider cannot be registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProviderFailure {
    /// Refuse to start.
    #[default]
    Error,
    /// Log a warning and go on with the next provider (CPU last).
    Fallback,
}

/// The `[embed]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// ONNX model; the default model under `engines/` when absent.
    pub model: Option<PathBuf>,
    /// Execution providers in order of preference (`cpu`, `cuda`, `tensorrt`).
    pub providers: Vec<ExecutionProviderKind>,
    pub on_provider_failure: ProviderFailure,
    /// GPU index for CUDA / TensorRT.
    pub device_id: i32,
    /// Where TensorRT engine and timing caches go (`<dir>/trt-cache/`).
    pub engine_cache_dir: PathBuf,
    /// ONNX Runtime shared library; `ORT_DYLIB_PATH` when absent.
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime intra-op threads; 0 = its default (all cores).
    pub intra_threads: usize,
    /// Crops per model run, across all cameras (also the TensorRT profile's max batch).
    pub max_batch: usize,
    /// How long the embed worker waits to fill a batch before running a partial one.
    pub max_wait_ms: u64,
    /// Crops embedded per finished track (its best ones); their features are averaged.
    pub crops_per_track: usize,
    // Input contract for models exported without `vireid.*` metadata (engines/README.md).
    pub input_height: Option<u32>,
    pub input_width: Option<u32>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub embedding_dim: Option<usize>,
    pub modality_handling: Option<metadata::ModalityHandling>,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        EmbedConfig {
            model: None,
            providers: vec![ExecutionProviderKind::Cpu],
            on_provider_failure: ProviderFailure::Error,
            device_id: 0,
            engine_cache_dir: PathBuf::from("engines"),
            ort_library: None,
            intra_threads: 0,
            max_batch: 16,
            max_wait_ms: 50,
            crops_per_track: 4,
            input_height: None,
            input_width: None,
            mean: None,
            std: None,
            embedding_dim: None,
            modality_handling: None,
        }
    }
}

/// Where the default model lives when `[embed].model` and `--model` are
/// absent, relative to a repo checkout or an installed share directory.
pub const DEFAULT_MODEL: &str = "engines/vireid_default.onnx";

/// Where the installed package (.deb) puts [`DEFAULT_MODEL`].
pub const INSTALLED_MODEL: &str = "/usr/share/vireid/engines/vireid_default.onnx";

/// Where the default model is looked for, in order: the working directory
/// (a repo checkout's root); the repo layout around the executable
/// (`<repo>/target/[<triple>/]release/vireid`) and the checkout it was built
/// from; the installed layout ([`INSTALLED_MODEL`]).
pub fn default_model_places() -> Vec<PathBuf> {
    let mut places = crate::core::places::around_checkout(Path::new(DEFAULT_MODEL));
    places.push(PathBuf::from(INSTALLED_MODEL));
    places
}

/// What to tell a user whose default model is in none of the places.
pub fn default_model_missing() -> String {
    let places: Vec<String> = default_model_places().iter().map(|p| p.display().to_string()).collect();
    format!("the default model {DEFAULT_MODEL} is in none of: {}; set [embed] model or pass --model", places.join(", "))
}

impl EmbedConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.providers.is_empty() {
            crate::invalid_config!(
                "embed.providers",
                "embed.providers is empty: list at least one of \"cpu\", \"cuda\", \"tensorrt\""
            );
        }
        if self.max_batch == 0 || self.max_batch > 1024 {
            crate::invalid_config!(
                "embed.max_batch",
                "embed.max_batch = {} must be between 1 and 1024",
                self.max_batch
            );
        }
        if self.crops_per_track == 0 {
            crate::invalid_config!("embed.crops_per_track", "embed.crops_per_track must be at least 1");
        }
        Ok(())
    }

    /// The model to load: `[embed] model`, else the first of
    /// [`default_model_places`] that exists, else [`DEFAULT_MODEL`] (whose
    /// open error then says where it looked).
    pub fn model_path(&self) -> PathBuf {
        match &self.model {
            Some(m) => m.clone(),
            None => {
                default_model_places().into_iter().find(|p| p.is_file()).unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
            }
        }
    }
}

/// Opens the embedder a spec names. The pipeline, `vireid eval`, `vireid embed`
/// and queries all come through here.
pub fn open_embedder(spec: &EmbedderSpec, config: &EmbedConfig) -> EmbedResult<Box<dyn Embedder>> {
    match spec {
        #[cfg(feature = "infer")]
        EmbedderSpec::Model(path) => Ok(Box::new(onnx::OnnxEmbedder::open(path, config)?)),
        #[cfg(not(feature = "infer"))]
        EmbedderSpec::Model(path) => {
            let _ = config;
            Err(EmbedError::NoRuntime(path.clone()))
        }
        EmbedderSpec::Baseline(Baseline::Colorhist) => Ok(Box::new(colorhist::ColorHist::new())),
    }
}

/// Scales each row to unit L2 norm in place (rows of zeros stay zero).
pub fn l2_normalize_rows(features: &mut Array2<f32>) {
    for mut row in features.rows_mut() {
        let norm = row.dot(&row).sqrt();
        if norm > 0.0 {
            row.mapv_inplace(|v| v / norm);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_is_looked_for_in_the_repo_and_the_installed_layout() {
        let places = default_model_places();
        assert_eq!(places[0], Path::new(DEFAULT_MODEL));
        assert!(places.contains(&PathBuf::from(INSTALLED_MODEL)), "{places:?}");
        assert!(places.contains(&Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_MODEL)), "{places:?}");
        let exe = std::env::current_exe().unwrap().canonicalize().unwrap();
        // The test binary sits in target/release/deps: the repo layout is found above it.
        let above = exe.parent().unwrap().parent().unwrap().join(DEFAULT_MODEL);
        assert!(places.contains(&above), "{above:?} not in {places:?}");
        let msg = default_model_missing();
        assert!(msg.contains(INSTALLED_MODEL) && msg.contains("[embed] model") && msg.contains("--model"), "{msg}");
    }

    #[test]
    fn rows_become_unit_length() {
        let mut f = ndarray::array![[3.0f32, 4.0], [0.0, 0.0]];
        l2_normalize_rows(&mut f);
        assert!((f[[0, 0]] - 0.6).abs() < 1e-6 && (f[[0, 1]] - 0.8).abs() < 1e-6);
        assert_eq!(f[[1, 0]], 0.0);
    }
}
