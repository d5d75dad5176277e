//! `synth::scene::render_scene`: real playable videos, ground truth inside the
//! frame, the same identities in both cameras and both segments, determinism.

use crate::common as synth_common;

use std::collections::{BTreeSet, HashMap};
use vireid::synth::scene::{render_scene, SceneOptions};

#[test]
fn short_scene_videos_and_ground_truth() {
    let dir = tempfile::tempdir().unwrap();
    let s = render_scene(&SceneOptions::new(dir.path(), 6.0, 11)).unwrap();
    assert_eq!((s.frames, s.day_frames), (60, 30));

    // Both videos decode frame by frame at 1280×720 (what any player does).
    for (video, grey) in [(s.rgb_video.as_ref().unwrap(), false), (s.thermal_video.as_ref().unwrap(), true)] {
        let mut colourful = 0u64;
        let n = synth_common::decode_bgr(video, |_, w, h, bgr| {
            assert_eq!((w, h), (1280, 720));
            colourful += bgr.chunks(3).step_by(97).filter(|p| p[0].abs_diff(p[2]) > 12).count() as u64;
        });
        assert_eq!(n, 60, "{}", video.display());
        assert_eq!(colourful == 0, grey, "{}: colour only in RGB (saw {colourful} coloured samples)", video.display());
    }

    let gt = synth_common::read_gt(&s.ground_truth);
    assert_eq!(gt.len(), s.ground_truth_lines);
    let mut seen: HashMap<(String, String), BTreeSet<u32>> = HashMap::new();
    for g in &gt {
        let [x, y, w, h] = g.bbox;
        assert!(
            w >= 1.0 && h >= 1.0 && x >= 0.0 && y >= 0.0 && x + w <= 1280.0 && y + h <= 720.0,
            "box outside frame: {g:?}"
        );
        assert!(g.visible > 0.0 && g.visible <= 1.0, "{g:?}");
        assert_eq!(g.pts_ns, g.frame as u64 * 100_000_000);
        assert!(g.frame < 60);
        assert_eq!(g.segment, if g.frame < 30 { "day" } else { "night" });
        // Fully visible people are 180–400 px tall, the HOG-friendly range.
        if g.visible >= 0.999 && y > 0.0 && y + h < 720.0 {
            assert!((170.0..=410.0).contains(&h), "height {h}: {g:?}");
        }
        seen.entry((g.camera.clone(), g.segment.clone())).or_default().insert(g.person_id);
    }
    // Every identity of the scene shows up in both cameras, day and night.
    let everyone: BTreeSet<u32> = (1..=s.people).collect();
    for cam in ["rgb", "thermal"] {
        for seg in ["day", "night"] {
            assert_eq!(seen[&(cam.to_string(), seg.to_string())], everyone, "{cam}/{seg}");
        }
    }
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&s.scene_json).unwrap()).unwrap();
    assert_eq!(meta["fps"], 10);
    assert_eq!(meta["walks"].as_array().unwrap().len(), s.walks);
}

#[test]
fn same_seed_same_ground_truth() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut opt = SceneOptions::new(a.path(), 2.0, 5);
    opt.width = 640;
    opt.height = 360;
    let sa = render_scene(&opt).unwrap();
    opt.out_dir = b.path().to_path_buf();
    let sb = render_scene(&opt).unwrap();
    assert_eq!(std::fs::read(&sa.ground_truth).unwrap(), std::fs::read(&sb.ground_truth).unwrap());
    assert_eq!(std::fs::read(&sa.scene_json).unwrap(), std::fs::read(&sb.scene_json).unwrap());
    assert!(sa.ground_truth_lines > 0);
}

#[test]
fn bad_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut opt = SceneOptions::new(dir.path(), 0.5, 1);
    assert!(render_scene(&opt).unwrap_err().to_string().contains("--seconds"));
    opt.seconds = 2.0;
    opt.people = 0;
    assert!(render_scene(&opt).unwrap_err().to_string().contains("--people"));
    opt.people = 2;
    opt.width = 641;
    assert!(render_scene(&opt).unwrap_err().to_string().contains("frame size"));
}

/// `--no-video` (the portable build's only mode) renders the same frames and
/// so the same crops, byte for byte, and the same ground truth; it writes no video.
#[test]
fn crops_without_video_are_byte_identical() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let files = |root: &std::path::Path| -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
        let mut out = std::collections::BTreeMap::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.insert(p.strip_prefix(root).unwrap().to_path_buf(), std::fs::read(&p).unwrap());
                }
            }
        }
        out
    };
    let mut opt = SceneOptions::new(a.path().join("scene"), 3.0, 9);
    (opt.width, opt.height, opt.people) = (480, 270, 3);
    opt.crops_dir = Some(a.path().join("crops"));
    let with_video = render_scene(&opt).unwrap();
    opt.out_dir = b.path().join("scene");
    opt.crops_dir = Some(b.path().join("crops"));
    opt.video = false;
    let without = render_scene(&opt).unwrap();
    assert!(with_video.rgb_video.as_ref().unwrap().is_file());
    assert!(without.rgb_video.is_none() && without.thermal_video.is_none());
    assert!(!b.path().join("scene/rgb.mp4").exists() && !b.path().join("scene/thermal.mp4").exists());
    let (crops_a, crops_b) = (files(&a.path().join("crops")), files(&b.path().join("crops")));
    assert!(crops_a.len() > 10, "{} crop files", crops_a.len());
    assert_eq!(crops_a.keys().collect::<Vec<_>>(), crops_b.keys().collect::<Vec<_>>());
    assert!(crops_a == crops_b, "crop bytes differ between video and --no-video");
    assert_eq!(std::fs::read(&with_video.ground_truth).unwrap(), std::fs::read(&without.ground_truth).unwrap());
    // idx/pairs.txt: one person's RGB and thermal crops of the same frame, both written.
    let pairs = String::from_utf8(crops_a[std::path::Path::new("idx/pairs.txt")].clone()).unwrap();
    let pairs: Vec<(&str, &str)> =
        pairs.lines().filter(|l| !l.starts_with('#')).map(|l| l.split_once(' ').unwrap()).collect();
    assert!(!pairs.is_empty(), "a 3 s scene with 3 people has co-observed crops");
    for (v, t) in &pairs {
        assert_eq!(v.strip_prefix("Visible/"), t.strip_prefix("Thermal/"), "same person, same frame: {v} {t}");
        assert!(crops_a.contains_key(std::path::Path::new(v)) && crops_a.contains_key(std::path::Path::new(t)));
    }
    // Without crops there is nothing to render for.
    opt.crops_dir = None;
    assert!(render_scene(&opt).unwrap_err().to_string().contains("--crops"));
}
