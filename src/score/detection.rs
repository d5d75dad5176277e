//! Detection and tracking quality against synthetic-scene ground truth
//! (`ground_truth.jsonl` of `vireid synth scene`: one line per person per
//! frame per camera with `camera`, `frame`, `person_id`, `segment`, `bbox`, `visible`).
//!
//! * Recall: ground-truth boxes at least `min_visible` visible that a
//!   detection overlaps with IoU ≥ 0.5 (one detection per box, best first).
//! * Precision: matched detections / detections, where detections on mostly
//!   hidden people (visible < `min_visible`) count as neither right nor wrong.
//! * Identity: for each walk (one continuous appearance of a person: a person
//!   who leaves and comes back — e.g. day, then night — starts a new walk, and
//!   linking walks is re-identification, not tracking), the share of its
//!   tracked frames carrying its most frequent track id, and ID switches
//!   (consecutive tracked frames whose id differs).
//! * Track purity: the other way round, for each track the share of its
//!   frames on its most frequent person. A track that takes over somebody
//!   else holds two people, and everything downstream (its pair, its crops,
//!   its identity) mixes them; a track that breaks only costs a link.

use super::{Result, ScoreError};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::core::BBox;
use crate::synth::ground_truth::read_ground_truth;

pub use crate::synth::ground_truth::GroundTruthLine as GtBox;

/// Ground truth of one camera, by frame index.
pub fn load_ground_truth(path: &Path, camera: &str) -> Result<HashMap<u64, Vec<GtBox>>> {
    let mut by_frame: HashMap<u64, Vec<GtBox>> = HashMap::new();
    for gt in read_ground_truth(path)?.into_iter().filter(|g| g.camera == camera) {
        by_frame.entry(gt.frame).or_default().push(gt);
    }
    if by_frame.is_empty() {
        return Err(ScoreError::Invalid(format!(
            "ground truth {} has no boxes for camera '{camera}': check --gt-camera",
            path.display()
        )));
    }
    Ok(by_frame)
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct SegmentCounts {
    pub gt_boxes: u64,
    pub matched_gt: u64,
    pub detections: u64,
    pub ignored_detections: u64,
    pub matched_detections: u64,
    pub recall: f64,
    pub precision: f64,
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IdentityReport {
    /// Walks (continuous appearances) that were tracked at least once.
    pub walks: usize,
    /// Frames (over all persons) matched to a confirmed track.
    pub tracked_frames: u64,
    /// Of those, frames carrying the person's most frequent track id.
    pub dominant_id_frames: u64,
    pub id_consistency: f64,
    pub id_switches: u64,
    /// Frames where a required ground-truth box was tracked / required boxes.
    pub track_coverage: f64,
    /// Tracks that followed a required person at least once.
    pub tracks: usize,
    /// Of the tracked frames, those on their track's most frequent person.
    pub majority_person_frames: u64,
    pub track_purity: f64,
}

/// Accumulates per-frame results.
pub struct Evaluator {
    pub min_visible: f32,
    pub iou: f32,
    segments: BTreeMap<String, SegmentCounts>,
    /// Track ids per (person, walk), in frame order.
    person_ids: HashMap<(u64, u32), Vec<u64>>,
    /// Frames per person, per track id.
    track_persons: HashMap<u64, HashMap<u64, u64>>,
    /// Per person: last ground-truth frame and current walk number.
    walks: HashMap<u64, (u64, u32)>,
    required_total: u64,
    /// Frames with nobody in them belong to the segment of the frame before.
    last_segment: String,
}

impl Evaluator {
    pub fn new(min_visible: f32) -> Self {
        Evaluator {
            min_visible,
            iou: 0.5,
            segments: BTreeMap::new(),
            person_ids: HashMap::new(),
            track_persons: HashMap::new(),
            walks: HashMap::new(),
            required_total: 0,
            last_segment: "unknown".into(),
        }
    }

    /// One frame: ground truth, detections, and (id, box) of confirmed tracks.
    pub fn add_frame(&mut self, gt: &[GtBox], dets: &[BBox], tracks: &[(u64, BBox)]) {
        if let Some(g) = gt.first() {
            self.last_segment.clone_from(&g.segment);
        }
        let seg = self.segments.entry(self.last_segment.clone()).or_default();
        let gt_boxes: Vec<BBox> = gt.iter().map(|g| BBox::new(g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3])).collect();
        let required: Vec<bool> = gt.iter().map(|g| g.visible >= self.min_visible).collect();
        let (gt_of_det, _) = greedy_match(&gt_boxes, dets, self.iou);
        seg.detections += dets.len() as u64;
        seg.gt_boxes += required.iter().filter(|r| **r).count() as u64;
        self.required_total += required.iter().filter(|r| **r).count() as u64;
        for g in gt_of_det.iter().flatten() {
            if required[*g] {
                seg.matched_gt += 1;
                seg.matched_detections += 1;
            } else {
                seg.ignored_detections += 1;
            }
        }
        for g in gt {
            let w = self.walks.entry(g.person_id).or_insert((g.frame, 0));
            // Absent for more than a second (at 10 fps): a new walk.
            if g.frame > w.0 + 10 {
                w.1 += 1;
            }
            w.0 = g.frame;
        }
        let track_boxes: Vec<BBox> = tracks.iter().map(|t| t.1).collect();
        let (gt_of_track, _) = greedy_match(&gt_boxes, &track_boxes, self.iou);
        for (ti, g) in gt_of_track.iter().enumerate() {
            if let Some(g) = g {
                if required[*g] {
                    let walk = self.walks.get(&gt[*g].person_id).map(|w| w.1).unwrap_or(0);
                    self.person_ids.entry((gt[*g].person_id, walk)).or_default().push(tracks[ti].0);
                    *self.track_persons.entry(tracks[ti].0).or_default().entry(gt[*g].person_id).or_default() += 1;
                }
            }
        }
    }

    pub fn report(&self) -> serde_json::Value {
        let mut segments = self.segments.clone();
        for s in segments.values_mut() {
            s.recall = ratio(s.matched_gt, s.gt_boxes);
            s.precision = ratio(s.matched_detections, s.detections - s.ignored_detections);
        }
        let mut id = IdentityReport { walks: self.person_ids.len(), ..Default::default() };
        for ids in self.person_ids.values() {
            let mut counts: HashMap<u64, u64> = HashMap::new();
            for i in ids {
                *counts.entry(*i).or_default() += 1;
            }
            id.tracked_frames += ids.len() as u64;
            id.dominant_id_frames += counts.values().copied().max().unwrap_or(0);
            id.id_switches += ids.windows(2).filter(|w| w[0] != w[1]).count() as u64;
        }
        id.id_consistency = ratio(id.dominant_id_frames, id.tracked_frames);
        id.track_coverage = ratio(id.tracked_frames, self.required_total);
        id.tracks = self.track_persons.len();
        id.majority_person_frames = self.track_persons.values().map(|p| p.values().copied().max().unwrap_or(0)).sum();
        id.track_purity = ratio(id.majority_person_frames, id.tracked_frames);
        serde_json::json!({ "min_visible": self.min_visible, "iou": self.iou, "segments": segments, "identity": id })
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Greedy one-to-one matching by IoU ≥ `thr`: for each candidate, the index
/// of its ground-truth box (if any), and for each ground-truth box its candidate.
fn greedy_match(gt: &[BBox], cand: &[BBox], thr: f32) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let mut pairs = Vec::new();
    for (gi, g) in gt.iter().enumerate() {
        for (ci, c) in cand.iter().enumerate() {
            let iou = g.iou(c);
            if iou >= thr {
                pairs.push((iou, gi, ci));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut of_cand = vec![None; cand.len()];
    let mut of_gt = vec![None; gt.len()];
    for (_, gi, ci) in pairs {
        if of_cand[ci].is_none() && of_gt[gi].is_none() {
            of_cand[ci] = Some(gi);
            of_gt[gi] = Some(ci);
        }
    }
    (of_cand, of_gt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gt(pid: u64, x: f32, visible: f32) -> GtBox {
        GtBox {
            camera: "rgb".into(),
            frame: 0,
            pts_ns: 0,
            person_id: pid,
            segment: "day".into(),
            bbox: [x, 0.0, 10.0, 20.0],
            visible,
        }
    }

    #[test]
    fn counts_recall_precision_and_switches() {
        let mut ev = Evaluator::new(0.5);
        let b = |x: f32| BBox::new(x, 0.0, 10.0, 20.0);
        // Frame 1: person 1 found, person 2 (hidden) found but ignored, one false positive.
        ev.add_frame(&[gt(1, 0.0, 1.0), gt(2, 100.0, 0.2)], &[b(0.0), b(100.0), b(50.0)], &[(7, b(0.0))]);
        // Frame 2: person 1 missed by the detector, tracked with another id.
        ev.add_frame(&[gt(1, 0.0, 1.0)], &[], &[(8, b(1.0))]);
        // Frame 50: person 1 is back after leaving (a new walk): a new id is no switch.
        let mut back = gt(1, 0.0, 1.0);
        back.frame = 50;
        ev.add_frame(&[back], &[b(0.0)], &[(9, b(0.0))]);
        let r = ev.report();
        assert_eq!(r["identity"]["walks"], 2);
        let day = &r["segments"]["day"];
        assert_eq!(day["gt_boxes"], 3);
        assert_eq!(day["matched_gt"], 2);
        assert_eq!(day["precision"], 2.0 / 3.0);
        assert_eq!(r["identity"]["id_switches"], 1);
        assert_eq!(r["identity"]["id_consistency"], 2.0 / 3.0);
        assert_eq!(r["identity"]["track_purity"], 1.0);
    }

    #[test]
    fn a_track_that_takes_over_another_person_is_impure() {
        let mut ev = Evaluator::new(0.5);
        let b = |x: f32| BBox::new(x, 0.0, 10.0, 20.0);
        let at = |pid: u64, frame: u64| GtBox { frame, ..gt(pid, 0.0, 1.0) };
        // Track 7 follows person 1 for three frames, then person 2 (who stepped in) for one.
        for f in 0..3 {
            ev.add_frame(&[at(1, f)], &[b(0.0)], &[(7, b(0.0))]);
        }
        ev.add_frame(&[at(2, 3)], &[b(0.0)], &[(7, b(0.0))]);
        let r = ev.report();
        assert_eq!(r["identity"]["tracks"], 1);
        assert_eq!(r["identity"]["track_purity"], 0.75);
        // Per person, each walk kept one id: consistency cannot see it.
        assert_eq!(r["identity"]["id_consistency"], 1.0);
    }
}
