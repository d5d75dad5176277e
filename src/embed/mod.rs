//! Embedding: crops → L2-normalised feature vectors.
//!
//! Every consumer (the pipeline, `vireid eval`, `vireid embed`, thresholds,
//! queries) goes through [`Embedder`] and [`open_embedder`], so a learned ONNX
//! model and the hand-crafted colour-histogram baseline are interchangeable.

use anyhow::{bail, Result};
use ndarray::Array2;
use serde::Deserialize;
use std::path::PathBuf;

use crate::modality::Modality;

pub mod batcher;
pub mod cli;
pub mod colorhist;
pub mod metadata;
#[cfg(feature = "infer")]
pub mod onnx;
pub mod preprocess;

/// One person crop handed to an embedder. Thermal crops are grey replicated to
/// three channels (as SYSU-MM01 and RegDB store them).
#[derive(Debug, Clone)]
pub struct Crop {
    pub image: image::RgbImage,
    pub modality: Modality,
}

impl Crop {
    pub fn new(image: image::RgbImage, modality: Modality) -> Self {
        Crop { image, modality }
    }

    /// A thermal crop from a single-channel image.
    pub fn from_gray(gray: &image::GrayImage, modality: Modality) -> Self {
        let rgb = image::DynamicImage::ImageLuma8(gray.clone()).to_rgb8();
        Crop { image: rgb, modality }
    }
}

/// Turns crops into features, one L2-normalised row per crop.
pub trait Embedder: Send {
    /// A short name for reports and caches (model file stem, `colorhist`, …).
    fn name(&self) -> String;
    /// Feature dimension.
    fn dim(&self) -> usize;
    /// Embeds a batch; the result has `crops.len()` rows of unit L2 norm.
    fn embed(&mut self, crops: &[Crop]) -> Result<Array2<f32>>;
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

/// Where the default model lives when `[embed].model` and `--model` are absent.
pub const DEFAULT_MODEL: &str = "engines/vireid_default.onnx";

impl EmbedConfig {
    pub fn validate(&self) -> Result<()> {
        if self.providers.is_empty() {
            bail!("embed.providers is empty: list at least one of \"cpu\", \"cuda\", \"tensorrt\"");
        }
        if self.max_batch == 0 || self.max_batch > 1024 {
            bail!("embed.max_batch = {} must be between 1 and 1024", self.max_batch);
        }
        if self.crops_per_track == 0 {
            bail!("embed.crops_per_track must be at least 1");
        }
        Ok(())
    }

    /// The model to load: config, else the default under `engines/`.
    pub fn model_path(&self) -> PathBuf {
        self.model.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL))
    }
}

/// Opens the embedder a spec names. The pipeline, `vireid eval`, `vireid embed`
/// and queries all come through here.
pub fn open_embedder(spec: &EmbedderSpec, config: &EmbedConfig) -> Result<Box<dyn Embedder>> {
    match spec {
        #[cfg(feature = "infer")]
        EmbedderSpec::Model(path) => Ok(Box::new(onnx::OnnxEmbedder::open(path, config)?)),
        #[cfg(not(feature = "infer"))]
        EmbedderSpec::Model(path) => {
            let _ = config;
            bail!(
                "embedding model {}: this vireid was built without the `infer` feature (ONNX Runtime); \
                 use --baseline colorhist, or rebuild with default features",
                path.display()
            )
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
    fn rows_become_unit_length() {
        let mut f = ndarray::array![[3.0f32, 4.0], [0.0, 0.0]];
        l2_normalize_rows(&mut f);
        assert!((f[[0, 0]] - 0.6).abs() < 1e-6 && (f[[0, 1]] - 0.8).abs() < 1e-6);
        assert_eq!(f[[1, 0]], 0.0);
    }
}
