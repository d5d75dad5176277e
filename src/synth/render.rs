//! Draws one person in one pose into a [`PersonLayer`]: per pixel the coverage
//! and what each sensor sees there (lit colour, apparent temperature, NIR
//! reflectance), before any background, illumination or noise.
//!
//! The body is a 2-D articulated figure (head, neck, shoulders, torso, arms,
//! two legs in walking gait) built from signed-distance shapes, so edges are
//! anti-aliased and every part gets a cylinder-like normal for shading. That
//! is what a pedestrian detector trained on real people keys on: an upright
//! silhouette with head–shoulder contour and leg gaps.

use super::identity::{Accessory, BottomKind, Garment, HairStyle, Identity, Material, TopKind};

/// Which way the person faces relative to the camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Front,
    Back,
    /// Walking towards image left / right.
    Left,
    Right,
    FrontLeft,
    FrontRight,
    BackLeft,
    BackRight,
}

impl View {
    pub const ALL: [View; 8] = [
        View::Front,
        View::Back,
        View::Left,
        View::Right,
        View::FrontLeft,
        View::FrontRight,
        View::BackLeft,
        View::BackRight,
    ];

    /// 0 for front/back, 1 for profile, in between for oblique views.
    fn side(self) -> f32 {
        match self {
            View::Front | View::Back => 0.0,
            View::Left | View::Right => 1.0,
            _ => 0.55,
        }
    }

    /// +1 when the person heads to image right, -1 to the left.
    fn dir(self) -> f32 {
        match self {
            View::Right | View::FrontRight | View::BackRight => 1.0,
            _ => -1.0,
        }
    }

    /// True when the face (and any front print) is visible.
    fn shows_front(self) -> bool {
        matches!(self, View::Front | View::FrontLeft | View::FrontRight | View::Left | View::Right)
    }

    fn shows_back(self) -> bool {
        matches!(self, View::Back | View::BackLeft | View::BackRight | View::Left | View::Right)
    }

    /// The view of someone walking horizontally in a scene.
    pub fn walking(dir: f32, towards_camera: bool) -> View {
        match (dir > 0.0, towards_camera) {
            (true, true) => View::FrontRight,
            (true, false) => View::BackRight,
            (false, true) => View::FrontLeft,
            (false, false) => View::BackLeft,
        }
    }
}

/// What varies from image to image for one person.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pose {
    pub view: View,
    /// Gait cycle phase in [0, 1).
    pub phase: f32,
}

/// Where the figure lands: `scale` pixels per body height; body origin (head
/// top, centre line) at pixel `(ox, oy)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    pub scale: f32,
    pub ox: f32,
    pub oy: f32,
}

/// Thermal surroundings the garments exchange heat with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Environment {
    pub ambient_c: f32,
    /// Temperature reflected by low-emissivity surfaces (sky is cold).
    pub reflected_c: f32,
}

/// One rendered person. Channels are premultiplied by coverage, so a layer
/// composites over any background as `bg * (1 - alpha) + value`.
#[derive(Debug, Clone)]
pub struct PersonLayer {
    pub x0: i32,
    pub y0: i32,
    pub w: u32,
    pub h: u32,
    pub alpha: Vec<f32>,
    pub rgb: Vec<[f32; 3]>,
    pub temp: Vec<f32>,
    pub nir: Vec<f32>,
}

impl PersonLayer {
    /// Tight box `[x, y, w, h]` of the pixels covered at least half, in frame pixels.
    pub fn tight_box(&self) -> Option<(u32, u32, u32, u32)> {
        let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
        for y in 0..self.h {
            for x in 0..self.w {
                if self.alpha[(y * self.w + x) as usize] >= 0.5 {
                    x0 = x0.min(x);
                    y0 = y0.min(y);
                    x1 = x1.max(x + 1);
                    y1 = y1.max(y + 1);
                }
            }
        }
        if x1 == 0 {
            return None;
        }
        Some((x0, y0, x1 - x0, y1 - y0))
    }
}

type P = (f32, f32);

#[derive(Clone, Copy)]
enum Shape {
    /// Tapered capsule from `a` (radius `ra`) to `b` (radius `rb`).
    Capsule {
        a: P,
        b: P,
        ra: f32,
        rb: f32,
    },
    Ellipse {
        c: P,
        rx: f32,
        ry: f32,
    },
    /// Convex quad (clockwise or not) with rounded corners.
    Quad {
        pts: [P; 4],
        round: f32,
    },
}

#[derive(Clone, Copy)]
enum Paint {
    Flat([f32; 3]),
    Garment(Garment),
}

#[derive(Clone, Copy)]
struct Surface {
    paint: Paint,
    /// Surface temperature before emissivity (°C).
    temp_c: f32,
    emissivity: f32,
    nir: f32,
    texture: f32,
    /// Multiplier for parts on the far side of the body.
    dim: f32,
}

struct Part {
    shape: Shape,
    surface: Surface,
}

fn lerp(a: P, b: P, t: f32) -> P {
    (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t)
}

fn add(a: P, b: P) -> P {
    (a.0 + b.0, a.1 + b.1)
}

impl Shape {
    /// Body-unit bounding box.
    fn bounds(&self) -> (f32, f32, f32, f32) {
        match *self {
            Shape::Capsule { a, b, ra, rb } => {
                let r = ra.max(rb);
                (a.0.min(b.0) - r, a.1.min(b.1) - r, a.0.max(b.0) + r, a.1.max(b.1) + r)
            }
            Shape::Ellipse { c, rx, ry } => (c.0 - rx, c.1 - ry, c.0 + rx, c.1 + ry),
            Shape::Quad { pts, .. } => {
                let xs = pts.iter().map(|p| p.0);
                let ys = pts.iter().map(|p| p.1);
                (
                    xs.clone().fold(f32::MAX, f32::min),
                    ys.clone().fold(f32::MAX, f32::min),
                    xs.fold(f32::MIN, f32::max),
                    ys.fold(f32::MIN, f32::max),
                )
            }
        }
    }

    /// Signed distance (body units, negative inside) and the surface normal's
    /// x and z components (the figure is lit and seen mostly head-on).
    fn eval(&self, p: P) -> (f32, f32, f32) {
        match *self {
            Shape::Capsule { a, b, ra, rb } => {
                let (dx, dy) = (b.0 - a.0, b.1 - a.1);
                let len2 = (dx * dx + dy * dy).max(1e-9);
                let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / len2).clamp(0.0, 1.0);
                let q = lerp(a, b, t);
                let r = ra + (rb - ra) * t;
                let (ox, oy) = (p.0 - q.0, p.1 - q.1);
                let d = (ox * ox + oy * oy).sqrt();
                let nx = (ox / r).clamp(-1.0, 1.0);
                let rel = (d / r).min(1.0);
                (d - r, nx, (1.0 - rel * rel).max(0.0).sqrt())
            }
            Shape::Ellipse { c, rx, ry } => {
                let (u, v) = ((p.0 - c.0) / rx, (p.1 - c.1) / ry);
                let k = (u * u + v * v).sqrt();
                let d = (k - 1.0) * rx.min(ry);
                (d, u.clamp(-1.0, 1.0), (1.0 - k * k).max(0.0).sqrt())
            }
            Shape::Quad { pts, round } => {
                // Convex polygon: the largest signed edge distance (good enough
                // at the scale of a pixel), inflated by `round`.
                let cx = pts.iter().map(|q| q.0).sum::<f32>() / 4.0;
                let cy = pts.iter().map(|q| q.1).sum::<f32>() / 4.0;
                let mut dmax = f32::MIN;
                for i in 0..4 {
                    let (a, b) = (pts[i], pts[(i + 1) % 4]);
                    let (ex, ey) = (b.0 - a.0, b.1 - a.1);
                    let len = (ex * ex + ey * ey).sqrt().max(1e-9);
                    let (mut nx, mut ny) = (ey / len, -ex / len);
                    // Point normals outwards regardless of winding.
                    if (cx - a.0) * nx + (cy - a.1) * ny > 0.0 {
                        nx = -nx;
                        ny = -ny;
                    }
                    dmax = dmax.max((p.0 - a.0) * nx + (p.1 - a.1) * ny);
                }
                let minx = pts[0].0.min(pts[1].0).min(pts[2].0).min(pts[3].0);
                let maxx = pts[0].0.max(pts[1].0).max(pts[2].0).max(pts[3].0);
                let half = ((maxx - minx) / 2.0).max(1e-6);
                let u = ((p.0 - (minx + maxx) / 2.0) / half).clamp(-1.0, 1.0);
                (dmax - round, u * 0.8, (1.0 - 0.64 * u * u).sqrt())
            }
        }
    }
}

/// Cheap deterministic hash noise in [-0.5, 0.5].
pub(crate) fn hash_noise(x: i32, y: i32, salt: u32) -> f32 {
    let mut h =
        (x as u32).wrapping_mul(0x27d4_eb2d) ^ (y as u32).wrapping_mul(0x1656_67b1) ^ salt.wrapping_mul(0x9e37_79b9);
    h ^= h >> 15;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    (h & 0xffff) as f32 / 65535.0 - 0.5
}

/// Builds the parts of `person` in `pose`, back to front.
fn build_parts(person: &Identity, pose: Pose, env: Environment) -> Vec<Part> {
    let s = pose.view.side();
    let d = pose.view.dir();
    let front = pose.view.shows_front();
    let back_view = !front;
    let wf = 1.0 - 0.5 * s;
    let w = std::f32::consts::TAU * pose.phase;
    let b = person.build;
    let amb = env.ambient_c;

    // Surface temperature of a layer over skin at `under` °C (steady state).
    let layer_temp = |under: f32, m: Material| amb + (under - amb) / (1.0 + 1.4 * m.insulation());
    let skin_c = 34.0 + person.skin_temp_offset;
    let skin = Surface {
        paint: Paint::Flat(person.skin),
        temp_c: skin_c,
        emissivity: 0.98,
        nir: 0.62,
        texture: 0.02,
        dim: 1.0,
    };
    let hands = Surface { temp_c: skin_c - 2.0, ..skin };
    let hair = Surface {
        paint: Paint::Flat(person.hair),
        temp_c: amb + (skin_c - amb) * 0.45,
        emissivity: 0.95,
        nir: 0.38,
        texture: 0.15,
        dim: 1.0,
    };
    let garment = |g: Garment, under: f32| Surface {
        paint: Paint::Garment(g),
        temp_c: layer_temp(under, g.material),
        emissivity: g.material.emissivity(),
        nir: g.material.nir_reflectance(),
        texture: g.material.texture(),
        dim: 1.0,
    };
    let top = garment(person.top, 34.0);
    let sleeve = garment(person.top, 32.5);
    let legwear = garment(person.bottom, 32.0);
    let pelvis = garment(person.bottom, 34.0);
    let shoes = Surface {
        paint: Paint::Flat(person.shoes),
        temp_c: layer_temp(30.0, Material::Rubber),
        emissivity: 0.92,
        nir: Material::Rubber.nir_reflectance(),
        texture: 0.02,
        dim: 1.0,
    };
    let acc_m = person.accessory_material;
    let accessory = Surface {
        paint: Paint::Flat(person.accessory_colour),
        temp_c: amb + (layer_temp(33.0, acc_m) - amb) * 0.5,
        emissivity: acc_m.emissivity(),
        nir: acc_m.nir_reflectance(),
        texture: acc_m.texture(),
        dim: 1.0,
    };
    let far = |mut srf: Surface| {
        srf.dim = 0.78;
        srf
    };

    // Skeleton (body units: head top y=0, soles y≈1).
    let bob = 0.008 * (2.0 * w).cos();
    let leg_len = 0.47 * person.leg_ratio;
    let hip_y = 0.985 - leg_len + bob;
    let shoulder_y = 0.185 + bob;
    let sw = (0.118 * b * wf).max(0.05);
    let hw = (0.088 * b * if person.female { 1.07 } else { 1.0 } * wf).max(0.05);
    let head_c = (d * s * 0.012, 0.068 + bob);
    let (head_rx, head_ry) = (0.05 * (1.0 + 0.15 * s), 0.066);

    let mut parts: Vec<Part> = Vec::with_capacity(32);
    let push = |parts: &mut Vec<Part>, shape: Shape, surface: Surface| parts.push(Part { shape, surface });

    // Legs: thigh swing θ, knee flexion while the leg swings forward.
    let thigh = leg_len * 0.52;
    let shin = leg_len * 0.48 - 0.025;
    let amp = 0.2 + 0.25 * s;
    let leg = |k: usize| {
        let ph = w + if k == 0 { 0.0 } else { std::f32::consts::PI };
        let theta = amp * ph.sin();
        let knee_flex = 0.5 * ph.cos().max(0.0) * (0.4 + 0.6 * s);
        let side_x = if k == 0 { -1.0 } else { 1.0 } * (0.045 * b * wf);
        let hip = (side_x, hip_y);
        let knee = add(hip, (d * s * theta.sin() * thigh + side_x * 0.05, theta.cos() * thigh));
        let shin_a = theta - knee_flex;
        let ankle = add(knee, (d * s * shin_a.sin() * shin - side_x * 0.1, shin_a.cos() * shin));
        (hip, knee, ankle)
    };
    let arm = |k: usize| {
        let ph = w + if k == 0 { std::f32::consts::PI } else { 0.0 };
        let alpha = (0.12 + 0.25 * s) * ph.sin();
        let out = if k == 0 { -1.0 } else { 1.0 };
        let sh = (out * (sw - 0.02 * wf), shoulder_y + 0.018);
        let upper = 0.165;
        let fore = 0.15;
        // Arms hang a little away from the body, leaving a gap at the waist.
        let elbow = add(sh, (d * s * alpha.sin() * upper + out * 0.03 * wf, alpha.cos() * upper));
        let fa = alpha + 0.15 + 0.25 * ph.sin().max(0.0);
        let wrist = add(elbow, (d * s * fa.sin() * fore + out * 0.02 * wf, fa.cos() * fore));
        (sh, elbow, wrist)
    };

    let draw_leg = |parts: &mut Vec<Part>, k: usize, dimmed: bool| {
        let (hip, knee, ankle) = leg(k);
        let m = |srf: Surface| if dimmed { far(srf) } else { srf };
        let (rt, rk, ra) = (0.052 * b, 0.04 * b, 0.03);
        match person.bottom_kind {
            BottomKind::Trousers => {
                push(parts, Shape::Capsule { a: hip, b: knee, ra: rt, rb: rk }, m(legwear));
                push(parts, Shape::Capsule { a: knee, b: ankle, ra: rk, rb: ra * 1.1 }, m(legwear));
            }
            BottomKind::Shorts => {
                let mid = lerp(hip, knee, 0.7);
                push(parts, Shape::Capsule { a: mid, b: knee, ra: rt * 0.85, rb: rk * 0.9 }, m(skin));
                push(parts, Shape::Capsule { a: knee, b: ankle, ra: rk * 0.9, rb: ra }, m(skin));
                push(parts, Shape::Capsule { a: hip, b: mid, ra: rt * 1.05, rb: rt * 1.0 }, m(legwear));
            }
            BottomKind::Skirt => {
                push(parts, Shape::Capsule { a: hip, b: knee, ra: rt * 0.85, rb: rk * 0.9 }, m(skin));
                push(parts, Shape::Capsule { a: knee, b: ankle, ra: rk * 0.9, rb: ra }, m(skin));
            }
        }
        let toe = add(ankle, (d * s * 0.075, 0.02 + 0.012 * (1.0 - s)));
        push(parts, Shape::Capsule { a: add(ankle, (0.0, 0.005)), b: toe, ra: 0.026, rb: 0.022 }, m(shoes));
    };
    let draw_arm = |parts: &mut Vec<Part>, k: usize, dimmed: bool| {
        let (sh, elbow, wrist) = arm(k);
        let m = |srf: Surface| if dimmed { far(srf) } else { srf };
        let (ru, re, rw) = (0.034 * b, 0.028 * b, 0.022);
        if person.long_sleeves {
            push(parts, Shape::Capsule { a: sh, b: elbow, ra: ru * 1.08, rb: re * 1.08 }, m(sleeve));
            push(parts, Shape::Capsule { a: elbow, b: wrist, ra: re * 1.08, rb: rw * 1.1 }, m(sleeve));
        } else {
            let cuff = lerp(sh, elbow, 0.55);
            push(parts, Shape::Capsule { a: cuff, b: elbow, ra: ru * 0.9, rb: re }, m(skin));
            push(parts, Shape::Capsule { a: elbow, b: wrist, ra: re, rb: rw }, m(skin));
            push(parts, Shape::Capsule { a: sh, b: cuff, ra: ru * 1.1, rb: ru * 1.05 }, m(sleeve));
        }
        let hand = add(wrist, ((wrist.0 - elbow.0) * 0.25, 0.035));
        push(parts, Shape::Capsule { a: wrist, b: hand, ra: rw * 1.05, rb: 0.024 }, m(hands));
    };

    let long_hair = person.hair_style == HairStyle::Long;
    let hair_back = Shape::Quad {
        pts: [
            (head_c.0 - head_rx * 0.95, head_c.1),
            (head_c.0 + head_rx * 0.95, head_c.1),
            (head_c.0 + head_rx * 0.85, 0.235),
            (head_c.0 - head_rx * 0.85, 0.235),
        ],
        round: 0.01,
    };
    if long_hair && front {
        push(&mut parts, hair_back, hair);
    }
    let backpack_quad = |off: f32, wdt: f32| Shape::Quad {
        pts: [
            (off - wdt, shoulder_y + 0.02),
            (off + wdt, shoulder_y + 0.02),
            (off + wdt, hip_y - 0.04),
            (off - wdt, hip_y - 0.04),
        ],
        round: 0.018,
    };
    if person.accessory == Accessory::Backpack && front && s < 0.5 {
        // Seen from the front, the pack peeks out either side of the torso.
        push(&mut parts, backpack_quad(0.0, sw + 0.012), far(accessory));
    }
    // Far limbs first in side views, so the near ones overlap them.
    let side_view = s > 0.3;
    if side_view {
        draw_arm(&mut parts, 0, true);
        draw_leg(&mut parts, 0, true);
        draw_leg(&mut parts, 1, false);
    } else {
        draw_leg(&mut parts, 0, false);
        draw_leg(&mut parts, 1, false);
    }
    // Pelvis joins the legs to the torso.
    push(
        &mut parts,
        Shape::Quad {
            pts: [(-hw, hip_y - 0.06), (hw, hip_y - 0.06), (hw * 0.85, hip_y + 0.055), (-hw * 0.85, hip_y + 0.055)],
            round: 0.012,
        },
        pelvis,
    );
    if person.bottom_kind == BottomKind::Skirt {
        let (_, knee_y) = (0.0, hip_y + thigh * 0.85);
        push(
            &mut parts,
            Shape::Quad {
                pts: [(-hw, hip_y - 0.05), (hw, hip_y - 0.05), (hw * 1.45, knee_y), (-hw * 1.45, knee_y)],
                round: 0.01,
            },
            pelvis,
        );
    }
    // Torso garment (coats and dresses run longer and flare).
    let (hem_y, hem_w) = match person.top_kind {
        TopKind::Coat => (hip_y + 0.2, hw * 1.3),
        TopKind::Dress => (hip_y + 0.22, hw * 1.5),
        TopKind::Jacket => (hip_y + 0.03, hw * 1.05),
        _ => (hip_y + 0.01, hw),
    };
    let top_srf = if person.top_kind == TopKind::Dress { garment(person.top, 34.0) } else { top };
    // Chest tapers from the shoulders to the waist, then the garment widens to the hem.
    let waist_y = shoulder_y + (hip_y - shoulder_y) * 0.62;
    let waist_w = (sw * 0.78).max(hw * 0.9);
    push(
        &mut parts,
        Shape::Quad {
            pts: [
                (-sw + 0.006, shoulder_y + 0.012),
                (sw - 0.006, shoulder_y + 0.012),
                (waist_w, waist_y),
                (-waist_w, waist_y),
            ],
            round: 0.02,
        },
        top_srf,
    );
    push(
        &mut parts,
        Shape::Quad {
            pts: [(-waist_w, waist_y - 0.02), (waist_w, waist_y - 0.02), (hem_w, hem_y), (-hem_w, hem_y)],
            round: 0.015,
        },
        top_srf,
    );
    // Shoulders slope down from the neck (trapezius): the head–shoulder
    // "omega" outline is the strongest cue a person detector has.
    for k in [-1.0f32, 1.0] {
        push(
            &mut parts,
            Shape::Capsule {
                a: (k * 0.02, shoulder_y - 0.012),
                b: (k * (sw - 0.03), shoulder_y + 0.012),
                ra: 0.024,
                rb: 0.03,
            },
            top_srf,
        );
    }
    // Neck and head.
    push(
        &mut parts,
        Shape::Capsule { a: (head_c.0 * 0.5, 0.11), b: (0.0, shoulder_y - 0.01), ra: 0.026, rb: 0.03 },
        skin,
    );
    if person.accessory == Accessory::Backpack && (back_view || side_view) {
        let (off, wdt) = if side_view { (-d * (sw + 0.045), 0.05) } else { (0.0, sw * 0.85) };
        push(&mut parts, backpack_quad(off, wdt), accessory);
    }
    if side_view {
        draw_arm(&mut parts, 1, false);
    } else {
        draw_arm(&mut parts, 0, false);
        draw_arm(&mut parts, 1, false);
    }
    match person.hair_style {
        HairStyle::Bald => push(&mut parts, Shape::Ellipse { c: head_c, rx: head_rx, ry: head_ry }, skin),
        _ => {
            push(
                &mut parts,
                Shape::Ellipse { c: (head_c.0, head_c.1 - 0.004), rx: head_rx * 1.06, ry: head_ry * 1.02 },
                hair,
            );
            if front {
                // The face: the lower part of the head, towards the walking direction in profile.
                push(
                    &mut parts,
                    Shape::Ellipse {
                        c: (head_c.0 + d * s * 0.012, head_c.1 + 0.012),
                        rx: head_rx * (0.92 - 0.3 * s),
                        ry: head_ry * 0.82,
                    },
                    skin,
                );
            }
            if long_hair && !front {
                push(&mut parts, hair_back, hair);
            }
        }
    }
    match person.accessory {
        Accessory::Hat => {
            push(
                &mut parts,
                Shape::Ellipse { c: (head_c.0, head_c.1 - 0.03), rx: head_rx * 1.1, ry: head_ry * 0.6 },
                accessory,
            );
            push(
                &mut parts,
                Shape::Capsule {
                    a: (head_c.0 - head_rx * 1.2 + d * s * 0.02, head_c.1 - 0.01),
                    b: (head_c.0 + head_rx * 1.2 + d * s * 0.04, head_c.1 - 0.01),
                    ra: 0.008,
                    rb: 0.008,
                },
                accessory,
            );
        }
        Accessory::Backpack if front => {
            for k in [-1.0f32, 1.0] {
                push(
                    &mut parts,
                    Shape::Capsule {
                        a: (k * sw * 0.6, shoulder_y),
                        b: (k * sw * 0.7, shoulder_y + 0.17),
                        ra: 0.011,
                        rb: 0.011,
                    },
                    accessory,
                );
            }
        }
        Accessory::ShoulderBag => {
            let side = if side_view { -d } else { 1.0 };
            push(
                &mut parts,
                Shape::Capsule {
                    a: (-side * sw * 0.7, shoulder_y),
                    b: (side * hw * 1.1, hip_y - 0.02),
                    ra: 0.008,
                    rb: 0.008,
                },
                accessory,
            );
            let bx = side * (hw * 1.1 + 0.02);
            push(
                &mut parts,
                Shape::Quad {
                    pts: [
                        (bx - 0.045, hip_y - 0.04),
                        (bx + 0.045, hip_y - 0.04),
                        (bx + 0.045, hip_y + 0.06),
                        (bx - 0.045, hip_y + 0.06),
                    ],
                    round: 0.012,
                },
                accessory,
            );
        }
        _ => {}
    }
    let _ = back_view;
    parts
}

/// Renders `person` in `pose` at `place`, clipped to the pixel rectangle
/// `clip = (x0, y0, x1, y1)` (the frame, or something huge for the whole figure).
pub fn render_person(
    person: &Identity,
    pose: Pose,
    place: Placement,
    env: Environment,
    clip: (i32, i32, i32, i32),
) -> PersonLayer {
    let parts = build_parts(person, pose, env);
    let sc = place.scale;
    // Layer rectangle: the body's extent, clipped to the frame.
    let x0 = ((place.ox - 0.4 * sc).floor() as i32).max(clip.0);
    let y0 = ((place.oy - 0.03 * sc).floor() as i32).max(clip.1);
    let x1 = ((place.ox + 0.4 * sc).ceil() as i32).min(clip.2);
    let y1 = ((place.oy + 1.03 * sc).ceil() as i32).min(clip.3);
    let (w, h) = ((x1 - x0).max(0) as u32, (y1 - y0).max(0) as u32);
    let n = (w * h) as usize;
    let mut layer = PersonLayer {
        x0,
        y0,
        w,
        h,
        alpha: vec![0.0; n],
        rgb: vec![[0.0; 3]; n],
        temp: vec![0.0; n],
        nir: vec![0.0; n],
    };
    if n == 0 {
        return layer;
    }
    let front = pose.view.shows_front();
    let _ = pose.view.shows_back();
    // Light from the upper left, towards the viewer.
    let (lx, lz) = (-0.45f32, 0.89f32);
    let salt = person.id.wrapping_mul(7919);
    for part in &parts {
        let (bx0, by0, bx1, by1) = part.shape.bounds();
        let px0 = ((place.ox + bx0 * sc).floor() as i32 - 1).max(x0);
        let py0 = ((place.oy + by0 * sc).floor() as i32 - 1).max(y0);
        let px1 = ((place.ox + bx1 * sc).ceil() as i32 + 1).min(x1);
        let py1 = ((place.oy + by1 * sc).ceil() as i32 + 1).min(y1);
        let srf = part.surface;
        let apparent = srf.emissivity * srf.temp_c + (1.0 - srf.emissivity) * env.reflected_c;
        for py in py0..py1 {
            let by = (py as f32 + 0.5 - place.oy) / sc;
            for px in px0..px1 {
                let bx = (px as f32 + 0.5 - place.ox) / sc;
                let (dist, nx, nz) = part.shape.eval((bx, by));
                let cov = (0.5 - dist * sc).clamp(0.0, 1.0);
                if cov <= 0.0 {
                    continue;
                }
                // Weave texture at ~1/120 body height, fixed to the body so it moves with it.
                let tex = hash_noise((bx * 120.0) as i32, (by * 120.0) as i32, salt) * srf.texture;
                let colour = match srf.paint {
                    Paint::Flat(c) => c,
                    Paint::Garment(g) => g.colour_at(bx, by, front),
                };
                let lambert = (nx * lx + nz * lz).max(0.0);
                let shade = (0.35 + 0.65 * lambert) * srf.dim * (1.0 + tex);
                // Grazing angles emit less: limb edges look cooler than their centres.
                let t_app = env.ambient_c + (apparent - env.ambient_c) * (0.72 + 0.28 * nz) + tex * 0.6;
                let nir = srf.nir * (0.3 + 0.7 * nz) * srf.dim * (1.0 + 1.5 * tex);
                let i = ((py - y0) as u32 * w + (px - x0) as u32) as usize;
                let keep = 1.0 - cov;
                let a = &mut layer.alpha[i];
                *a = *a * keep + cov;
                let c = &mut layer.rgb[i];
                for ch in 0..3 {
                    c[ch] = c[ch] * keep + cov * colour[ch] * shade;
                }
                layer.temp[i] = layer.temp[i] * keep + cov * t_app;
                layer.nir[i] = layer.nir[i] * keep + cov * nir;
            }
        }
    }
    layer
}

/// Person height in pixels that a body unit maps to at stature 1.
pub fn scale_for_height(person: &Identity, height_px: f32) -> f32 {
    height_px * person.stature
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figure_is_tall_and_narrow_with_covered_centre() {
        let p = Identity::generate(3, 1);
        let env = Environment { ambient_c: 15.0, reflected_c: 0.0 };
        let layer = render_person(
            &p,
            Pose { view: View::Front, phase: 0.3 },
            Placement { scale: 200.0, ox: 100.0, oy: 10.0 },
            env,
            (0, 0, 200, 240),
        );
        let (_, _, w, h) = layer.tight_box().expect("person drawn");
        assert!(h > 180 && h < 215, "height {h}");
        assert!(w > 40 && w < 110, "width {w}");
        // Torso centre is covered and warmer than ambient; the gap beside the head is empty.
        let at = |x: i32, y: i32| ((y - layer.y0) as u32 * layer.w + (x - layer.x0) as u32) as usize;
        assert!(layer.alpha[at(100, 70)] > 0.99);
        assert!(layer.temp[at(100, 70)] > 20.0);
        assert!(layer.alpha[at(100 + 40, 20)] < 0.01);
    }
}
