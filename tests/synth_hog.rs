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

mod synth_common;

use opencv::core::{Mat, Rect, Size, Vector};
use opencv::objdetect::HOGDescriptor;
use opencv::prelude::*;
use std::collections::HashMap;
use vireid::bbox::BBox;
use vireid::synth::scene::{render_scene, SceneOptions};

fn greedy_matches(gts: &[BBox], dets: &[BBox]) -> usize {
    let mut pairs: Vec<(f32, usize, usize)> =
        gts.iter().enumerate().flat_map(|(g, gb)| dets.iter().enumerate().map(move |(d, db)| (gb.iou(db), g, d))).collect();
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
#[ignore = "slow (~1-2 min: HOG over 1280x720 frames); run: cargo test --release --test synth_hog -- --ignored --nocapture"]
fn hog_finds_synthetic_people() {
    let dir = tempfile::tempdir().unwrap();
    let seconds: f32 = std::env::var("VIREID_HOG_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20.0);
    let step: u32 = std::env::var("VIREID_HOG_STEP").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let summary = render_scene(&SceneOptions::new(dir.path(), seconds, 7)).unwrap();
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
    for (camera, video) in [("rgb", &summary.rgb_video), ("thermal", &summary.thermal_video)] {
        let frames = synth_common::decode_bgr(video, |i, w, h, bgr| {
            if i % step != 0 {
                return;
            }
            let Some(rows) = by_frame.get(&(camera.to_string(), i)) else { return };
            let mat = Mat::from_slice(bgr).unwrap();
            let mat = mat.reshape(3, h as i32).unwrap().try_clone().unwrap();
            assert_eq!(mat.cols(), w as i32);
            let mut found: Vector<Rect> = Vector::new();
            hog.detect_multi_scale(&mat, &mut found, 0.0, Size::new(8, 8), Size::new(16, 16), 1.05, 2.0, false).unwrap();
            let raw: Vec<BBox> = found.iter().map(|r| BBox::new(r.x as f32, r.y as f32, r.width as f32, r.height as f32)).collect();
            let shrunk: Vec<BBox> = raw
                .iter()
                .map(|b| BBox::new(b.x + b.w * 0.25, b.y + b.h * 0.125, b.w * 0.5, b.h * 0.75))
                .collect();
            let to_box = |g: &&synth_common::GtLine| BBox::new(g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]);
            let reasonable: Vec<BBox> = rows
                .iter()
                .filter(|g| g.visible >= 0.65)
                .map(to_box)
                .filter(|b| b.x >= 1.0 && b.y >= 1.0 && b.right() <= width - 1.0 && b.bottom() <= height - 1.0)
                .collect();
            let all: Vec<BBox> = rows.iter().map(to_box).collect();
            if std::env::var("VIREID_HOG_DEBUG").is_ok() {
                for g in &reasonable {
                    let best = shrunk.iter().map(|d| (g.iou(d), *d)).max_by(|a, b| a.0.total_cmp(&b.0));
                    println!("debug {camera} {i} gt {:?} best {:?}", (g.x, g.y, g.w, g.h), best.map(|(v, d)| (v, d.x, d.y, d.w, d.h)));
                }
                if i % 20 == 0 {
                    let mut img = image::RgbImage::from_raw(w, h, bgr.to_vec()).unwrap();
                    for (b, c) in shrunk.iter().map(|b| (b, [255u8, 0, 0])).chain(all.iter().map(|b| (b, [0u8, 255, 0]))) {
                        for x in (b.x.max(0.0) as u32)..(b.right().min(width - 1.0) as u32) {
                            for y in [b.y.max(0.0) as u32, b.bottom().min(height - 1.0) as u32] {
                                img.put_pixel(x, y, image::Rgb(c));
                            }
                        }
                        for y in (b.y.max(0.0) as u32)..(b.bottom().min(height - 1.0) as u32) {
                            for x in [b.x.max(0.0) as u32, b.right().min(width - 1.0) as u32] {
                                img.put_pixel(x, y, image::Rgb(c));
                            }
                        }
                    }
                    img.save(format!("/tmp/synth/hog_{camera}_{i}.png")).unwrap();
                }
            }
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

/// Mean HOG SVM score (and share above 0) of people rendered into the detector's
/// own 64×128 window, by view and sensor: a fast way to see what the detector
/// thinks of the figure while working on the renderer.
#[test]
#[ignore = "diagnostic for renderer work; run: cargo test --release --test synth_hog hog_window_scores -- --ignored --nocapture"]
fn hog_window_scores() {
    use vireid::synth::identity::Identity;
    use vireid::synth::render::{render_person, Environment, Placement, Pose, View};
    use vireid::synth::rng_for;
    use vireid::synth::sensor::{rgb_image, thermal_image, Backdrop, Canvas, RgbLook, ThermalLook};
    let hog = HOGDescriptor::default().unwrap();
    let svm = HOGDescriptor::get_default_people_detector().unwrap().to_vec();
    let (weights, bias) = svm.split_at(svm.len() - 1);
    for view in View::ALL {
        let mut line = format!("{view:?}:");
        for sensor in ["rgb", "thermal"] {
            let (mut sum, mut pos, n) = (0.0f32, 0, 100);
            for id in 1..=n {
                let person = Identity::generate(5, id);
                let mut rng = rng_for(5, &[id as u64, 77]);
                // Render at 4x and downsample like a camera would, into the 64x128 window.
                let (w, h, k) = (64u32 * 4, 128u32 * 4, 4u32);
                let night = sensor == "thermal";
                let ambient_c = if night { 11.0 } else { 22.0 };
                let env = Environment { ambient_c, reflected_c: ambient_c - 15.0 };
                let mut canvas = Canvas::new(w, h);
                Backdrop::random(&mut rng, false, ambient_c, !night, 0.3).paint(&mut canvas);
                let scale = 96.0 * k as f32;
                let layer = render_person(&person, Pose { view, phase: (id as f32 * 0.137).fract() }, Placement { scale, ox: w as f32 / 2.0, oy: 16.0 * k as f32 }, env, (0, 0, w as i32, h as i32));
                canvas.composite(&layer);
                let img: image::DynamicImage = if night {
                    image::DynamicImage::ImageLuma8(thermal_image(&canvas, ThermalLook::around(ambient_c, &mut rng), &mut rng))
                } else {
                    image::DynamicImage::ImageRgb8(rgb_image(&canvas, RgbLook::day(&mut rng, false), &mut rng))
                };
                let small = img.resize_exact(64, 128, image::imageops::FilterType::Triangle).to_rgb8();
                let mat = Mat::from_slice(small.as_raw()).unwrap().reshape(3, 128).unwrap().try_clone().unwrap();
                let mut desc: Vector<f32> = Vector::new();
                hog.compute(&mat, &mut desc, Size::new(8, 8), Size::new(0, 0), &Vector::new()).unwrap();
                let score: f32 = desc.iter().zip(weights).map(|(a, b)| a * b).sum::<f32>() + bias[0];
                sum += score;
                pos += (score > 0.0) as u32;
            }
            line += &format!("  {sensor} mean {:.2} pos {pos}/{n}", sum / n as f32);
        }
        println!("{line}");
    }
}

/// Per-person HOG score of the ground-truth window (box grown by the
/// Dalal–Triggs margin, resized to 64×128) in decoded scene frames.
#[test]
#[ignore = "diagnostic for renderer work; run: cargo test --release --test synth_hog hog_gt_window -- --ignored --nocapture"]
fn hog_gt_window_scores() {
    let dir = tempfile::tempdir().unwrap();
    let summary = render_scene(&SceneOptions::new(dir.path(), 10.0, 7)).unwrap();
    let gt = synth_common::read_gt(&summary.ground_truth);
    let hog = HOGDescriptor::default().unwrap();
    let svm = HOGDescriptor::get_default_people_detector().unwrap().to_vec();
    let (weights, bias) = svm.split_at(svm.len() - 1);
    let mut per: std::collections::BTreeMap<(String, String, u32), (f32, u32)> = Default::default();
    for (camera, video) in [("rgb", &summary.rgb_video), ("thermal", &summary.thermal_video)] {
        synth_common::decode_bgr(video, |i, w, h, bgr| {
            if i % 4 != 0 {
                return;
            }
            let img = image::RgbImage::from_raw(w, h, bgr.to_vec()).unwrap();
            for g in gt.iter().filter(|g| g.camera == camera && g.frame == i && g.visible >= 0.9) {
                let wh = g.bbox[3] / 0.75;
                let (cx, cy) = (g.bbox[0] + g.bbox[2] / 2.0, g.bbox[1] + g.bbox[3] / 2.0);
                let (x0, y0) = (cx - wh / 4.0, cy - wh / 2.0);
                if x0 < 0.0 || y0 < 0.0 || x0 + wh / 2.0 > w as f32 || y0 + wh > h as f32 {
                    continue;
                }
                let crop = image::imageops::crop_imm(&img, x0 as u32, y0 as u32, (wh / 2.0) as u32, wh as u32).to_image();
                let small = image::imageops::resize(&crop, 64, 128, image::imageops::FilterType::Triangle);
                let mat = Mat::from_slice(small.as_raw()).unwrap().reshape(3, 128).unwrap().try_clone().unwrap();
                let mut desc: Vector<f32> = Vector::new();
                hog.compute(&mat, &mut desc, Size::new(8, 8), Size::new(0, 0), &Vector::new()).unwrap();
                let score: f32 = desc.iter().zip(weights).map(|(a, b)| a * b).sum::<f32>() + bias[0];
                let e = per.entry((camera.to_string(), g.segment.clone(), g.person_id)).or_default();
                e.0 += score;
                e.1 += 1;
                if std::env::var("VIREID_HOG_DEBUG").is_ok() && i % 12 == 0 {
                    small.save(format!("/tmp/synth/win_{camera}_{}_{i}_{score:.2}.png", g.person_id)).unwrap();
                }
            }
        });
    }
    for ((c, s, p), (sum, n)) in per {
        println!("{c:8} {s:6} person {p}: mean window score {:.2} over {n}", sum / n as f32);
    }
}

#[test]
#[ignore = "diagnostic"]
fn hog_raw_hits() {
    let dir = tempfile::tempdir().unwrap();
    let summary = render_scene(&SceneOptions::new(dir.path(), 10.0, 7)).unwrap();
    let gt = synth_common::read_gt(&summary.ground_truth);
    let hog = {
        let mut h = HOGDescriptor::default().unwrap();
        h.set_svm_detector(HOGDescriptor::get_default_people_detector().unwrap());
        h
    };
    synth_common::decode_bgr(&summary.rgb_video, |i, _w, h, bgr| {
        if i != 12 {
            return;
        }
        let mat = Mat::from_slice(bgr).unwrap().reshape(3, h as i32).unwrap().try_clone().unwrap();
        let mut found: Vector<Rect> = Vector::new();
        let mut weights: Vector<f64> = Vector::new();
        hog.detect_multi_scale_weights(&mat, &mut found, &mut weights, 0.0, Size::new(8, 8), Size::new(16, 16), 1.05, 0.0, false).unwrap();
        for g in gt.iter().filter(|g| g.camera == "rgb" && g.frame == 12) {
            let gb = BBox::new(g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]);
            let mut hits: Vec<(f32, f64, Rect)> = found
                .iter()
                .zip(weights.iter())
                .map(|(r, w)| (gb.iou(&BBox::new(r.x as f32 + r.width as f32 * 0.25, r.y as f32 + r.height as f32 * 0.125, r.width as f32 * 0.5, r.height as f32 * 0.75)), w, r))
                .filter(|x| x.0 > 0.1)
                .collect();
            hits.sort_by(|a, b| b.0.total_cmp(&a.0));
            println!("person {} {:?}: {} hits; best {:?}", g.person_id, g.bbox, hits.len(), &hits[..hits.len().min(4)]);
        }
    });
}
