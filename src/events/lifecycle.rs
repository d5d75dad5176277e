//! A person's sighting as a Frigate consumer follows it: `new` when a track
//! is confirmed, `update` while it is followed (at most one per
//! `update_interval_s`), `end` once it has left and the gallery has decided
//! who it was. Each message carries `before` (the state last published) and
//! `after` (the state now).
//!
//! Two stages feed it: the trackers (live tracks, on the camera threads) and
//! the gallery (the stored sighting, with its identity, some time after the
//! track ended: pairing and embedding come first). A track the gallery never
//! stores (it failed embedding, say) still gets its `end`, without an
//! identity, `end_wait_s` after it ended; so does every open one at shutdown.
//! Memory is bounded: past `max_open_sightings` the oldest is ended early.

use std::collections::HashMap;
use std::sync::Arc;

use super::mqtt::{EventMessage, MqttSighting, SightingEventKind};
use crate::core::time::{ns_to_secs, secs_to_ns};
use crate::core::{Modality, Sighting};
use crate::track::{ActiveTrack, FinishedTrack};

/// The event id of a track: its start (Unix seconds, as Frigate's ids
/// begin), its camera and its track number. The same on `new`, `update` and `end`.
pub fn event_id(start_ns: i64, camera: &str, track_id: u64) -> String {
    format!("{:.6}-{camera}-{track_id}", ns_to_secs(start_ns))
}

struct Open {
    /// The state last published: the next message's `before`.
    published: MqttSighting,
    /// Track time of that publish (ns), for the update interval.
    published_ns: i64,
    /// When the tracker ended it (wall clock, ns); then it waits for the gallery.
    ended_ns: Option<i64>,
    /// Frames matched in all, once it has ended (the `end`'s `frames`).
    frames: Option<u32>,
    /// Publication order, to end the oldest first when full.
    seq: u64,
}

/// The open sightings and the rules above; pure (time is passed in), so the
/// MQTT publisher and the tests drive it alike.
pub struct Lifecycle {
    /// By (camera, track): the camera is the trackers' own `Arc`, so a lookup per
    /// track and frame allocates nothing.
    open: HashMap<(Arc<str>, u64), Open>,
    seq: u64,
    max_open: usize,
    update_ns: i64,
    end_wait_ns: i64,
    /// camera name → box name, from the config.
    boxes: HashMap<String, String>,
}

impl Lifecycle {
    pub fn new(boxes: HashMap<String, String>, update_interval_s: f64, end_wait_s: f64, max_open: usize) -> Lifecycle {
        Lifecycle {
            open: HashMap::new(),
            seq: 0,
            max_open: max_open.max(1),
            update_ns: secs_to_ns(update_interval_s),
            end_wait_ns: secs_to_ns(end_wait_s),
            boxes,
        }
    }

    /// Sightings published and not yet ended.
    pub fn open_sightings(&self) -> usize {
        self.open.len()
    }

    fn box_of(&self, camera: &str) -> String {
        self.boxes.get(camera).cloned().unwrap_or_default()
    }

    /// A detection frame at `at_ns` matched these confirmed tracks: `new` for
    /// a track not published yet, `update` for one last published at least
    /// the update interval ago.
    pub fn seen(
        &mut self,
        camera: &Arc<str>,
        modality: Modality,
        at_ns: i64,
        active: &[ActiveTrack],
    ) -> Vec<EventMessage> {
        let mut out = vec![];
        for t in active {
            let key = (camera.clone(), t.track_id);
            let moved = |published: &MqttSighting| MqttSighting {
                frames: Some(t.hits),
                bbox: [t.bbox.x, t.bbox.y, t.bbox.w, t.bbox.h],
                ..published.clone()
            };
            match self.open.get_mut(&key) {
                None => {
                    out.extend(self.make_room());
                    let after = self.fresh(camera, modality, t);
                    self.seq += 1;
                    let open = Open {
                        published: after.clone(),
                        published_ns: at_ns,
                        ended_ns: None,
                        frames: None,
                        seq: self.seq,
                    };
                    self.open.insert(key, open);
                    out.push(EventMessage { kind: SightingEventKind::New, before: after.clone(), after });
                }
                Some(open) if open.ended_ns.is_none() && at_ns - open.published_ns >= self.update_ns => {
                    let after = moved(&open.published);
                    let before = std::mem::replace(&mut open.published, after.clone());
                    open.published_ns = at_ns;
                    out.push(EventMessage { kind: SightingEventKind::Update, before, after });
                }
                Some(_) => {}
            }
        }
        out
    }

    fn fresh(&self, camera: &str, modality: Modality, t: &ActiveTrack) -> MqttSighting {
        MqttSighting {
            id: event_id(t.start_ns, camera, t.track_id),
            sighting_id: None,
            camera: camera.to_string(),
            box_name: self.box_of(camera),
            modality,
            label: "person".into(),
            identity_id: None,
            identity_label: None,
            score: None,
            day_night_link: false,
            start_time: ns_to_secs(t.start_ns),
            end_time: None,
            bbox: [t.bbox.x, t.bbox.y, t.bbox.w, t.bbox.h],
            frames: Some(t.hits),
        }
    }

    /// The tracker ended these tracks at `at_ns`; their `end` waits for the gallery.
    pub fn ended(&mut self, tracks: &[FinishedTrack], at_ns: i64) {
        for t in tracks {
            if let Some(open) = self.open.get_mut(&(t.camera.clone(), t.track_id)) {
                open.ended_ns = Some(at_ns);
                open.frames = Some(t.hits);
            }
        }
    }

    /// The gallery stored a track as `sighting`: its `end`, with the identity.
    /// A sighting never seen live (a replay, or MQTT started late) is
    /// published as `new` then `end`.
    pub fn stored(&mut self, sighting: &Sighting) -> Vec<EventMessage> {
        let key = (Arc::from(sighting.camera.as_str()), sighting.track_id);
        let mut after = MqttSighting {
            id: event_id(sighting.start_ns, &sighting.camera, sighting.track_id),
            box_name: self.box_of(&sighting.camera),
            ..MqttSighting::from(sighting)
        };
        match self.open.remove(&key) {
            Some(open) => {
                after.id = open.published.id.clone();
                after.frames = open.frames.or(open.published.frames);
                vec![EventMessage { kind: SightingEventKind::End, before: open.published, after }]
            }
            None => {
                let new = MqttSighting { end_time: None, sighting_id: None, ..after.clone() };
                vec![
                    EventMessage { kind: SightingEventKind::New, before: new.clone(), after: new.clone() },
                    EventMessage { kind: SightingEventKind::End, before: new, after },
                ]
            }
        }
    }

    /// `end` (without an identity) for tracks that ended at least
    /// `end_wait_s` before `now_ns` and were never stored.
    pub fn expire(&mut self, now_ns: i64) -> Vec<EventMessage> {
        let wait = self.end_wait_ns;
        let due: Vec<_> = self
            .open
            .iter()
            .filter(|(_, o)| o.ended_ns.is_some_and(|e| now_ns - e >= wait))
            .map(|(k, _)| k.clone())
            .collect();
        self.end_all(due)
    }

    /// Shutdown: `end` for every open sighting, oldest first.
    pub fn drain(&mut self) -> Vec<EventMessage> {
        let all: Vec<_> = self.open.keys().cloned().collect();
        self.end_all(all)
    }

    fn make_room(&mut self) -> Vec<EventMessage> {
        if self.open.len() < self.max_open {
            return vec![];
        }
        let oldest = self.open.iter().min_by_key(|(_, o)| o.seq).map(|(k, _)| k.clone());
        self.end_all(oldest.into_iter().collect())
    }

    fn end_all(&mut self, keys: Vec<(Arc<str>, u64)>) -> Vec<EventMessage> {
        let mut ended: Vec<Open> = keys.iter().filter_map(|k| self.open.remove(k)).collect();
        ended.sort_by_key(|o| o.seq);
        ended
            .into_iter()
            .map(|o| {
                let end_ns = o.ended_ns.unwrap_or(o.published_ns);
                let after = MqttSighting {
                    end_time: Some(ns_to_secs(end_ns)),
                    frames: o.frames.or(o.published.frames),
                    ..o.published.clone()
                };
                EventMessage { kind: SightingEventKind::End, before: o.published, after }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::BBox;
    use std::time::{Duration, UNIX_EPOCH};

    const T0: i64 = 1_764_000_000_000_000_000;
    const S: i64 = 1_000_000_000;

    fn active(track_id: u64, hits: u32, x: f32) -> ActiveTrack {
        ActiveTrack { track_id, bbox: BBox::new(x, 20.0, 40.0, 100.0), score: 0.9, start_ns: T0, hits }
    }

    fn cam() -> Arc<str> {
        Arc::from("gate-thermal")
    }

    fn lifecycle(max_open: usize) -> Lifecycle {
        Lifecycle::new([("gate-thermal".to_string(), "gate".to_string())].into(), 1.0, 30.0, max_open)
    }

    fn finished(track_id: u64) -> FinishedTrack {
        FinishedTrack {
            track_id,
            camera: Arc::from("gate-thermal"),
            modality: Modality::Thermal,
            first_pts_ns: None,
            last_pts_ns: None,
            start_time: UNIX_EPOCH + Duration::from_nanos(T0 as u64),
            end_time: UNIX_EPOCH + Duration::from_nanos((T0 + 5 * S) as u64),
            hits: 40,
            best_box: BBox::new(1.0, 2.0, 3.0, 4.0),
            best_score: 1.0,
            crops: vec![],
            path: vec![],
            light: None,
        }
    }

    fn stored(track_id: u64) -> Sighting {
        Sighting {
            id: 77,
            identity_id: 4,
            label: Some("alice".into()),
            new_identity: false,
            camera: "gate-thermal".into(),
            modality: Modality::Thermal,
            track_id,
            start_ns: T0,
            end_ns: T0 + 5 * S,
            start_pts_ns: None,
            end_pts_ns: None,
            best_pts_ns: None,
            best_box: BBox::new(1.0, 2.0, 30.0, 90.0),
            similarity: Some(0.61),
            matched_modality: Some(Modality::Rgb),
            day_night_link: true,
            crop_path: None,
            paired_sighting_id: None,
        }
    }

    fn kinds(messages: &[EventMessage]) -> Vec<SightingEventKind> {
        messages.iter().map(|m| m.kind).collect()
    }

    #[test]
    fn new_then_throttled_updates_then_end_with_the_identity() {
        use SightingEventKind::*;
        let mut l = lifecycle(16);
        let mut out = vec![];
        // 10 frames a second for 3 s: one `new`, then an `update` a second.
        for i in 0..30 {
            out.extend(l.seen(&cam(), Modality::Thermal, T0 + i * S / 10, &[active(3, 3 + i as u32, i as f32)]));
        }
        assert_eq!(kinds(&out), [New, Update, Update]);
        l.ended(&[finished(3)], T0 + 3 * S);
        assert!(l.expire(T0 + 4 * S).is_empty(), "the gallery has time to decide");
        let end = l.stored(&stored(3));
        assert_eq!(kinds(&end), [End]);
        let (first, last) = (&out[0].after, &end[0].after);
        assert_eq!(first.id, last.id, "one id for the whole sighting");
        assert_eq!((first.identity_id, last.identity_id), (None, Some(4)));
        assert_eq!((last.sighting_id, last.identity_label.as_deref()), (Some(77), Some("alice")));
        assert_eq!(end[0].before, out[2].after, "before = the state last published");
        assert_eq!(last.frames, Some(40), "the track's frames in all");
        assert_eq!(last.box_name, "gate");
        assert!(first.end_time.is_none() && last.end_time.is_some());
        assert_eq!(l.open_sightings(), 0);
    }

    #[test]
    fn a_track_never_stored_ends_after_the_wait_and_at_shutdown() {
        let mut l = lifecycle(16);
        l.seen(&cam(), Modality::Thermal, T0, &[active(1, 3, 0.0), active(2, 3, 50.0)]);
        l.ended(&[finished(1)], T0 + S);
        assert!(l.expire(T0 + 30 * S).is_empty(), "track 1 ended 29 s before: not yet");
        assert_eq!(l.expire(T0 + 31 * S).len(), 1, "track 1 ended 30 s before: due");
        let rest = l.drain();
        assert_eq!(kinds(&rest), [SightingEventKind::End]);
        assert_eq!(rest[0].after.identity_id, None);
        assert_eq!(l.open_sightings(), 0);
    }

    #[test]
    fn a_sighting_not_seen_live_is_new_then_end() {
        let mut l = lifecycle(16);
        let out = l.stored(&stored(9));
        assert_eq!(kinds(&out), [SightingEventKind::New, SightingEventKind::End]);
        assert_eq!(out[0].after.end_time, None);
        assert_eq!(out[1].after.identity_id, Some(4));
    }

    #[test]
    fn open_sightings_are_bounded_and_the_oldest_is_ended() {
        let mut l = lifecycle(3);
        let mut ends = vec![];
        for id in 0..10 {
            ends.extend(
                l.seen(&cam(), Modality::Thermal, T0, &[active(id, 3, 0.0)])
                    .into_iter()
                    .filter(|m| m.kind == SightingEventKind::End),
            );
        }
        assert_eq!(l.open_sightings(), 3);
        let ended: Vec<String> = ends.iter().map(|m| m.after.id.clone()).collect();
        let expected: Vec<String> = (0..7).map(|id| event_id(T0, "gate-thermal", id)).collect();
        assert_eq!(ended, expected);
    }
}
