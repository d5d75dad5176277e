//! Features of a test set: every image embedded once through the project's
//! [`Embedder`] (optionally with flip test-time augmentation), cached on disk.

use super::{invalid, Result, ResultExt, Within};
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{s, Array2};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use super::datasets::TestSet;
use crate::core::Crop;
use crate::embed::{l2_normalize_rows, Embedder};

/// Crops per embedder call.
const BATCH: usize = 64;

/// What a cached feature file was computed from; any difference recomputes.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct CacheManifest {
    embedder: String,
    /// Model file size and modification time, so retraining into the same path is noticed.
    embedder_fingerprint: String,
    flip: bool,
    root: PathBuf,
    images: Vec<PathBuf>,
}

pub struct FeatureOptions<'a> {
    pub flip: bool,
    /// Folder for the cache; None disables it.
    pub cache_dir: Option<&'a Path>,
    /// Model size/mtime or the baseline name (see [`CacheManifest`]).
    pub embedder_fingerprint: String,
    pub progress: bool,
}

/// Features for `set.images`, one L2-normalised row each.
pub fn test_set_features(embedder: &mut dyn Embedder, set: &TestSet, options: &FeatureOptions) -> Result<Array2<f32>> {
    let manifest = CacheManifest {
        embedder: embedder.name(),
        embedder_fingerprint: options.embedder_fingerprint.clone(),
        flip: options.flip,
        root: set.root.clone(),
        images: set.images.iter().map(|i| i.rel_path.clone()).collect(),
    };
    let cache_paths = options.cache_dir.map(|dir| {
        let stem = format!("features-{}{}", sanitize(&manifest.embedder), if options.flip { "-flip" } else { "" });
        (dir.join(format!("{stem}.npy")), dir.join(format!("{stem}.json")))
    });
    if let Some((npy, json)) = &cache_paths {
        if let Some(features) = read_cache(npy, json, &manifest) {
            tracing::info!("features for {} images read from cache {}", manifest.images.len(), npy.display());
            return Ok(features);
        }
    }
    let features = embed_all(embedder, set, options)?;
    if let Some((npy, json)) = &cache_paths {
        std::fs::create_dir_all(npy.parent().unwrap_or(Path::new(".")))
            .file(|| format!("cannot create cache folder for {}", npy.display()))?;
        ndarray_npy::write_npy(npy, &features).file(|| format!("cannot write feature cache {}", npy.display()))?;
        std::fs::write(json, serde_json::to_string(&manifest).file(|| format!("cannot encode {}", json.display()))?)
            .file(|| format!("cannot write {}", json.display()))?;
    }
    Ok(features)
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' { c } else { '_' }).collect()
}

/// A cache hit only when the manifest matches exactly; anything unreadable is a miss.
fn read_cache(npy: &Path, json: &Path, manifest: &CacheManifest) -> Option<Array2<f32>> {
    let stored: CacheManifest = serde_json::from_str(&std::fs::read_to_string(json).ok()?).ok()?;
    if &stored != manifest {
        return None;
    }
    let features: Array2<f32> = ndarray_npy::read_npy(npy).ok()?;
    (features.nrows() == manifest.images.len()).then_some(features)
}

fn embed_all(embedder: &mut dyn Embedder, set: &TestSet, options: &FeatureOptions) -> Result<Array2<f32>> {
    let n = set.images.len();
    let bar = if options.progress { ProgressBar::new(n as u64) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("embedding {bar:40} {pos}/{len} images ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut features: Option<Array2<f32>> = None;
    for (chunk_no, chunk) in set.images.chunks(BATCH).enumerate() {
        // Decoding is the slow part for light embedders: decode in parallel.
        let crops: Vec<Crop> = chunk
            .par_iter()
            .map(|img| {
                // The project's crop loader: thermal/IR images become grey ×3.
                Crop::load(&set.root.join(&img.rel_path), img.modality)
            })
            .collect::<std::result::Result<_, _>>()?;
        let mut batch = embed_checked(embedder, &crops)?;
        if options.flip {
            // Flip TTA: average the features of the crop and its mirror image.
            let flipped: Vec<Crop> =
                crops.iter().map(|c| Crop::new(image::imageops::flip_horizontal(&c.image), c.modality)).collect();
            batch += &embed_checked(embedder, &flipped)?;
            l2_normalize_rows(&mut batch);
        }
        let all = features.get_or_insert_with(|| Array2::zeros((n, batch.ncols())));
        let start = chunk_no * BATCH;
        if let Some(bad) = batch.rows().into_iter().position(|r| r.iter().any(|v| !v.is_finite())) {
            invalid!(
                "embedder {} gave a non-finite feature for {}",
                embedder.name(),
                set.root.join(&chunk[bad].rel_path).display()
            );
        }
        all.slice_mut(s![start..start + chunk.len(), ..]).assign(&batch);
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    features.ok_or_else(|| super::EvalError::Invalid("the test set has no images".into()))
}

fn embed_checked(embedder: &mut dyn Embedder, crops: &[Crop]) -> Result<Array2<f32>> {
    let out = embedder.embed(crops).within(|| format!("embedder {} failed", embedder.name()))?;
    if out.nrows() != crops.len() || out.ncols() != embedder.dim() {
        invalid!(
            "embedder {} returned {}×{} features for {} crops of dimension {}",
            embedder.name(),
            out.nrows(),
            out.ncols(),
            crops.len(),
            embedder.dim()
        );
    }
    Ok(out)
}
