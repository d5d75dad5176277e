//! `vireid detect`: person boxes (and optionally track ids) for every frame of
//! a video file, as JSON lines; with `--ground-truth`, recall/precision and
//! identity consistency against a synthetic scene's ground truth.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use crate::config::Config;
use crate::core::Modality;
use crate::detect::{open_detector, CameraDetector, DetectorKind, HeightPrior};
use crate::ingest::{self, CameraConfig, FilePace, IngestConfig};
use crate::score::detection::{load_ground_truth, Evaluator};
use crate::track::Tracker;

#[derive(Debug, clap::Args)]
pub struct DetectArgs {
    /// Video file to read (every frame is processed; nothing is dropped).
    #[arg(long)]
    pub input: PathBuf,
    /// What the video shows: `rgb` or `thermal` (thermal is read as grey).
    #[arg(long)]
    pub modality: Modality,
    /// Where to write one JSON line per frame (`-` for stdout).
    #[arg(long)]
    pub jsonl: PathBuf,
    /// Take [detect], [track] and the [ingest] frame size from this config file.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Override the detector (`hog` or `onnx`).
    #[arg(long)]
    pub detector: Option<DetectorKind>,
    /// ONNX detector model (implies --detector onnx).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Also run the tracker and write each box's track id.
    #[arg(long)]
    pub track: bool,
    /// Detect on every Nth frame only, the tracker carrying boxes in between
    /// (needs --track; default: the config's detect.every_n_frames).
    #[arg(long)]
    pub every_n_frames: Option<u32>,
    /// Ground truth (`ground_truth.jsonl`) to score against; prints a JSON report.
    #[arg(long)]
    pub ground_truth: Option<PathBuf>,
    /// Camera name in the ground truth (default: the modality, `rgb`/`thermal`).
    #[arg(long)]
    pub gt_camera: Option<String>,
    /// People less visible than this (0..1) are not required to be found.
    #[arg(long, default_value_t = 0.5)]
    pub min_visible: f32,
    /// Write the score report here as well as to stdout.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    pub max_frames: Option<u64>,
}

pub fn run_detect(args: DetectArgs) -> Result<()> {
    if !args.input.is_file() {
        anyhow::bail!("--input {}: video file does not exist: check the path", args.input.display());
    }
    let (mut detect_cfg, track_cfg, ort_library, frame_size) = match &args.config {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
            // Only the [detect], [track], [ingest] frame size (and [embed] ort_library) settings
            // matter here; cameras may be absent. The frame size is `vireid run`'s, so the boxes
            // and track ids are the ones a run on the same config and file produces.
            let cfg: Config =
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))?;
            cfg.ingest.validate().context("in [ingest]")?;
            (cfg.detect, cfg.track, cfg.embed.ort_library, (cfg.ingest.width, cfg.ingest.height))
        }
        None => Default::default(),
    };
    if let Some(d) = args.detector {
        detect_cfg.detector = d;
    }
    if let Some(m) = &args.model {
        detect_cfg.detector = DetectorKind::Onnx;
        detect_cfg.onnx.model = Some(m.clone());
    }
    if let Some(n) = args.every_n_frames {
        detect_cfg.every_n_frames = n;
    }
    detect_cfg.validate().context("in [detect]")?;
    track_cfg.validate().context("in [track]")?;
    let detector = open_detector(&detect_cfg, ort_library.as_deref())?;
    let gt_camera = args.gt_camera.clone().unwrap_or_else(|| args.modality.as_str().to_string());
    let ground_truth = match &args.ground_truth {
        Some(p) => Some(load_ground_truth(p, &gt_camera)?),
        None => None,
    };
    let mut evaluator = Evaluator::new(args.min_visible);
    let cam = CameraConfig {
        name: args.modality.as_str().to_string(),
        modality: args.modality,
        source: args.input.to_string_lossy().into_owned(),
        box_name: "box0".into(),
        loop_file: false,
        decoder: None,
    };
    let ingest_cfg =
        IngestConfig { file_pace: FilePace::Fast, width: frame_size.0, height: frame_size.1, ..Default::default() };
    let camera = ingest::start_camera(&cam, &ingest_cfg)?;
    let mut out: Box<dyn Write> = if args.jsonl.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout()))
    } else {
        let f = std::fs::File::create(&args.jsonl)
            .with_context(|| format!("cannot create --jsonl {}", args.jsonl.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    // Learnt afresh from this video: a file is not the camera's life.
    let perspective = HeightPrior::new(Arc::from(cam.name.as_str()), detect_cfg.perspective.clone());
    let mut detector = CameraDetector::new(detector, perspective);
    let mut dropped_total = 0u64;
    let mut tracker = args.track.then(|| Tracker::new(Arc::from(cam.name.as_str()), args.modality, track_cfg.clone()));
    let started = Instant::now();
    let (mut frames, mut detect_s) = (0u64, 0f64);
    while let Ok(frame) = camera.frames.recv() {
        // Without the tracker there is nothing to carry boxes between
        // detections, so every frame is detected.
        let detect_now = tracker.is_none() || detect_cfg.runs_on(frames);
        let t0 = Instant::now();
        let (dets, dropped) = if detect_now { detector.detect(&frame)? } else { Default::default() };
        dropped_total += dropped.len() as u64;
        detect_s += t0.elapsed().as_secs_f64();
        let boxes = |ds: &[crate::detect::Detection]| {
            ds.iter()
                .map(|d| serde_json::json!({"bbox": [d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h], "score": d.score}))
                .collect::<Vec<_>>()
        };
        let mut line = serde_json::json!({
            "frame": frames,
            "pts_ns": frame.pts_ns,
            "detected": detect_now,
            "detections": boxes(&dets),
        });
        if !dropped.is_empty() {
            // Boxes [detect.perspective] judged too tall or too short for where their feet are.
            line["dropped"] = serde_json::json!(boxes(&dropped));
        }
        let mut tracks = Vec::new();
        if let Some(tr) = tracker.as_mut() {
            if detect_now {
                tr.update(&frame, &dets);
            } else {
                tr.coast();
            }
            tracks = tr.active().iter().map(|t| (t.track_id, t.bbox)).collect();
            line["tracks"] = serde_json::json!(tr.active());
        }
        if let Some(gt) = &ground_truth {
            // On frames the detector skipped, what the pipeline reports is the
            // tracker's carried boxes: score those.
            let boxes: Vec<_> =
                if detect_now { dets.iter().map(|d| d.bbox).collect() } else { tracks.iter().map(|t| t.1).collect() };
            evaluator.add_frame(gt.get(&frames).map(|v| v.as_slice()).unwrap_or(&[]), &boxes, &tracks);
        }
        serde_json::to_writer(&mut out, &line)?;
        out.write_all(b"\n")?;
        frames += 1;
        if args.max_frames.is_some_and(|m| frames >= m) {
            break;
        }
    }
    out.flush().with_context(|| format!("cannot write {}", args.jsonl.display()))?;
    let stopped_early = args.max_frames.is_some_and(|m| frames >= m);
    if stopped_early {
        camera.join()?;
    } else {
        camera.wait().with_context(|| format!("cannot read video {}", args.input.display()))?;
    }
    if frames == 0 {
        anyhow::bail!("video {} gave no frames: is it a video file?", args.input.display());
    }
    let wall = started.elapsed().as_secs_f64();
    tracing::info!(
        frames,
        wall_s = wall,
        detect_ms_per_frame = 1e3 * detect_s / frames as f64,
        dropped = dropped_total,
        "detect finished"
    );
    if ground_truth.is_some() {
        let mut report = evaluator.report();
        report["input"] = serde_json::json!(args.input);
        report["frames"] = serde_json::json!(frames);
        report["detector"] = serde_json::json!(format!("{:?}", detect_cfg.detector).to_lowercase());
        report["dropped_detections"] = serde_json::json!(dropped_total);
        report["every_n_frames"] = serde_json::json!(if tracker.is_some() { detect_cfg.every_n_frames } else { 1 });
        let text = serde_json::to_string_pretty(&report)?;
        println!("{text}");
        if let Some(p) = &args.report {
            std::fs::write(p, &text).with_context(|| format!("cannot write --report {}", p.display()))?;
        }
    }
    Ok(())
}
