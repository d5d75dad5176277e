//! OpenCV's HOG people detector (Dalal–Triggs; the SVM weights are built into OpenCV).

use opencv::core::{self, Mat, Size, Vector};
use opencv::imgproc;
use opencv::objdetect::{HOGDescriptor, HOGDescriptorTrait, HOGDescriptorTraitConst};

use super::{nms, DetectError, DetectResult, Detection, Detector, HogConfig};
use crate::core::BBox;
use crate::core::Frame;

pub struct HogDetector {
    hog: HOGDescriptor,
    config: HogConfig,
    resized: Mat,
}

impl HogDetector {
    pub fn new(config: HogConfig) -> DetectResult<Self> {
        let mut hog = HOGDescriptor::default()
            .map_err(|e| DetectError::Model(format!("cannot create OpenCV HOG descriptor: {e}")))?;
        let weights = HOGDescriptor::get_default_people_detector()
            .map_err(|e| DetectError::Model(format!("OpenCV has no default people detector: {e}")))?;
        hog.set_svm_detector(weights);
        Ok(HogDetector { hog, config, resized: Mat::default() })
    }
}

/// Wraps a frame's pixels as an OpenCV matrix without copying.
fn frame_mat(frame: &Frame) -> DetectResult<Mat> {
    let ch = frame.channels();
    let expected = frame.width as usize * frame.height as usize * ch;
    if frame.data.len() != expected || frame.width == 0 || frame.height == 0 {
        return Err(DetectError::Failed(format!(
            "frame from camera '{}' has {} bytes, expected {}×{}×{ch} = {expected}",
            frame.camera,
            frame.data.len(),
            frame.width,
            frame.height
        )));
    }
    let typ = if ch == 3 { core::CV_8UC3 } else { core::CV_8UC1 };
    // SAFETY: the Mat borrows `frame.data`, which outlives it (the Mat is
    // dropped inside `detect`), has exactly rows×cols×ch bytes (checked above)
    // and is only read (HOG and resize take it as input).
    let mat = unsafe {
        Mat::new_rows_cols_with_data_unsafe_def(
            frame.height as i32,
            frame.width as i32,
            typ,
            frame.data.as_ptr() as *mut std::ffi::c_void,
        )
    }
    .map_err(|e| DetectError::Failed(format!("cannot wrap frame as an OpenCV matrix: {e}")))?;
    Ok(mat)
}

impl Detector for HogDetector {
    fn detect(&mut self, frame: &Frame) -> DetectResult<Vec<Detection>> {
        let full = frame_mat(frame)?;
        let c = &self.config;
        // Downscale first: HOG cost grows with the pixel count. At 640 px wide
        // a 720p person of 180 px is ~90 px, about the 96-px person HOG's
        // 64×128 window was trained on; smaller people are not expected.
        let factor = if c.process_width > 0 && frame.width > c.process_width {
            c.process_width as f64 / frame.width as f64
        } else {
            1.0
        };
        let input: &Mat = if factor < 1.0 {
            let size =
                Size::new((frame.width as f64 * factor).round() as i32, (frame.height as f64 * factor).round() as i32);
            imgproc::resize(&full, &mut self.resized, size, 0.0, 0.0, imgproc::INTER_AREA)
                .map_err(|e| DetectError::Failed(format!("OpenCV resize failed: {e}")))?;
            &self.resized
        } else {
            &full
        };
        let mut rects = Vector::<core::Rect>::new();
        let mut weights = Vector::<f64>::new();
        self.hog
            .detect_multi_scale_weights(
                input,
                &mut rects,
                &mut weights,
                c.hit_threshold,
                Size::new(c.win_stride, c.win_stride),
                Size::new(c.padding, c.padding),
                c.scale,
                c.group_threshold as f64,
                false,
            )
            .map_err(|e| DetectError::Failed(format!("OpenCV HOG detection failed: {e}")))?;
        let inv = 1.0 / factor as f32;
        let mut out = Vec::with_capacity(rects.len());
        for (r, w) in rects.iter().zip(weights.iter()) {
            let (mut x, mut y, mut bw, mut bh) = (r.x as f32, r.y as f32, r.width as f32, r.height as f32);
            if c.shrink_to_person {
                // Dalal & Triggs' 64×128 window holds the person in its central
                // 32×96 (16 px of margin each side); ground truth and crops are tight.
                x += bw * 0.25;
                bw *= 0.5;
                y += bh * 0.125;
                bh *= 0.75;
            }
            let bbox = BBox::new(x * inv, y * inv, bw * inv, bh * inv).clip(frame.width, frame.height);
            if bbox.area() > 0.0 && bbox.h >= c.min_height {
                out.push(Detection { bbox, score: w as f32 });
            }
        }
        Ok(if c.nms_iou < 1.0 { nms(out, c.nms_iou) } else { out })
    }
}
