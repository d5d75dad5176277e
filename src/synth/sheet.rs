//! A contact sheet (`vireid synth sheet`): one row per identity, columns RGB
//! day, RGB night, thermal and near-infrared, for a person to check at a
//! glance that shapes match across sensors while colours do not carry over.

use super::invalid;
use super::{FileContext, Result};
use image::RgbImage;
use std::path::PathBuf;

use super::crop::{render_crop, CropSensor};
use super::identity::Identity;
use super::rng_for;

/// `vireid synth sheet`.
#[derive(Debug, Clone, clap::Args)]
pub struct SheetArgs {
    /// The PNG to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Identities (rows).
    #[arg(long, default_value_t = 6)]
    pub ids: u32,
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Height of one crop in pixels (width is half).
    #[arg(long, default_value_t = 128)]
    pub cell: u32,
}

pub const SHEET_COLUMNS: [CropSensor; 4] =
    [CropSensor::RgbDay { indoor: false }, CropSensor::RgbNight, CropSensor::Thermal, CropSensor::Nir { indoor: true }];

/// Renders the sheet: `ids` rows × 4 columns of `cell/2 × cell` crops, 4 px gaps.
pub fn render_sheet(ids: u32, seed: u64, cell: u32) -> Result<RgbImage> {
    if ids == 0 || ids > 200 {
        invalid!("--ids {ids} is out of range: give 1 to 200 rows");
    }
    if !(32..=512).contains(&cell) {
        invalid!("--cell {cell} is out of range: give 32 to 512 pixels");
    }
    let (cw, ch, gap) = (cell / 2, cell, 4u32);
    let cols = SHEET_COLUMNS.len() as u32;
    let mut sheet = RgbImage::from_pixel(cols * (cw + gap) + gap, ids * (ch + gap) + gap, image::Rgb([255, 255, 255]));
    for row in 0..ids {
        let person = Identity::generate(seed, row + 1);
        for (col, &sensor) in SHEET_COLUMNS.iter().enumerate() {
            let mut rng = rng_for(seed, &[0x5EE7, row as u64, col as u64]);
            let crop = render_crop(&person, sensor, seed ^ (0x5EE + col as u64), cw, ch, &mut rng);
            image::imageops::replace(
                &mut sheet,
                &crop,
                (gap + col as u32 * (cw + gap)) as i64,
                (gap + row * (ch + gap)) as i64,
            );
        }
    }
    Ok(sheet)
}

pub fn run(a: &SheetArgs) -> Result<()> {
    let sheet = render_sheet(a.ids, a.seed, a.cell)?;
    if let Some(dir) = a.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        super::ensure_out_dir(dir)?;
    }
    sheet
        .save(&a.out)
        .file(|| format!("cannot write {}: check the path (a .png file) and permissions", a.out.display()))?;
    println!(
        "wrote {} ({}×{}): columns RGB day, RGB night, thermal, near-IR",
        a.out.display(),
        sheet.width(),
        sheet.height()
    );
    Ok(())
}
