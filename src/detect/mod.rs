//! Detection: `trait Detector` → person boxes with scores.
//!
//! * [`hog::HogDetector`] — OpenCV's built-in Dalal–Triggs people detector
//!   (default: no model file, works on RGB and on grey thermal frames).
//! * [`onnx::OnnxDetector`] — a YOLO-style ONNX model through ONNX Runtime,
//!   decoded, filtered to the person class and NMS'd here.

#[cfg(feature = "media")]
pub mod hog;
#[cfg(feature = "infer")]
pub mod onnx;
pub mod perspective;

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::core::Frame;
use crate::core::{BBox, ConfigError};
pub use perspective::{HeightPrior, PerspectiveConfig};

/// A person box in frame pixels with the detector's confidence.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Detection {
    pub bbox: BBox,
    pub score: f32,
}

/// Why a detector cannot be opened or run.
#[derive(Debug, thiserror::Error)]
pub enum DetectError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The detector model is missing or unusable (the message names it).
    #[error("{0}")]
    Model(String),
    #[cfg(feature = "infer")]
    #[error(transparent)]
    Runtime(#[from] crate::onnx_runtime::OrtError),
    /// Detection on a frame failed (OpenCV or ONNX Runtime), or the frame is malformed.
    #[error("{0}")]
    Failed(String),
    /// This build lacks what the detector needs.
    #[error("{0}")]
    Unavailable(&'static str),
}

pub type DetectResult<T> = Result<T, DetectError>;

/// Finds people in a frame (RGB or GRAY8).
pub trait Detector: Send {
    fn detect(&mut self, frame: &Frame) -> DetectResult<Vec<Detection>>;
}

/// One camera's detection stage: its detector, then its learnt perspective.
pub struct CameraDetector {
    detector: Box<dyn Detector>,
    perspective: HeightPrior,
}

impl CameraDetector {
    pub fn new(detector: Box<dyn Detector>, perspective: HeightPrior) -> CameraDetector {
        CameraDetector { detector, perspective }
    }

    /// The people in `frame`, and the boxes the perspective dropped.
    pub fn detect(&mut self, frame: &Frame) -> DetectResult<(Vec<Detection>, Vec<Detection>)> {
        let mut people = self.detector.detect(frame)?;
        let dropped = self.perspective.judge(frame.height, &mut people);
        Ok((people, dropped))
    }

    /// Keeps what the perspective learnt (the camera is stopping).
    pub fn save(&mut self) {
        self.perspective.save();
    }
}

/// Which detector `[detect]` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DetectorKind {
    #[default]
    Hog,
    Onnx,
}

/// The `[detect]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    pub detector: DetectorKind,
    /// Run the detector on every Nth frame of a camera; in between, the
    /// tracker carries each confirmed person forward on its Kalman prediction.
    /// Detection is the expensive stage (HOG: ~90 ms of CPU per 720p frame),
    /// so N = 2 halves the CPU a camera needs while people, who move a few
    /// pixels per frame at 10 fps, are still found every 0.2 s.
    pub every_n_frames: u32,
    pub hog: HogConfig,
    pub onnx: OnnxDetectConfig,
    /// Drops boxes whose height no person standing there has ([`HeightPrior`]).
    pub perspective: PerspectiveConfig,
}

impl Default for DetectConfig {
    fn default() -> Self {
        DetectConfig {
            detector: DetectorKind::default(),
            every_n_frames: DEFAULT_EVERY_N_FRAMES,
            hog: HogConfig::default(),
            onnx: OnnxDetectConfig::default(),
            perspective: PerspectiveConfig::default(),
        }
    }
}

/// See [`DetectConfig::every_n_frames`] and BENCHMARKS.md for the measurement behind it.
pub const DEFAULT_EVERY_N_FRAMES: u32 = 2;

/// `[detect.hog]`: OpenCV HOG people detector parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HogConfig {
    /// Frames wider than this are downscaled before detection (speed); 0 = never.
    pub process_width: u32,
    /// Pyramid scale step (> 1; smaller finds more sizes, costs more).
    pub scale: f64,
    /// Window stride in pixels (multiple of the 8-px cell).
    pub win_stride: i32,
    /// Padding around the image in pixels.
    pub padding: i32,
    /// SVM margin a window needs to count as a person (higher: fewer false positives).
    pub hit_threshold: f64,
    /// Overlapping windows needed to keep a group (OpenCV's groupThreshold).
    pub group_threshold: i32,
    /// Shrink boxes to the person's outline: HOG's 64×128 window has 16 px of
    /// margin around the 32×96 person (Dalal & Triggs 2005).
    pub shrink_to_person: bool,
    /// Boxes smaller than this height (frame pixels) are ignored.
    pub min_height: f32,
    /// After OpenCV's grouping, boxes overlapping a better one by more than
    /// this IoU are dropped (a person found twice would start a second track); 1 = off.
    pub nms_iou: f32,
}

impl Default for HogConfig {
    fn default() -> Self {
        HogConfig {
            process_width: 640,
            scale: 1.05,
            win_stride: 8,
            padding: 8,
            hit_threshold: -0.3,
            group_threshold: 1,
            shrink_to_person: true,
            min_height: 0.0,
            nms_iou: 0.4,
        }
    }
}

/// `[detect.onnx]`: a YOLO-style detector model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OnnxDetectConfig {
    /// The ONNX model (required when `detector = "onnx"`).
    pub model: Option<PathBuf>,
    /// Network input size; frames are letterboxed to it.
    pub input_width: u32,
    pub input_height: u32,
    /// Minimum person score kept.
    pub score_threshold: f32,
    /// IoU above which the lower-scoring of two boxes is suppressed.
    pub nms_iou: f32,
    /// Index of the person class in the model's class scores (COCO: 0).
    pub person_class: usize,
    /// YOLOv5-style outputs carry an objectness score before the class scores.
    pub objectness: bool,
    /// ONNX Runtime intra-op threads.
    pub threads: usize,
}

impl Default for OnnxDetectConfig {
    fn default() -> Self {
        OnnxDetectConfig {
            model: None,
            input_width: 640,
            input_height: 640,
            score_threshold: 0.4,
            nms_iou: 0.45,
            person_class: 0,
            objectness: false,
            threads: 1,
        }
    }
}

impl DetectConfig {
    /// Whether the detector runs on a camera's `index`-th frame (0-based).
    pub fn runs_on(&self, index: u64) -> bool {
        index.is_multiple_of(u64::from(self.every_n_frames.max(1)))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=30).contains(&self.every_n_frames) {
            crate::invalid_config!(
                "detect.every_n_frames",
                "detect.every_n_frames = {} must be within 1..=30 (1 = detect on every frame)",
                self.every_n_frames
            );
        }
        self.perspective.validate()?;
        let h = &self.hog;
        if !(h.scale > 1.0 && h.scale < 2.0) {
            crate::invalid_config!(
                "detect.hog.scale",
                "detect.hog.scale = {} must be between 1 and 2 (e.g. 1.05)",
                h.scale
            );
        }
        if h.win_stride <= 0 || h.win_stride % 8 != 0 {
            crate::invalid_config!(
                "detect.hog.win_stride",
                "detect.hog.win_stride = {} must be a positive multiple of 8",
                h.win_stride
            );
        }
        if h.padding < 0 || h.group_threshold < 0 {
            crate::invalid_config!(
                "detect.hog.padding",
                "detect.hog.padding and detect.hog.group_threshold must not be negative"
            );
        }
        if !(h.nms_iou > 0.0 && h.nms_iou <= 1.0) {
            crate::invalid_config!(
                "detect.hog.nms_iou",
                "detect.hog.nms_iou = {} must be within (0, 1] (1 turns it off)",
                h.nms_iou
            );
        }
        if h.process_width != 0 && h.process_width < 64 {
            crate::invalid_config!(
                "detect.hog.process_width",
                "detect.hog.process_width = {} is below the 64-px HOG window: use 0 or ≥ 64",
                h.process_width
            );
        }
        let o = &self.onnx;
        if self.detector == DetectorKind::Onnx {
            match &o.model {
                None => crate::invalid_config!(
                    "detect.onnx.model",
                    "detect.onnx.model is required when detect.detector = \"onnx\""
                ),
                Some(p) if !p.is_file() => crate::invalid_config!(
                    "detect.onnx.model",
                    "detect.onnx.model: {} does not exist: check the path",
                    p.display()
                ),
                _ => {}
            }
        }
        if o.input_width < 32 || o.input_height < 32 {
            crate::invalid_config!(
                "detect.onnx.input_width",
                "detect.onnx.input_width/input_height must be at least 32"
            );
        }
        if !(0.0..=1.0).contains(&o.score_threshold) || !(0.0..=1.0).contains(&o.nms_iou) {
            crate::invalid_config!(
                "detect.onnx.score_threshold",
                "detect.onnx.score_threshold and detect.onnx.nms_iou must be within 0..1"
            );
        }
        if o.threads == 0 {
            crate::invalid_config!("detect.onnx.threads", "detect.onnx.threads must be at least 1");
        }
        Ok(())
    }
}

/// Opens the detector the config selects. `ort_library` is `[embed]
/// ort_library` (the process's one ONNX Runtime, `crate::onnx_runtime`).
pub fn open_detector(config: &DetectConfig, ort_library: Option<&Path>) -> DetectResult<Box<dyn Detector>> {
    config.validate()?;
    match config.detector {
        DetectorKind::Hog => open_hog(&config.hog),
        DetectorKind::Onnx => open_onnx(&config.onnx, ort_library),
    }
}

#[cfg(feature = "media")]
fn open_hog(config: &HogConfig) -> DetectResult<Box<dyn Detector>> {
    Ok(Box::new(hog::HogDetector::new(config.clone())?))
}

#[cfg(not(feature = "media"))]
fn open_hog(_: &HogConfig) -> DetectResult<Box<dyn Detector>> {
    Err(DetectError::Unavailable(
        "detect.detector = \"hog\" needs OpenCV, and this vireid was built without the `media` feature: rebuild with default features",
    ))
}

#[cfg(feature = "infer")]
fn open_onnx(config: &OnnxDetectConfig, ort_library: Option<&Path>) -> DetectResult<Box<dyn Detector>> {
    Ok(Box::new(onnx::OnnxDetector::new(config.clone(), ort_library)?))
}

#[cfg(not(feature = "infer"))]
fn open_onnx(_: &OnnxDetectConfig, _: Option<&Path>) -> DetectResult<Box<dyn Detector>> {
    Err(DetectError::Unavailable(
        "detect.detector = \"onnx\" needs ONNX Runtime, and this vireid was built without the `infer` feature: rebuild with default features",
    ))
}

/// Greedy non-maximum suppression: keeps the best-scoring box of every group
/// overlapping by more than `iou`. Input order does not matter.
pub fn nms(mut dets: Vec<Detection>, iou: f32) -> Vec<Detection> {
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<Detection> = Vec::with_capacity(dets.len());
    for d in dets {
        if kept.iter().all(|k| k.bbox.iou(&d.bbox) <= iou) {
            kept.push(d);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nms_keeps_best_of_overlapping() {
        let d = |x: f32, s: f32| Detection { bbox: BBox::new(x, 0.0, 10.0, 20.0), score: s };
        let kept = nms(vec![d(0.0, 0.5), d(1.0, 0.9), d(30.0, 0.3)], 0.45);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].score, 0.9);
        assert_eq!(kept[1].bbox.x, 30.0);
    }

    #[test]
    fn config_errors_name_the_key() {
        let mut c = DetectConfig::default();
        c.hog.win_stride = 5;
        assert!(c.validate().unwrap_err().to_string().contains("detect.hog.win_stride"));
        let c = DetectConfig { detector: DetectorKind::Onnx, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("detect.onnx.model"));
        let c = DetectConfig { every_n_frames: 0, ..Default::default() };
        assert!(c.validate().unwrap_err().to_string().contains("detect.every_n_frames"));
    }

    #[test]
    fn every_n_frames_picks_the_detection_frames() {
        let c = DetectConfig { every_n_frames: 3, ..Default::default() };
        let picked: Vec<u64> = (0..10).filter(|i| c.runs_on(*i)).collect();
        assert_eq!(picked, vec![0, 3, 6, 9]);
        let every = DetectConfig { every_n_frames: 1, ..Default::default() };
        assert!((0..10).all(|i| every.runs_on(i)));
    }
}
