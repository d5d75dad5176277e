//! Do synthetic people look like people to a detector trained on real ones?
//!
//! Renders a scene, decodes both videos, runs OpenCV's default HOG people
//! detector (Dalal & Triggs, INRIA-trained; built into OpenCV) and measures
//! recall at IoU ≥ 0.5 against the ground truth. Acceptance: ≥ 70 % in day RGB
//! and in night thermal frames.
//!
//! Box convention: a HOG window is 64×128 with ~16 px of margin around the
//! person on every side (Dalal & Triggs 2005, §6); ground-truth boxes are tight,
//! so windows are shrunk by that margin before matching. People counted are the
//! "reasonable" ones (visible ≥ 0.65 and not cut by the frame edge, as in the
//! Caltech pedestrian benchmark); raw-window and all-people recall are printed too.

use crate::common as synth_common;

use opencv::core::{Mat, Rect, Size, Vector};
use opencv::objdetect::HOGDescriptor;
use opencv::prelude::*;
use std::collections::HashMap;
use vireid::core::BBox;
use vireid::synth::scene::{render_scene, SceneOptions};

fn greedy_matches(gts: &[BBox], dets: &[BBox]) -> usize {
    let mut pairs: Vec<(f32, usize, usize)> = gts
        .iter()
        .enumerate()
        .flat_map(|(g, gb)| dets.iter().enumerate().map(move |(d, db)| (gb.iou(db), g, d)))
        .collect();
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut used_g, mut used_d) = (vec![false; gts.len()], vec![false; dets.len()]);
    let mut n = 0;
    for (v, g, d) in pairs {
        if v < 0.5 {
            break;
        }
        if !used_g[g] && !used_d[d] {
            used_g[g] = true;
            used_d[d] = true;
            n += 1;
        }
    }
    n
}

#[test]
#[ignore = "slow (~2-3 min: HOG over 1280x720 frames); run: cargo test --release --test synth hog -- --ignored --nocapture (env VIREID_HOG_SECONDS, VIREID_HOG_STEP, VIREID_HOG_SEED)"]
fn hog_finds_synthetic_people() {
    let dir = tempfile::tempdir().unwrap();
    let seconds: f32 = std::env::var("VIREID_HOG_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let step: u32 = std::env::var("VIREID_HOG_STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let seed: u64 = std::env::var("VIREID_HOG_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7);
    let summary = render_scene(&SceneOptions::new(dir.path(), seconds, seed)).unwrap();
    let gt = synth_common::read_gt(&summary.ground_truth);
    let (width, height) = (1280.0f32, 720.0f32);
    let mut by_frame: HashMap<(String, u32), Vec<&synth_common::GtLine>> = HashMap::new();
    for g in &gt {
        by_frame.entry((g.camera.clone(), g.frame)).or_default().push(g);
    }
    let mut hog = HOGDescriptor::default().unwrap();
    hog.set_svm_detector(HOGDescriptor::get_default_people_detector().unwrap());
    // (camera, segment) → [matched, people, matched raw windows, matched all, all people]
    let mut stats: HashMap<(String, String), [usize; 5]> = HashMap::new();
    for (camera, video) in
        [("rgb", summary.rgb_video.as_ref().unwrap()), ("thermal", summary.thermal_video.as_ref().unwrap())]
    {
        let frames = synth_common::decode_bgr(video, |i, w, h, bgr| {
            if i % step != 0 {
                return;
            }
            let Some(rows) = by_frame.get(&(camera.to_string(), i)) else { return };
            let mat = Mat::from_slice(bgr).unwrap();
            let mat = mat.reshape(3, h as i32).unwrap().try_clone().unwrap();
            assert_eq!(mat.cols(), w as i32);
            let mut found: Vector<Rect> = Vector::new();
            hog.detect_multi_scale(&mat, &mut found, 0.0, Size::new(8, 8), Size::new(16, 16), 1.05, 2.0, false)
                .unwrap();
            let raw: Vec<BBox> =
                found.iter().map(|r| BBox::new(r.x as f32, r.y as f32, r.width as f32, r.height as f32)).collect();
            let shrunk: Vec<BBox> =
                raw.iter().map(|b| BBox::new(b.x + b.w * 0.25, b.y + b.h * 0.125, b.w * 0.5, b.h * 0.75)).collect();
            let to_box = |g: &&synth_common::GtLine| BBox::new(g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]);
            let reasonable: Vec<BBox> = rows
                .iter()
                .filter(|g| g.visible >= 0.65)
                .map(to_box)
                .filter(|b| b.x >= 1.0 && b.y >= 1.0 && b.right() <= width - 1.0 && b.bottom() <= height - 1.0)
                .collect();
            let all: Vec<BBox> = rows.iter().map(to_box).collect();
            let s = stats.entry((camera.to_string(), rows[0].segment.clone())).or_default();
            s[0] += greedy_matches(&reasonable, &shrunk);
            s[1] += reasonable.len();
            s[2] += greedy_matches(&reasonable, &raw);
            s[3] += greedy_matches(&all, &shrunk);
            s[4] += all.len();
        });
        assert_eq!(frames, summary.frames, "{camera}: every frame decodes");
    }
    let mut keys: Vec<_> = stats.keys().cloned().collect();
    keys.sort();
    for k in &keys {
        let s = stats[k];
        println!(
            "HOG recall {:8} {:6}: {:.3} ({}/{} reasonable), raw windows {:.3}, all people {:.3} ({}/{})",
            k.0,
            k.1,
            s[0] as f32 / s[1].max(1) as f32,
            s[0],
            s[1],
            s[2] as f32 / s[1].max(1) as f32,
            s[3] as f32 / s[4].max(1) as f32,
            s[3],
            s[4]
        );
    }
    for key in [("rgb", "day"), ("thermal", "night")] {
        let s = stats[&(key.0.to_string(), key.1.to_string())];
        assert!(s[1] >= 10, "{key:?}: too few people to measure ({})", s[1]);
        let recall = s[0] as f32 / s[1] as f32;
        assert!(recall >= 0.70, "{key:?}: HOG recall {recall:.3} < 0.70");
    }
}
