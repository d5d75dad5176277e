//! Co-observation pairing: which RGB track and which thermal track of one box
//! followed the same person at the same time.
//!
//! A dual-spectrum box's two sensors look at the same scene. Whenever both see
//! a person (by day, or at night where there is some light), the two tracks
//! are the same person by geometry alone — no appearance model needed, and
//! geometry does not make the cross-modal mistakes a re-id network makes. The
//! gallery then files both sightings under one identity, so that identity gets
//! exemplars of *both* modalities; a later thermal-only sighting at night then
//! matches thermal to thermal (the easier, same-modality problem) and is linked
//! to the identity first seen in colour.
//!
//! Finished tracks wait here up to `[pair] hold_ms` for a partner from the
//! box's other modality (the two cameras' trackers end a person's tracks at
//! about the same time); a track that finds none goes on alone, and a partner
//! that finishes later still joins it through the recently recorded tracks.

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::core::{ConfigError, Modality};
use crate::ingest::{CameraConfig, SourceKind};
use crate::track::path::PathPoint;
use crate::track::FinishedTrack;

/// The `[pair]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PairConfig {
    /// Pair tracks across a box's RGB and thermal cameras.
    pub enabled: bool,
    /// Mean IoU of the two tracks' frame-relative boxes at the same instants
    /// (the sensors sit side by side, so their views differ by a few pixels).
    pub min_iou: f32,
    /// Share of the shorter track's path that the other track covers in time
    /// (and of the longer track's time span that the two share).
    pub min_shared: f32,
    /// Two path points are "the same instant" within this many milliseconds.
    pub max_time_gap_ms: u64,
    /// How long a finished track waits for its partner before it is recorded alone.
    pub hold_ms: u64,
}

impl Default for PairConfig {
    fn default() -> Self {
        PairConfig { enabled: true, min_iou: 0.3, min_shared: 0.5, max_time_gap_ms: 250, hold_ms: 3000 }
    }
}

impl PairConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.min_iou > 0.0 && self.min_iou < 1.0) {
            crate::invalid_config!(
                "pair.min_iou",
                "pair.min_iou = {} must be between 0 and 1 (e.g. 0.3)",
                self.min_iou
            );
        }
        if !(self.min_shared > 0.0 && self.min_shared <= 1.0) {
            crate::invalid_config!(
                "pair.min_shared",
                "pair.min_shared = {} must be within 0..=1 (e.g. 0.5)",
                self.min_shared
            );
        }
        if self.max_time_gap_ms == 0 || self.max_time_gap_ms > 10_000 {
            crate::invalid_config!(
                "pair.max_time_gap_ms",
                "pair.max_time_gap_ms = {} must be within 1..=10000 (about one frame interval, e.g. 250)",
                self.max_time_gap_ms
            );
        }
        if self.hold_ms > 60_000 {
            crate::invalid_config!(
                "pair.hold_ms",
                "pair.hold_ms = {} is over a minute: sightings would be held back that long (e.g. 3000)",
                self.hold_ms
            );
        }
        Ok(())
    }
}

/// Which timestamps of two cameras are comparable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// Stream timestamps: recorded files of one box start together.
    Pts,
    /// Frame arrival wall clock: live cameras.
    Wall,
}

/// Where a camera sits: its box and the clock pairing uses there.
#[derive(Debug, Clone)]
pub struct CameraPlace {
    pub box_name: String,
    pub modality: Modality,
    pub clock: Clock,
}

/// Camera name → place, for the cameras of a config. A box pairs by stream
/// timestamps only when all its cameras are files.
pub fn camera_places(cameras: &[CameraConfig]) -> HashMap<String, CameraPlace> {
    let is_file = |c: &CameraConfig| matches!(SourceKind::parse(&c.source), Ok(SourceKind::File(_)));
    cameras
        .iter()
        .map(|c| {
            let all_files = cameras.iter().filter(|o| o.box_name == c.box_name).all(is_file);
            let clock = if all_files { Clock::Pts } else { Clock::Wall };
            (c.name.clone(), CameraPlace { box_name: c.box_name.clone(), modality: c.modality, clock })
        })
        .collect()
}

/// When a path point was seen, on the clock its box pairs by.
pub fn instant_ns(p: &PathPoint, clock: Clock) -> i64 {
    instant_of(p.pts_ns, p.wall_ns, clock)
}

/// When something seen at stream time `pts_ns` and wall time `wall_ns` was
/// seen, on `clock`.
pub fn instant_of(pts_ns: Option<u64>, wall_ns: i64, clock: Clock) -> i64 {
    match (clock, pts_ns) {
        (Clock::Pts, Some(t)) => t as i64,
        _ => wall_ns,
    }
}

/// How well two paths agree: mean IoU over the instants both cover, if they
/// share enough of the shorter path (`None` otherwise).
pub fn co_observation(a: &[PathPoint], b: &[PathPoint], clock: Clock, config: &PairConfig) -> Option<f32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_empty() {
        return None;
    }
    let gap = config.max_time_gap_ms as i64 * 1_000_000;
    let (mut shared, mut iou_sum) = (0usize, 0.0f32);
    for (p, q) in same_instants(short, long, clock, gap) {
        shared += 1;
        iou_sum += p.rel_box.iou(&q.rel_box);
    }
    // The longer track must mostly be this person too: a track that went on
    // with somebody else after a crossing covers its partner's time but not
    // the other way round, and pairing it would file two people as one.
    let span = |p: &[PathPoint]| (instant_ns(&p[0], clock), instant_ns(&p[p.len() - 1], clock));
    let ((s0, s1), (l0, l1)) = (span(short), span(long));
    let overlap = (s1.min(l1) - s0.max(l0)).max(0) as f32;
    let long_covered = l1 <= l0 || overlap >= config.min_shared * (l1 - l0) as f32;
    let enough =
        long_covered && shared >= 3.min(short.len()) && shared as f32 >= config.min_shared * short.len() as f32;
    let iou = iou_sum / shared.max(1) as f32;
    (enough && iou >= config.min_iou).then_some(iou)
}

/// The points of `a`, each with the point of `b` nearest in time, where that is
/// within `gap_ns`.
fn same_instants<'a>(
    a: &'a [PathPoint],
    b: &'a [PathPoint],
    clock: Clock,
    gap_ns: i64,
) -> impl Iterator<Item = (&'a PathPoint, &'a PathPoint)> {
    let times: Vec<i64> = b.iter().map(|p| instant_ns(p, clock)).collect();
    a.iter().filter_map(move |p| {
        let t = instant_ns(p, clock);
        // Paths are in time order: the nearest instant is at the insertion point or just before it.
        let i = times.partition_point(|&x| x < t);
        [i.checked_sub(1), (i < times.len()).then_some(i)]
            .into_iter()
            .flatten()
            .min_by_key(|&j| (times[j] - t).abs())
            .filter(|&j| (times[j] - t).abs() <= gap_ns)
            .map(|j| (p, &b[j]))
    })
}

/// Two points of one camera's tracks this close in time were seen in one frame
/// (or in neighbouring ones: a track's path keeps only some of its frames).
pub const SAME_INSTANT_NS: i64 = 200_000_000;

/// Two tracks of one camera were certainly two people: at some instant when both
/// were seen ([`SAME_INSTANT_NS`]), their boxes shared no column. Overlapping in
/// time is not enough: the HOG detector can find one tall person twice at once,
/// head and torso above legs, and those two boxes are stacked, never side by side.
pub fn seen_apart(a: &[PathPoint], b: &[PathPoint], clock: Clock) -> bool {
    same_instants(a, b, clock, SAME_INSTANT_NS).any(|(p, q)| {
        let (p, q) = (&p.rel_box, &q.rel_box);
        p.x + p.w <= q.x || q.x + q.w <= p.x
    })
}

/// A track already in the gallery that a newly finished one can join.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Partner {
    pub identity_id: i64,
    pub sighting_id: i64,
    pub modality: Modality,
    pub iou: f32,
}

/// What the gallery records next. `T` is the finished track as it reaches
/// the pairer (the pipeline pairs embedded tracks: [`FinishedTrack`] plus a feature).
pub enum PairUnit<T> {
    /// A track on its own; `partner` when a recorded track of the box's other
    /// modality saw the same person.
    Single(Box<T>, Option<Partner>),
    /// Two tracks, one per modality, that saw the same person; recorded together.
    Pair(Box<T>, Box<T>, f32),
}

impl<T> PairUnit<T> {
    /// The recorded sighting a lone track was co-observed with, if any.
    pub fn late_partner(&self) -> Option<i64> {
        match self {
            PairUnit::Single(_, Some(partner)) => Some(partner.sighting_id),
            _ => None,
        }
    }
}

struct Pending<T> {
    track: Box<T>,
    arrived: Instant,
}

struct Recorded {
    camera: String,
    path: Vec<PathPoint>,
    partner: Partner,
}

/// Recently recorded tracks remembered for late partners (bounded).
const RECENT_RECORDED: usize = 256;

/// The pairing buffer; lives on the gallery thread. Pairing needs only what
/// tracking knows (camera, modality, path), so any `T` that holds a
/// [`FinishedTrack`] can be paired.
pub struct Pairer<T> {
    config: PairConfig,
    places: HashMap<String, CameraPlace>,
    pending: Vec<Pending<T>>,
    recorded: VecDeque<Recorded>,
}

impl<T: AsRef<FinishedTrack>> Pairer<T> {
    pub fn new(config: PairConfig, places: HashMap<String, CameraPlace>) -> Pairer<T> {
        Pairer { config, places, pending: vec![], recorded: VecDeque::new() }
    }

    /// No pairing: every track is recorded on its own as it arrives.
    pub fn disabled() -> Pairer<T> {
        Pairer::new(PairConfig { enabled: false, ..PairConfig::default() }, HashMap::new())
    }

    /// Tracks waiting for a partner.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The place of a camera if it has a partner camera of the other modality in its box.
    fn pairable(&self, camera: &str) -> Option<&CameraPlace> {
        if !self.config.enabled {
            return None;
        }
        let place = self.places.get(camera)?;
        let other = self.places.values().any(|p| p.box_name == place.box_name && p.modality != place.modality);
        other.then_some(place)
    }

    fn partners_of(&self, camera: &str, other_camera: &str) -> Option<Clock> {
        let (a, b) = (self.places.get(camera)?, self.places.get(other_camera)?);
        (a.box_name == b.box_name && a.modality != b.modality).then_some(a.clock)
    }

    /// The best recorded partner of a track.
    fn recorded_partner(&self, t: &T) -> Option<Partner> {
        let t = t.as_ref();
        let cam = &*t.camera;
        self.recorded
            .iter()
            .filter_map(|r| {
                let clock = self.partners_of(cam, &r.camera)?;
                co_observation(&t.path, &r.path, clock, &self.config).map(|iou| Partner { iou, ..r.partner })
            })
            .max_by(|a, b| a.iou.total_cmp(&b.iou))
    }

    /// A finished, embedded track arrives. Returns what can be recorded now.
    pub fn push(&mut self, track: T) -> Vec<PairUnit<T>> {
        let track = Box::new(track);
        let t = (*track).as_ref();
        if self.pairable(&t.camera).is_none() {
            return vec![PairUnit::Single(track, None)];
        }
        let best_pending = self
            .pending
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let other = (*p.track).as_ref();
                let clock = self.partners_of(&t.camera, &other.camera)?;
                co_observation(&t.path, &other.path, clock, &self.config).map(|iou| (i, iou))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((i, iou)) = best_pending {
            let other = self.pending.remove(i).track;
            return vec![PairUnit::Pair(other, track, iou)];
        }
        if let Some(partner) = self.recorded_partner(&*track) {
            return vec![PairUnit::Single(track, Some(partner))];
        }
        self.pending.push(Pending { track, arrived: Instant::now() });
        vec![]
    }

    /// Tracks whose wait is over (`now` − arrival ≥ hold), oldest first.
    pub fn due(&mut self, now: Instant) -> Vec<PairUnit<T>> {
        let hold = Duration::from_millis(self.config.hold_ms);
        let (due, keep): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.pending).into_iter().partition(|p| now.duration_since(p.arrived) >= hold);
        self.pending = keep;
        due.into_iter()
            .map(|p| {
                let partner = self.recorded_partner(&*p.track);
                PairUnit::Single(p.track, partner)
            })
            .collect()
    }

    /// Everything still waiting (shutdown), oldest first.
    pub fn drain(&mut self) -> Vec<PairUnit<T>> {
        self.due(Instant::now() + Duration::from_millis(self.config.hold_ms))
    }

    /// A track was recorded as a sighting of `identity_id`: later tracks of the
    /// box's other modality that saw the same person can join it.
    pub fn recorded(&mut self, track: &T, identity_id: i64, sighting_id: i64) {
        let track = track.as_ref();
        if self.pairable(&track.camera).is_none() {
            return;
        }
        if self.recorded.len() == RECENT_RECORDED {
            self.recorded.pop_front();
        }
        self.recorded.push_back(Recorded {
            camera: track.camera.to_string(),
            path: track.path.clone(),
            partner: Partner { identity_id, sighting_id, modality: track.modality, iou: 0.0 },
        });
    }

    /// An identity was forgotten: it must not be joined again.
    pub fn forget(&mut self, identity_id: i64) {
        self.recorded.retain(|r| r.partner.identity_id != identity_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::BBox;

    /// A path walking right at `speed` (frame widths per second) from `x0`, 10 fps.
    fn walk(x0: f32, speed: f32, start_s: f32, secs: f32, dx: f32) -> Vec<PathPoint> {
        (0..(secs * 10.0) as u64)
            .map(|i| {
                let t = start_s + i as f32 / 10.0;
                let x = x0 + speed * (t - start_s) + dx;
                PathPoint {
                    pts_ns: Some((t * 1e9) as u64),
                    wall_ns: 5_000_000_000_000 + (t * 1e9) as i64,
                    rel_box: BBox::new(x, 0.3, 0.06, 0.35),
                }
            })
            .collect()
    }

    fn track(camera: &str, modality: Modality, id: u64, path: Vec<PathPoint>) -> FinishedTrack {
        FinishedTrack { path, ..FinishedTrack::for_test(id, camera, modality, [9, 9, 9], 1) }
    }

    fn places(rgb_source: &str) -> HashMap<String, CameraPlace> {
        // Parsed without validation: the files need not exist to be files.
        let cfg: crate::config::Config = toml::from_str(&format!(
            "[[camera]]\nname = \"day\"\nmodality = \"rgb\"\nbox = \"b1\"\nsource = \"{rgb_source}\"\n\
             [[camera]]\nname = \"night\"\nmodality = \"thermal\"\nbox = \"b1\"\nsource = \"/tmp/t.mp4\"\n\
             [[camera]]\nname = \"lone\"\nmodality = \"thermal\"\nbox = \"b2\"\nsource = \"/tmp/l.mp4\"\n"
        ))
        .unwrap();
        camera_places(&cfg.cameras)
    }

    #[test]
    fn stacked_boxes_are_not_seen_apart_and_side_by_side_ones_are() {
        let person = walk(0.1, 0.1, 0.0, 4.0, 0.0);
        // The same person found twice at once: a box over the upper half, one over the lower.
        let halves = |y: f32| {
            let mut p = person.clone();
            p.iter_mut().for_each(|q| q.rel_box = BBox::new(q.rel_box.x + 0.01, y, 0.05, 0.18));
            p
        };
        assert!(!seen_apart(&halves(0.3), &halves(0.48), Clock::Pts));
        assert!(!seen_apart(&person, &halves(0.48), Clock::Pts));
        // Someone walking beside them, and someone crossing them (apart before and after).
        assert!(seen_apart(&person, &walk(0.1, 0.1, 0.0, 4.0, 0.2), Clock::Pts));
        let crossing: Vec<_> = walk(0.6, -0.1, 0.0, 4.0, 0.0);
        assert!(seen_apart(&person, &crossing, Clock::Pts));
        // Apart, but never seen at the same instant: nothing is certain.
        assert!(!seen_apart(&person, &walk(0.1, 0.1, 10.0, 2.0, 0.3), Clock::Pts));
    }

    #[test]
    fn same_walk_pairs_and_other_walks_do_not() {
        let c = PairConfig::default();
        let a = walk(0.1, 0.1, 0.0, 4.0, 0.0);
        // Same walk, seen by a sensor beside it (shifted 1 % of the frame), sampled 50 ms later.
        let shifted: Vec<PathPoint> = walk(0.1, 0.1, 0.05, 4.0, 0.01);
        let iou = co_observation(&a, &shifted, Clock::Pts, &c).expect("same person pairs");
        assert!(iou > 0.6, "iou {iou}");
        // Another person walking the other way through the same place: they cross, but do not pair.
        let other = walk(0.6, -0.1, 0.0, 4.0, 0.0);
        assert_eq!(co_observation(&a, &other, Clock::Pts, &c), None);
        // The same place ten seconds later: nothing in common in time.
        assert_eq!(co_observation(&a, &walk(0.1, 0.1, 10.0, 4.0, 0.0), Clock::Pts, &c), None);
        // Wall clock is used when asked (here both clocks agree).
        assert!(co_observation(&a, &shifted, Clock::Wall, &c).is_some());
        assert_eq!(co_observation(&[], &a, Clock::Pts, &c), None);
    }

    #[test]
    fn a_track_that_went_on_with_someone_else_does_not_pair() {
        let c = PairConfig::default();
        let rgb = walk(0.1, 0.1, 0.0, 4.0, 0.0);
        // The thermal tracker followed the same walk, then took over another person for 6 s more:
        // it covers all of the RGB track's time, but the RGB track covers only 40 % of its own.
        let mut switched = walk(0.1, 0.1, 0.05, 4.0, 0.01);
        switched.extend(walk(0.6, -0.05, 4.05, 6.0, 0.0));
        assert_eq!(co_observation(&rgb, &switched, Clock::Pts, &c), None);
        assert_eq!(co_observation(&switched, &rgb, Clock::Pts, &c), None, "either order");
        // Two seconds more (the person lingers in view of one camera only): still 2/3 covered, pairs.
        let mut lingered = walk(0.1, 0.1, 0.05, 4.0, 0.01);
        lingered.extend(walk(0.5, 0.0, 4.05, 2.0, 0.0));
        assert!(co_observation(&rgb, &lingered, Clock::Pts, &c).is_some());
    }

    #[test]
    fn bad_pair_config_is_named() {
        let bad = PairConfig { max_time_gap_ms: u64::MAX, ..PairConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("pair.max_time_gap_ms"));
        let bad = PairConfig { min_iou: 1.5, ..PairConfig::default() };
        assert!(bad.validate().unwrap_err().to_string().contains("pair.min_iou"));
        assert!(PairConfig::default().validate().is_ok());
    }

    #[test]
    fn clocks_by_source_kind() {
        let p = places("/tmp/r.mp4");
        assert_eq!(p["day"].clock, Clock::Pts);
        let p = places("rtsp://127.0.0.1:8554/rgb");
        assert_eq!((p["day"].clock, p["night"].clock, p["lone"].clock), (Clock::Wall, Clock::Wall, Clock::Pts));
    }

    #[test]
    fn pairs_pending_holds_and_joins_late_partners() {
        let mut p: Pairer<FinishedTrack> = Pairer::new(PairConfig::default(), places("/tmp/r.mp4"));
        // A camera alone in its box is never held.
        assert!(matches!(
            p.push(track("lone", Modality::Thermal, 1, walk(0.1, 0.1, 0.0, 3.0, 0.0)))[..],
            [PairUnit::Single(_, None)]
        ));
        // RGB finishes first and waits; its thermal partner arrives and both go together.
        assert!(p.push(track("day", Modality::Rgb, 2, walk(0.1, 0.1, 0.0, 3.0, 0.0))).is_empty());
        assert_eq!(p.pending(), 1);
        // Another person's thermal track does not take it.
        assert!(p.push(track("night", Modality::Thermal, 3, walk(0.7, -0.1, 0.0, 3.0, 0.0))).is_empty());
        let out = p.push(track("night", Modality::Thermal, 4, walk(0.1, 0.1, 0.0, 3.0, 0.01)));
        match &out[..] {
            [PairUnit::Pair(a, b, iou)] => assert_eq!((a.track_id, b.track_id, *iou > 0.5), (2, 4, true)),
            _ => panic!("expected a pair"),
        }
        assert_eq!(p.pending(), 1);
        // Not due before the hold, due after it.
        assert!(p.due(Instant::now()).is_empty());
        let due = p.due(Instant::now() + Duration::from_secs(4));
        assert!(matches!(&due[..], [PairUnit::Single(t, None)] if t.track_id == 3));
        // Recorded as identity 7: a late RGB track of that person joins it.
        let t3 = track("night", Modality::Thermal, 3, walk(0.7, -0.1, 0.0, 3.0, 0.0));
        p.recorded(&t3, 7, 70);
        let out = p.push(track("day", Modality::Rgb, 5, walk(0.65, -0.1, 0.5, 2.0, 0.0)));
        match &out[..] {
            [PairUnit::Single(t, Some(partner))] => {
                assert_eq!(
                    (t.track_id, partner.identity_id, partner.sighting_id, partner.modality),
                    (5, 7, 70, Modality::Thermal)
                )
            }
            _ => panic!("expected a join"),
        }
        // Forgotten identities are not joined; drain empties the buffer.
        p.forget(7);
        assert!(p.push(track("day", Modality::Rgb, 6, walk(0.65, -0.1, 0.5, 2.0, 0.0))).is_empty());
        assert_eq!(p.drain().len(), 1);
        assert_eq!(p.pending(), 0);
        // Disabled: everything goes straight through.
        let mut off: Pairer<FinishedTrack> =
            Pairer::new(PairConfig { enabled: false, ..PairConfig::default() }, places("/tmp/r.mp4"));
        assert!(matches!(
            off.push(track("day", Modality::Rgb, 8, walk(0.1, 0.1, 0.0, 3.0, 0.0)))[..],
            [PairUnit::Single(_, None)]
        ));
    }
}
