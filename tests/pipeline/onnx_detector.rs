//! The ONNX (YOLO-style) detector end to end through ONNX Runtime, with a tiny
//! model this test generates with PyTorch (`$VIREID_PYTHON`).
//!
//! The model splits its 64×64 input into a 4×4 grid of 16-px cells. It has two
//! candidate boxes per cell (16 px and 20 px, overlapping with IoU 0.64) in
//! YOLOv8 layout `[1, 4+2, 32]`; the person score is the cell's mean
//! brightness (×0.8 for the larger box), the other class scores 0.5. So a
//! white block filling one cell must come out as exactly one person box (NMS
//! removes the larger twin, the class filter the dark cells), mapped back
//! through the letterbox to frame pixels.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use vireid::core::BBox;
use vireid::core::Frame;
use vireid::core::Modality;
use vireid::detect::onnx::OnnxDetector;
use vireid::detect::{Detector, OnnxDetectConfig};

const MAKE_MODEL: &str = r#"
import sys, torch, torch.nn as nn, torch.nn.functional as F
class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        ys, xs = torch.meshgrid(torch.arange(4), torch.arange(4), indexing="ij")
        cx = (xs.flatten() * 16 + 8).float(); cy = (ys.flatten() * 16 + 8).float()
        a = torch.stack([cx, cy, torch.full_like(cx, 16.0), torch.full_like(cx, 16.0)])
        b = torch.stack([cx, cy, torch.full_like(cx, 20.0), torch.full_like(cx, 20.0)])
        self.register_buffer("boxes", torch.cat([a, b], 1).unsqueeze(0))
    def forward(self, images):
        g = F.avg_pool2d(images.mean(1, keepdim=True), 16).flatten(1)
        person = torch.cat([g, g * 0.8], 1).unsqueeze(1)
        other = torch.full_like(person, 0.5)
        return torch.cat([self.boxes.expand(images.shape[0], -1, -1), person, other], 1)
torch.onnx.export(Tiny(), torch.zeros(1, 3, 64, 64), sys.argv[1], input_names=["images"],
                  output_names=["output0"], opset_version=17, dynamo=False)
"#;

fn python() -> PathBuf {
    let py = std::env::var_os("VIREID_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python")));
    assert!(
        py.is_file(),
        "Python for the ONNX test model not found at {}: set VIREID_PYTHON or run scripts/setup.sh (make test does both)",
        py.display()
    );
    py
}

fn make_model(dir: &Path) -> PathBuf {
    let script = dir.join("make_model.py");
    std::fs::write(&script, MAKE_MODEL).unwrap();
    let model = dir.join("tiny_yolo.onnx");
    let out = Command::new(python()).arg(&script).arg(&model).output().unwrap();
    assert!(out.status.success(), "model export failed: {}", String::from_utf8_lossy(&out.stderr));
    model
}

/// A black frame with a white block at (x, y, w, h).
fn frame(width: u32, height: u32, modality: Modality, block: (u32, u32, u32, u32)) -> Frame {
    let ch = modality.channels();
    let mut data = vec![0u8; (width * height) as usize * ch];
    for y in block.1..block.1 + block.3 {
        for x in block.0..block.0 + block.2 {
            let p = (y * width + x) as usize * ch;
            data[p..p + ch].fill(255);
        }
    }
    Frame {
        camera: Arc::from("cam"),
        modality,
        pts_ns: Some(0),
        segment: 0,
        wall_time: SystemTime::now(),
        width,
        height,
        data,
    }
}

#[test]
fn onnx_detector_decodes_filters_and_suppresses() {
    if std::env::var_os("ORT_DYLIB_PATH").is_none() {
        // Same default as the Makefile, so `cargo test` works from the worktree too.
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/.deps/onnxruntime/libonnxruntime.so.1.31.1");
        std::env::set_var("ORT_DYLIB_PATH", lib);
    }
    let dir = tempfile::tempdir().unwrap();
    let model = make_model(dir.path());
    let config = OnnxDetectConfig {
        model: Some(model),
        input_width: 64,
        input_height: 64,
        score_threshold: 0.6,
        nms_iou: 0.45,
        person_class: 0,
        objectness: false,
        threads: 1,
    };
    let mut det = OnnxDetector::new(config, None).expect("ONNX Runtime session");

    // 128×128 → scale 0.5, no padding: a block over input cell (row 1, col 2).
    let d = det.detect(&frame(128, 128, Modality::Rgb, (64, 32, 32, 32))).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].bbox, BBox::new(64.0, 32.0, 32.0, 32.0));
    assert!((d[0].score - 1.0).abs() < 1e-4);

    // Thermal (grey) 128×64 → scale 0.5 with 16 px of letterbox above: the
    // block at the frame's top lands in cell (1, 2) and maps back to y = 0.
    let d = det.detect(&frame(128, 64, Modality::Thermal, (64, 0, 32, 32))).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].bbox, BBox::new(64.0, 0.0, 32.0, 32.0));

    // Nothing bright: the other class wins everywhere, so no person.
    assert!(det.detect(&frame(128, 128, Modality::Rgb, (0, 0, 0, 0))).unwrap().is_empty());

    // A missing model is a clear error, not a panic.
    let err = OnnxDetector::new(OnnxDetectConfig { model: Some("/no/model.onnx".into()), ..Default::default() }, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/no/model.onnx"), "{err}");
}

/// The ONNX detector loads ONNX Runtime from `[embed] ort_library` — the
/// process has one ONNX Runtime, set up in one place — even when it is the
/// first to load it and neither ORT_DYLIB_PATH nor `.deps/` would find it.
#[test]
fn detector_loads_onnx_runtime_from_embed_ort_library() {
    let lib = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.deps/onnxruntime/libonnxruntime.so")));
    assert!(lib.exists(), "ONNX Runtime library {} missing: run scripts/setup.sh", lib.display());
    let dir = tempfile::tempdir().unwrap();
    let model = make_model(dir.path());
    let mut opt = vireid::synth::scene::SceneOptions::new(dir.path().join("scene"), 1.0, 2);
    (opt.width, opt.height, opt.people) = (320, 240, 1);
    let scene = vireid::synth::scene::render_scene(&opt).unwrap();
    let config = dir.path().join("detect.toml");
    std::fs::write(
        &config,
        format!(
            "[detect]\ndetector = \"onnx\"\n[detect.onnx]\nmodel = \"{}\"\ninput_width = 64\ninput_height = 64\n\
             [embed]\nort_library = \"{}\"\n",
            model.display(),
            lib.display()
        ),
    )
    .unwrap();
    let boxes = dir.path().join("boxes.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "detect", "--modality", "rgb", "--max-frames", "3", "--input"])
        .arg(scene.rgb_video.as_ref().unwrap())
        .arg("--jsonl")
        .arg(&boxes)
        .arg("--config")
        .arg(&config)
        .env_remove("ORT_DYLIB_PATH")
        // No .deps/onnxruntime/ under the working directory either.
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "vireid detect with [embed] ort_library failed: {stderr}");
    assert_eq!(std::fs::read_to_string(&boxes).unwrap().lines().count(), 3, "one line per frame");
}
