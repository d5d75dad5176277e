//! `vireid run` end to end on a short synthetic dual-spectrum scene (RGB +
//! thermal MP4 from `synth::scene`): both cameras are ingested, people are
//! detected and tracked, finished tracks come out as JSON lines with crops,
//! and in `fast` file pace nothing is dropped.
//!
//! The full-length quality measurement (recall ≥ 70 %, identity ≥ 90 %) is
//! `vireid detect --track --ground-truth` on a 60 s scene: see BENCHMARKS.md.

use std::process::Command;

use vireid::synth::scene::{render_scene, SceneOptions};

#[test]
fn run_on_a_synthetic_scene_writes_tracks_with_crops() {
    let dir = tempfile::tempdir().unwrap();
    let scene = render_scene(&SceneOptions::new(dir.path().join("scene"), 8.0, 3)).unwrap();
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir = \"{}\"\n[[camera]]\nname = \"rgb\"\nmodality = \"rgb\"\nsource = \"{}\"\n\
             [[camera]]\nname = \"thermal\"\nmodality = \"thermal\"\nsource = \"{}\"\n\
             [ingest]\nfile_pace = \"fast\"\n",
            dir.path().join("state").display(),
            scene.rgb_video.as_ref().unwrap().display(),
            scene.thermal_video.as_ref().unwrap().display()
        ),
    )
    .unwrap();
    let tracks = dir.path().join("tracks.jsonl");
    let stats = dir.path().join("stats.json");
    // At the default log level (the systemd unit's), with the model loaded
    // (--sightings): ONNX Runtime's internals once made this 700 lines.
    let out = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--tracks", tracks.to_str().unwrap()])
        .arg("--stats")
        .arg(&stats)
        .arg("--sightings")
        .arg(dir.path().join("sightings.jsonl"))
        .env_remove("RUST_LOG")
        .env_remove("VIREID_LOG")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vireid run failed: {err}");
    assert!(err.lines().count() < 50, "{} lines at the default log level:\n{err}", err.lines().count());
    assert!(!err.contains('\x1b'), "colour codes in a log that is not a terminal:\n{err}");

    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    assert_eq!(s["stopped_because"], "all sources ended", "{s}");
    for cam in s["cameras"].as_array().unwrap() {
        assert_eq!(cam["ingest"]["dropped"], 0, "{cam}");
        assert_eq!(cam["processed_frames"], scene.frames, "{cam}");
        assert_eq!(cam["ingest"]["state"], "stopped");
    }
    // Each camera keeps the boxes its perspective learnt from, for the next start.
    for camera in ["rgb", "thermal"] {
        let kept = dir.path().join("state/perspective").join(format!("{camera}.json"));
        let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&kept).unwrap()).unwrap();
        assert!(!kept["boxes"].as_array().unwrap().is_empty(), "{kept}");
    }
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&tracks).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    for camera in ["rgb", "thermal"] {
        let mine: Vec<_> = lines.iter().filter(|t| t["camera"] == camera).collect();
        assert!(!mine.is_empty(), "no finished track from camera {camera}: {lines:?}");
        for t in mine {
            assert!(t["hits"].as_u64().unwrap() >= 3, "{t}");
            let crops = t["crops"].as_array().unwrap();
            assert!(!crops.is_empty() && crops.len() <= 5, "{t}");
            // Person-shaped: taller than wide.
            assert!(crops[0]["height"].as_u64().unwrap() > crops[0]["width"].as_u64().unwrap(), "{t}");
        }
    }

    // Events come in the order the sightings were stored: a pair whose
    // second track led once came out as (id n+1, id n).
    let ids: Vec<i64> = vireid::events::read_sightings(&dir.path().join("sightings.jsonl"))
        .unwrap()
        .iter()
        .map(|s| s.sighting_id)
        .collect();
    assert!(!ids.is_empty());
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sighting ids out of order in the event stream: {ids:?}");

    // `vireid detect` scores the thermal video against the ground truth. The
    // floor only catches a broken detector/decoder (full-length figures are
    // ~0.7, see BENCHMARKS.md); an 8-s scene is too short for the target itself.
    let report = dir.path().join("report.json");
    let boxes = dir.path().join("boxes.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "detect", "--modality", "thermal", "--track"])
        .arg("--input")
        .arg(scene.thermal_video.as_ref().unwrap())
        .arg("--jsonl")
        .arg(&boxes)
        .arg("--ground-truth")
        .arg(&scene.ground_truth)
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "vireid detect failed: {}", String::from_utf8_lossy(&out.stderr));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["frames"], scene.frames);
    // What [detect.perspective] dropped is counted (8 s is too short for it to have learnt).
    assert!(r["dropped_detections"].is_u64(), "{r}");
    let night = &r["segments"]["night"];
    assert!(night["gt_boxes"].as_u64().unwrap() > 0, "{r}");
    assert!(night["recall"].as_f64().unwrap() > 0.3, "{r}");
    assert!(night["precision"].as_f64().unwrap() > 0.3, "{r}");
    assert_eq!(std::fs::read_to_string(&boxes).unwrap().lines().count() as u32, scene.frames);
}
