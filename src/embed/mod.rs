//! Embedding: crops → L2-normalised feature vectors.
//!
//! Every consumer (the pipeline, `vireid eval`, `vireid embed`, thresholds,
//! queries) goes through [`Embedder`] and [`open_embedder`], so a learned ONNX
//! model and the hand-crafted colour-histogram baseline are interchangeable.

use anyhow::Result;
use ndarray::Array2;
use serde::Deserialize;
use std::path::PathBuf;

use crate::modality::Modality;

pub mod colorhist;

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

/// The `[embed]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// ONNX model; the default model under `engines/` when absent.
    pub model: Option<PathBuf>,
}

impl EmbedConfig {
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Opens the embedder a spec names. The pipeline, `vireid eval`, `vireid embed`
/// and queries all come through here.
pub fn open_embedder(spec: &EmbedderSpec, config: &EmbedConfig) -> Result<Box<dyn Embedder>> {
    let _ = config;
    match spec {
        // Filled in by the ONNX runtime (issue 6) and the colour-histogram baseline (issue 2).
        EmbedderSpec::Model(path) => anyhow::bail!("ONNX embedder not built yet (model {})", path.display()),
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
