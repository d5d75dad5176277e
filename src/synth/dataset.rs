//! Synthetic datasets in the real VI-ReID folder layouts, so the real loaders
//! are what gets tested.
//!
//! SYSU-MM01 (`vireid synth sysu`):
//! ```text
//! DIR/cam1 … cam6/NNNN/NNNN.jpg   identity folders 0001…, images 0001.jpg…
//!                                 cam1, cam2 indoor RGB; cam3 indoor near-IR;
//!                                 cam4, cam5 outdoor RGB; cam6 outdoor near-IR
//! DIR/exp/train_id.txt, val_id.txt, test_id.txt   one comma-separated line of ids
//! ```
//! As in the real set, not every identity is in every camera, but each one is
//! in at least one RGB and one IR camera; split sizes keep SYSU's proportions
//! (296 train / 99 val / 96 test of 491).
//!
//! RegDB (`vireid synth regdb`):
//! ```text
//! DIR/Visible/N/{female|male}_{front|back}_v_NNNNN_N.jpg   10 per identity
//! DIR/Thermal/N/{female|male}_{front|back}_t_NNNNN_N.jpg   10 per identity
//! DIR/idx/{train|test}_{visible|thermal}_{k}.txt, k = 1..10: `relpath label` lines
//! DIR/idx/pairs.txt              with --paired: `visible thermal` crops of one instant
//! ```
//! (`--images`, `--width`, `--height` change the count and size.) Each trial splits the identities in half at random (train/test). Labels are
//! 0-based and contiguous within a trial's split (the order of sorted ids), the
//! same in the visible and thermal files.
//!
//! Both layouts also get `DIR/attributes.csv`: per identity, what both sensors
//! show (garment kinds, sleeves, hair, accessory, build — not colour), as
//! extra supervision for training ([`super::identity::ATTRIBUTES`]).

use super::invalid;
use super::{FileContext, Result};
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::crop::{render_crop, render_crop_pair, CropSensor};
use super::identity::Identity;
use super::{ensure_out_dir, progress_bar, rng_for};

/// `vireid synth sysu`.
#[derive(Debug, Clone, clap::Args)]
pub struct SysuArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of identities.
    #[arg(long)]
    pub ids: u32,
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images per identity per camera it appears in.
    #[arg(long, default_value_t = 10)]
    pub images_per_cam: u32,
    /// Crop size (SYSU crops are portrait, about 1:2).
    #[arg(long, default_value_t = 96)]
    pub width: u32,
    /// Crop height in pixels.
    #[arg(long, default_value_t = 192)]
    pub height: u32,
}

/// `vireid synth regdb`.
#[derive(Debug, Clone, clap::Args)]
pub struct RegdbArgs {
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of identities (at least 2: each trial puts half in train, half in test).
    #[arg(long)]
    pub ids: u32,
    /// Random seed: the same seed gives the same output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images per identity and sensor (RegDB has 10).
    #[arg(long, default_value_t = REGDB_IMAGES)]
    pub images: u32,
    /// Crop size (RegDB's crops are about 64×128; a GPU recipe trains at 128×256 or 144×288).
    #[arg(long, default_value_t = 64)]
    pub width: u32,
    /// Crop height in pixels.
    #[arg(long, default_value_t = 128)]
    pub height: u32,
    /// Co-registered sensors: visible image k and thermal image k show the same
    /// instant (pose, place, box), as the real RegDB rig and a dual-spectrum
    /// box capture them; the pairs are listed in `idx/pairs.txt`.
    #[arg(long)]
    pub paired: bool,
}

/// How `vireid synth regdb` renders.
#[derive(Debug, Clone, Copy)]
pub struct RegdbOptions {
    pub images: u32,
    pub width: u32,
    pub height: u32,
    pub paired: bool,
}

impl Default for RegdbOptions {
    fn default() -> Self {
        RegdbOptions { images: REGDB_IMAGES, width: 64, height: 128, paired: false }
    }
}

/// SYSU-MM01 cameras: (folder, sensor).
pub const SYSU_CAMERAS: [(&str, CropSensor); 6] = [
    ("cam1", CropSensor::RgbDay { indoor: true }),
    ("cam2", CropSensor::RgbDay { indoor: true }),
    ("cam3", CropSensor::Nir { indoor: true }),
    ("cam4", CropSensor::RgbDay { indoor: false }),
    ("cam5", CropSensor::RgbDay { indoor: false }),
    ("cam6", CropSensor::Nir { indoor: false }),
];

const JPEG_QUALITY: u8 = 90;

fn check_size(width: u32, height: u32) -> Result<()> {
    if !(32..=1024).contains(&width) || !(64..=2048).contains(&height) {
        invalid!("crop size {width}x{height} unsupported: give --width 32..1024 and --height 64..2048");
    }
    Ok(())
}

fn check_ids(ids: u32, min: u32) -> Result<()> {
    if ids < min {
        invalid!("--ids {ids} is too small: give at least {min} identities");
    }
    if ids > 9999 {
        invalid!("--ids {ids} is too large: the layouts number identities with 4 digits (at most 9999)");
    }
    Ok(())
}

pub(crate) fn save_jpeg(img: &image::RgbImage, path: &Path) -> Result<()> {
    let file = std::fs::File::create(path).file(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut w, JPEG_QUALITY)
        .encode_image(img)
        .file(|| format!("cannot encode {}", path.display()))?;
    Ok(())
}

/// Which SYSU cameras identity `id` appears in: each camera with probability
/// 0.8, but always at least one RGB and one IR camera.
pub fn sysu_presence(seed: u64, id: u32) -> [bool; 6] {
    let mut rng = rng_for(seed, &[0x5E5E, id as u64]);
    let mut present = [false; 6];
    for p in present.iter_mut() {
        *p = rng.random::<f32>() < 0.8;
    }
    if !(present[0] || present[1] || present[3] || present[4]) {
        present[[0, 1, 3, 4][rng.random_range(0..4)]] = true;
    }
    if !(present[2] || present[5]) {
        present[[2, 5][rng.random_range(0..2)]] = true;
    }
    present
}

/// SYSU-style split of ids 1..=n into (train, val, test), each sorted.
pub fn sysu_split(seed: u64, n: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let mut ids: Vec<u32> = (1..=n).collect();
    ids.shuffle(&mut rng_for(seed, &[0x5B117]));
    let n_test = ((n as f32 * 96.0 / 491.0).round() as usize).clamp(1, n as usize - 1);
    let n_val = ((n as f32 * 99.0 / 491.0).round() as usize).min(n as usize - 1 - n_test);
    let mut test = ids[..n_test].to_vec();
    let mut val = ids[n_test..n_test + n_val].to_vec();
    let mut train = ids[n_test + n_val..].to_vec();
    test.sort_unstable();
    val.sort_unstable();
    train.sort_unstable();
    (train, val, test)
}

/// Writes `DIR/attributes.csv` (see [`super::identity::ATTRIBUTES`]).
fn write_attributes(out: &Path, seed: u64, ids: u32) -> Result<()> {
    let file = out.join("attributes.csv");
    std::fs::write(&file, super::identity::attributes_csv(seed, 1..=ids))
        .file(|| format!("cannot write {}", file.display()))
}

fn id_line(ids: &[u32]) -> String {
    let mut s = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
    s.push('\n');
    s
}

/// Writes a SYSU-MM01-layout dataset; returns the number of images.
pub fn write_sysu(out: &Path, ids: u32, seed: u64, images_per_cam: u32, width: u32, height: u32) -> Result<usize> {
    check_ids(ids, 2)?;
    check_size(width, height)?;
    if images_per_cam == 0 || images_per_cam > 9999 {
        invalid!("--images-per-cam {images_per_cam} is out of range: give 1 to 9999");
    }
    ensure_out_dir(out)?;
    let mut jobs = Vec::new();
    for id in 1..=ids {
        let present = sysu_presence(seed, id);
        for (cam, &(name, _)) in SYSU_CAMERAS.iter().enumerate() {
            if present[cam] {
                jobs.push((id, cam));
            }
            let _ = name;
        }
    }
    let bar = progress_bar((jobs.len() as u64) * images_per_cam as u64, "sysu images");
    jobs.par_iter().try_for_each(|&(id, cam)| -> Result<()> {
        let person = Identity::generate(seed, id);
        let (name, sensor) = SYSU_CAMERAS[cam];
        let dir = out.join(name).join(format!("{id:04}"));
        std::fs::create_dir_all(&dir).file(|| format!("cannot create {}", dir.display()))?;
        for k in 1..=images_per_cam {
            let mut rng = rng_for(seed, &[0xC40, id as u64, cam as u64, k as u64]);
            let img = render_crop(&person, sensor, seed ^ (0xCA0 + cam as u64), width, height, &mut rng);
            save_jpeg(&img, &dir.join(format!("{k:04}.jpg")))?;
            bar.inc(1);
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let exp = out.join("exp");
    std::fs::create_dir_all(&exp).file(|| format!("cannot create {}", exp.display()))?;
    let (train, val, test) = sysu_split(seed, ids);
    for (file, list) in [("train_id.txt", &train), ("val_id.txt", &val), ("test_id.txt", &test)] {
        std::fs::write(exp.join(file), id_line(list)).file(|| format!("cannot write {}", exp.join(file).display()))?;
    }
    write_attributes(out, seed, ids)?;
    Ok(jobs.len() * images_per_cam as usize)
}

pub const REGDB_IMAGES: u32 = 10;
pub const REGDB_TRIALS: u32 = 10;

/// Relative path of RegDB image `k` (0-based, of `images` per sensor) of identity `id`.
pub fn regdb_relpath(seed: u64, id: u32, thermal: bool, k: u32, images: u32) -> String {
    let person = Identity::generate(seed, id);
    let sex = if person.female { "female" } else { "male" };
    // RegDB films people walking towards and away from the camera.
    let side = if k < images / 2 { "front" } else { "back" };
    let counter = (id - 1) * images + k + 1;
    if thermal {
        format!("Thermal/{id}/{sex}_{side}_t_{counter:05}_{id}.jpg")
    } else {
        format!("Visible/{id}/{sex}_{side}_v_{counter:05}_{id}.jpg")
    }
}

/// Writes a RegDB-layout dataset; returns the number of images.
pub fn write_regdb(out: &Path, ids: u32, seed: u64, opts: RegdbOptions) -> Result<usize> {
    check_ids(ids, 2)?;
    check_size(opts.width, opts.height)?;
    if opts.images == 0 || opts.images > 999 {
        invalid!("--images {} is out of range: give 1 to 999 images per identity and sensor", opts.images);
    }
    ensure_out_dir(out)?;
    let (w, h, images) = (opts.width, opts.height, opts.images);
    let bar = progress_bar(ids as u64 * 2 * images as u64, "regdb images");
    (1..=ids).into_par_iter().try_for_each(|id| -> Result<()> {
        let person = Identity::generate(seed, id);
        for thermal in [false, true] {
            let dir = out.join(regdb_relpath(seed, id, thermal, 0, images));
            let dir = dir.parent().ok_or_else(|| super::SynthError::Invalid("an image path has no folder".into()))?;
            std::fs::create_dir_all(dir).file(|| format!("cannot create {}", dir.display()))?;
        }
        let path = |thermal, k| out.join(regdb_relpath(seed, id, thermal, k, images));
        for k in 0..images {
            // RegDB's two cameras share one site.
            let site = seed ^ 0x4E6D;
            if opts.paired {
                let mut rng = rng_for(seed, &[0x4E6DB9, id as u64, k as u64]);
                let (rgb, thermal) = render_crop_pair(&person, site, w, h, &mut rng);
                save_jpeg(&rgb, &path(false, k))?;
                save_jpeg(&thermal, &path(true, k))?;
                bar.inc(2);
                continue;
            }
            for (thermal, sensor) in [(false, CropSensor::RgbDay { indoor: false }), (true, CropSensor::Thermal)] {
                let mut rng = rng_for(seed, &[0x4E6DB, id as u64, thermal as u64, k as u64]);
                save_jpeg(&render_crop(&person, sensor, site, w, h, &mut rng), &path(thermal, k))?;
                bar.inc(1);
            }
        }
        Ok(())
    })?;
    bar.finish_and_clear();
    let idx = out.join("idx");
    std::fs::create_dir_all(&idx).file(|| format!("cannot create {}", idx.display()))?;
    for trial in 1..=REGDB_TRIALS {
        let mut order: Vec<u32> = (1..=ids).collect();
        order.shuffle(&mut rng_for(seed, &[0x4E6DB5, trial as u64]));
        let n_train = (ids / 2) as usize;
        let mut train = order[..n_train].to_vec();
        let mut test = order[n_train..].to_vec();
        train.sort_unstable();
        test.sort_unstable();
        for (split, list) in [("train", &train), ("test", &test)] {
            for (thermal, modality) in [(false, "visible"), (true, "thermal")] {
                let mut text = String::new();
                for (label, &id) in list.iter().enumerate() {
                    for k in 0..images {
                        let _ = writeln!(text, "{} {}", regdb_relpath(seed, id, thermal, k, images), label);
                    }
                }
                let file = idx.join(format!("{split}_{modality}_{trial}.txt"));
                std::fs::write(&file, text).file(|| format!("cannot write {}", file.display()))?;
            }
        }
    }
    if opts.paired {
        write_pairs(
            &idx.join("pairs.txt"),
            (1..=ids).flat_map(|id| {
                (0..images)
                    .map(move |k| (regdb_relpath(seed, id, false, k, images), regdb_relpath(seed, id, true, k, images)))
            }),
        )?;
    }
    write_attributes(out, seed, ids)?;
    Ok((ids * 2 * images) as usize)
}

/// `idx/pairs.txt`: one co-observed instant per line, `<visible relpath> <thermal relpath>`,
/// the RGB and thermal crops of one person at one moment. `vireid synth scene --crops`
/// writes the same file, and training reads it for the paired alignment term.
pub fn write_pairs(file: &Path, pairs: impl IntoIterator<Item = (String, String)>) -> Result<()> {
    let mut text = String::from("# visible thermal: the same person at the same instant\n");
    for (rgb, thermal) in pairs {
        let _ = writeln!(text, "{rgb} {thermal}");
    }
    std::fs::write(file, text).file(|| format!("cannot write {}", file.display()))
}

pub fn run_sysu(a: &SysuArgs) -> Result<()> {
    let t = std::time::Instant::now();
    let n = write_sysu(&a.out, a.ids, a.seed, a.images_per_cam, a.width, a.height)?;
    println!(
        "wrote {n} images of {} identities in the SYSU-MM01 layout to {} in {:.1} s",
        a.ids,
        a.out.display(),
        t.elapsed().as_secs_f32()
    );
    Ok(())
}

pub fn run_regdb(a: &RegdbArgs) -> Result<()> {
    let t = std::time::Instant::now();
    let opts = RegdbOptions { images: a.images, width: a.width, height: a.height, paired: a.paired };
    let n = write_regdb(&a.out, a.ids, a.seed, opts)?;
    println!(
        "wrote {n} images of {} identities in the RegDB layout to {} in {:.1} s",
        a.ids,
        a.out.display(),
        t.elapsed().as_secs_f32()
    );
    Ok(())
}
