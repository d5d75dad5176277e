//! Day or night at a box, as its colour camera sees it.
//!
//! The same person's thermal crops by day and at night embed far apart:
//! ambient temperature changes the whole picture, not the person. On unseen
//! people the default model's thermal↔thermal genuine scores fall from a
//! median of 0.94 (same light) to 0.48 (day against night) at track level, so
//! one threshold cannot serve both (BENCHMARKS.md, "Day against night"). The
//! gallery therefore tags each exemplar with the light it was seen in and
//! uses its own threshold across light.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU16, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Light {
    Day,
    Night,
}

impl Light {
    pub fn as_str(self) -> &'static str {
        match self {
            Light::Day => "day",
            Light::Night => "night",
        }
    }
}

impl fmt::Display for Light {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Light {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "day" => Ok(Light::Day),
            "night" => Ok(Light::Night),
            _ => Err(format!("unknown light '{s}': valid values are day, night")),
        }
    }
}

/// Mean luma (0–255) of packed RGB pixels, from every 61st pixel (a prime, so
/// the samples do not line up in columns): ~8,500 samples of a 960×540 frame
/// are plenty for day or night.
pub fn mean_luma(rgb: &[u8]) -> u8 {
    let (mut sum, mut n) = (0u64, 0u64);
    for px in rgb.chunks_exact(3).step_by(61) {
        // BT.601 weights in integers (sum 256).
        sum += (77 * u64::from(px[0]) + 150 * u64::from(px[1]) + 29 * u64::from(px[2])) >> 8;
        n += 1;
    }
    (sum / n.max(1)) as u8
}

/// The light at one box: its colour cameras write the latest frame's luma,
/// every camera of the box reads it when a track ends. Unknown until a colour
/// frame arrives (a box with no colour camera never knows).
#[derive(Debug, Default)]
pub struct LightMeter {
    /// 0 = unknown, else luma + 1.
    luma: AtomicU16,
}

impl LightMeter {
    pub fn record(&self, luma: u8) {
        self.luma.store(u16::from(luma) + 1, Ordering::Relaxed);
    }

    /// Night when the last colour frame's mean luma is below `night_below`.
    pub fn light(&self, night_below: u8) -> Option<Light> {
        match self.luma.load(Ordering::Relaxed) {
            0 => None,
            v if v - 1 < u16::from(night_below) => Some(Light::Night),
            _ => Some(Light::Day),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_decides_day_or_night() {
        let meter = LightMeter::default();
        assert_eq!(meter.light(50), None, "no colour frame yet");
        let frame = |v: u8| vec![v; 64 * 48 * 3];
        meter.record(mean_luma(&frame(31)));
        assert_eq!(meter.light(50), Some(Light::Night));
        meter.record(mean_luma(&frame(84)));
        assert_eq!(meter.light(50), Some(Light::Day));
        meter.record(mean_luma(&frame(50)));
        assert_eq!(meter.light(50), Some(Light::Day), "at the threshold is day");
        // Pure red is darker than pure green at one level (BT.601).
        assert!(mean_luma(&[200, 0, 0].repeat(10)) < mean_luma(&[0, 200, 0].repeat(10)));
        assert_eq!("night".parse::<Light>(), Ok(Light::Night));
        assert!("dusk".parse::<Light>().unwrap_err().contains("day, night"));
    }
}
