//! A camera's perspective, learnt from its own detections.
//!
//! A fixed camera looking at flat ground sees a standing person's box height
//! grow in proportion to how far below the horizon their feet are:
//! `height ≈ slope · foot_row + intercept`. Most of HOG's false boxes break
//! that — a box twice as tall as anyone whose feet are there, a torso half as
//! tall — and one such box becomes a track that later takes a real person's
//! detection (BENCHMARKS.md, "Perspective"). [`HeightPrior`] learns the line
//! from the boxes it is shown and drops boxes off it by more than
//! `max_height_ratio`. It fits the median height of each band of foot rows,
//! so the few false boxes it also learns from do not move the line, and it
//! keeps the last [`LEARNED_BOXES`] boxes, so memory is bounded and a moved
//! camera is relearnt. The service keeps them in its state directory
//! ([`HeightPrior::remembered`]), so a restart does not let the ghosts of
//! its first minute through while it learns again.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::Detection;
use crate::core::ConfigError;

/// `[detect.perspective]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PerspectiveConfig {
    /// A box taller or shorter than this factor times what a person whose
    /// feet are on its bottom row measures is dropped; 0 = keep every box.
    /// People differ by about ±12 % in stature and HOG's boxes by about
    /// ±15 %: 1.5 keeps 99.9 % of true boxes (BENCHMARKS.md).
    pub max_height_ratio: f32,
    /// Boxes seen before the first line is fitted; until then every box is kept.
    pub learn_boxes: usize,
}

impl Default for PerspectiveConfig {
    fn default() -> Self {
        PerspectiveConfig { max_height_ratio: 1.5, learn_boxes: 150 }
    }
}

impl PerspectiveConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let r = self.max_height_ratio;
        if !(r == 0.0 || (1.1..=4.0).contains(&r)) {
            crate::invalid_config!(
                "detect.perspective.max_height_ratio",
                "detect.perspective.max_height_ratio = {r} must be 0 (keep every box) or within 1.1..=4 (e.g. 1.5)"
            );
        }
        if !(20..=LEARNED_BOXES).contains(&self.learn_boxes) {
            crate::invalid_config!(
                "detect.perspective.learn_boxes",
                "detect.perspective.learn_boxes = {} must be within 20..={LEARNED_BOXES}",
                self.learn_boxes
            );
        }
        Ok(())
    }
}

/// Boxes remembered for the fit (the most recent ones).
pub const LEARNED_BOXES: usize = 1024;
/// Bands of foot rows, each a 1/BANDS of the frame height.
const BANDS: usize = 24;
/// A band's median needs this many boxes, and the line this many bands.
const MIN_PER_BAND: usize = 5;
const MIN_BANDS: usize = 3;
/// New boxes between refits.
const REFIT_EVERY: usize = 32;
/// How far (frame heights) outside the rows it was fitted on the line is trusted.
const REACH: f32 = 0.05;
/// How often the learnt boxes are written to the state directory (and at exit).
const SAVE_EVERY: Duration = Duration::from_secs(600);
/// A box within this many pixels of the top or bottom edge is cut by the
/// frame: its height says nothing, so it is neither judged nor learnt from.
const EDGE_PX: f32 = 2.0;

/// Height (in frame heights) of a person whose feet are on a row (in frame
/// heights), over the rows it was fitted on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HeightLine {
    pub slope: f32,
    pub intercept: f32,
    /// The foot rows of the outermost bands it was fitted on.
    pub rows: (f32, f32),
}

impl HeightLine {
    /// The expected height at `foot_row`, where the line is trusted.
    pub fn height_at(&self, foot_row: f32) -> Option<f32> {
        let trusted = foot_row >= self.rows.0 - REACH && foot_row <= self.rows.1 + REACH;
        let h = self.slope * foot_row + self.intercept;
        (trusted && h > 0.01).then_some(h)
    }
}

/// One camera's learnt perspective and the boxes it drops.
pub struct HeightPrior {
    config: PerspectiveConfig,
    camera: Arc<str>,
    /// (foot row, height), both in frame heights.
    learnt: VecDeque<(f32, f32)>,
    since_fit: usize,
    line: Option<HeightLine>,
    /// Whether the last fit found no line (logged once per change).
    no_line_logged: bool,
    /// Where the learnt boxes are kept across restarts, and when they last were.
    memory: Option<PathBuf>,
    saved_at: Instant,
}

/// What [`HeightPrior::save`] writes.
#[derive(serde::Serialize, serde::Deserialize)]
struct Remembered {
    /// (foot row, height) in frame heights, oldest first.
    boxes: Vec<(f32, f32)>,
}

impl HeightPrior {
    pub fn new(camera: Arc<str>, config: PerspectiveConfig) -> HeightPrior {
        HeightPrior {
            config,
            camera,
            learnt: VecDeque::with_capacity(LEARNED_BOXES),
            since_fit: 0,
            line: None,
            no_line_logged: false,
            memory: None,
            saved_at: Instant::now(),
        }
    }

    /// A prior that starts from the boxes kept at `path` (when it holds
    /// them) and keeps its own there. An unreadable file is logged and
    /// learnt over: it only saves the first minutes of learning.
    pub fn remembered(camera: Arc<str>, config: PerspectiveConfig, path: PathBuf) -> HeightPrior {
        let mut prior = HeightPrior::new(camera, config);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Remembered>(&bytes) {
                Ok(r) => {
                    let valid = |v: f32| v.is_finite() && (0.0..=1.0).contains(&v);
                    let read = r.boxes.len();
                    let boxes: Vec<_> = r.boxes.into_iter().filter(|(f, h)| valid(*f) && valid(*h)).collect();
                    if boxes.len() < read {
                        tracing::warn!(
                            camera = %prior.camera,
                            "perspective memory {} holds {} boxes outside the frame (foot row and height \
                             must be fractions 0..1 of its height): skipped, the other {} are kept",
                            path.display(),
                            read - boxes.len(),
                            boxes.len()
                        );
                    }
                    prior.learnt.extend(&boxes[boxes.len().saturating_sub(LEARNED_BOXES)..]);
                    if prior.learnt.len() >= prior.config.learn_boxes {
                        prior.refit();
                    }
                }
                Err(e) => tracing::warn!(
                    camera = %prior.camera,
                    "perspective memory {} is unreadable ({e}): learning the camera's perspective again",
                    path.display()
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                camera = %prior.camera,
                "cannot read perspective memory {} ({e}): learning the camera's perspective again",
                path.display()
            ),
        }
        prior.memory = Some(path);
        prior
    }

    /// Writes the learnt boxes where [`HeightPrior::remembered`] reads them
    /// (whole or not at all). A failure is logged: the camera goes on and
    /// only learns again after a restart.
    pub fn save(&mut self) {
        let Some(path) = &self.memory else { return };
        self.saved_at = Instant::now();
        let remembered = Remembered { boxes: self.learnt.iter().copied().collect() };
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let partial = path.with_extension("json.partial");
            std::fs::write(&partial, serde_json::to_vec(&remembered)?)?;
            std::fs::rename(&partial, path)
        };
        if let Err(e) = write() {
            tracing::warn!(
                camera = %self.camera,
                "cannot keep the learnt perspective in {} ({e}): it will be learnt again after a restart; \
                 check that the state directory is writable",
                path.display()
            );
        }
    }

    /// The current line, once enough boxes have been seen.
    pub fn line(&self) -> Option<HeightLine> {
        self.line
    }

    /// Keeps in `dets` the boxes a person could have, and returns the others.
    /// Every box that the frame does not cut is learnt from, kept or not.
    pub fn judge(&mut self, frame_height: u32, dets: &mut Vec<Detection>) -> Vec<Detection> {
        if self.config.max_height_ratio == 0.0 || frame_height == 0 {
            return Vec::new();
        }
        let fh = frame_height as f32;
        let ratio = self.config.max_height_ratio;
        let mut dropped = Vec::new();
        let mut seen = Vec::with_capacity(dets.len());
        dets.retain(|d| {
            let b = &d.bbox;
            if b.y <= EDGE_PX || b.bottom() >= fh - EDGE_PX || b.h <= 0.0 {
                return true;
            }
            let (foot, height) = (b.bottom() / fh, b.h / fh);
            seen.push((foot, height));
            let off = self
                .line
                .and_then(|l| l.height_at(foot))
                .is_some_and(|expected| height > ratio * expected || height * ratio < expected);
            if off {
                dropped.push(*d);
            }
            !off
        });
        for s in seen {
            if self.learnt.len() == LEARNED_BOXES {
                self.learnt.pop_front();
            }
            self.learnt.push_back(s);
            self.since_fit += 1;
        }
        if self.learnt.len() >= self.config.learn_boxes && (self.line.is_none() || self.since_fit >= REFIT_EVERY) {
            self.refit();
            if self.memory.is_some() && self.saved_at.elapsed() >= SAVE_EVERY {
                self.save();
            }
        }
        dropped
    }

    fn refit(&mut self) {
        self.since_fit = 0;
        let had_line = self.line.is_some();
        self.line = fit(&self.learnt);
        match (had_line, self.line) {
            (false, Some(l)) => {
                self.no_line_logged = false;
                tracing::info!(
                    camera = %self.camera,
                    boxes = self.learnt.len(),
                    "perspective learnt: a person whose feet are {:.0} % down the frame is {:.0} % of its height tall, \
                     at {:.0} % down {:.0} %; boxes off that by more than {}× are dropped",
                    100.0 * l.rows.0,
                    100.0 * (l.slope * l.rows.0 + l.intercept),
                    100.0 * l.rows.1,
                    100.0 * (l.slope * l.rows.1 + l.intercept),
                    self.config.max_height_ratio
                );
            }
            (_, None) if !self.no_line_logged => {
                self.no_line_logged = true;
                tracing::info!(
                    camera = %self.camera,
                    boxes = self.learnt.len(),
                    "perspective not learnt: people's feet were seen on too few rows, or boxes do not grow towards \
                     the bottom of the frame (a camera looking down from above); every box is kept"
                );
            }
            _ => {}
        }
    }
}

/// A line through the median height of each band of foot rows, weighted by
/// the band's boxes; `None` with fewer than [`MIN_BANDS`] bands or a line
/// that does not grow downwards.
fn fit(boxes: &VecDeque<(f32, f32)>) -> Option<HeightLine> {
    let mut bands: Vec<Vec<(f32, f32)>> = vec![Vec::new(); BANDS];
    for &(foot, height) in boxes {
        bands[((foot * BANDS as f32) as usize).min(BANDS - 1)].push((foot, height));
    }
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    let points: Vec<(f32, f32, f32)> = bands
        .into_iter()
        .filter(|b| b.len() >= MIN_PER_BAND)
        .map(|b| {
            let n = b.len() as f32;
            (median(b.iter().map(|p| p.0).collect()), median(b.iter().map(|p| p.1).collect()), n)
        })
        .collect();
    if points.len() < MIN_BANDS {
        return None;
    }
    let w: f32 = points.iter().map(|p| p.2).sum();
    let mx = points.iter().map(|p| p.2 * p.0).sum::<f32>() / w;
    let my = points.iter().map(|p| p.2 * p.1).sum::<f32>() / w;
    let sxx: f32 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f32 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let slope = sxy / sxx;
    // NaN (all bands on one row) or flat or falling: no perspective to learn.
    if slope.is_nan() || slope <= 0.0 {
        return None;
    }
    let rows = points.iter().fold((f32::MAX, f32::MIN), |(lo, hi), p| (lo.min(p.0), hi.max(p.0)));
    Some(HeightLine { slope, intercept: my - slope * mx, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::BBox;
    use rand::{Rng, SeedableRng};

    const FH: u32 = 720;

    /// A person's box with feet on `foot_row` (fraction) on the line
    /// height = 0.8 · (foot − 0.3), times `scale`.
    fn person(foot_row: f32, scale: f32) -> Detection {
        let h = 0.8 * (foot_row - 0.3) * scale * FH as f32;
        let bottom = foot_row * FH as f32;
        Detection { bbox: BBox::new(100.0, bottom - h, 0.4 * h, h), score: 1.0 }
    }

    /// Feeds `n` people on the line, ±12 % in height, feet between 55 % and
    /// 95 % down, one per frame; every `ghost_every`-th is 1.8 times as tall (a ghost).
    fn learn(prior: &mut HeightPrior, n: usize, ghost_every: usize, seed: u64) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for i in 0..n {
            let foot = rng.random_range(0.55..0.95);
            let scale = if ghost_every > 0 && i % ghost_every == 0 { 1.8 } else { rng.random_range(0.88..1.12) };
            prior.judge(FH, &mut vec![person(foot, scale)]);
        }
    }

    fn prior() -> HeightPrior {
        HeightPrior::new(Arc::from("cam"), PerspectiveConfig::default())
    }

    #[test]
    fn drops_boxes_no_person_standing_there_has_once_learnt() {
        let mut p = prior();
        // Before it has learnt, a ghost is kept.
        let mut dets = vec![person(0.8, 1.8)];
        assert!(p.judge(FH, &mut dets).is_empty() && dets.len() == 1);
        learn(&mut p, 300, 0, 1);
        let mut dets = vec![person(0.8, 1.0), person(0.8, 1.8), person(0.7, 0.5), person(0.6, 1.1)];
        let dropped = p.judge(FH, &mut dets);
        assert_eq!(dets, vec![person(0.8, 1.0), person(0.6, 1.1)]);
        assert_eq!(dropped, vec![person(0.8, 1.8), person(0.7, 0.5)]);
    }

    #[test]
    fn false_boxes_among_those_it_learns_from_do_not_move_the_line() {
        let (mut clean, mut haunted) = (prior(), prior());
        learn(&mut clean, 600, 0, 2);
        learn(&mut haunted, 600, 8, 2);
        for foot in [0.6, 0.75, 0.9] {
            let truth = 0.8 * (foot - 0.3);
            let (a, b) =
                (clean.line().unwrap().height_at(foot).unwrap(), haunted.line().unwrap().height_at(foot).unwrap());
            assert!((a / truth - 1.0).abs() < 0.05, "clean fit {a} vs {truth} at {foot}");
            assert!((b / truth - 1.0).abs() < 0.08, "fit with 1 ghost in 8: {b} vs {truth} at {foot}");
        }
    }

    #[test]
    fn boxes_cut_by_the_frame_or_outside_the_learnt_rows_are_kept() {
        let mut p = prior();
        learn(&mut p, 300, 0, 3);
        // Entering from the bottom: the frame cuts the legs off.
        let cut = Detection { bbox: BBox::new(10.0, 600.0, 40.0, 120.0), score: 1.0 };
        // Feet far above every row seen: the line is not trusted there.
        let far = Detection { bbox: BBox::new(10.0, 10.0, 40.0, 200.0), score: 1.0 };
        let mut dets = vec![cut, far];
        assert!(p.judge(FH, &mut dets).is_empty());
        assert_eq!(dets.len(), 2);
    }

    #[test]
    fn without_spread_in_foot_rows_or_when_turned_off_every_box_is_kept() {
        let mut one_row = prior();
        for _ in 0..400 {
            one_row.judge(FH, &mut vec![person(0.8, 1.0)]);
        }
        assert!(one_row.line().is_none());
        let mut dets = vec![person(0.8, 3.0)];
        assert!(one_row.judge(FH, &mut dets).is_empty());

        let mut off =
            HeightPrior::new(Arc::from("cam"), PerspectiveConfig { max_height_ratio: 0.0, ..Default::default() });
        learn(&mut off, 300, 0, 4);
        assert!(off.line().is_none());
        let mut dets = vec![person(0.8, 3.0)];
        assert!(off.judge(FH, &mut dets).is_empty() && dets.len() == 1);
    }

    #[test]
    fn a_restart_starts_from_what_was_learnt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("perspective").join("cam.json");
        let mut first = HeightPrior::remembered(Arc::from("cam"), PerspectiveConfig::default(), path.clone());
        learn(&mut first, 300, 0, 6);
        first.save();
        let mut again = HeightPrior::remembered(Arc::from("cam"), PerspectiveConfig::default(), path.clone());
        let at = |p: &HeightPrior| p.line().unwrap().height_at(0.8).unwrap();
        assert!(
            (at(&again) / at(&first) - 1.0).abs() < 0.02,
            "{} after the restart, {} before",
            at(&again),
            at(&first)
        );
        let mut dets = vec![person(0.8, 1.8)];
        assert_eq!(again.judge(FH, &mut dets), vec![person(0.8, 1.8)], "the first box after a restart is judged");

        // Boxes outside the frame are skipped; the others are still kept.
        std::fs::write(&path, b"{\"boxes\": [[0.5, 0.2], [1.5, 0.2], [0.6, -0.1], [0.7, 0.3]]}").unwrap();
        let partly = HeightPrior::remembered(Arc::from("cam"), PerspectiveConfig::default(), path.clone());
        assert_eq!(partly.learnt.iter().copied().collect::<Vec<_>>(), vec![(0.5, 0.2), (0.7, 0.3)]);

        // A damaged file is learnt over, not trusted and not fatal.
        std::fs::write(&path, b"{\"boxes\": [[0.5,").unwrap();
        let fresh = HeightPrior::remembered(Arc::from("cam"), PerspectiveConfig::default(), path.clone());
        assert!(fresh.line().is_none());
        // Nor is a place it cannot write.
        let mut unwritable =
            HeightPrior::remembered(Arc::from("cam"), PerspectiveConfig::default(), path.join("under-a-file.json"));
        learn(&mut unwritable, 10, 0, 7);
        unwritable.save();
    }

    #[test]
    fn memory_is_bounded() {
        let mut p = prior();
        learn(&mut p, 3 * LEARNED_BOXES, 0, 5);
        assert_eq!(p.learnt.len(), LEARNED_BOXES);
    }

    #[test]
    fn config_errors_name_the_key() {
        for (ratio, boxes, key) in [(1.0, 150, "max_height_ratio"), (1.5, 5, "learn_boxes"), (1.5, 5000, "learn_boxes")]
        {
            let c = PerspectiveConfig { max_height_ratio: ratio, learn_boxes: boxes };
            assert!(c.validate().unwrap_err().to_string().contains(key));
        }
        assert!(PerspectiveConfig::default().validate().is_ok());
    }
}
