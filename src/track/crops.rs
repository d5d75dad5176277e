//! A track's best crops for the embedder, ranked by size, detector score and
//! sharpness (variance of the Laplacian: motion blur and defocus lower it).

use image::{GrayImage, RgbImage};

use super::{TrackConfig, TrackCrop};
use crate::core::Crop;
use crate::core::Frame;
use crate::detect::Detection;

/// The K best crops of one track, kept sorted best first.
pub struct BestCrops {
    capacity: usize,
    kept: Vec<(f32, TrackCrop)>,
}

impl BestCrops {
    pub fn new(capacity: usize) -> Self {
        BestCrops { capacity, kept: Vec::with_capacity(capacity) }
    }

    /// Considers the detection's crop of `frame`; copies pixels only if it
    /// ranks among the best.
    pub fn offer(&mut self, frame: &Frame, det: &Detection, config: &TrackConfig) {
        let b = det.bbox.clip(frame.width, frame.height);
        let (x0, y0) = (b.x.floor() as u32, b.y.floor() as u32);
        let (x1, y1) =
            (b.right().ceil().min(frame.width as f32) as u32, b.bottom().ceil().min(frame.height as f32) as u32);
        if x1 <= x0 || y1 <= y0 || ((y1 - y0) as f32) < config.crop_min_height {
            return;
        }
        // Size and score terms are cheap; sharpness ≤ 1 can only lower the
        // quality, so skip the Laplacian when the crop cannot make the list.
        let size_term = ((y1 - y0) as f32 / 256.0).min(1.0);
        let score_term = 1.0 / (1.0 + (-det.score).exp());
        let worst = if self.kept.len() < self.capacity { 0.0 } else { self.kept.last().map(|k| k.0).unwrap_or(0.0) };
        if size_term * score_term <= worst {
            return;
        }
        let sharpness = laplacian_variance(frame, x0, y0, x1, y1);
        let quality = size_term * score_term * (sharpness / (sharpness + 100.0));
        if quality <= worst && self.kept.len() >= self.capacity {
            return;
        }
        let crop = crop_of(frame, x0, y0, x1 - x0, y1 - y0);
        let tc = TrackCrop { crop, bbox: det.bbox, score: det.score, sharpness, pts_ns: frame.pts_ns };
        let pos = self.kept.iter().position(|k| k.0 < quality).unwrap_or(self.kept.len());
        self.kept.insert(pos, (quality, tc));
        self.kept.truncate(self.capacity);
    }

    pub fn into_sorted(self) -> Vec<TrackCrop> {
        self.kept.into_iter().map(|(_, c)| c).collect()
    }
}

fn luma(frame: &Frame, x: u32, y: u32) -> f32 {
    let ch = frame.channels();
    let p = (y as usize * frame.width as usize + x as usize) * ch;
    if ch == 3 {
        0.299 * frame.data[p] as f32 + 0.587 * frame.data[p + 1] as f32 + 0.114 * frame.data[p + 2] as f32
    } else {
        frame.data[p] as f32
    }
}

/// Variance of the 4-neighbour Laplacian over the crop's interior.
pub fn laplacian_variance(frame: &Frame, x0: u32, y0: u32, x1: u32, y1: u32) -> f32 {
    if x1 < x0 + 3 || y1 < y0 + 3 {
        return 0.0;
    }
    // Every second pixel: the variance estimate barely changes, the cost halves twice.
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for y in (y0 + 1..y1 - 1).step_by(2) {
        for x in (x0 + 1..x1 - 1).step_by(2) {
            let l = luma(frame, x - 1, y) + luma(frame, x + 1, y) + luma(frame, x, y - 1) + luma(frame, x, y + 1)
                - 4.0 * luma(frame, x, y);
            sum += l as f64;
            sq += (l as f64) * (l as f64);
            n += 1.0;
        }
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    (sq / n - mean * mean).max(0.0) as f32
}

/// Copies a region out of a frame as an embedder crop (thermal grey → RGB).
pub fn crop_of(frame: &Frame, x: u32, y: u32, w: u32, h: u32) -> Crop {
    let ch = frame.channels();
    let fw = frame.width as usize;
    let mut buf = Vec::with_capacity(w as usize * h as usize * ch);
    for row in y..y + h {
        let start = (row as usize * fw + x as usize) * ch;
        buf.extend_from_slice(&frame.data[start..start + w as usize * ch]);
    }
    if ch == 3 {
        let img = RgbImage::from_raw(w, h, buf).expect("buffer sized w*h*3 above");
        Crop::new(img, frame.modality)
    } else {
        let img = GrayImage::from_raw(w, h, buf).expect("buffer sized w*h above");
        Crop::from_gray(&img, frame.modality)
    }
}
