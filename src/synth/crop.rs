//! One person crop as a detector would hand it over: the person roughly
//! centred, box jitter, scale change, sometimes partly occluded, over a
//! camera-typical background, seen by one sensor.

use image::{DynamicImage, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::identity::Identity;
use super::render::{render_person, Environment, Placement, Pose, View};
use super::sensor::{nir_image, rgb_image, thermal_image, Backdrop, Canvas, NirLook, RgbLook, Stuff, ThermalLook};

/// Which sensor and setting a crop comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropSensor {
    RgbDay {
        indoor: bool,
    },
    RgbNight,
    Thermal,
    /// Active near-infrared (SYSU-MM01's IR cameras).
    Nir {
        indoor: bool,
    },
}

impl CropSensor {
    fn indoor(self) -> bool {
        matches!(self, CropSensor::RgbDay { indoor: true } | CropSensor::Nir { indoor: true })
    }
}

/// A person placed in front of a camera's backdrop, before any sensor has
/// looked at it: what two co-registered sensors of one box share.
struct CropScene {
    canvas: Canvas,
    ambient_c: f32,
}

/// Renders one `w × h` crop of `person` seen by a camera at `site` (a fixed
/// camera looks at the same backdrop every time; the site number picks it).
/// All other randomness comes from `rng`. Grey sensors are returned
/// replicated to three channels (as the datasets store them).
pub fn render_crop(person: &Identity, sensor: CropSensor, site: u64, w: u32, h: u32, rng: &mut ChaCha8Rng) -> RgbImage {
    let scene = compose(person, sensor.indoor(), site, w, h, rng);
    look(&scene, sensor, rng)
}

/// One instant seen by both sensors of an outdoor dual-spectrum box (as the
/// real RegDB rig captures it): the same pose, place and box, once by the
/// day RGB camera and once by the thermal camera. Returns (RGB, thermal).
pub fn render_crop_pair(person: &Identity, site: u64, w: u32, h: u32, rng: &mut ChaCha8Rng) -> (RgbImage, RgbImage) {
    let scene = compose(person, false, site, w, h, rng);
    let rgb = look(&scene, CropSensor::RgbDay { indoor: false }, rng);
    let thermal = look(&scene, CropSensor::Thermal, rng);
    (rgb, thermal)
}

/// Pose, box, backdrop and occluders: everything before the sensor. The
/// order of the draws from `rng` is part of the datasets' determinism.
fn compose(person: &Identity, indoor: bool, site: u64, w: u32, h: u32, rng: &mut ChaCha8Rng) -> CropScene {
    let view = View::ALL[rng.random_range(0..View::ALL.len())];
    let pose = Pose { view, phase: rng.random() };
    // Detector-like box: the person fills 78–95 % of the height, off-centre by a few %.
    let scale = h as f32 * rng.random_range(0.78..0.95);
    let ox = w as f32 * (0.5 + rng.random_range(-0.06..0.06));
    let oy = (h as f32 - scale) * rng.random_range(0.2..0.8);
    let ambient_c = if indoor { rng.random_range(20.0..25.0) } else { rng.random_range(5.0..28.0) };
    let env = Environment { ambient_c, reflected_c: if indoor { ambient_c } else { ambient_c - 15.0 } };
    let sunny = !indoor && rng.random::<bool>();
    let mut site_rng = super::rng_for(site, &[0x517E]);
    let horizon = site_rng.random_range(0.45..0.7) + rng.random_range(-0.04..0.04);
    let backdrop = Backdrop::random(&mut site_rng, indoor, ambient_c, sunny, horizon);
    let mut canvas = Canvas::new(w, h);
    backdrop.paint(&mut canvas);
    let layer = render_person(person, pose, Placement { scale, ox, oy }, env, (0, 0, w as i32, h as i32));
    canvas.composite(&layer);
    // Partial occlusion: a bin or railing in front of the legs, or a post at one side.
    if rng.random::<f32>() < 0.15 {
        let obj = Stuff {
            rgb: super::identity::hsv_to_rgb(rng.random(), rng.random_range(0.0..0.4), rng.random_range(0.15..0.7)),
            temp_c: ambient_c + rng.random_range(-2.0..2.0),
            nir: rng.random_range(0.2..0.6),
            texture: 0.1,
        };
        let (wi, hi) = (w as i32, h as i32);
        if rng.random::<bool>() {
            let top = hi - (h as f32 * rng.random_range(0.12..0.32)) as i32;
            canvas.fill_rect(0, top, wi, hi, &obj, rng.random());
        } else {
            let ow = (w as f32 * rng.random_range(0.12..0.28)) as i32;
            let x0 = if rng.random::<bool>() { 0 } else { wi - ow };
            canvas.fill_rect(x0, 0, x0 + ow, hi, &obj, rng.random());
        }
    }
    CropScene { canvas, ambient_c }
}

/// What one sensor makes of a composed scene.
fn look(scene: &CropScene, sensor: CropSensor, rng: &mut ChaCha8Rng) -> RgbImage {
    let canvas = &scene.canvas;
    match sensor {
        CropSensor::RgbDay { indoor } => rgb_image(canvas, RgbLook::day(rng, indoor), rng),
        CropSensor::RgbNight => rgb_image(canvas, RgbLook::night(rng), rng),
        CropSensor::Thermal => {
            let look = ThermalLook::around(scene.ambient_c, rng);
            DynamicImage::ImageLuma8(thermal_image(canvas, look, rng)).to_rgb8()
        }
        CropSensor::Nir { .. } => DynamicImage::ImageLuma8(nir_image(canvas, NirLook::random(rng), rng)).to_rgb8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng_for;

    /// Colour must not be the cue the modalities share: repainting every
    /// garment leaves thermal and NIR crops bit-identical, while RGB changes.
    #[test]
    fn thermal_and_nir_ignore_garment_colour() {
        let person = Identity::generate(9, 4);
        let mut repainted = person.clone();
        for g in [&mut repainted.top, &mut repainted.bottom] {
            g.colour = [1.0 - g.colour[0], g.colour[2], g.colour[1]];
            g.second = [0.1, 0.9, 0.2];
        }
        repainted.accessory_colour = [0.9, 0.1, 0.6];
        let render = |p: &Identity, sensor| render_crop(p, sensor, 3, 48, 96, &mut rng_for(1, &[2]));
        for sensor in [CropSensor::Thermal, CropSensor::Nir { indoor: true }] {
            assert_eq!(render(&person, sensor), render(&repainted, sensor), "{sensor:?} saw colour");
        }
        let day = CropSensor::RgbDay { indoor: false };
        assert_ne!(render(&person, day), render(&repainted, day));
    }
}
