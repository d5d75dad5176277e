//! `vireid thresholds`: derive the same- and cross-modality thresholds from a
//! labelled dataset (SYSU-MM01 or RegDB layout, e.g. from `vireid synth`) at a
//! target false-match rate: the threshold is the (1 − FAR) quantile of
//! similarities between crops of *different* people, per pair kind.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::embed::cli::{load_crop, EmbedderArgs};
use crate::modality::Modality;

/// One labelled crop of a dataset.
#[derive(Debug, Clone)]
pub struct LabelledImage {
    pub person: String,
    pub modality: Modality,
    pub path: PathBuf,
}

/// SYSU-MM01: `cam1..cam6/PPPP/NNNN.jpg`, cams 3 and 6 infrared.
fn read_sysu(root: &Path, per_person_cam: usize) -> Result<Vec<LabelledImage>> {
    let mut out = vec![];
    for cam in 1..=6 {
        let dir = root.join(format!("cam{cam}"));
        if !dir.is_dir() {
            continue;
        }
        let modality = if cam == 3 || cam == 6 { Modality::Thermal } else { Modality::Rgb };
        let mut people: Vec<PathBuf> = std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        people.sort();
        for p in people {
            let person = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            let mut imgs = crate::embed::cli::list_images(&p)?;
            imgs.truncate(per_person_cam);
            out.extend(imgs.into_iter().map(|path| LabelledImage { person: person.clone(), modality, path }));
        }
    }
    Ok(out)
}

/// RegDB: `idx/{train,test}_{visible,thermal}_1.txt` with `relpath label` lines.
fn read_regdb(root: &Path, per_person_cam: usize) -> Result<Vec<LabelledImage>> {
    let mut out = vec![];
    for split in ["train", "test"] {
        for (m, modality) in [("visible", Modality::Rgb), ("thermal", Modality::Thermal)] {
            let idx = root.join("idx").join(format!("{split}_{m}_1.txt"));
            if !idx.exists() {
                continue;
            }
            let text = std::fs::read_to_string(&idx).with_context(|| format!("cannot read {}", idx.display()))?;
            let mut count: HashMap<String, usize> = HashMap::new();
            for (i, line) in text.lines().enumerate() {
                let mut parts = line.split_whitespace();
                let (Some(rel), Some(label)) = (parts.next(), parts.next()) else {
                    if line.trim().is_empty() {
                        continue;
                    }
                    bail!("{} line {}: expected 'relpath label'", idx.display(), i + 1);
                };
                // Labels are namespaced by split: train and test people are different people.
                let person = format!("{split}-{label}");
                let n = count.entry(person.clone()).or_default();
                if *n >= per_person_cam {
                    continue;
                }
                *n += 1;
                out.push(LabelledImage { person, modality, path: root.join(rel) });
            }
        }
    }
    Ok(out)
}

/// Reads a dataset folder in either layout.
pub fn read_labelled(root: &Path, per_person_cam: usize) -> Result<Vec<LabelledImage>> {
    let imgs = if root.join("cam1").is_dir() {
        read_sysu(root, per_person_cam)?
    } else if root.join("idx").is_dir() && (root.join("Visible").is_dir() || root.join("Thermal").is_dir()) {
        read_regdb(root, per_person_cam)?
    } else {
        bail!("{} is neither a SYSU-MM01 layout (cam1..cam6/) nor a RegDB layout (Visible/, Thermal/, idx/): make one with `vireid synth sysu|regdb`", root.display());
    };
    if imgs.is_empty() {
        bail!("no images found under {}", root.display());
    }
    Ok(imgs)
}

/// A threshold at a target false-match rate, with what it costs in matches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DerivedThreshold {
    pub threshold: f32,
    pub impostor_pairs: usize,
    pub genuine_pairs: usize,
    /// Measured share of impostor pairs at or above the threshold.
    pub false_match_rate: f64,
    /// Share of genuine pairs at or above the threshold.
    pub true_match_rate: f64,
}

/// The smallest threshold whose impostor acceptance is ≤ `far`.
pub fn threshold_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> Result<DerivedThreshold> {
    if impostor.is_empty() || genuine.is_empty() {
        bail!("need both genuine and impostor pairs (at least two people with two crops each)");
    }
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a)); // descending
    let allowed = (far * imp.len() as f64).floor() as usize;
    // Accept strictly above the (allowed+1)-th highest impostor score.
    let threshold = if allowed >= imp.len() { f32::MIN } else { next_up(imp[allowed]) };
    let fmr = imp.iter().filter(|s| **s >= threshold).count() as f64 / imp.len() as f64;
    let tmr = genuine.iter().filter(|s| **s >= threshold).count() as f64 / genuine.len() as f64;
    Ok(DerivedThreshold { threshold, impostor_pairs: imp.len(), genuine_pairs: genuine.len(), false_match_rate: fmr, true_match_rate: tmr })
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    f32::from_bits(if x >= 0.0 { bits + 1 } else if x == 0.0 { 1 } else { bits - 1 })
}

#[derive(Debug, clap::Args)]
pub struct ThresholdsArgs {
    /// Dataset folder in SYSU-MM01 or RegDB layout.
    #[arg(long)]
    pub root: PathBuf,
    /// Target false-match rate per pair kind.
    #[arg(long, default_value_t = 0.01)]
    pub far: f64,
    /// Crops used per person and camera (bounds the cost on big datasets).
    #[arg(long, default_value_t = 4)]
    pub per_person_cam: usize,
    /// Below this cross-modality true-match rate at the target FAR, cross-modality
    /// appearance matching is turned off (threshold 1.0).
    #[arg(long, default_value_t = 0.2)]
    pub min_cross_tmr: f64,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run_thresholds(args: &ThresholdsArgs) -> Result<()> {
    if !(args.far > 0.0 && args.far < 1.0) {
        bail!("--far {} must be between 0 and 1 (e.g. 0.01)", args.far);
    }
    let imgs = read_labelled(&args.root, args.per_person_cam.max(1))?;
    let (mut embedder, config) = args.embedder.open()?;
    let mut rows = vec![];
    for chunk in imgs.chunks(config.embed.max_batch.max(1)) {
        let crops = chunk.iter().map(|i| load_crop(&i.path, i.modality)).collect::<Result<Vec<_>>>()?;
        rows.push(embedder.embed(&crops)?);
    }
    let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
    let feats = ndarray::concatenate(ndarray::Axis(0), &views)?;
    let sims = feats.dot(&feats.t());
    let (mut gs, mut is_, mut gc, mut ic) = (vec![], vec![], vec![], vec![]);
    for i in 0..imgs.len() {
        for j in i + 1..imgs.len() {
            let s = sims[[i, j]];
            let same_person = imgs[i].person == imgs[j].person;
            match (imgs[i].modality == imgs[j].modality, same_person) {
                (true, true) => gs.push(s),
                (true, false) => is_.push(s),
                (false, true) => gc.push(s),
                (false, false) => ic.push(s),
            }
        }
    }
    let same = threshold_at_far(&gs, &is_, args.far).context("same-modality pairs")?;
    let cross = threshold_at_far(&gc, &ic, args.far).context("cross-modality pairs")?;
    let people: std::collections::HashSet<&str> = imgs.iter().map(|i| i.person.as_str()).collect();
    println!("# {} crops of {} people from {}, embedder {}, target FAR {}", imgs.len(), people.len(), args.root.display(), embedder.name(), args.far);
    println!(
        "# same-modality : FMR {:.4} over {} impostor pairs, TMR {:.3} over {} genuine pairs",
        same.false_match_rate, same.impostor_pairs, same.true_match_rate, same.genuine_pairs
    );
    println!(
        "# cross-modality: FMR {:.4} over {} impostor pairs, TMR {:.3} over {} genuine pairs",
        cross.false_match_rate, cross.impostor_pairs, cross.true_match_rate, cross.genuine_pairs
    );
    // An embedder that finds few true cross-modality pairs at the target FAR
    // would make mostly wrong day/night links at any threshold that finds more:
    // leave those links to co-observation pairing ([pair]) instead.
    let cross_threshold = if cross.true_match_rate < args.min_cross_tmr {
        println!(
            "# cross-modality TMR {:.3} < --min-cross-tmr {}: this embedder cannot link across modalities by appearance \
             at this FAR; threshold set to 1.0 (off), day/night links come from co-observation pairing",
            cross.true_match_rate, args.min_cross_tmr
        );
        1.0
    } else {
        cross.threshold
    };
    println!("[gallery]\nsame_modality_threshold = {:.4}\ncross_modality_threshold = {:.4}", same.threshold, cross_threshold);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_keeps_false_matches_at_or_below_target() {
        let impostor: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let genuine = vec![0.995, 0.999, 0.5];
        let t = threshold_at_far(&genuine, &impostor, 0.01).unwrap();
        assert!(t.false_match_rate <= 0.01 && t.false_match_rate >= 0.009, "{t:?}");
        assert!((t.true_match_rate - 2.0 / 3.0).abs() < 1e-9);
        assert!(threshold_at_far(&[], &impostor, 0.01).is_err());
    }
}
