//! `vireid run` on real footage: the first 6 s of OpenCV's sample pedestrian
//! clip `vtest.avi` (768×576, 10 fps, people walking past a surveillance
//! camera; fetched by `scripts/setup.sh` from Debian's opencv-doc package), as
//! the RGB camera of a box with no thermal camera, through the whole pipeline
//! with the shipped model. The whole clip is `bench/real_footage.sh`
//! (BENCHMARKS.md, "Real footage").

use std::path::{Path, PathBuf};
use std::process::Command;

/// Frames of the clip the test runs on (6 s at 10 fps).
const FRAMES: u64 = 60;

fn clip() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".deps/footage/vtest.avi");
    assert!(
        p.is_file(),
        "real-footage clip {} is missing: run `scripts/setup.sh test` (it downloads Debian's opencv-doc \
         package once and extracts vtest.avi from it)",
        p.display()
    );
    p
}

#[test]
fn run_on_real_footage_with_an_rgb_only_box() {
    let src = clip();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The first FRAMES frames, remuxed without decoding (the AVI holds DivX 3,
    // which avimux does not take back; Matroska does).
    let cut = d.join("vtest-6s.mkv");
    let out = Command::new("gst-launch-1.0")
        .args(["-q", "filesrc"])
        .arg(format!("location={}", src.display()))
        .args(["!", "avidemux", "!", "identity"])
        .arg(format!("eos-after={}", FRAMES + 1))
        .args(["!", "matroskamux", "!", "filesink"])
        .arg(format!("location={}", cut.display()))
        .output()
        .expect("gst-launch-1.0 runs (gstreamer1.0-tools, installed by scripts/setup.sh test)");
    assert!(out.status.success(), "cutting {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));

    // One camera, RGB, no thermal partner: pairing is on (the default) and
    // has nothing to pair with, so every track goes on alone.
    std::fs::write(
        d.join("run.toml"),
        format!(
            "state_dir = \"{d}/state\"\n\
             [[camera]]\nname = \"vtest\"\nmodality = \"rgb\"\nsource = \"{cut}\"\n\
             [ingest]\nfile_pace = \"fast\"\nwidth = 0\nheight = 0\n\
             [embed]\nmodel = \"{model}\"\n",
            d = d.display(),
            cut = cut.display(),
            model = Path::new(env!("CARGO_MANIFEST_DIR")).join("engines/vireid_default.onnx").display()
        ),
    )
    .unwrap();
    let (tracks, sightings, stats) = (d.join("tracks.jsonl"), d.join("sightings.jsonl"), d.join("stats.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "run", "--config"])
        .arg(d.join("run.toml"))
        .arg("--tracks")
        .arg(&tracks)
        .arg("--sightings")
        .arg(&sightings)
        .arg("--stats")
        .arg(&stats)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vireid run on real footage failed: {err}");

    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["stopped_because"], "all sources ended", "{s}");
    let cams = s["cameras"].as_array().unwrap();
    assert_eq!(cams.len(), 1, "{s}");
    let cam = &cams[0];
    assert_eq!(cam["ingest"]["camera"], "vtest");
    assert_eq!(cam["ingest"]["dropped"], 0, "{cam}");
    assert_eq!(cam["processed_frames"], FRAMES, "{cam}");
    // Every 2nd frame is detected (detect.every_n_frames = 2). Three to six
    // people are in view in these seconds (counted by eye); HOG at its
    // default 640-px processing width misses the farthest and adds a few
    // false positives (BENCHMARKS.md), so the mean must be people-like: at
    // least one box and not a swarm.
    let detected = cam["detected_frames"].as_u64().unwrap();
    assert_eq!(detected, FRAMES / 2, "{cam}");
    let per_frame = cam["detections"].as_u64().unwrap() as f64 / detected as f64;
    assert!((1.0..=8.0).contains(&per_frame), "{per_frame:.2} detections per detected frame: {cam}");

    let tracks: Vec<serde_json::Value> =
        std::fs::read_to_string(&tracks).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!tracks.is_empty(), "no finished track from 6 s of real footage: {cam}");
    assert_eq!(s["tracks_written"], tracks.len() as u64);
    for t in &tracks {
        assert_eq!((t["camera"].as_str(), t["modality"].as_str()), (Some("vtest"), Some("rgb")), "{t}");
        assert!(t["hits"].as_u64().unwrap() >= 3, "{t}");
        let b: Vec<f64> = t["best_box"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        // Inside the 768×576 frame and person-shaped (taller than wide).
        assert!(b[0] >= 0.0 && b[1] >= 0.0 && b[0] + b[2] <= 768.5 && b[1] + b[3] <= 576.5, "{t}");
        assert!(b[3] > 1.5 * b[2], "{t}");
        assert!(!t["crops"].as_array().unwrap().is_empty(), "{t}");
    }

    // Every finished track became a sighting of an identity, on its own (no thermal partner).
    let events: Vec<serde_json::Value> =
        std::fs::read_to_string(&sightings).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), tracks.len(), "{events:?}");
    let g = &s["gallery"];
    assert_eq!((g["sightings"].as_u64(), g["sightings_failed"].as_u64()), (Some(tracks.len() as u64), Some(0)), "{g}");
    assert_eq!(g["day_night_links"], 0, "{g}");
    assert!(g["new_identities"].as_u64().unwrap() >= 1, "{g}");
    for e in &events {
        assert_eq!((e["camera"].as_str(), e["modality"].as_str()), (Some("vtest"), Some("rgb")), "{e}");
        assert!(e["identity_id"].as_i64().unwrap() > 0, "{e}");
        assert!(!e["day_night_link"].as_bool().unwrap(), "{e}");
    }
}
