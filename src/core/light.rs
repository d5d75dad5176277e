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
use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

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

/// Readings a meter keeps: one a second of the box's clock, ten minutes.
const KEPT_READINGS: usize = 600;
const READING_EVERY_NS: i64 = 1_000_000_000;

/// The light at one box over the last minutes. Its colour cameras write a
/// reading per detected frame, at that frame's instant on the box's clock
/// (stream timestamps for a box of files, else wall clock); a track is told
/// the light at its own instant. In fast file replay the two cameras of a
/// box run at their own speeds, and the light of "now" would be the colour
/// camera's, seconds away from the thermal track's: tracks near dusk were
/// tagged wrong. Unknown until a colour frame arrives (a box with no colour
/// camera never knows).
#[derive(Debug, Default)]
pub struct LightMeter {
    /// (instant ns, luma), in instant order, one per `READING_EVERY_NS`; bounded.
    readings: Mutex<VecDeque<(i64, u8)>>,
    /// The latest instant any colour frame was measured at.
    latest_ns: AtomicI64,
    /// Colour cameras still writing.
    writers: AtomicUsize,
}

impl LightMeter {
    /// A colour camera starts writing.
    pub fn add_writer(&self) {
        self.writers.fetch_add(1, Ordering::AcqRel);
    }

    /// A colour camera stopped: no readings will come from it.
    pub fn remove_writer(&self) {
        let _ = self.writers.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// A colour frame's mean luma, seen at `at_ns` on the box's clock.
    pub fn record(&self, at_ns: i64, luma: u8) {
        let mut readings = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        match readings.back_mut() {
            // A stream that jumped back (a file loop) starts the record again.
            Some(last) if at_ns < last.0 => {
                readings.clear();
                readings.push_back((at_ns, luma));
            }
            Some(last) if at_ns - last.0 < READING_EVERY_NS => last.1 = luma,
            _ => readings.push_back((at_ns, luma)),
        }
        if readings.len() > KEPT_READINGS {
            readings.pop_front();
        }
        self.latest_ns.store(at_ns, Ordering::Release);
    }

    /// Whether the meter can speak for `at_ns`: a colour frame at or after it
    /// was measured, or no colour camera is writing any more.
    pub fn reached(&self, at_ns: i64) -> bool {
        self.writers.load(Ordering::Acquire) == 0 || self.latest_ns.load(Ordering::Acquire) >= at_ns
    }

    /// The light at `at_ns`: the last reading at or before it (the first one
    /// for an instant older than the record); night below `night_below`.
    pub fn light_at(&self, at_ns: i64, night_below: u8) -> Option<Light> {
        let readings = self.readings.lock().unwrap_or_else(|e| e.into_inner());
        let i = readings.partition_point(|r| r.0 <= at_ns);
        let (_, luma) = readings.get(i.saturating_sub(1))?;
        Some(if *luma < night_below { Light::Night } else { Light::Day })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_decides_day_or_night() {
        let meter = LightMeter::default();
        assert_eq!(meter.light_at(0, 50), None, "no colour frame yet");
        let frame = |v: u8| vec![v; 64 * 48 * 3];
        meter.record(0, mean_luma(&frame(31)));
        assert_eq!(meter.light_at(0, 50), Some(Light::Night));
        meter.record(5_000_000_000, mean_luma(&frame(84)));
        assert_eq!(meter.light_at(5_000_000_000, 50), Some(Light::Day));
        meter.record(10_000_000_000, mean_luma(&frame(50)));
        assert_eq!(meter.light_at(10_000_000_000, 50), Some(Light::Day), "at the threshold is day");
        // Pure red is darker than pure green at one level (BT.601).
        assert!(mean_luma(&[200, 0, 0].repeat(10)) < mean_luma(&[0, 200, 0].repeat(10)));
        assert_eq!("night".parse::<Light>(), Ok(Light::Night));
        assert!("dusk".parse::<Light>().unwrap_err().contains("day, night"));
    }

    #[test]
    fn a_track_gets_the_light_of_its_own_instant() {
        const S: i64 = 1_000_000_000;
        let meter = LightMeter::default();
        meter.add_writer();
        // The colour camera saw day until 20 s, then night.
        for t in 0..80 {
            meter.record(t * S / 2, if t < 40 { 120 } else { 20 });
        }
        assert_eq!(meter.light_at(12 * S, 50), Some(Light::Day));
        assert_eq!(meter.light_at(30 * S, 50), Some(Light::Night));
        assert_eq!(meter.light_at(-5 * S, 50), Some(Light::Day), "older than the record: its first reading");
        // A thermal track at 45 s waits for the colour camera to get there.
        assert!(meter.reached(39 * S) && !meter.reached(45 * S));
        meter.remove_writer();
        assert!(meter.reached(45 * S), "no colour camera left: nobody to wait for");
        // Bounded: ten minutes of one reading a second.
        for t in 0..2_000 {
            meter.record(100 * S + t * S, 120);
        }
        assert_eq!(meter.readings.lock().unwrap().len(), KEPT_READINGS);
        // A file loop jumps back: the record starts again.
        meter.record(S, 20);
        assert_eq!(meter.light_at(5_000 * S, 50), Some(Light::Night));
    }
}
