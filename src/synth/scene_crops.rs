//! Labelled person crops cut from a scene's own frames (`vireid synth scene
//! --crops DIR`), in the RegDB layout, so `vireid thresholds --root DIR`
//! calibrates on what the pipeline really embeds: people on the plaza, by day
//! and at night, in boxes about as loose as the detector's — not on the
//! tight studio crops of `vireid synth regdb`, whose similarities do not carry
//! over to scene crops.
//!
//! ```text
//! DIR/Visible/<person>/{day|night}_<frame>.jpg, DIR/Thermal/<person>/…
//! DIR/idx/test_{visible|thermal}_1.txt   `relpath label`, day and night alternating
//! DIR/idx/pairs.txt               `visible thermal`: one person's crops of the same frame
//! ```

use super::{FileContext, Result};
use image::{GrayImage, RgbImage};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use super::dataset::save_jpeg;
use super::ensure_out_dir;

/// Every how many frames a person is cropped (consecutive frames are near copies).
const EVERY: u32 = 5;
/// Crops kept per person, modality and segment.
const PER_SEGMENT: usize = 12;
/// Only people this much in view and this tall are cropped (what a track's best crops look like).
const MIN_VISIBLE: f32 = 0.9;
const MIN_HEIGHT: u32 = 64;

/// Collects crops while a scene renders.
pub struct SceneCropWriter {
    dir: PathBuf,
    /// (thermal, person, segment) → relative paths written.
    written: BTreeMap<(bool, u32, &'static str), Vec<String>>,
}

impl SceneCropWriter {
    pub fn new(dir: PathBuf) -> Result<SceneCropWriter> {
        ensure_out_dir(&dir)?;
        Ok(SceneCropWriter { dir, written: BTreeMap::new() })
    }

    /// A detector's box is looser than the tight ground-truth box: widen it
    /// by 30 % and heighten it by 15 %, centred, clipped to the frame.
    fn detector_like(b: [u32; 4], w: u32, h: u32) -> Option<[u32; 4]> {
        let (bw, bh) = (b[2] as f32, b[3] as f32);
        let x0 = (b[0] as f32 - 0.15 * bw).max(0.0) as u32;
        let y0 = (b[1] as f32 - 0.075 * bh).max(0.0) as u32;
        let x1 = ((b[0] as f32 + 1.15 * bw) as u32).min(w);
        let y1 = ((b[1] as f32 + 1.075 * bh) as u32).min(h);
        (x1 > x0 + 1 && y1 > y0 + 1).then_some([x0, y0, x1 - x0, y1 - y0])
    }

    fn wanted(
        &self,
        thermal: bool,
        person: u32,
        segment: &'static str,
        frame: u32,
        bbox: [u32; 4],
        visible: f32,
    ) -> bool {
        frame.is_multiple_of(EVERY)
            && visible >= MIN_VISIBLE
            && bbox[3] >= MIN_HEIGHT
            && self.written.get(&(thermal, person, segment)).is_none_or(|v| v.len() < PER_SEGMENT)
    }

    /// Crops the people `seen` (person, tight box, visible share) in one camera's frame.
    pub fn offer(
        &mut self,
        segment: &'static str,
        frame: u32,
        image: CameraImage,
        seen: &[(u32, [u32; 4], f32)],
    ) -> Result<()> {
        let thermal = matches!(image, CameraImage::Thermal(_));
        let (w, h) = match image {
            CameraImage::Rgb(i) => i.dimensions(),
            CameraImage::Thermal(i) => i.dimensions(),
        };
        for &(person, bbox, visible) in seen {
            if !self.wanted(thermal, person, segment, frame, bbox, visible) {
                continue;
            }
            let Some([x, y, cw, ch]) = Self::detector_like(bbox, w, h) else { continue };
            let crop: RgbImage = match image {
                CameraImage::Rgb(i) => image::imageops::crop_imm(i, x, y, cw, ch).to_image(),
                // Thermal is grey; stored as 3 equal channels like RegDB's thermal images.
                CameraImage::Thermal(i) => {
                    image::DynamicImage::ImageLuma8(image::imageops::crop_imm(i, x, y, cw, ch).to_image()).to_rgb8()
                }
            };
            let rel = format!("{}/{person}/{segment}_{frame:06}.jpg", if thermal { "Thermal" } else { "Visible" });
            let path = self.dir.join(&rel);
            let folder = path.parent().ok_or_else(|| super::SynthError::Invalid("a crop path has no folder".into()))?;
            std::fs::create_dir_all(folder).file(|| format!("cannot create {}", folder.display()))?;
            save_jpeg(&crop, &path)?;
            self.written.entry((thermal, person, segment)).or_default().push(rel);
        }
        Ok(())
    }

    /// Writes the index files; returns how many crops were written.
    pub fn finish(self) -> Result<usize> {
        let idx = self.dir.join("idx");
        std::fs::create_dir_all(&idx).file(|| format!("cannot create {}", idx.display()))?;
        let mut total = 0;
        for (thermal, name) in [(false, "visible"), (true, "thermal")] {
            let mut text = String::new();
            let people: std::collections::BTreeSet<u32> =
                self.written.keys().filter(|k| k.0 == thermal).map(|k| k.1).collect();
            for person in people {
                let empty = vec![];
                let day = self.written.get(&(thermal, person, "day")).unwrap_or(&empty);
                let night = self.written.get(&(thermal, person, "night")).unwrap_or(&empty);
                // Alternating, so a reader that takes the first few crops per person gets both segments.
                for i in 0..day.len().max(night.len()) {
                    for rel in [day.get(i), night.get(i)].into_iter().flatten() {
                        let _ = writeln!(text, "{rel} {}", person - 1);
                        total += 1;
                    }
                }
            }
            let file = idx.join(format!("test_{name}_1.txt"));
            std::fs::write(&file, text).file(|| format!("cannot write {}", file.display()))?;
        }
        // The co-observed instants: a person's RGB and thermal crops of the same frame.
        let mut pairs = Vec::new();
        for ((thermal, person, segment), rels) in &self.written {
            if *thermal {
                continue;
            }
            if let Some(thermal_rels) = self.written.get(&(true, *person, segment)) {
                for rel in rels {
                    let twin = format!("Thermal{}", &rel["Visible".len()..]);
                    if thermal_rels.contains(&twin) {
                        pairs.push((rel.clone(), twin));
                    }
                }
            }
        }
        super::dataset::write_pairs(&idx.join("pairs.txt"), pairs)?;
        Ok(total)
    }
}

/// One camera's rendered frame.
#[derive(Clone, Copy)]
pub enum CameraImage<'a> {
    Rgb(&'a RgbImage),
    Thermal(&'a GrayImage),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loose_boxes_stay_inside_the_frame() {
        assert_eq!(SceneCropWriter::detector_like([100, 100, 40, 100], 640, 360), Some([94, 92, 52, 115]));
        let b = SceneCropWriter::detector_like([0, 300, 40, 100], 640, 360).unwrap();
        assert!(b[0] == 0 && b[1] + b[3] <= 360);
    }
}
