//! Reading `ground_truth.jsonl`, the format `synth::scene` writes: one line per
//! person per frame per camera,
//! `{"camera":"rgb"|"thermal","frame":N,"pts_ns":N,"person_id":N,"segment":"day"|"night","bbox":[x,y,w,h],"visible":0..1}`.
//! Detection metrics (`vireid detect --ground-truth`) and `vireid score` both read it here.

use super::invalid;
use super::{FileContext, Result};
use serde::Deserialize;
use std::path::Path;

use crate::core::Modality;

#[derive(Debug, Clone, Deserialize)]
pub struct GroundTruthLine {
    /// The camera's modality name (`rgb` or `thermal`).
    pub camera: String,
    #[serde(default)]
    pub frame: u64,
    pub pts_ns: u64,
    pub person_id: u64,
    #[serde(default)]
    pub segment: String,
    /// `[x, y, w, h]` in pixels, inside the frame.
    pub bbox: [f32; 4],
    /// Share of the person not hidden by others (1 when absent).
    #[serde(default = "fully_visible")]
    pub visible: f32,
}

fn fully_visible() -> f32 {
    1.0
}

/// Every line of a ground-truth file; a bad line is an error naming its number.
pub fn read_ground_truth(path: &Path) -> Result<Vec<GroundTruthLine>> {
    let text = std::fs::read_to_string(path).file(|| format!("cannot read ground truth {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let gt: GroundTruthLine = serde_json::from_str(line).file(|| {
            format!(
                "{} line {}: not a ground-truth line (camera, pts_ns, person_id, bbox expected)",
                path.display(),
                i + 1
            )
        })?;
        gt.camera
            .parse::<Modality>()
            .map_err(|e| super::SynthError::Invalid(format!("{} line {}: {e}", path.display(), i + 1)))?;
        out.push(gt);
    }
    if out.is_empty() {
        invalid!("ground truth {} has no lines", path.display());
    }
    Ok(out)
}
