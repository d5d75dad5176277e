//! `vireid thresholds`: derive the same- and cross-modality thresholds from a
//! labelled dataset (SYSU-MM01 or RegDB layout, e.g. from `vireid synth`) at a
//! target false-match rate, per pair kind.
//!
//! By default (`--level track`) the false-match rate is that of the gallery's
//! own decision: a track's feature is the mean of a few crops
//! (`embed.crops_per_track`), and it is compared with each *identity* through
//! the best of that identity's exemplars. So the calibration groups each
//! person's crops into track-sized sets, and an impostor score is the best
//! score of a query set against all sets of one other person. A threshold
//! taken from single crop pairs (`--level crop`) is far too permissive for
//! that decision: with many exemplars per identity, 1 % per crop pair is many
//! times 1 % per identity.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::embed::EmbedderArgs;
use crate::core::{list_images, Crop, Light, Modality};
use crate::gallery::harvest::{calibration_scores, FeatureSpace};
use crate::gallery::store::GalleryStore;

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
        let mut people: Vec<PathBuf> =
            std::fs::read_dir(&dir)?.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_dir()).collect();
        people.sort();
        for p in people {
            let person = p.file_name().unwrap_or_default().to_string_lossy().to_string();
            let mut imgs = list_images(&p)?;
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
    /// How far the threshold moves when its impostor scores are resampled
    /// (bootstrap standard deviation): a 1 % tail of a few hundred scores rests
    /// on a handful of them.
    pub spread: f32,
}

/// A threshold that moves more than this between resamples is printed with a
/// warning (the accuracy issue 19 asks of a self-calibrated threshold).
pub const UNSURE_SPREAD: f32 = 0.03;

/// Resamples behind `spread`, with a fixed seed: one calibration prints the same figures each time.
const SPREAD_RESAMPLES: usize = 200;

/// Accept strictly above the (allowed+1)-th highest impostor score (`desc`: sorted, highest first).
fn threshold_of_sorted(desc: &[f32], far: f64) -> f32 {
    let allowed = (far * desc.len() as f64).floor() as usize;
    desc.get(allowed).map_or(f32::MIN, |s| next_up(*s))
}

/// Bootstrap standard deviation of the threshold over resampled impostor scores.
fn threshold_spread(impostor: &[f32], far: f64) -> f32 {
    use rand::{Rng, SeedableRng};
    let n = impostor.len();
    if n == 0 || (far * n as f64).floor() as usize >= n {
        return 0.0;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(19);
    let mut sample = vec![0f32; n];
    let thresholds: Vec<f64> = (0..SPREAD_RESAMPLES)
        .map(|_| {
            for s in sample.iter_mut() {
                *s = impostor[rng.random_range(0..n)];
            }
            sample.sort_by(|a, b| b.total_cmp(a));
            f64::from(threshold_of_sorted(&sample, far))
        })
        .collect();
    let mean = thresholds.iter().sum::<f64>() / thresholds.len() as f64;
    (thresholds.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / thresholds.len() as f64).sqrt() as f32
}

/// The smallest threshold whose impostor acceptance is ≤ `far`.
pub fn threshold_at_far(genuine: &[f32], impostor: &[f32], far: f64) -> Result<DerivedThreshold> {
    if impostor.is_empty() || genuine.is_empty() {
        bail!("need both genuine and impostor pairs (at least two people with two crops each)");
    }
    let mut imp = impostor.to_vec();
    imp.sort_by(|a, b| b.total_cmp(a)); // descending
    let threshold = threshold_of_sorted(&imp, far);
    let fmr = imp.iter().filter(|s| **s >= threshold).count() as f64 / imp.len() as f64;
    let tmr = genuine.iter().filter(|s| **s >= threshold).count() as f64 / genuine.len() as f64;
    Ok(DerivedThreshold {
        threshold,
        impostor_pairs: imp.len(),
        genuine_pairs: genuine.len(),
        false_match_rate: fmr,
        true_match_rate: tmr,
        spread: threshold_spread(impostor, far),
    })
}

impl DerivedThreshold {
    /// `± spread`, and a warning where the threshold is not sure to `UNSURE_SPREAD`.
    fn spread_note(&self, what: &str, far: f64) -> String {
        let spread = format!(", ± {:.4} between resamples", self.spread);
        if self.spread <= UNSURE_SPREAD {
            return spread;
        }
        format!(
            "{spread}\n# {what}: not sure to {UNSURE_SPREAD}: of {} impostor scores, the {:.0} highest set it; \
             calibrate on more people (more --root scenes; a box: let it see more people first)",
            self.impostor_pairs,
            (far * self.impostor_pairs as f64).floor() + 1.0
        )
    }
}

fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    let bits = x.to_bits();
    f32::from_bits(if x >= 0.0 {
        bits + 1
    } else if x == 0.0 {
        1
    } else {
        bits - 1
    })
}

/// The unit a threshold's false-match rate is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    Track,
    Crop,
}

/// Genuine and impostor scores of one pair kind.
#[derive(Debug, Default)]
struct Scores {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

/// Scores per pair kind: RGB↔RGB, thermal↔thermal, RGB↔thermal, and
/// thermal↔thermal day against night (`gallery.cross_light_threshold`).
#[derive(Debug, Default)]
struct Kinds {
    rgb: Scores,
    thermal: Scores,
    cross: Scores,
    thermal_across_light: Scores,
}

/// The light a labelled crop was taken in, where its name says (`vireid synth
/// scene --crops` names them `day_NNNNNN.jpg` and `night_NNNNNN.jpg`).
fn light_of(path: &Path) -> Option<Light> {
    let name = path.file_name()?.to_str()?;
    name.split_once('_').and_then(|(prefix, _)| prefix.parse().ok())
}

impl Scores {
    fn extend(&mut self, other: Scores) {
        self.genuine.extend(other.genuine);
        self.impostor.extend(other.impostor);
    }
}

impl Kinds {
    /// Adds another folder's scores (its people are not scored against these).
    fn extend(&mut self, other: Kinds) {
        self.rgb.extend(other.rgb);
        self.thermal.extend(other.thermal);
        self.cross.extend(other.cross);
        self.thermal_across_light.extend(other.thermal_across_light);
    }

    fn of(&mut self, a: Modality, b: Modality) -> &mut Scores {
        match (a, b) {
            (Modality::Rgb, Modality::Rgb) => &mut self.rgb,
            (Modality::Thermal, Modality::Thermal) => &mut self.thermal,
            _ => &mut self.cross,
        }
    }
}

/// Scores of single crop pairs.
fn crop_pair_scores(imgs: &[LabelledImage], sims: &ndarray::Array2<f32>) -> Kinds {
    let mut kinds = Kinds::default();
    for i in 0..imgs.len() {
        for j in i + 1..imgs.len() {
            let kind = kinds.of(imgs[i].modality, imgs[j].modality);
            let s = sims[[i, j]];
            if imgs[i].person == imgs[j].person {
                kind.genuine.push(s)
            } else {
                kind.impostor.push(s)
            }
        }
    }
    kinds
}

/// One person's track-sized set of crops of one modality, as one feature.
struct TrackSet {
    person: String,
    modality: Modality,
    light: Option<Light>,
    feature: ndarray::Array1<f32>,
}

/// Groups each person's crops of one modality, in file-name order (a scene's
/// crops are named by segment and frame, so a set holds neighbouring frames
/// like a track does), into sets of `size`; each set's feature is the mean of
/// its crops' features, re-normalised (as the embed worker aggregates a track).
/// A person's last, smaller set is kept only if it has at least half the crops.
/// A set never mixes day and night crops.
fn track_sets(imgs: &[LabelledImage], feats: &ndarray::Array2<f32>, size: usize) -> Vec<TrackSet> {
    type Key<'a> = (&'a str, bool, Option<&'static str>);
    let mut groups: std::collections::BTreeMap<Key<'_>, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, img) in imgs.iter().enumerate() {
        let key = (img.person.as_str(), img.modality == Modality::Thermal, light_of(&img.path).map(Light::as_str));
        groups.entry(key).or_default().push(i);
    }
    let mut out = vec![];
    for ((person, _, _), mut idx) in groups {
        idx.sort_by(|a, b| imgs[*a].path.cmp(&imgs[*b].path));
        for chunk in idx.chunks(size.max(1)) {
            if chunk.len() * 2 < size {
                continue;
            }
            let rows = feats.select(ndarray::Axis(0), chunk);
            out.push(TrackSet {
                person: person.to_string(),
                modality: imgs[chunk[0]].modality,
                light: light_of(&imgs[chunk[0]].path),
                feature: crate::embed::batcher::aggregate(rows.view()),
            });
        }
    }
    out
}

/// Scores of the gallery's decision: a query set against one identity is the
/// best score over that identity's sets (its exemplars) of one modality.
/// Genuine: against the query person's *other* sets. One matrix product, then
/// one pass per query set: quadratic in sets, whatever the number of people.
fn track_identity_scores(sets: &[TrackSet]) -> Result<Kinds> {
    let mut kinds = Kinds::default();
    if sets.is_empty() {
        return Ok(kinds);
    }
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let person: Vec<usize> = sets
        .iter()
        .map(|s| {
            let n = index.len();
            *index.entry(s.person.as_str()).or_insert(n)
        })
        .collect();
    let views: Vec<_> = sets.iter().map(|s| s.feature.view().insert_axis(ndarray::Axis(0))).collect();
    let feats = ndarray::concatenate(ndarray::Axis(0), &views).context("track-set features of different dimensions")?;
    let sims = feats.dot(&feats.t());
    const MODALITIES: [Modality; 2] = [Modality::Rgb, Modality::Thermal];
    let across = |q: &TrackSet, g: &TrackSet| {
        q.modality == Modality::Thermal
            && g.modality == Modality::Thermal
            && q.light.zip(g.light).is_some_and(|(a, b)| a != b)
    };
    for (qi, q) in sets.iter().enumerate() {
        // Best score per (person, exemplar modality); thermal exemplars seen in
        // the other light are a kind of their own (slot 2), as the gallery decides.
        let mut best = vec![[f32::NEG_INFINITY; 3]; index.len()];
        for (gi, g) in sets.iter().enumerate() {
            if gi != qi {
                let slot = if across(q, g) { 2 } else { (g.modality == Modality::Thermal) as usize };
                let b = &mut best[person[gi]][slot];
                *b = b.max(sims[[qi, gi]]);
            }
        }
        for (p, per_kind) in best.iter().enumerate() {
            for (slot, score) in per_kind.iter().enumerate() {
                if score.is_finite() {
                    let kind = match MODALITIES.get(slot) {
                        Some(m) => kinds.of(q.modality, *m),
                        None => &mut kinds.thermal_across_light,
                    };
                    if p == person[qi] {
                        kind.genuine.push(*score)
                    } else {
                        kind.impostor.push(*score)
                    }
                }
            }
        }
    }
    Ok(kinds)
}

#[derive(Debug, clap::Args)]
pub struct ThresholdsArgs {
    /// Dataset folder in SYSU-MM01 or RegDB layout. Give it again for more
    /// folders (e.g. the crops of several scenes): each folder's people are
    /// scored against each other only, as a harvest's impostors are people seen
    /// at one time, and the scores of all folders set one threshold.
    #[arg(long, required_unless_present = "from_gallery", conflicts_with = "from_gallery")]
    pub root: Vec<PathBuf>,
    /// No labelled data: derive the thresholds from the box's own harvest (--config
    /// names the box). Impostor scores come from tracks seen at the same time,
    /// genuine cross-modality scores from co-observed pairs.
    #[arg(long, requires = "config")]
    pub from_gallery: bool,
    /// Target false-match rate per pair kind.
    #[arg(long, default_value_t = 0.01)]
    pub far: f64,
    /// Crops used per person and camera (bounds the cost on big datasets; default
    /// 4 per crop pair, or four track-sized sets per track decision).
    #[arg(long)]
    pub per_person_cam: Option<usize>,
    /// Below this cross-modality true-match rate at the target FAR, cross-modality
    /// appearance matching is turned off (threshold 1.0).
    #[arg(long, default_value_t = 0.2)]
    pub min_cross_tmr: f64,
    /// What one false match is: `track` (a track-sized mean of crops against one
    /// identity's best exemplar, as the gallery decides) or `crop` (one crop pair).
    #[arg(long, value_enum, default_value_t = Level::Track)]
    pub level: Level,
    /// Crops averaged into one track feature (default: the config's embed.crops_per_track).
    #[arg(long)]
    pub track_crops: Option<usize>,
    /// Write a thermal↔thermal threshold of its own. By default one
    /// same-modality threshold is written, the stricter of the two, so that
    /// neither modality exceeds the target FAR.
    #[arg(long)]
    pub per_modality: bool,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run_thresholds(args: &ThresholdsArgs) -> Result<()> {
    if !(args.far > 0.0 && args.far < 1.0) {
        bail!("--far {} must be between 0 and 1 (e.g. 0.01)", args.far);
    }
    if args.root.is_empty() {
        return run_from_gallery(args);
    }
    let (mut embedder, config) = args.embedder.open()?;
    let track_crops = args.track_crops.unwrap_or(config.embed.crops_per_track);
    if track_crops == 0 {
        bail!("--track-crops must be at least 1");
    }
    let per_person_cam = args.per_person_cam.unwrap_or(match args.level {
        Level::Crop => 4,
        Level::Track => 4 * track_crops,
    });
    let (mut kinds, mut crops, mut people, mut sets) = (Kinds::default(), 0, 0, 0);
    for root in &args.root {
        let imgs = read_labelled(root, per_person_cam.max(1))?;
        let mut rows = vec![];
        for chunk in imgs.chunks(config.embed.max_batch.max(1)) {
            let crops = chunk.iter().map(|i| Crop::load(&i.path, i.modality)).collect::<Result<Vec<_>, _>>()?;
            rows.push(embedder.embed(&crops)?);
        }
        let views: Vec<_> = rows.iter().map(|r| r.view()).collect();
        let feats = ndarray::concatenate(ndarray::Axis(0), &views)?;
        kinds.extend(match args.level {
            Level::Crop => crop_pair_scores(&imgs, &feats.dot(&feats.t())),
            Level::Track => {
                let root_sets = track_sets(&imgs, &feats, track_crops);
                sets += root_sets.len();
                track_identity_scores(&root_sets)?
            }
        });
        crops += imgs.len();
        people += imgs.iter().map(|i| i.person.as_str()).collect::<std::collections::HashSet<_>>().len();
    }
    let unit = match args.level {
        Level::Crop => "crop pairs".to_string(),
        Level::Track => format!("track-to-identity decisions ({sets} sets of {track_crops} crops)"),
    };
    let too_few = match args.level {
        Level::Track => "each person needs at least two track-sized sets of crops per modality; or use --level crop",
        Level::Crop => "each person needs at least two crops per modality",
    };
    let rgb = threshold_at_far(&kinds.rgb.genuine, &kinds.rgb.impostor, args.far)
        .with_context(|| format!("RGB↔RGB scores ({too_few})"))?;
    let thermal = threshold_at_far(&kinds.thermal.genuine, &kinds.thermal.impostor, args.far)
        .with_context(|| format!("thermal↔thermal scores ({too_few})"))?;
    let cross =
        threshold_at_far(&kinds.cross.genuine, &kinds.cross.impostor, args.far).context("RGB↔thermal scores")?;
    // Day against night: only where the crops' names say their light (a scene's crops).
    let across = &kinds.thermal_across_light;
    let across = (!across.genuine.is_empty() && !across.impostor.is_empty())
        .then(|| threshold_at_far(&across.genuine, &across.impostor, args.far))
        .transpose()
        .context("thermal day↔night scores")?;
    let roots: Vec<String> = args.root.iter().map(|r| r.display().to_string()).collect();
    println!(
        "# {crops} crops of {people} people from {}, embedder {}, target FAR {} per {unit}",
        roots.join(", "),
        embedder.name(),
        args.far
    );
    for (name, t) in [("RGB↔RGB        ", &rgb), ("thermal↔thermal", &thermal), ("RGB↔thermal    ", &cross)] {
        println!(
            "# {name}: threshold {:.4}, FMR {:.4} over {} impostor scores, TMR {:.3} over {} genuine scores{}",
            t.threshold,
            t.false_match_rate,
            t.impostor_pairs,
            t.true_match_rate,
            t.genuine_pairs,
            t.spread_note(name.trim_end(), args.far)
        );
    }
    match &across {
        Some(t) => println!(
            "# thermal day↔night: threshold {:.4}, FMR {:.4} over {} impostor scores, TMR {:.3} over {} genuine \
             scores{}",
            t.threshold,
            t.false_match_rate,
            t.impostor_pairs,
            t.true_match_rate,
            t.genuine_pairs,
            t.spread_note("thermal day↔night", args.far)
        ),
        None => println!("# thermal day↔night: no crops named day_*/night_* of one person in both (a scene's --crops has them); not set"),
    }
    print_snippet(args, &rgb, &thermal, &cross, across.as_ref());
    Ok(())
}

/// The `[gallery]` snippet both ways of calibrating print.
fn print_snippet(
    args: &ThresholdsArgs,
    rgb: &DerivedThreshold,
    thermal: &DerivedThreshold,
    cross: &DerivedThreshold,
    across_light: Option<&DerivedThreshold>,
) {
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
    println!("[gallery]");
    if args.per_modality {
        println!(
            "same_modality_threshold = {:.4}\nsame_modality_threshold_thermal = {:.4}",
            rgb.threshold, thermal.threshold
        );
    } else {
        println!("same_modality_threshold = {:.4}", rgb.threshold.max(thermal.threshold));
    }
    println!("cross_modality_threshold = {cross_threshold:.4}");
    if let Some(t) = across_light {
        println!("cross_light_threshold = {:.4}", t.threshold);
    }
}

/// `--from-gallery`: the box calibrates itself from its harvest (`gallery::harvest`).
fn run_from_gallery(args: &ThresholdsArgs) -> Result<()> {
    let config_path = args.embedder.config.as_deref().context("--from-gallery needs --config BOX.toml")?;
    let config = crate::config::Config::load_sections(Some(config_path))?;
    let model = args.embedder.model.clone().unwrap_or_else(|| config.embed.model_path());
    let db = config.gallery.db_path(&config.state_dir);
    if !db.exists() {
        bail!("no gallery at {}: run the box (`vireid run --config {}`) first", db.display(), config_path.display());
    }
    let store = GalleryStore::open(&db, std::time::Duration::from_millis(config.gallery.busy_timeout_ms))?;
    // Scores as a gallery running this model computes them: in the model's space.
    let space = FeatureSpace::of_model(&model).map_err(|e| anyhow::anyhow!("{e}"))?;
    let stored = FeatureSpace::of_store(&store)
        .map_err(|e| anyhow::anyhow!("gallery {}: {e}", db.display()))?
        .unwrap_or_else(|| space.clone());
    if stored.base != space.base {
        bail!(
            "the gallery {} was built by another model than {}: calibrate with the model the box ran",
            db.display(),
            model.display()
        );
    }
    let s = calibration_scores(&store, &stored, &space)?;
    let need = |what: &str, n: usize| {
        anyhow::anyhow!(
            "the harvest in {} has {n} {what} scores for model {}: let the box see more people at once (several people \
             in view, in both cameras), or calibrate on labelled crops with --root",
            db.display(),
            model.display()
        )
    };
    let at = |genuine: &[f32], impostor: &[f32], what: &str| -> Result<DerivedThreshold> {
        if impostor.len() < 20 {
            return Err(need(what, impostor.len()));
        }
        // Same-modality genuine pairs are not in the harvest: TMR is not measured (reported as 0).
        let g = if genuine.is_empty() { &[f32::NEG_INFINITY][..] } else { genuine };
        let mut t = threshold_at_far(g, impostor, args.far)?;
        if genuine.is_empty() {
            t.genuine_pairs = 0;
        }
        Ok(t)
    };
    let rgb = at(&[], &s.rgb_impostor, "RGB impostor")?;
    let thermal = at(&[], &s.thermal_impostor, "thermal impostor")?;
    let cross = at(&s.cross_genuine, &s.cross_impostor, "cross-modality impostor")?;
    println!(
        "# from the harvest of {} (model {}), target FAR {} per track-to-identity decision",
        db.display(),
        model.display(),
        args.far
    );
    for (name, t) in [("RGB↔RGB        ", &rgb), ("thermal↔thermal", &thermal), ("RGB↔thermal    ", &cross)] {
        let tmr = if t.genuine_pairs == 0 {
            "TMR not measured (no same-modality genuine pairs in a harvest)".to_string()
        } else {
            format!("TMR {:.3} over {} co-observed pairs", t.true_match_rate, t.genuine_pairs)
        };
        println!(
            "# {name}: threshold {:.4}, FMR {:.4} over {} impostor scores, {tmr}{}",
            t.threshold,
            t.false_match_rate,
            t.impostor_pairs,
            t.spread_note(name.trim_end(), args.far)
        );
    }
    // A harvest has no genuine pair of one person by day and at night: that needs labels.
    println!("# thermal day↔night: not derived from a harvest (use --root on a scene's crops); not set");
    print_snippet(args, &rgb, &thermal, &cross, None);
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

    /// The 1 % tail of a few hundred scores rests on a handful of them: the
    /// threshold's resampling spread says so, and shrinks with more scores.
    #[test]
    fn threshold_spread_shrinks_with_more_impostor_scores() {
        // Gaussian-like scores (a sum of uniforms), the same shape at every size.
        let scores = |n: usize| -> Vec<f32> {
            let mut x = 0.5f64;
            (0..n)
                .map(|_| {
                    let mut sum = 0.0;
                    for _ in 0..4 {
                        x = (x * 997.0 + 0.123).fract(); // a fixed, well-spread sequence
                        sum += x;
                    }
                    (sum / 4.0) as f32
                })
                .collect()
        };
        let few = threshold_at_far(&[1.0], &scores(300), 0.01).unwrap();
        let many = threshold_at_far(&[1.0], &scores(30_000), 0.01).unwrap();
        assert!(few.spread > 3.0 * many.spread && many.spread > 0.0, "{few:?} {many:?}");
        assert!(few.spread_note("RGB↔RGB", 0.01).contains("not sure") == (few.spread > UNSURE_SPREAD));
        assert!(!many.spread_note("RGB↔RGB", 0.01).contains("not sure"), "{many:?}");
        let same = threshold_at_far(&[1.0], &[0.3; 200], 0.01).unwrap();
        assert_eq!(same.spread, 0.0);
        // One calibration prints the same figures each time.
        assert_eq!(few.spread, threshold_at_far(&[1.0], &scores(300), 0.01).unwrap().spread);
    }

    fn img(person: &str, modality: Modality, name: &str) -> LabelledImage {
        LabelledImage { person: person.into(), modality, path: PathBuf::from(format!("{person}/{name}")) }
    }

    #[test]
    fn track_sets_average_neighbouring_crops_and_score_against_identities() {
        // Person a: two RGB sets (day_1+day_2 → e0, night_1+night_2 → e1) and one thermal set;
        // person b: two RGB sets, both along e2.
        let imgs = vec![
            img("a", Modality::Rgb, "night_2.jpg"),
            img("a", Modality::Rgb, "day_1.jpg"),
            img("a", Modality::Rgb, "night_1.jpg"),
            img("a", Modality::Rgb, "day_2.jpg"),
            img("a", Modality::Thermal, "day_1.jpg"),
            img("a", Modality::Thermal, "day_2.jpg"),
            img("b", Modality::Rgb, "day_1.jpg"),
            img("b", Modality::Rgb, "day_2.jpg"),
            img("b", Modality::Rgb, "day_3.jpg"),
            img("b", Modality::Rgb, "day_4.jpg"),
            img("b", Modality::Rgb, "day_5.jpg"), // alone in its set of 2: half a set, kept
        ];
        let f = ndarray::array![
            [0.0, 1.0, 0.0], // a night_2
            [1.0, 0.0, 0.0], // a day_1
            [0.0, 1.0, 0.0], // a night_1
            [1.0, 0.0, 0.0], // a day_2
            [0.6, 0.8, 0.0], // a thermal
            [0.6, 0.8, 0.0],
            [0.0, 0.0, 1.0], // b
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.0, 1.0],
            [0.0, 0.6, 0.8],
        ];
        let sets = track_sets(&imgs, &f, 2);
        let a_rgb: Vec<&TrackSet> = sets.iter().filter(|s| s.person == "a" && s.modality == Modality::Rgb).collect();
        assert_eq!(a_rgb.len(), 2, "day and night crops are not mixed in one set");
        assert!((a_rgb[0].feature[0] - 1.0).abs() < 1e-6 && (a_rgb[1].feature[1] - 1.0).abs() < 1e-6);
        assert_eq!(sets.iter().filter(|s| s.person == "b").count(), 3, "a last set of half the size is kept");
        let sets4 = track_sets(&imgs, &f, 4);
        assert_eq!(
            sets4.iter().filter(|s| s.person == "a" && s.modality == Modality::Thermal).count(),
            1,
            "2 of 4 crops are a set"
        );
        assert_eq!(sets4.iter().filter(|s| s.person == "b").count(), 1, "1 of 4 crops is not");
        let kinds = track_identity_scores(&sets).unwrap();
        let (same, cross) = (&kinds.rgb, &kinds.cross);
        assert!(
            kinds.thermal.genuine.is_empty() && kinds.thermal.impostor.is_empty(),
            "one thermal set, of one person"
        );
        // Same modality: a's two RGB sets are orthogonal (genuine 0 each way); b's sets: b1~b2 = 1,
        // b3 best against b1 = 0.8. Impostors: per query, one best score per other person.
        let mut g = same.genuine.clone();
        g.sort_by(f32::total_cmp);
        assert_eq!(g.len(), 5);
        assert!(
            g[0].abs() < 1e-6 && g[1].abs() < 1e-6 && (g[2] - 0.8).abs() < 1e-6 && (g[4] - 1.0).abs() < 1e-6,
            "{g:?}"
        );
        // a's thermal set has no other thermal set of a: no same-modality genuine score of its own,
        // and no other person has thermal sets: no same-modality impostor either.
        assert_eq!(same.impostor.len(), 5, "{:?}", same.impostor);
        // Its best impostor is a's night set against b3 (0.6).
        assert!((same.impostor.iter().copied().fold(f32::MIN, f32::max) - 0.6).abs() < 1e-6);
        // Cross: a thermal vs a RGB best = 0.8 (night set); and the RGB sets against a's thermal.
        assert!(cross.genuine.iter().any(|s| (s - 0.8).abs() < 1e-6) && cross.genuine.len() == 3);
        assert_eq!(cross.impostor.len(), 4, "a thermal vs b, and b's three sets vs a thermal");
    }

    /// Thermal day against night is scored apart from same-light thermal, as
    /// the gallery decides with `cross_light_threshold`; RGB is not split.
    #[test]
    fn thermal_day_against_night_is_a_kind_of_its_own() {
        assert_eq!(light_of(Path::new("x/Thermal/3/night_000255.jpg")), Some(Light::Night));
        assert_eq!(light_of(Path::new("cam3/0001/0004.jpg")), None, "SYSU names say nothing");
        // a and b, one thermal set each by day and at night (sets of 1 crop).
        let imgs = vec![
            img("a", Modality::Thermal, "day_1.jpg"),
            img("a", Modality::Thermal, "night_1.jpg"),
            img("b", Modality::Thermal, "day_1.jpg"),
            img("b", Modality::Thermal, "night_1.jpg"),
        ];
        let f = ndarray::array![[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [0.0, 0.0, 1.0], [0.0, 0.6, 0.8]];
        let kinds = track_identity_scores(&track_sets(&imgs, &f, 1)).unwrap();
        let across = &kinds.thermal_across_light;
        let mut g = across.genuine.clone();
        g.sort_by(f32::total_cmp);
        assert!(
            g.len() == 4 && (g[0] - 0.6).abs() < 1e-6 && (g[3] - 0.8).abs() < 1e-6,
            "a day↔night 0.6, b 0.8, each way: {g:?}"
        );
        // Across light the other person scores 0 both ways; the two night sets are alike
        // (0.48), and that impostor score belongs to same-light thermal.
        assert_eq!(across.impostor, vec![0.0; 4]);
        let mut same = kinds.thermal.impostor.clone();
        same.sort_by(f32::total_cmp);
        assert!(same.len() == 4 && same[0] == 0.0 && (same[3] - 0.48).abs() < 1e-6, "{same:?}");
        assert!(kinds.thermal.genuine.is_empty(), "each person has one set per light: no same-light genuine");
    }
}
