//! The world behind the people and the three sensors that look at it.
//!
//! A [`Canvas`] holds, per pixel, what the scene *is*: visible albedo,
//! temperature (°C) and near-infrared reflectance. Backgrounds and person
//! layers are composited into it; then a sensor model turns it into an image:
//! - [`rgb_image`]: illumination, colour cast, day or night (dark, noisy,
//!   colour-poor), noise.
//! - [`thermal_image`]: long-wave infrared: temperature → grey through a
//!   fixed display range around ambient, captured at low resolution and
//!   upscaled, with temporal and fixed-pattern noise. Colour plays no part.
//! - [`nir_image`]: active near-infrared (SYSU-MM01 cams 3 and 6): grey, the
//!   illuminator's fall-off, material reflectance and texture.

use image::{GrayImage, RgbImage};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::identity::hsv_to_rgb;
use super::render::{hash_noise, PersonLayer};

/// What the scene is, per pixel, before a sensor looks at it.
#[derive(Debug, Clone)]
pub struct Canvas {
    pub w: u32,
    pub h: u32,
    pub rgb: Vec<[f32; 3]>,
    pub temp: Vec<f32>,
    pub nir: Vec<f32>,
    /// 1 where the pixel is far background (the NIR illuminator reaches it weakly).
    pub depth: Vec<f32>,
}

impl Canvas {
    pub fn new(w: u32, h: u32) -> Canvas {
        let n = (w * h) as usize;
        Canvas { w, h, rgb: vec![[0.0; 3]; n], temp: vec![0.0; n], nir: vec![0.0; n], depth: vec![1.0; n] }
    }

    /// Composites a person layer over the canvas.
    pub fn composite(&mut self, layer: &PersonLayer) {
        for ly in 0..layer.h {
            let y = layer.y0 + ly as i32;
            if y < 0 || y >= self.h as i32 {
                continue;
            }
            for lx in 0..layer.w {
                let x = layer.x0 + lx as i32;
                if x < 0 || x >= self.w as i32 {
                    continue;
                }
                let li = (ly * layer.w + lx) as usize;
                let a = layer.alpha[li];
                if a <= 0.0 {
                    continue;
                }
                let ci = (y as u32 * self.w + x as u32) as usize;
                let keep = 1.0 - a;
                for ch in 0..3 {
                    self.rgb[ci][ch] = self.rgb[ci][ch] * keep + layer.rgb[li][ch];
                }
                self.temp[ci] = self.temp[ci] * keep + layer.temp[li];
                self.nir[ci] = self.nir[ci] * keep + layer.nir[li];
                self.depth[ci] *= keep;
            }
        }
    }

    /// Darkens the ground under a person: a soft elliptic contact shadow centred
    /// at `(cx, cy)` (the feet), `rx × ry` pixels. Shade is cooler in thermal.
    pub fn shadow(&mut self, cx: f32, cy: f32, rx: f32, ry: f32, strength: f32) {
        let (x0, x1) = ((cx - rx).floor().max(0.0) as u32, ((cx + rx).ceil().max(0.0) as u32).min(self.w));
        let (y0, y1) = ((cy - ry).floor().max(0.0) as u32, ((cy + ry).ceil().max(0.0) as u32).min(self.h));
        for y in y0..y1 {
            for x in x0..x1 {
                let (u, v) = ((x as f32 + 0.5 - cx) / rx, (y as f32 + 0.5 - cy) / ry);
                let d = u * u + v * v;
                if d >= 1.0 {
                    continue;
                }
                let k = 1.0 - strength * (1.0 - d);
                let i = (y * self.w + x) as usize;
                self.rgb[i] = self.rgb[i].map(|c| c * k);
                self.temp[i] -= (1.0 - k) * 2.0;
            }
        }
    }

    /// Paints an opaque foreground object (a bin, a bench, a post) over a rectangle.
    pub fn fill_rect(&mut self, x0: i32, y0: i32, x1: i32, y1: i32, obj: &Stuff, salt: u32) {
        for y in y0.max(0)..y1.min(self.h as i32) {
            for x in x0.max(0)..x1.min(self.w as i32) {
                let i = (y as u32 * self.w + x as u32) as usize;
                let t = hash_noise(x / 2, y / 2, salt) * obj.texture;
                let edge = if x == x0 || x == x1 - 1 { 0.75 } else { 1.0 };
                self.rgb[i] = obj.rgb.map(|c| c * (1.0 + t) * edge);
                self.temp[i] = obj.temp_c + t;
                self.nir[i] = obj.nir * (1.0 + t) * edge;
                self.depth[i] = 0.0;
            }
        }
    }
}

/// A background material: what each sensor sees of it.
#[derive(Debug, Clone, Copy)]
pub struct Stuff {
    pub rgb: [f32; 3],
    pub temp_c: f32,
    pub nir: f32,
    pub texture: f32,
}

/// Smooth value noise in [-0.5, 0.5] with cells of `cell` pixels.
fn value_noise(x: f32, y: f32, cell: f32, salt: u32) -> f32 {
    let (fx, fy) = (x / cell, y / cell);
    let (ix, iy) = (fx.floor() as i32, fy.floor() as i32);
    let (tx, ty) = (fx - ix as f32, fy - iy as f32);
    let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
    let a = hash_noise(ix, iy, salt);
    let b = hash_noise(ix + 1, iy, salt);
    let c = hash_noise(ix, iy + 1, salt);
    let d = hash_noise(ix + 1, iy + 1, salt);
    (a + (b - a) * sx) * (1.0 - sy) + (c + (d - c) * sx) * sy
}

fn fbm(x: f32, y: f32, cell: f32, salt: u32) -> f32 {
    value_noise(x, y, cell, salt) * 0.6
        + value_noise(x, y, cell / 2.5, salt ^ 0x55) * 0.3
        + value_noise(x, y, cell / 6.0, salt ^ 0xaa) * 0.1
}

/// A backdrop: a back wall or façade above a floor or pavement.
#[derive(Debug, Clone)]
pub struct Backdrop {
    pub indoor: bool,
    /// Where wall meets floor, as a fraction of the height.
    pub horizon: f32,
    pub wall: Stuff,
    pub floor: Stuff,
    /// Doors, windows, panels, shrubs: rectangles in fractions of the frame.
    pub features: Vec<([f32; 4], Stuff)>,
    /// Floor tile / paving period in pixels at the bottom of the frame.
    pub tile: f32,
    pub salt: u32,
}

fn muted(rng: &mut ChaCha8Rng, v_lo: f32, v_hi: f32) -> [f32; 3] {
    hsv_to_rgb(rng.random(), rng.random_range(0.05..0.35), rng.random_range(v_lo..v_hi))
}

impl Backdrop {
    /// A random indoor corridor or outdoor plaza at ambient temperature `ambient_c`.
    /// `sunny` warms outdoor pavement (day) — at night it has cooled.
    pub fn random(rng: &mut ChaCha8Rng, indoor: bool, ambient_c: f32, sunny: bool, horizon: f32) -> Backdrop {
        let wall = Stuff {
            rgb: if indoor { muted(rng, 0.55, 0.9) } else { muted(rng, 0.35, 0.75) },
            temp_c: ambient_c + if indoor { 0.5 } else { rng.random_range(-1.0..2.0) },
            nir: rng.random_range(0.35..0.7),
            texture: if indoor { 0.04 } else { 0.08 },
        };
        let floor = Stuff {
            rgb: muted(rng, 0.3, 0.6),
            temp_c: ambient_c + if !indoor && sunny { rng.random_range(4.0..9.0) } else { rng.random_range(-1.5..0.5) },
            nir: rng.random_range(0.3..0.55),
            texture: if indoor { 0.05 } else { 0.09 },
        };
        let mut features = Vec::new();
        let n = rng.random_range(2..6);
        for _ in 0..n {
            let w = rng.random_range(0.06..0.25);
            let h = rng.random_range(0.1..0.35) * horizon;
            let x = rng.random_range(-0.1..1.0);
            let y = horizon - h - rng.random_range(0.0..0.25) * horizon;
            let vegetation = !indoor && rng.random::<f32>() < 0.35;
            let stuff = if vegetation {
                // Foliage: green, cool, bright in near-infrared.
                Stuff {
                    rgb: hsv_to_rgb(rng.random_range(0.22..0.4), 0.6, rng.random_range(0.2..0.5)),
                    temp_c: ambient_c - 1.5,
                    nir: 0.85,
                    texture: 0.3,
                }
            } else if !indoor && rng.random::<f32>() < 0.5 {
                // Window: dark glass reflecting the cold sky.
                Stuff { rgb: muted(rng, 0.1, 0.35), temp_c: ambient_c - 4.0, nir: 0.12, texture: 0.02 }
            } else {
                Stuff {
                    rgb: muted(rng, 0.15, 0.85),
                    temp_c: ambient_c + rng.random_range(-1.0..1.5),
                    nir: rng.random_range(0.2..0.75),
                    texture: 0.05,
                }
            };
            features.push(([x, y.max(0.0), x + w, (y + h).min(horizon)], stuff));
        }
        Backdrop { indoor, horizon, wall, floor, features, tile: rng.random_range(20.0..60.0), salt: rng.random() }
    }

    /// Paints the backdrop over the whole canvas.
    pub fn paint(&self, canvas: &mut Canvas) {
        let (w, h) = (canvas.w as f32, canvas.h as f32);
        let hy = self.horizon * h;
        for y in 0..canvas.h {
            let fy = y as f32;
            for x in 0..canvas.w {
                let fx = x as f32;
                let i = (y * canvas.w + x) as usize;
                let mut stuff = if fy < hy { self.wall } else { self.floor };
                let mut depth = 1.0;
                if fy < hy {
                    for (r, s) in &self.features {
                        if fx >= r[0] * w && fx < r[2] * w && fy >= r[1] * h && fy < r[3] * h {
                            stuff = *s;
                        }
                    }
                } else {
                    depth = 1.0 - 0.5 * ((fy - hy) / (h - hy).max(1.0));
                }
                let n = fbm(fx, fy, 24.0, self.salt) * stuff.texture * 2.0;
                let mut shade = 1.0 + n;
                if fy >= hy {
                    // Perspective tile grout: period grows towards the bottom.
                    let dist = ((fy - hy) / (h - hy).max(1.0)).max(0.02);
                    let period = self.tile * dist;
                    let u = ((fx - w / 2.0) / dist / self.tile).fract().abs();
                    let v = (1.0 / dist * 3.0).fract();
                    // Tiles indoors; outdoor asphalt has no grout.
                    if self.indoor && (u < 0.04 || v < 0.05 * (period / self.tile).max(0.2)) {
                        shade *= 0.93;
                    }
                    // Contact shadows darken the floor line.
                    if fy - hy < 3.0 {
                        shade *= 0.8;
                    }
                }
                canvas.rgb[i] = stuff.rgb.map(|c| c * shade);
                canvas.temp[i] = stuff.temp_c + n * 3.0 + value_noise(fx, fy, 90.0, self.salt ^ 7) * 1.5;
                canvas.nir[i] = stuff.nir * shade;
                canvas.depth[i] = depth;
            }
        }
    }
}

/// A fast deterministic Gaussian-ish noise source (sum of four uniforms),
/// seeded from the image's own ChaCha stream so output does not depend on threads.
pub struct NoiseSource(u64);

impl NoiseSource {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        NoiseSource(rng.random())
    }

    #[inline]
    pub fn sample(&mut self) -> f32 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let s = (z & 0xffff) + ((z >> 16) & 0xffff) + ((z >> 32) & 0xffff) + (z >> 48);
        // Mean 2·65535, variance 4·65536²/12 → unit variance.
        (s as f32 - 131070.0) / (65536.0 * 0.57735)
    }
}

/// Visible-light camera settings.
#[derive(Debug, Clone, Copy)]
pub struct RgbLook {
    /// Illuminant colour × exposure.
    pub illum: [f32; 3],
    pub night: bool,
    /// Noise standard deviation on the 0..1 scale.
    pub noise: f32,
}

impl RgbLook {
    pub fn day(rng: &mut ChaCha8Rng, indoor: bool) -> RgbLook {
        let e = rng.random_range(0.85..1.15);
        let cast = if indoor { [1.05, 0.98, 0.85] } else { [0.97, 1.0, 1.06] };
        RgbLook { illum: cast.map(|c| c * e), night: false, noise: 0.012 }
    }

    pub fn night(rng: &mut ChaCha8Rng) -> RgbLook {
        let e = rng.random_range(0.16..0.26);
        // Sodium / warm LED street lighting.
        RgbLook { illum: [1.0 * e, 0.85 * e, 0.6 * e], night: true, noise: 0.05 }
    }
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0 + 0.5).clamp(0.0, 255.0) as u8
}

/// The lens: a 3×3 binomial blur (edge-clamped). Real optics never resolve
/// single-pixel detail, and without it fine texture aliases when a detector
/// downsamples the frame.
fn optics_blur<T: Copy + Default, const N: usize>(
    src: &[T],
    w: u32,
    h: u32,
    get: impl Fn(T) -> [f32; N],
) -> Vec<[f32; N]> {
    let (w, h) = (w as usize, h as usize);
    let mut tmp = vec![[0.0f32; N]; w * h];
    for y in 0..h {
        for x in 0..w {
            let (l, r) = (x.saturating_sub(1), (x + 1).min(w - 1));
            let (a, b, c) = (get(src[y * w + l]), get(src[y * w + x]), get(src[y * w + r]));
            tmp[y * w + x] = std::array::from_fn(|k| (a[k] + 2.0 * b[k] + c[k]) * 0.25);
        }
    }
    let mut out = vec![[0.0f32; N]; w * h];
    for y in 0..h {
        let (u, d) = (y.saturating_sub(1), (y + 1).min(h - 1));
        for x in 0..w {
            let (a, b, c) = (tmp[u * w + x], tmp[y * w + x], tmp[d * w + x]);
            out[y * w + x] = std::array::from_fn(|k| (a[k] + 2.0 * b[k] + c[k]) * 0.25);
        }
    }
    let _ = T::default;
    out
}

/// The visible-light image of a canvas.
pub fn rgb_image(canvas: &Canvas, look: RgbLook, rng: &mut ChaCha8Rng) -> RgbImage {
    let mut noise = NoiseSource::new(rng);
    let mut img = RgbImage::new(canvas.w, canvas.h);
    let gain = if look.night { 2.2 } else { 1.0 };
    let optics = optics_blur(&canvas.rgb, canvas.w, canvas.h, |c| c);
    for (i, px) in img.pixels_mut().enumerate() {
        let c = optics[i];
        let mut v = [c[0] * look.illum[0] * gain, c[1] * look.illum[1] * gain, c[2] * look.illum[2] * gain];
        if look.night {
            // Low light: the sensor loses colour (chroma denoise) and gains noise.
            let l = 0.3 * v[0] + 0.59 * v[1] + 0.11 * v[2];
            v = v.map(|x| l + (x - l) * 0.25);
            let n = noise.sample() * look.noise;
            let chroma = noise.sample() * look.noise * 0.3;
            v = [v[0] + n + chroma, v[1] + n, v[2] + n - chroma];
        } else {
            let n = noise.sample() * look.noise;
            v = v.map(|x| x + n);
        }
        *px = image::Rgb(v.map(to_u8));
    }
    img
}

/// Long-wave thermal settings: display range and native resolution.
#[derive(Debug, Clone, Copy)]
pub struct ThermalLook {
    /// Temperature shown black / white.
    pub t_lo: f32,
    pub t_hi: f32,
    /// Native resolution divisor (2 = half resolution, upscaled).
    pub downscale: u32,
    /// Temporal noise in °C (NETD-like).
    pub noise_c: f32,
    pub salt: u32,
}

impl ThermalLook {
    pub fn around(ambient_c: f32, rng: &mut ChaCha8Rng) -> ThermalLook {
        ThermalLook {
            t_lo: ambient_c - rng.random_range(3.0..6.0),
            t_hi: 37.0 + rng.random_range(-1.0..1.0),
            downscale: 2,
            noise_c: 0.25,
            salt: rng.random(),
        }
    }
}

/// Box-averages `src` (w×h) by `k`, then bilinearly upsamples back to w×h.
fn low_res(src: &[f32], w: u32, h: u32, k: u32) -> Vec<f32> {
    if k <= 1 {
        return src.to_vec();
    }
    let (lw, lh) = (w.div_ceil(k), h.div_ceil(k));
    let mut low = vec![0.0f32; (lw * lh) as usize];
    let mut cnt = vec![0.0f32; (lw * lh) as usize];
    for y in 0..h {
        for x in 0..w {
            let li = ((y / k) * lw + x / k) as usize;
            low[li] += src[(y * w + x) as usize];
            cnt[li] += 1.0;
        }
    }
    for (v, c) in low.iter_mut().zip(&cnt) {
        *v /= c;
    }
    let mut out = vec![0.0f32; (w * h) as usize];
    for y in 0..h {
        let fy = ((y as f32 + 0.5) / k as f32 - 0.5).clamp(0.0, (lh - 1) as f32);
        let y0 = fy.floor() as u32;
        let y1 = (y0 + 1).min(lh - 1);
        let ty = fy - y0 as f32;
        for x in 0..w {
            let fx = ((x as f32 + 0.5) / k as f32 - 0.5).clamp(0.0, (lw - 1) as f32);
            let x0 = fx.floor() as u32;
            let x1 = (x0 + 1).min(lw - 1);
            let tx = fx - x0 as f32;
            let a = low[(y0 * lw + x0) as usize];
            let b = low[(y0 * lw + x1) as usize];
            let c = low[(y1 * lw + x0) as usize];
            let d = low[(y1 * lw + x1) as usize];
            out[(y * w + x) as usize] = (a + (b - a) * tx) * (1.0 - ty) + (c + (d - c) * tx) * ty;
        }
    }
    out
}

/// The thermal image of a canvas (grey, hotter = brighter).
pub fn thermal_image(canvas: &Canvas, look: ThermalLook, rng: &mut ChaCha8Rng) -> GrayImage {
    let mut noise = NoiseSource::new(rng);
    let k = look.downscale.max(1);
    let (lw, lh) = (canvas.w.div_ceil(k), canvas.h.div_ceil(k));
    // Noise lives at the sensor's native resolution, so it is upscaled with the image.
    let mut temp = canvas.temp.clone();
    let sensor: Vec<f32> = (0..lw * lh)
        .map(|i| noise.sample() * look.noise_c + hash_noise((i % lw) as i32, 0, look.salt) * look.noise_c * 0.8)
        .collect();
    for y in 0..canvas.h {
        for x in 0..canvas.w {
            temp[(y * canvas.w + x) as usize] += sensor[((y / k) * lw + x / k) as usize];
        }
    }
    let t = low_res(&temp, canvas.w, canvas.h, k);
    let span = (look.t_hi - look.t_lo).max(1.0);
    GrayImage::from_fn(canvas.w, canvas.h, |x, y| {
        image::Luma([to_u8((t[(y * canvas.w + x) as usize] - look.t_lo) / span)])
    })
}

/// Active near-infrared settings: illuminator strength and fall-off.
#[derive(Debug, Clone, Copy)]
pub struct NirLook {
    pub gain: f32,
    /// How much darker far background is than people near the camera.
    pub falloff: f32,
    pub noise: f32,
}

impl NirLook {
    pub fn random(rng: &mut ChaCha8Rng) -> NirLook {
        NirLook { gain: rng.random_range(0.85..1.2), falloff: rng.random_range(0.4..0.65), noise: 0.035 }
    }
}

/// The active-NIR image of a canvas (grey; colour plays no part).
pub fn nir_image(canvas: &Canvas, look: NirLook, rng: &mut ChaCha8Rng) -> GrayImage {
    let mut noise = NoiseSource::new(rng);
    let (cx, cy) = (canvas.w as f32 / 2.0, canvas.h as f32 * 0.45);
    let r2 = (canvas.w as f32).hypot(canvas.h as f32).powi(2) / 4.0;
    let mut img = GrayImage::new(canvas.w, canvas.h);
    let optics = optics_blur(&canvas.nir, canvas.w, canvas.h, |v| [v]);
    for (i, px) in img.pixels_mut().enumerate() {
        let (x, y) = ((i as u32 % canvas.w) as f32, (i as u32 / canvas.w) as f32);
        let vignette = 1.0 - 0.45 * ((x - cx).powi(2) + (y - cy).powi(2)) / r2;
        let reach = 1.0 - look.falloff * canvas.depth[i];
        let v = optics[i][0] * look.gain * vignette * reach + noise.sample() * look.noise;
        *px = image::Luma([to_u8(v)]);
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn noise_is_roughly_unit_gaussian() {
        let mut n = NoiseSource(42);
        let xs: Vec<f32> = (0..20000).map(|_| n.sample()).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / xs.len() as f32;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.08, "var {var}");
    }

    #[test]
    fn thermal_shows_temperature_not_colour() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut a = Canvas::new(16, 16);
        let mut b = Canvas::new(16, 16);
        for i in 0..256 {
            a.rgb[i] = [1.0, 0.0, 0.0];
            b.rgb[i] = [0.0, 0.0, 1.0];
            a.temp[i] = 30.0;
            b.temp[i] = 30.0;
        }
        let look = ThermalLook { t_lo: 10.0, t_hi: 37.0, downscale: 2, noise_c: 0.0, salt: 0 };
        assert_eq!(thermal_image(&a, look, &mut rng), thermal_image(&b, look, &mut rng));
    }
}
