//! What a tracked person looks like, cheaply: the tracker's guard against
//! jumping from one person to another.
//!
//! Matching by box overlap alone lets a track take over whoever steps into
//! its predicted box — the other person of a crossing, or a newcomer where
//! somebody just left the frame. Such a track holds two people, and
//! downstream everything it touches is wrong: its pair files two people as
//! one, its crops mix them. A [`Look`] is a few numbers per horizontal stripe
//! of the box (head, torso, legs: clothing and body heat differ there), taken
//! from the central half of the box's width (the sides are mostly
//! background) and contrast-normalised per box, so that a change of light or
//! of ambient temperature moves the whole person, not the signature. On a
//! scene's ground-truth crops two people are further apart than one person's
//! crops in about 3 cases of 4 by day in both modalities and 1 of 2 in night
//! thermal (BENCHMARKS.md, "Tracks that hold one person").

use crate::core::{BBox, Frame};

/// Horizontal stripes of a box.
const STRIPES: usize = 6;
/// Numbers per stripe: mean of each colour channel (one for thermal) and the
/// spread of brightness.
const PER_STRIPE: usize = 4;
/// How much a new clean sighting moves a track's look.
const UPDATE_WEIGHT: f32 = 0.2;

/// A stripe signature of one person's box. Distances are in units of the box's
/// own brightness spread, scaled by 0.1: one person across a walk is about
/// 0.015 from themself, two people about 0.05 apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Look {
    values: [f32; STRIPES * PER_STRIPE],
    used: usize,
}

impl Look {
    /// The look of `bbox` in `frame`; `None` when the box is too small to say.
    pub fn of(frame: &Frame, bbox: &BBox) -> Option<Look> {
        let b = bbox.clip(frame.width, frame.height);
        let (x0, x1) = ((b.x + b.w * 0.25) as u32, (b.x + b.w * 0.75) as u32);
        let (y0, y1) = (b.y as u32, b.bottom() as u32);
        if x1 <= x0 + 1 || y1 < y0 + STRIPES as u32 * 2 {
            return None;
        }
        let ch = frame.channels();
        let width = frame.width as usize;
        // Every second pixel each way: a signature this coarse does not need more.
        let pixel = |x: u32, y: u32| {
            let p = (y as usize * width + x as usize) * ch;
            &frame.data[p..p + ch]
        };
        let brightness = |px: &[u8]| px.iter().map(|&v| v as f32).sum::<f32>() / ch as f32;
        let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
        for y in (y0..y1).step_by(2) {
            for x in (x0..x1).step_by(2) {
                let l = brightness(pixel(x, y)) as f64;
                sum += l;
                sq += l * l;
                n += 1.0;
            }
        }
        let mean = (sum / n) as f32;
        let spread = ((sq / n - (sum / n).powi(2)).max(0.0).sqrt() as f32).max(1.0);
        let norm = |v: f32| (v - mean) / spread * 0.1;
        let mut values = [0f32; STRIPES * PER_STRIPE];
        let stripe_h = (y1 - y0) as f32 / STRIPES as f32;
        for (s, out) in values.chunks_mut(PER_STRIPE).enumerate() {
            let (sy0, sy1) = (y0 + (s as f32 * stripe_h) as u32, y0 + ((s + 1) as f32 * stripe_h) as u32);
            let (mut channel_sum, mut l_sum, mut l_sq, mut count) = ([0f32; 3], 0f32, 0f32, 0f32);
            for y in (sy0..sy1).step_by(2) {
                for x in (x0..x1).step_by(2) {
                    let px = pixel(x, y);
                    for (c, &v) in px.iter().enumerate() {
                        channel_sum[c] += v as f32;
                    }
                    let l = norm(brightness(px));
                    l_sum += l;
                    l_sq += l * l;
                    count += 1.0;
                }
            }
            let count = count.max(1.0);
            for c in 0..ch {
                out[c] = norm(channel_sum[c] / count);
            }
            out[ch] = (l_sq / count - (l_sum / count).powi(2)).max(0.0).sqrt();
        }
        // Thermal stripes use 2 of their 4 slots; pack them so `used` is a prefix.
        let per = ch + 1;
        if per < PER_STRIPE {
            for s in 1..STRIPES {
                for k in 0..per {
                    values[s * per + k] = values[s * PER_STRIPE + k];
                }
            }
        }
        Some(Look { values, used: STRIPES * per })
    }

    /// Root-mean-square difference of two looks (of one modality).
    pub fn distance(&self, other: &Look) -> f32 {
        let n = self.used.min(other.used);
        let sq: f32 = self.values[..n].iter().zip(&other.values[..n]).map(|(a, b)| (a - b) * (a - b)).sum();
        (sq / n.max(1) as f32).sqrt()
    }

    /// Moves this look a step towards a newer sighting of the same person.
    pub fn follow(&mut self, newer: &Look) {
        for (v, n) in self.values.iter_mut().zip(&newer.values) {
            *v += UPDATE_WEIGHT * (n - *v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Modality;
    use std::sync::Arc;

    /// A grey frame with one "person": a box whose top half is `top` and bottom half `bottom`.
    fn frame_with(modality: Modality, top: [u8; 3], bottom: [u8; 3], ambient: i16) -> Frame {
        let (w, h) = (64u32, 128u32);
        let ch = modality.channels();
        let mut data = vec![60u8; (w * h) as usize * ch];
        for y in 20..120u32 {
            for x in 16..48u32 {
                let colour = if y < 70 { top } else { bottom };
                let p = (y * w + x) as usize * ch;
                for c in 0..ch {
                    data[p + c] = (colour[c] as i16 + ambient).clamp(0, 255) as u8;
                }
            }
        }
        for v in data.iter_mut() {
            *v = (*v as i16 + ambient / 2).clamp(0, 255) as u8;
        }
        Frame {
            camera: Arc::from("cam"),
            modality,
            pts_ns: None,
            segment: 0,
            wall_time: std::time::SystemTime::UNIX_EPOCH,
            width: w,
            height: h,
            data,
        }
    }

    #[test]
    fn two_people_are_further_apart_than_one_person_in_other_light() {
        let person = BBox::new(16.0, 20.0, 32.0, 100.0);
        for modality in [Modality::Rgb, Modality::Thermal] {
            let a = Look::of(&frame_with(modality, [200, 70, 70], [70, 70, 200], 0), &person).unwrap();
            let a_darker = Look::of(&frame_with(modality, [200, 70, 70], [70, 70, 200], -30), &person).unwrap();
            let b = Look::of(&frame_with(modality, [70, 70, 200], [200, 70, 70], 0), &person).unwrap();
            assert!(a.distance(&a_darker) < 0.01, "{modality}: {}", a.distance(&a_darker));
            assert!(a.distance(&b) > 0.05, "{modality}: {}", a.distance(&b));
            let mut followed = a;
            followed.follow(&b);
            assert!(followed.distance(&a) < followed.distance(&b));
        }
    }

    #[test]
    fn a_box_too_small_or_outside_the_frame_has_no_look() {
        let f = frame_with(Modality::Thermal, [200; 3], [40; 3], 0);
        assert!(Look::of(&f, &BBox::new(10.0, 10.0, 2.0, 4.0)).is_none());
        assert!(Look::of(&f, &BBox::new(100.0, 10.0, 20.0, 40.0)).is_none());
    }
}
