//! Crop → model input: resize to the contract's H×W, scale to [0,1], normalise
//! by mean/std, lay out as planar CHW inside one NCHW batch buffer.
//!
//! Thermal crops arrive grey-replicated to three channels already (`Crop`), so
//! both modalities take the same path, as SYSU-MM01/RegDB-trained models expect.

use image::imageops::FilterType;

use super::metadata::ModelContract;
use crate::core::Crop;

/// Writes one crop into `out` (length 3·H·W) in CHW order.
pub fn crop_to_chw(crop: &Crop, contract: &ModelContract, out: &mut [f32]) {
    let (h, w) = (contract.input_height, contract.input_width);
    let plane = (h * w) as usize;
    debug_assert_eq!(out.len(), 3 * plane);
    // Resizing only when needed: tests and benches often feed exact-size crops.
    let resized;
    let img = if crop.image.width() == w && crop.image.height() == h {
        &crop.image
    } else {
        resized = image::imageops::resize(&crop.image, w, h, FilterType::Triangle);
        &resized
    };
    let scale: [f32; 3] = std::array::from_fn(|c| 1.0 / (255.0 * contract.std[c]));
    let offset: [f32; 3] = std::array::from_fn(|c| contract.mean[c] / contract.std[c]);
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    for (i, px) in img.as_raw().chunks_exact(3).enumerate() {
        r[i] = px[0] as f32 * scale[0] - offset[0];
        g[i] = px[1] as f32 * scale[1] - offset[1];
        b[i] = px[2] as f32 * scale[2] - offset[2];
    }
}

/// A whole batch as one contiguous `[N,3,H,W]` buffer.
pub fn batch_to_nchw(crops: &[Crop], contract: &ModelContract) -> Vec<f32> {
    use rayon::prelude::*;
    let per = 3 * (contract.input_height * contract.input_width) as usize;
    let mut buf = vec![0f32; per * crops.len()];
    buf.par_chunks_mut(per).zip(crops.par_iter()).for_each(|(out, crop)| crop_to_chw(crop, contract, out));
    buf
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Modality;
    use crate::embed::metadata::ModalityHandling;

    fn contract() -> ModelContract {
        ModelContract {
            input_height: 4,
            input_width: 2,
            mean: [0.5, 0.0, 1.0],
            std: [0.5, 1.0, 0.5],
            embedding_dim: 4,
            modality_handling: ModalityHandling::Shared,
            method: None,
            training_data: None,
            metrics: None,
            precision: None,
        }
    }

    #[test]
    fn normalises_per_channel_in_chw() {
        let img = image::RgbImage::from_pixel(2, 4, image::Rgb([255, 0, 255]));
        let out = batch_to_nchw(&[Crop::new(img, Modality::Rgb)], &contract());
        assert_eq!(out.len(), 24);
        assert!(out[..8].iter().all(|v| (v - 1.0).abs() < 1e-6)); // (1-0.5)/0.5
        assert!(out[8..16].iter().all(|v| v.abs() < 1e-6)); // (0-0)/1
        assert!(out[16..].iter().all(|v| v.abs() < 1e-6)); // (1-1)/0.5
    }

    #[test]
    fn resizes_and_replicates_grey() {
        let grey = image::GrayImage::from_pixel(10, 30, image::Luma([128]));
        let crop = Crop::from_gray(&grey, Modality::Thermal);
        let out = batch_to_nchw(&[crop], &contract());
        let r = &out[..8];
        assert!(r.iter().all(|v| (v - ((128.0 / 255.0 - 0.5) / 0.5)).abs() < 1e-3), "{r:?}");
    }
}
