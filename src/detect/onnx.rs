//! A YOLO-style ONNX person detector through ONNX Runtime (`ort`, load-dynamic).
//!
//! Input `[1,3,H,W]` float32 RGB in 0..1, letterboxed (grey 114 border).
//! Output `[1, 4+C, N]` (YOLOv8 layout) or `[1, N, 4+C]`; with `objectness`
//! `[…, 5+C, …]` (YOLOv5). Boxes are `cx, cy, w, h` in input pixels.

use ndarray::{Array4, ArrayViewD, Ix3};
use ort::session::Session;
use ort::value::TensorRef;

use super::{nms, DetectError, DetectResult, Detection, Detector, OnnxDetectConfig};
use crate::core::BBox;
use crate::core::Frame;

pub struct OnnxDetector {
    session: Session,
    input_name: String,
    config: OnnxDetectConfig,
    input: Array4<f32>,
}

impl OnnxDetector {
    /// Loads the model. `ort_library` is `[embed] ort_library`: the process
    /// has one ONNX Runtime, shared with the embedder ([`crate::onnx_runtime`]).
    pub fn new(config: OnnxDetectConfig, ort_library: Option<&std::path::Path>) -> DetectResult<Self> {
        let model = config.model.clone().ok_or_else(|| DetectError::Model("detect.onnx.model is not set".into()))?;
        if !model.is_file() {
            return Err(DetectError::Model(format!(
                "detect.onnx.model: {} does not exist: check the path",
                model.display()
            )));
        }
        let env = crate::onnx_runtime::environment(ort_library)?;
        let builder = Session::builder(env)
            .map_err(|e| DetectError::Model(format!("cannot create an ONNX Runtime session: {e}")))?;
        let mut builder = builder
            .with_intra_threads(config.threads)
            .map_err(|e| DetectError::Model(format!("detect.onnx.threads: {e}")))?;
        let session = builder
            .commit_from_file(&model)
            .map_err(|e| DetectError::Model(format!("cannot load ONNX detector {}: {e}", model.display())))?;
        let input_name = session
            .inputs()
            .first()
            .map(|i| i.name().to_string())
            .ok_or_else(|| DetectError::Model(format!("ONNX detector {} has no input", model.display())))?;
        let input = Array4::<f32>::zeros((1, 3, config.input_height as usize, config.input_width as usize));
        Ok(OnnxDetector { session, input_name, config, input })
    }
}

/// Letterbox geometry: frame pixel = (input pixel - pad) / scale.
#[derive(Debug, Clone, Copy)]
struct Letterbox {
    scale: f32,
    pad_x: f32,
    pad_y: f32,
}

/// Fills `input` with the frame letterboxed into it (nearest-neighbour; the
/// detector's own resize cost is not worth a dependency here).
fn letterbox(frame: &Frame, input: &mut Array4<f32>) -> Letterbox {
    let (ih, iw) = (input.shape()[2], input.shape()[3]);
    let scale = (iw as f32 / frame.width as f32).min(ih as f32 / frame.height as f32);
    let (nw, nh) = ((frame.width as f32 * scale).round() as usize, (frame.height as f32 * scale).round() as usize);
    let (pad_x, pad_y) = ((iw - nw.min(iw)) / 2, (ih - nh.min(ih)) / 2);
    input.fill(114.0 / 255.0);
    let ch = frame.channels();
    let w = frame.width as usize;
    for y in 0..nh.min(ih) {
        let sy = ((y as f32 + 0.5) / scale) as usize;
        let sy = sy.min(frame.height as usize - 1);
        for x in 0..nw.min(iw) {
            let sx = (((x as f32 + 0.5) / scale) as usize).min(w - 1);
            let p = (sy * w + sx) * ch;
            for c in 0..3 {
                // Thermal: grey replicated to three channels.
                let v = frame.data[p + if ch == 3 { c } else { 0 }];
                input[[0, c, y + pad_y, x + pad_x]] = v as f32 / 255.0;
            }
        }
    }
    Letterbox { scale, pad_x: pad_x as f32, pad_y: pad_y as f32 }
}

/// Decodes a `[1, A, B]` YOLO output into person detections in frame pixels.
fn decode(
    out: ArrayViewD<'_, f32>,
    config: &OnnxDetectConfig,
    lb: Letterbox,
    frame_w: u32,
    frame_h: u32,
) -> DetectResult<Vec<Detection>> {
    let out = out
        .into_dimensionality::<Ix3>()
        .map_err(|_| DetectError::Failed("detector output must be 3-D [1, attributes, boxes]".into()))?;
    let (a, b) = (out.shape()[1], out.shape()[2]);
    let first_class = if config.objectness { 5 } else { 4 };
    // YOLOv8 exports [1, 4+C, N] (attributes first); older ones [1, N, 4+C].
    // Attributes are the smaller dimension in every real model.
    let attrs_first = a < b;
    let (n_attr, n_box) = if attrs_first { (a, b) } else { (b, a) };
    if n_attr <= first_class + config.person_class {
        return Err(DetectError::Failed(format!(
            "detector output has {n_attr} attributes per box: too few for person_class {} (with objectness = {})",
            config.person_class, config.objectness
        )));
    }
    let at = |i: usize, k: usize| if attrs_first { out[[0, k, i]] } else { out[[0, i, k]] };
    let mut dets = Vec::new();
    for i in 0..n_box {
        let obj = if config.objectness { at(i, 4) } else { 1.0 };
        let (mut best_c, mut best_s) = (0usize, f32::MIN);
        for c in 0..n_attr - first_class {
            let s = at(i, first_class + c);
            if s > best_s {
                best_s = s;
                best_c = c;
            }
        }
        let score = best_s * obj;
        if best_c != config.person_class || score < config.score_threshold {
            continue;
        }
        let (cx, cy, w, h) = (at(i, 0), at(i, 1), at(i, 2), at(i, 3));
        let x = (cx - w / 2.0 - lb.pad_x) / lb.scale;
        let y = (cy - h / 2.0 - lb.pad_y) / lb.scale;
        let bbox = BBox::new(x, y, w / lb.scale, h / lb.scale).clip(frame_w, frame_h);
        if bbox.area() > 0.0 {
            dets.push(Detection { bbox, score });
        }
    }
    Ok(nms(dets, config.nms_iou))
}

impl Detector for OnnxDetector {
    fn detect(&mut self, frame: &Frame) -> DetectResult<Vec<Detection>> {
        if frame.data.len() != frame.width as usize * frame.height as usize * frame.channels() || frame.width == 0 {
            return Err(DetectError::Failed(format!(
                "frame from camera '{}' has the wrong size for {}×{}",
                frame.camera, frame.width, frame.height
            )));
        }
        let lb = letterbox(frame, &mut self.input);
        let tensor = TensorRef::from_array_view(&self.input)
            .map_err(|e| DetectError::Failed(format!("cannot make input tensor: {e}")))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| DetectError::Failed(format!("ONNX detector failed: {e}")))?;
        let out = outputs[0]
            .try_extract_array::<f32>()
            .map_err(|e| DetectError::Failed(format!("detector output is not float32: {e}")))?;
        decode(out, &self.config, lb, frame.width, frame.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_both_layouts_and_filters_class() {
        let cfg = OnnxDetectConfig { score_threshold: 0.5, ..Default::default() };
        let lb = Letterbox { scale: 0.5, pad_x: 0.0, pad_y: 10.0 };
        // Two boxes, 2 classes: box 0 is a person (0.9), box 1 a class-1 object.
        // Ten candidate boxes (real models have far more boxes than attributes).
        let mut rows = ndarray::Array3::<f32>::zeros((1, 10, 6));
        rows.slice_mut(ndarray::s![0, 0, ..]).assign(&ndarray::arr1(&[50.0, 60.0, 20.0, 40.0, 0.9, 0.1]));
        rows.slice_mut(ndarray::s![0, 1, ..]).assign(&ndarray::arr1(&[10.0, 10.0, 5.0, 5.0, 0.2, 0.95]));
        let d = decode(rows.view().into_dyn(), &cfg, lb, 1000, 1000).unwrap();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].bbox, BBox::new(80.0, 60.0, 40.0, 80.0));
        let cols = rows.permuted_axes([0, 2, 1]).to_owned();
        let d2 = decode(cols.view().into_dyn(), &cfg, lb, 1000, 1000).unwrap();
        assert_eq!(d, d2);
    }
}
