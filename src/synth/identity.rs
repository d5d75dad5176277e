//! Synthetic identities: everything about a person that stays the same from
//! image to image (body, hair, garments, materials, accessories), drawn
//! deterministically from `(seed, id)`.
//!
//! Colour and material are drawn independently: a garment's colour only shows
//! in visible light, its material (insulation, emissivity, near-infrared
//! reflectance) only in thermal/NIR. So colour cannot be the cue the two
//! modalities share — shape, garment outlines and accessories are.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::rng_for;

/// What a garment or accessory is made of; drives the thermal and NIR looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Material {
    Cotton,
    Denim,
    Wool,
    Leather,
    Synthetic,
    Down,
    Canvas,
    Rubber,
}

impl Material {
    const GARMENT: [Material; 6] =
        [Material::Cotton, Material::Denim, Material::Wool, Material::Leather, Material::Synthetic, Material::Down];

    /// Thermal insulation (roughly clo): how much of the body's heat the layer holds back.
    pub fn insulation(self) -> f32 {
        match self {
            Material::Cotton => 0.25,
            Material::Synthetic => 0.35,
            Material::Denim => 0.5,
            Material::Leather => 0.7,
            Material::Wool => 0.9,
            Material::Canvas => 1.2,
            Material::Rubber => 1.0,
            Material::Down => 2.2,
        }
    }

    /// Long-wave emissivity; low values reflect the (cooler) surroundings.
    pub fn emissivity(self) -> f32 {
        match self {
            Material::Leather => 0.82,
            Material::Synthetic => 0.88,
            Material::Rubber => 0.9,
            _ => 0.95,
        }
    }

    /// Near-infrared reflectance (most textile dyes are transparent there).
    pub fn nir_reflectance(self) -> f32 {
        match self {
            Material::Cotton => 0.78,
            Material::Synthetic => 0.55,
            Material::Denim => 0.42,
            Material::Wool => 0.66,
            Material::Leather => 0.28,
            Material::Down => 0.6,
            Material::Canvas => 0.5,
            Material::Rubber => 0.15,
        }
    }

    /// Amplitude of the fine weave/grain texture.
    pub fn texture(self) -> f32 {
        match self {
            Material::Denim => 0.12,
            Material::Wool => 0.1,
            Material::Canvas => 0.08,
            Material::Down => 0.09,
            Material::Cotton => 0.05,
            Material::Leather => 0.04,
            Material::Synthetic => 0.03,
            Material::Rubber => 0.02,
        }
    }
}

/// How a garment's colour is laid out (visible light only).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pattern {
    Solid,
    /// Horizontal or vertical stripes; period in body-height units.
    Stripes {
        period: f32,
        vertical: bool,
    },
    Checks {
        period: f32,
    },
    /// A print on the front: centre offset and radius in body units.
    Logo {
        dx: f32,
        dy: f32,
        radius: f32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopKind {
    TShirt,
    Shirt,
    Jacket,
    Coat,
    Dress,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BottomKind {
    Trousers,
    Shorts,
    Skirt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HairStyle {
    Short,
    Long,
    Bald,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accessory {
    None,
    Backpack,
    ShoulderBag,
    Hat,
}

/// A garment: its colour(s), their layout and its material.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Garment {
    pub colour: [f32; 3],
    pub second: [f32; 3],
    pub pattern: Pattern,
    pub material: Material,
}

impl Garment {
    /// The visible colour at body coordinates `(x, y)` (body-height units).
    pub fn colour_at(&self, x: f32, y: f32, front: bool) -> [f32; 3] {
        match self.pattern {
            Pattern::Solid => self.colour,
            Pattern::Stripes { period, vertical } => {
                let t = if vertical { x } else { y };
                if ((t / period).floor() as i64).rem_euclid(2) == 0 {
                    self.colour
                } else {
                    self.second
                }
            }
            Pattern::Checks { period } => {
                let k = (x / period).floor() as i64 + (y / period).floor() as i64;
                if k.rem_euclid(2) == 0 {
                    self.colour
                } else {
                    self.second
                }
            }
            Pattern::Logo { dx, dy, radius } => {
                let (ddx, ddy) = (x - dx, y - dy);
                if front && ddx * ddx + ddy * ddy < radius * radius {
                    self.second
                } else {
                    self.colour
                }
            }
        }
    }
}

/// Everything about one synthetic person that does not change between images.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub id: u32,
    pub female: bool,
    /// Stature relative to the average (scales the drawing in scenes).
    pub stature: f32,
    /// Shoulder/hip width factor.
    pub build: f32,
    /// Leg length relative to the average.
    pub leg_ratio: f32,
    pub skin: [f32; 3],
    /// Skin temperature offset (°C) — people run warmer or cooler.
    pub skin_temp_offset: f32,
    pub hair: [f32; 3],
    pub hair_style: HairStyle,
    pub top_kind: TopKind,
    pub top: Garment,
    pub long_sleeves: bool,
    pub bottom_kind: BottomKind,
    pub bottom: Garment,
    pub shoes: [f32; 3],
    pub accessory: Accessory,
    pub accessory_colour: [f32; 3],
    pub accessory_material: Material,
    /// Walking speed factor and stride frequency (gait is identity-specific).
    pub gait_speed: f32,
}

/// A colour from hue/saturation/value in [0,1].
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    let h6 = (h.rem_euclid(1.0)) * 6.0;
    let c = v * s;
    let x = c * (1.0 - ((h6 % 2.0) - 1.0).abs());
    let (r, g, b) = match h6 as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = v - c;
    [r + m, g + m, b + m]
}

fn garment_colour(rng: &mut ChaCha8Rng) -> [f32; 3] {
    // Mostly saturated colours, some neutrals (black/grey/white/navy) as in real crowds.
    if rng.random::<f32>() < 0.22 {
        let v = [0.08, 0.25, 0.5, 0.85][rng.random_range(0..4)];
        let tint = rng.random_range(-0.03..0.03);
        [v + tint, v, v - tint]
    } else {
        hsv_to_rgb(rng.random(), rng.random_range(0.45..0.95), rng.random_range(0.3..0.95))
    }
}

/// Printed and woven patterns are lower-contrast than a flat pick of two
/// random colours would be: the second colour leans towards the first.
fn soften(base: [f32; 3], other: [f32; 3]) -> [f32; 3] {
    std::array::from_fn(|k| base[k] * 0.45 + other[k] * 0.55)
}

fn pattern(rng: &mut ChaCha8Rng, logo_dy: f32) -> Pattern {
    match rng.random_range(0..10) {
        0..=4 => Pattern::Solid,
        5 | 6 => Pattern::Stripes { period: rng.random_range(0.02..0.05), vertical: rng.random::<f32>() < 0.25 },
        7 => Pattern::Checks { period: rng.random_range(0.025..0.05) },
        _ => Pattern::Logo { dx: rng.random_range(-0.03..0.03), dy: logo_dy, radius: rng.random_range(0.03..0.055) },
    }
}

impl Identity {
    /// The identity `id` of the population `seed`. Pure function of its inputs.
    pub fn generate(seed: u64, id: u32) -> Identity {
        let mut rng = rng_for(seed, &[0x1D, id as u64]);
        let female = rng.random::<f32>() < 0.5;
        let skin_v: f32 = rng.random_range(0.3..0.95);
        let skin = [skin_v * 0.95 + 0.04, skin_v * 0.75 + 0.02, skin_v * 0.6];
        let hair = match rng.random_range(0..5) {
            0 => [0.05, 0.04, 0.03],
            1 => [0.25, 0.15, 0.08],
            2 => [0.55, 0.4, 0.2],
            3 => [0.5, 0.5, 0.5],
            _ => [0.12, 0.08, 0.05],
        };
        let hair_style = match rng.random_range(0..10) {
            0 => HairStyle::Bald,
            1..=3 => HairStyle::Long,
            _ if female && rng.random::<f32>() < 0.6 => HairStyle::Long,
            _ => HairStyle::Short,
        };
        let top_kind = match rng.random_range(0..10) {
            0..=2 => TopKind::TShirt,
            3 | 4 => TopKind::Shirt,
            5 | 6 => TopKind::Jacket,
            7 => TopKind::Coat,
            _ if female => TopKind::Dress,
            _ => TopKind::TShirt,
        };
        let top_material = match top_kind {
            TopKind::TShirt => [Material::Cotton, Material::Synthetic][rng.random_range(0..2)],
            TopKind::Coat => [Material::Wool, Material::Down][rng.random_range(0..2)],
            _ => Material::GARMENT[rng.random_range(0..Material::GARMENT.len())],
        };
        let top_colour = garment_colour(&mut rng);
        let top = Garment {
            colour: top_colour,
            second: soften(top_colour, garment_colour(&mut rng)),
            pattern: pattern(&mut rng, 0.28),
            material: top_material,
        };
        let long_sleeves = match top_kind {
            TopKind::TShirt => false,
            TopKind::Jacket | TopKind::Coat => true,
            _ => rng.random::<f32>() < 0.5,
        };
        let bottom_kind = match rng.random_range(0..10) {
            0..=5 => BottomKind::Trousers,
            6 | 7 => BottomKind::Shorts,
            _ if female => BottomKind::Skirt,
            _ => BottomKind::Trousers,
        };
        let bottom_material = match rng.random_range(0..4) {
            0 | 1 => Material::Denim,
            2 => Material::Cotton,
            _ => Material::GARMENT[rng.random_range(0..Material::GARMENT.len())],
        };
        let bottom_colour = garment_colour(&mut rng);
        let bottom = Garment {
            colour: bottom_colour,
            second: soften(bottom_colour, garment_colour(&mut rng)),
            pattern: if rng.random::<f32>() < 0.75 { Pattern::Solid } else { pattern(&mut rng, 0.6) },
            material: bottom_material,
        };
        let accessory = match rng.random_range(0..10) {
            0..=2 => Accessory::Backpack,
            3 | 4 => Accessory::ShoulderBag,
            5 => Accessory::Hat,
            _ => Accessory::None,
        };
        Identity {
            id,
            female,
            stature: rng.random_range(0.9..1.08) * if female { 0.96 } else { 1.0 },
            build: rng.random_range(0.85..1.2) * if female { 0.92 } else { 1.0 },
            leg_ratio: rng.random_range(0.94..1.06),
            skin,
            skin_temp_offset: rng.random_range(-0.8..0.8),
            hair,
            hair_style,
            top_kind,
            top,
            long_sleeves,
            bottom_kind,
            bottom,
            shoes: garment_colour(&mut rng).map(|c| c * 0.5),
            accessory,
            accessory_colour: garment_colour(&mut rng),
            accessory_material: [Material::Canvas, Material::Leather, Material::Synthetic][rng.random_range(0..3)],
            gait_speed: rng.random_range(0.85..1.15),
        }
    }
}

/// The attributes both sensors show — garment kinds, sleeves, hair style,
/// accessory, build — and not colour, which only RGB shows. Names and class
/// counts, in the column order of [`Identity::attributes`]: the header of
/// the datasets' `attributes.csv`, which training uses as extra supervision.
pub const ATTRIBUTES: [(&str, u8); 8] = [
    ("female", 2),
    ("hair_style", 3),
    ("top_kind", 5),
    ("long_sleeves", 2),
    ("bottom_kind", 3),
    ("accessory", 4),
    ("build", 3),
    ("stature", 3),
];

/// Which of three bins `value` falls in, split at `cuts`.
fn tertile(value: f32, cuts: [f32; 2]) -> u8 {
    (value >= cuts[0]) as u8 + (value >= cuts[1]) as u8
}

impl Identity {
    /// Class indices of [`ATTRIBUTES`], in that order.
    pub fn attributes(&self) -> [u8; ATTRIBUTES.len()] {
        [
            self.female as u8,
            match self.hair_style {
                HairStyle::Short => 0,
                HairStyle::Long => 1,
                HairStyle::Bald => 2,
            },
            match self.top_kind {
                TopKind::TShirt => 0,
                TopKind::Shirt => 1,
                TopKind::Jacket => 2,
                TopKind::Coat => 3,
                TopKind::Dress => 4,
            },
            self.long_sleeves as u8,
            match self.bottom_kind {
                BottomKind::Trousers => 0,
                BottomKind::Shorts => 1,
                BottomKind::Skirt => 2,
            },
            match self.accessory {
                Accessory::None => 0,
                Accessory::Backpack => 1,
                Accessory::ShoulderBag => 2,
                Accessory::Hat => 3,
            },
            // Cuts near the tertiles of the drawn distributions (both sexes).
            tertile(self.build, [0.94, 1.05]),
            tertile(self.stature, [0.95, 1.01]),
        ]
    }
}

/// `attributes.csv` for identities `ids` of population `seed`: a header
/// `id,<name>:<classes>,…` and one row of class indices per identity.
pub fn attributes_csv(seed: u64, ids: impl IntoIterator<Item = u32>) -> String {
    let mut text = String::from("id");
    for (name, classes) in ATTRIBUTES {
        text.push_str(&format!(",{name}:{classes}"));
    }
    text.push('\n');
    for id in ids {
        text.push_str(&id.to_string());
        for v in Identity::generate(seed, id).attributes() {
            text.push_str(&format!(",{v}"));
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_varied() {
        assert_eq!(Identity::generate(7, 3), Identity::generate(7, 3));
        assert_ne!(Identity::generate(7, 3), Identity::generate(7, 4));
        assert_ne!(Identity::generate(7, 3), Identity::generate(8, 3));
        // 1,000 identities must be distinguishable from each other.
        let mut keys = std::collections::HashSet::new();
        for id in 0..1000 {
            let p = Identity::generate(1, id);
            keys.insert(format!("{:?}", (p.top.colour, p.bottom.colour, p.top_kind, p.accessory)));
        }
        assert_eq!(keys.len(), 1000);
    }

    #[test]
    fn attributes_in_range_and_varied() {
        let mut seen = vec![std::collections::HashSet::new(); ATTRIBUTES.len()];
        for id in 1..=2000 {
            for (k, v) in Identity::generate(3, id).attributes().into_iter().enumerate() {
                assert!(v < ATTRIBUTES[k].1, "{} = {v} out of range", ATTRIBUTES[k].0);
                seen[k].insert(v);
            }
        }
        // every class of every attribute occurs in a population of 2,000
        for (k, (name, classes)) in ATTRIBUTES.iter().enumerate() {
            assert_eq!(seen[k].len(), *classes as usize, "{name}: only {:?}", seen[k]);
        }
        let csv = attributes_csv(3, [1, 2]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "id,female:2,hair_style:3,top_kind:5,long_sleeves:2,bottom_kind:3,accessory:4,build:3,stature:3"
        );
        assert_eq!(lines.len(), 3);
        assert!(lines[1].starts_with("1,") && lines[1].split(',').count() == 9);
    }
}
