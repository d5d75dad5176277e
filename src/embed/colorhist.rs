//! Colour-histogram baseline embedder: HSV histograms on horizontal stripes,
//! like the hand-crafted rows (LOMO, HOG+colour) of the VI-ReID papers.
//!
//! Per stripe: a joint hue×saturation histogram (one achromatic bin, then 8
//! hues × 2 saturation levels) and an 8-bin value histogram, each normalised
//! by the stripe's pixel count. Square roots (Hellinger kernel) then L2
//! normalisation make cosine similarity a fair histogram comparison.
//!
//! It is *meant* to fail across modalities: thermal and NIR crops are grey, so
//! all their mass falls in the achromatic bin. That gap is what `vireid synth`
//! data must show (high RGB→RGB Rank-1, low thermal→RGB Rank-1).

use ndarray::Array2;

use super::{l2_normalize_rows, EmbedError, EmbedResult, Embedder};
use crate::core::Crop;

/// Horizontal stripes per crop.
pub const STRIPES: usize = 6;
const HUE_BINS: usize = 8;
const SAT_LEVELS: usize = 2;
const VALUE_BINS: usize = 8;
/// Saturation below which a pixel counts as grey (hue meaningless).
const GREY_SATURATION: f32 = 0.15;
const CHROMA_BINS: usize = 1 + HUE_BINS * SAT_LEVELS;
const BINS_PER_STRIPE: usize = CHROMA_BINS + VALUE_BINS;

/// The colour-histogram baseline (`--baseline colorhist`).
#[derive(Debug, Default, Clone)]
pub struct ColorHist;

impl ColorHist {
    pub fn new() -> Self {
        ColorHist
    }

    /// Histogram feature of one image (not yet normalised).
    fn features(image: &image::RgbImage, out: &mut [f32]) {
        let (w, h) = image.dimensions();
        let mut counts = [0.0f32; STRIPES];
        // A detector's box holds background at both sides: weight columns by a
        // Gaussian around the centre line, where the person is.
        let sigma = w as f32 * 0.22;
        let col_weight: Vec<f32> = (0..w)
            .map(|x| {
                let d = (x as f32 + 0.5 - w as f32 / 2.0) / sigma;
                (-0.5 * d * d).exp()
            })
            .collect();
        for (x, y, px) in image.enumerate_pixels() {
            let wt = col_weight[x as usize];
            let stripe = ((y as usize * STRIPES) / h.max(1) as usize).min(STRIPES - 1);
            let [r, g, b] = px.0.map(|c| c as f32 / 255.0);
            let max = r.max(g).max(b);
            let min = r.min(g).min(b);
            let v = max;
            let s = if max > 0.0 { (max - min) / max } else { 0.0 };
            let base = stripe * BINS_PER_STRIPE;
            // Soft (linearly interpolated) binning: a small shade change moves
            // mass gradually instead of jumping a bin edge.
            if s < GREY_SATURATION || v < 0.08 {
                out[base] += wt;
            } else {
                let d = (max - min).max(1e-6);
                let hue = if max == r {
                    ((g - b) / d).rem_euclid(6.0)
                } else if max == g {
                    (b - r) / d + 2.0
                } else {
                    (r - g) / d + 4.0
                } / 6.0;
                let sb = if s < 0.45 { 0 } else { 1 };
                let p = hue * HUE_BINS as f32 - 0.5;
                let lo = p.floor();
                let t = p - lo;
                let h0 = (lo as i32).rem_euclid(HUE_BINS as i32) as usize;
                let h1 = (h0 + 1) % HUE_BINS;
                out[base + 1 + h0 * SAT_LEVELS + sb] += wt * (1.0 - t);
                out[base + 1 + h1 * SAT_LEVELS + sb] += wt * t;
            }
            let p = (v * VALUE_BINS as f32 - 0.5).clamp(0.0, (VALUE_BINS - 1) as f32);
            let v0 = p.floor() as usize;
            let v1 = (v0 + 1).min(VALUE_BINS - 1);
            let t = p - v0 as f32;
            out[base + CHROMA_BINS + v0] += wt * (1.0 - t);
            out[base + CHROMA_BINS + v1] += wt * t;
            counts[stripe] += wt;
        }
        for (stripe, &n) in counts.iter().enumerate() {
            if n > 0.0 {
                for v in &mut out[stripe * BINS_PER_STRIPE..(stripe + 1) * BINS_PER_STRIPE] {
                    *v = (*v / n).sqrt();
                }
            }
        }
    }
}

impl Embedder for ColorHist {
    fn name(&self) -> String {
        "colorhist".to_string()
    }

    fn dim(&self) -> usize {
        STRIPES * BINS_PER_STRIPE
    }

    fn embed(&mut self, crops: &[Crop]) -> EmbedResult<Array2<f32>> {
        let mut features = Array2::<f32>::zeros((crops.len(), self.dim()));
        for (i, crop) in crops.iter().enumerate() {
            if crop.image.width() == 0 || crop.image.height() == 0 {
                return Err(EmbedError::Inference(format!(
                    "crop {i} is empty ({}x{}): the colour-histogram embedder needs pixels",
                    crop.image.width(),
                    crop.image.height()
                )));
            }
            // A fixed working size keeps the cost per crop bounded and the
            // stripes comparable whatever the detector's box size.
            let small = image::imageops::resize(&crop.image, 32, 64, image::imageops::FilterType::Triangle);
            let mut row = features.row_mut(i);
            let slice = row.as_slice_mut().expect("rows of a standard-layout array are contiguous");
            Self::features(&small, slice);
        }
        l2_normalize_rows(&mut features);
        Ok(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Modality;

    fn solid(r: u8, g: u8, b: u8) -> Crop {
        Crop::new(image::RgbImage::from_pixel(40, 80, image::Rgb([r, g, b])), Modality::Rgb)
    }

    #[test]
    fn unit_rows_and_colour_separates() {
        let mut e = ColorHist::new();
        let f = e.embed(&[solid(200, 30, 30), solid(190, 40, 35), solid(30, 40, 200), solid(128, 128, 128)]).unwrap();
        assert_eq!(f.dim(), (4, e.dim()));
        for row in f.rows() {
            assert!((row.dot(&row) - 1.0).abs() < 1e-5);
        }
        let sim = |a: usize, b: usize| f.row(a).dot(&f.row(b));
        assert!(sim(0, 1) > 0.9, "two reds are alike: {}", sim(0, 1));
        assert!(sim(0, 2) < sim(0, 1) - 0.3, "red vs blue {} vs red vs red {}", sim(0, 2), sim(0, 1));
    }

    #[test]
    fn stripes_see_vertical_layout() {
        // Red top / blue bottom differs from blue top / red bottom.
        let mut a = image::RgbImage::from_pixel(32, 64, image::Rgb([220, 20, 20]));
        let mut b = image::RgbImage::from_pixel(32, 64, image::Rgb([20, 20, 220]));
        for y in 32..64 {
            for x in 0..32 {
                a.put_pixel(x, y, image::Rgb([20, 20, 220]));
                b.put_pixel(x, y, image::Rgb([220, 20, 20]));
            }
        }
        let f = ColorHist::new().embed(&[Crop::new(a, Modality::Rgb), Crop::new(b, Modality::Rgb)]).unwrap();
        assert!(f.row(0).dot(&f.row(1)) < 0.6);
    }

    #[test]
    fn empty_crop_is_an_error() {
        let err = ColorHist::new().embed(&[Crop::new(image::RgbImage::new(0, 0), Modality::Rgb)]).unwrap_err();
        assert!(err.to_string().contains("empty"));
    }
}
