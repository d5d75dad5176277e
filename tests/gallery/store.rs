//! Gallery behaviour through its public API: open-set assignment, day/night
//! links, bounded exemplars, persistence, forget, retention, bad databases.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ndarray::Array1;
use vireid::core::BBox;
use vireid::core::Crop;
use vireid::core::Modality;
use vireid::embed::batcher::EmbeddedTrack;
use vireid::gallery::store::GalleryStore;
use vireid::gallery::{Gallery, GalleryConfig};
use vireid::track::{FinishedTrack, TrackCrop};

pub(crate) const DIM: usize = 16;

/// A unit feature near axis `person` (+ a small, per-call perturbation).
pub(crate) fn feature(person: usize, wobble: f32, modality: Modality) -> Array1<f32> {
    let mut v = Array1::<f32>::zeros(DIM);
    v[person % DIM] = 1.0;
    v[(person + 5) % DIM] += wobble;
    // Thermal features of a person sit at cos ~0.6 from its RGB ones: like a real modality gap.
    if modality == Modality::Thermal {
        v[(person + 11) % DIM] += 1.3;
    }
    let n = v.dot(&v).sqrt();
    v / n
}

pub(crate) fn track(id: u64, modality: Modality, f: Array1<f32>) -> EmbeddedTrack {
    let crop = Crop::new(image::RgbImage::from_pixel(8, 16, image::Rgb([id as u8, 9, 9])), modality);
    let tc = TrackCrop { crop, bbox: BBox::new(1., 2., 8., 16.), score: 0.9, sharpness: 1.0, pts_ns: Some(id * 100) };
    let t = FinishedTrack {
        track_id: id,
        camera: Arc::from(modality.as_str()),
        modality,
        first_pts_ns: Some(id * 100),
        last_pts_ns: Some(id * 100 + 50),
        start_time: SystemTime::now(),
        end_time: SystemTime::now(),
        hits: 5,
        best_box: BBox::new(1., 2., 8., 16.),
        best_score: 0.9,
        crops: vec![tc],
        path: vec![],
        light: None,
    };
    EmbeddedTrack { track: t, feature: f, crops_used: 1 }
}

fn config() -> GalleryConfig {
    GalleryConfig {
        same_modality_threshold: 0.8,
        cross_modality_threshold: 0.45,
        exemplars_per_modality: 3,
        ..Default::default()
    }
}

#[test]
fn open_set_assignment_links_day_and_night_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let a = g.record_sighting(&track(1, Modality::Rgb, feature(0, 0.0, Modality::Rgb))).unwrap();
    assert!(a.new_identity && !a.day_night_link);
    let b = g.record_sighting(&track(2, Modality::Rgb, feature(1, 0.0, Modality::Rgb))).unwrap();
    assert!(b.new_identity && b.identity_id != a.identity_id, "a different person is a new identity");
    let a2 = g.record_sighting(&track(3, Modality::Rgb, feature(0, 0.2, Modality::Rgb))).unwrap();
    assert_eq!((a2.identity_id, a2.new_identity, a2.day_night_link), (a.identity_id, false, false));
    // Person 0 at night: matches only through the RGB exemplars (cross threshold) → a link.
    let n = g.record_sighting(&track(4, Modality::Thermal, feature(0, 0.1, Modality::Thermal))).unwrap();
    assert_eq!((n.identity_id, n.day_night_link, n.matched_modality), (a.identity_id, true, Some(Modality::Rgb)));
    assert!(n.similarity.unwrap() >= 0.45 && n.similarity.unwrap() < 0.8);
    // Next night sighting of person 0 matches its new thermal exemplar (same modality), and
    // is still a day/night link: the identity it joins is known from RGB.
    let n2 = g.record_sighting(&track(5, Modality::Thermal, feature(0, 0.15, Modality::Thermal))).unwrap();
    assert_eq!(
        (n2.identity_id, n2.day_night_link, n2.matched_modality),
        (a.identity_id, true, Some(Modality::Thermal))
    );
    drop(g);

    // Reopen: everything is still there, and the index answers as before.
    let g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let ids = g.store().list_identities().unwrap();
    assert_eq!(ids.len(), 2);
    let p0 = ids.iter().find(|i| i.id == a.identity_id).unwrap();
    assert_eq!((p0.rgb_sightings, p0.thermal_sightings, p0.links), (2, 2, 2));
    let q = g.query(feature(0, 0.0, Modality::Rgb).as_slice().unwrap(), 5).unwrap();
    assert_eq!(q[0].identity_id, a.identity_id);
    assert_eq!(q[0].sightings.len(), 4);
    assert!(q[0].sightings.iter().all(|s| s.crop_path.as_ref().is_some_and(|p| std::path::Path::new(p).exists())));
}

#[test]
fn co_observed_tracks_share_an_identity_and_night_matches_link_to_day() {
    use vireid::pair::{PairUnit, Partner};
    let dir = tempfile::tempdir().unwrap();
    // Cross-modality appearance matching off: links come only from co-observation.
    let cfg = GalleryConfig { cross_modality_threshold: 1.0, ..config() };
    let mut g = Gallery::open(&cfg, dir.path(), DIM).unwrap();
    // By day both cameras see person 4: one pair, one new identity, both sightings filed under it.
    let rgb = track(1, Modality::Rgb, feature(4, 0.0, Modality::Rgb));
    let th = track(2, Modality::Thermal, feature(4, 0.0, Modality::Thermal));
    let out = g.record_unit(PairUnit::Pair(Box::new(rgb), Box::new(th), 0.7));
    let (a, b) = (out[0].1.as_ref().unwrap().clone(), out[1].1.as_ref().unwrap().clone());
    assert_eq!((a.modality, b.modality), (Modality::Rgb, Modality::Thermal), "events in the order given");
    assert!(a.new_identity && !b.new_identity && a.identity_id == b.identity_id);
    assert_eq!((a.paired_sighting_id, b.paired_sighting_id), (Some(b.id), Some(a.id)));
    assert!(!a.day_night_link && b.day_night_link, "the thermal sighting joins an identity known from RGB");
    // The joined one is not shown as new (it once was, having no score of its own).
    let shown = vireid::api::SightingBody::from(&b);
    assert_eq!((shown.new_identity, shown.score, shown.paired_sighting_id), (false, None, Some(a.id as u64)));
    assert_eq!(b.how_assigned(), format!("with sighting {} (co-observed)", a.id));
    assert_eq!(a.how_assigned(), "new identity");
    // `gallery show` says so, with readable times (they were raw Unix seconds).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["gallery", "show", &a.identity_id.to_string(), "--state-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("new identity") && text.contains(&format!("with sighting {} (co-observed)", a.id)), "{text}");
    let year = vireid::core::time::utc_string(std::time::SystemTime::now())[..4].to_string();
    assert!(text.contains(&format!("{year}-")) && text.contains('Z'), "{text}");
    // The database agrees, both ways.
    let rows = g.store().sightings_of(Some(a.identity_id)).unwrap();
    assert_eq!(rows.iter().map(|r| r.paired_sighting_id).collect::<Vec<_>>(), vec![Some(b.id), Some(a.id)]);
    // At night a thermal-only sighting of person 4 matches the day's thermal exemplar: a link to the day identity.
    let n = g.record_sighting(&track(3, Modality::Thermal, feature(4, 0.1, Modality::Thermal))).unwrap();
    assert_eq!((n.identity_id, n.day_night_link, n.matched_modality), (a.identity_id, true, Some(Modality::Thermal)));
    // Without the pairing, the same night sighting would have started a new identity (cross off).
    let lone_dir = tempfile::tempdir().unwrap();
    let mut lone = Gallery::open(&cfg, lone_dir.path(), DIM).unwrap();
    lone.record_sighting(&track(1, Modality::Rgb, feature(4, 0.0, Modality::Rgb))).unwrap();
    assert!(
        lone.record_sighting(&track(3, Modality::Thermal, feature(4, 0.1, Modality::Thermal))).unwrap().new_identity
    );
    // A late partner of n joins the identity n joined by appearance when its
    // own view agrees (a link through n) ...
    let partner = Partner { identity_id: a.identity_id, sighting_id: n.id, modality: Modality::Thermal, iou: 0.6 };
    let late = g.record_unit(PairUnit::Single(
        Box::new(track(4, Modality::Rgb, feature(4, 0.3, Modality::Rgb))),
        Some(partner),
    ));
    let late = late[0].1.as_ref().unwrap();
    assert_eq!((late.identity_id, late.paired_sighting_id, late.day_night_link), (a.identity_id, Some(n.id), true));
    // ... but one whose own view misses that identity by more than n cleared
    // it (cos ~0 against person 4's colour exemplars) is decided on its own:
    // one of the two appearance matches is wrong, and the pairing cannot say which.
    let vetoed = g.record_unit(PairUnit::Single(
        Box::new(track(11, Modality::Rgb, feature(9, 0.0, Modality::Rgb))),
        Some(partner),
    ));
    let vetoed = vetoed[0].1.as_ref().unwrap();
    assert!(vetoed.new_identity && vetoed.paired_sighting_id.is_none(), "{vetoed:?}");
    assert_eq!(g.store().partners_of(&[n.id]).unwrap()[&n.id], vec![late.id]);
    // A second late partner of the same long thermal track (its RGB person
    // was tracked in two pieces): both RGB sightings name it, it keeps the
    // first, and the partner lists agree both ways (once, 30 → 24 but 24 → 25).
    // (b joined by co-observation, not by appearance: nothing to weigh.)
    let partner_b = Partner { identity_id: a.identity_id, sighting_id: b.id, modality: Modality::Thermal, iou: 0.6 };
    let late2 = g.record_unit(PairUnit::Single(
        Box::new(track(10, Modality::Rgb, feature(4, 0.05, Modality::Rgb))),
        Some(partner_b),
    ));
    let late2 = late2[0].1.as_ref().unwrap().clone();
    assert_eq!(late2.paired_sighting_id, Some(b.id));
    let row_b = g.store().sightings_of(Some(a.identity_id)).unwrap().into_iter().find(|s| s.id == b.id).unwrap();
    assert_eq!(row_b.paired_sighting_id, Some(a.id), "b keeps the partner it was stored with");
    let partners = g.store().partners_of(&[a.id, b.id, late2.id]).unwrap();
    assert_eq!(partners[&b.id], vec![a.id, late2.id]);
    assert_eq!((&partners[&a.id], &partners[&late2.id]), (&vec![b.id], &vec![b.id]));
    // A pair whose second track decides (the thermal one matches person 4's
    // identity, the RGB one nobody) is stored lead first; its events come in
    // that order (ids ascending), not in the order given (they once did).
    let out = g.record_unit(PairUnit::Pair(
        Box::new(track(8, Modality::Rgb, feature(4, 0.1, Modality::Rgb))),
        Box::new(track(9, Modality::Thermal, feature(4, 0.0, Modality::Thermal))),
        0.7,
    ));
    let stored: Vec<_> = out.iter().map(|(et, r)| (et.track.modality, r.as_ref().unwrap().clone())).collect();
    assert_eq!(stored[0].0, Modality::Thermal, "the deciding track first: {stored:#?}");
    assert!(stored[0].1.id < stored[1].1.id, "{stored:#?}");
    assert_eq!((stored[0].1.identity_id, stored[1].1.identity_id), (a.identity_id, a.identity_id));
    // A partner whose identity was forgotten meanwhile: matched by appearance instead (a new identity here).
    g.forget(a.identity_id).unwrap();
    let orphan = g.record_unit(PairUnit::Single(
        Box::new(track(5, Modality::Rgb, feature(11, 0.0, Modality::Rgb))),
        Some(partner),
    ));
    let orphan = orphan[0].1.as_ref().unwrap();
    assert!(orphan.new_identity && orphan.paired_sighting_id.is_none());
    // A pair with a malformed feature: the good track is stored exactly once, the bad one fails with its reason.
    let before = g.store().counts().unwrap().1;
    let bad = track(7, Modality::Thermal, Array1::<f32>::zeros(DIM + 1));
    let out = g.record_unit(PairUnit::Pair(
        Box::new(track(6, Modality::Rgb, feature(12, 0.0, Modality::Rgb))),
        Box::new(bad),
        0.7,
    ));
    let good = out[0].1.as_ref().unwrap();
    assert!(good.paired_sighting_id.is_none());
    let err = format!("{:#}", out[1].1.as_ref().unwrap_err());
    assert!(err.contains("dimension"), "{err}");
    assert_eq!(g.store().counts().unwrap().1, before + 1, "one sighting stored, not two");
}

/// Two tracks one camera saw at the same time are two people, however alike
/// they look: the second starts an identity of its own; a look-alike seen
/// after the first left joins it as before.
#[test]
fn a_track_cannot_join_someone_its_camera_saw_elsewhere_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let t0 = SystemTime::now();
    let seen = |id, modality, wobble, from_ms: u64, to_ms: u64| {
        let mut et = track(id, modality, feature(4, wobble, modality));
        let at = |ms| t0 + Duration::from_millis(ms);
        (et.track.start_time, et.track.end_time) = (at(from_ms), at(to_ms));
        et
    };
    let first = g.record_sighting(&seen(1, Modality::Rgb, 0.0, 0, 10_000)).unwrap();
    // A look-alike (cos 0.995) in the same frames: someone else.
    let twin = g.record_sighting(&seen(2, Modality::Rgb, 0.1, 5_000, 12_000)).unwrap();
    assert!(twin.new_identity, "{twin:?}");
    // Starting 0.2 s after the first left, while the twin is still there: the first person again.
    let later = g.record_sighting(&seen(3, Modality::Rgb, 0.0, 10_200, 20_000)).unwrap();
    assert_eq!(later.identity_id, first.identity_id, "{later:?}");
    // Starting 0.3 s before the twin's track ended (fragments of one track
    // handing over, not two people), while the first person is in view: the twin.
    let handover = g.record_sighting(&seen(4, Modality::Rgb, 0.0, 11_700, 18_000)).unwrap();
    assert_eq!(handover.identity_id, twin.identity_id, "{handover:?}");
    // Another camera's view of the same moment is not constrained: the thermal
    // partner co-observed with the first track joins it.
    let partner = vireid::pair::Partner {
        identity_id: first.identity_id,
        sighting_id: first.id,
        modality: Modality::Rgb,
        iou: 0.6,
    };
    let th = seen(5, Modality::Thermal, 0.0, 0, 10_000);
    let th = g.record_unit(vireid::pair::PairUnit::Single(Box::new(th), Some(partner)));
    let th = th[0].1.as_ref().unwrap();
    assert_eq!((th.identity_id, th.paired_sighting_id), (first.identity_id, Some(first.id)));
}

/// At night the colour track of a pair often ends first and, too dark to be
/// compared with anyone seen by day, starts a new identity. Its thermal partner,
/// stored later, is not bound by that: it joins the daytime identity its own
/// view clearly matches. A late partner that matches nobody still follows, and
/// so does one whose partner's view clearly rules its match out.
#[test]
fn a_late_partner_is_not_bound_by_a_partner_that_matched_nobody() {
    use vireid::core::Light;
    use vireid::pair::{PairUnit, Partner};
    let dir = tempfile::tempdir().unwrap();
    let cfg = GalleryConfig { cross_modality_threshold: 1.0, cross_light_threshold: Some(0.5), ..config() };
    let mut g = Gallery::open(&cfg, dir.path(), DIM).unwrap();
    let seen = |id: u64, modality, f, light| {
        let mut t = track(id, modality, f);
        t.track.light = Some(light);
        t
    };
    let day = g.record_sighting(&seen(1, Modality::Thermal, feature(2, 0.0, Modality::Thermal), Light::Day)).unwrap();
    let dark = g.record_sighting(&seen(2, Modality::Rgb, feature(2, 0.0, Modality::Rgb), Light::Night)).unwrap();
    assert!(dark.new_identity, "night colour is not compared with anyone by day: {dark:?}");
    let partner = Partner { identity_id: dark.identity_id, sighting_id: dark.id, modality: Modality::Rgb, iou: 0.6 };
    // wobble 1.5: cos ~0.62 to the day exemplar, over cross_light_threshold 0.5.
    let night = seen(3, Modality::Thermal, feature(2, 1.5, Modality::Thermal), Light::Night);
    let night = g.record_unit(PairUnit::Single(Box::new(night), Some(partner)));
    let night = night[0].1.as_ref().unwrap();
    assert_eq!((night.identity_id, night.matched_modality), (day.identity_id, Some(Modality::Thermal)), "{night:?}");
    // Someone nobody has seen: the late thermal partner follows its colour partner.
    let dark2 = g.record_sighting(&seen(4, Modality::Rgb, feature(7, 0.0, Modality::Rgb), Light::Night)).unwrap();
    let partner2 = Partner { identity_id: dark2.identity_id, sighting_id: dark2.id, ..partner };
    let stranger = seen(5, Modality::Thermal, feature(7, 0.0, Modality::Thermal), Light::Night);
    let stranger = g.record_unit(PairUnit::Single(Box::new(stranger), Some(partner2)));
    let stranger = stranger[0].1.as_ref().unwrap();
    assert_eq!((stranger.identity_id, stranger.paired_sighting_id), (dark2.identity_id, Some(dark2.id)));
    // By day the colour partner can be compared: it matched nobody because it
    // is not person 2, and its view (cos ~0 to person 2's colour exemplar)
    // outvotes its thermal partner's match to person 2, as in a pair decided
    // together.
    let colour = g.record_unit(PairUnit::Pair(
        Box::new(seen(6, Modality::Rgb, feature(2, 0.0, Modality::Rgb), Light::Day)),
        Box::new(seen(9, Modality::Thermal, feature(2, 0.05, Modality::Thermal), Light::Day)),
        0.7,
    ));
    assert!(colour.iter().all(|(_, r)| r.as_ref().unwrap().identity_id == day.identity_id), "{colour:?}");
    let other = g.record_sighting(&seen(7, Modality::Rgb, feature(9, 0.0, Modality::Rgb), Light::Day)).unwrap();
    assert!(other.new_identity, "{other:?}");
    let partner3 = Partner { identity_id: other.identity_id, sighting_id: other.id, ..partner };
    let look_alike = seen(8, Modality::Thermal, feature(2, 0.0, Modality::Thermal), Light::Day);
    let look_alike = g.record_unit(PairUnit::Single(Box::new(look_alike), Some(partner3)));
    let look_alike = look_alike[0].1.as_ref().unwrap();
    assert_eq!((look_alike.identity_id, look_alike.paired_sighting_id), (other.identity_id, Some(other.id)));
}

/// Two boxes stacked on one tall person (head and torso above legs) are two
/// tracks of one camera at once, but not two people: the second can still be
/// them. The same look beside them at the same time is someone else.
#[test]
fn a_track_stacked_on_someone_seen_meanwhile_can_be_them() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let t0 = SystemTime::now();
    let t0_ns = t0.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as i64;
    let seen = |id, wobble, rel_box| {
        let mut et = track(id, Modality::Rgb, feature(4, wobble, Modality::Rgb));
        (et.track.start_time, et.track.end_time) = (t0, t0 + Duration::from_secs(2));
        et.track.path = (0..=20)
            .map(|k| vireid::track::path::PathPoint { pts_ns: None, wall_ns: t0_ns + k * 100_000_000, rel_box })
            .collect();
        et
    };
    let upper = g.record_sighting(&seen(1, 0.0, BBox::new(0.20, 0.10, 0.08, 0.35))).unwrap();
    let legs = g.record_sighting(&seen(2, 0.1, BBox::new(0.21, 0.45, 0.08, 0.30))).unwrap();
    assert_eq!(legs.identity_id, upper.identity_id, "{legs:?}");
    let beside = g.record_sighting(&seen(3, 0.1, BBox::new(0.60, 0.10, 0.08, 0.60))).unwrap();
    assert!(beside.new_identity, "{beside:?}");
}

/// A gallery and a harvester for one box with an RGB camera named `rgb` and a
/// thermal one named `thermal`, on stream time.
fn harvesting(dir: &std::path::Path) -> (Gallery, vireid::gallery::harvest::Harvester) {
    use vireid::gallery::harvest::{AdaptConfig, Harvester};
    use vireid::pair::{CameraPlace, Clock};
    let cfg = GalleryConfig { cross_modality_threshold: 1.0, ..config() };
    let g = Gallery::open(&cfg, dir, DIM).unwrap();
    let place = |modality| CameraPlace { box_name: "box".into(), modality, clock: Clock::Pts };
    let places = [Modality::Rgb, Modality::Thermal].map(|m| (m.as_str().to_string(), place(m)));
    (g, Harvester::new(AdaptConfig::default(), std::collections::HashMap::from(places)))
}

/// A track seen from `from_s` to `from_s` + 2 s of stream time, its box at `rel_box`.
fn seen_at(id: u64, modality: Modality, f: Array1<f32>, from_s: u64, rel_box: BBox) -> EmbeddedTrack {
    let mut et = track(id, modality, f);
    et.track.path = (0..=4)
        .map(|k| vireid::track::path::PathPoint { pts_ns: Some((from_s * 2 + k) * 500_000_000), wall_ns: 0, rel_box })
        .collect();
    et
}

/// Records a unit as the gallery actor does: the gallery decides, then the harvester observes.
fn record_harvested(
    g: &mut Gallery,
    harvester: &mut vireid::gallery::harvest::Harvester,
    unit: vireid::pair::PairUnit<EmbeddedTrack>,
) -> Vec<vireid::core::Sighting> {
    let late_partner = unit.late_partner();
    let out = g.record_unit(unit);
    let stored: Vec<_> = out.iter().map(|(et, r)| (&**et, r.as_ref().unwrap())).collect();
    harvester.observe(g, &stored, late_partner);
    out.into_iter().map(|(_, r)| r.unwrap()).collect()
}

/// The (first, second) sighting ids of the harvest's rows of one kind.
fn harvested(g: &Gallery, kind: vireid::gallery::harvest::HarvestKind) -> Vec<(i64, i64)> {
    let rows = g.store().harvest(kind, &g.space().base).unwrap();
    rows.iter().map(|r| (r.a_sighting_id, r.b_sighting_id)).collect()
}

/// The harvest takes its pairs from geometry: a late partner whose own view
/// outvotes its partner's identity (decided on its own, no partner noted on
/// either sighting) is still a co-observed pair for `vireid adapt`.
#[test]
fn a_late_partner_decided_on_its_own_is_still_harvested_as_a_pair() {
    use vireid::gallery::harvest::HarvestKind;
    use vireid::pair::{PairUnit, Partner};

    let dir = tempfile::tempdir().unwrap();
    let (mut g, mut harvester) = harvesting(dir.path());
    let at = BBox::new(0.1, 0.1, 0.2, 0.5);
    let seen = |id, modality, f, from_s| seen_at(id, modality, f, from_s, at);
    let mut record = |g: &mut Gallery, unit| record_harvested(g, &mut harvester, unit);
    // By day a pair of person 4; later its thermal view alone joins by appearance ...
    let day = record(
        &mut g,
        PairUnit::Pair(
            Box::new(seen(1, Modality::Rgb, feature(4, 0.0, Modality::Rgb), 0)),
            Box::new(seen(2, Modality::Thermal, feature(4, 0.0, Modality::Thermal), 0)),
            0.7,
        ),
    );
    let n = record(
        &mut g,
        PairUnit::Single(Box::new(seen(3, Modality::Thermal, feature(4, 0.1, Modality::Thermal), 10)), None),
    );
    assert_eq!(n[0].identity_id, day[0].identity_id);
    // ... and its co-observed colour partner looks like nobody of that identity: decided on its own.
    let partner =
        Partner { identity_id: n[0].identity_id, sighting_id: n[0].id, modality: Modality::Thermal, iou: 0.6 };
    let late = record(
        &mut g,
        PairUnit::Single(Box::new(seen(4, Modality::Rgb, feature(9, 0.0, Modality::Rgb), 10)), Some(partner)),
    );
    assert!(late[0].new_identity && late[0].paired_sighting_id.is_none(), "{late:?}");
    let pairs = harvested(&g, HarvestKind::Pair);
    assert_eq!(pairs, vec![(day[0].id, day[1].id), (late[0].id, n[0].id)], "RGB first in each pair");
}

/// Simultaneous tracks of one camera are certain impostors only when they were
/// seen side by side at some instant: two stacked boxes (head and torso above
/// legs) are one tall person found twice by the detector, not two people.
#[test]
fn only_tracks_seen_side_by_side_are_harvested_as_impostors() {
    use vireid::gallery::harvest::HarvestKind;
    use vireid::pair::PairUnit;

    let dir = tempfile::tempdir().unwrap();
    let (mut g, mut harvester) = harvesting(dir.path());
    let mut ids = vec![];
    for (id, person, rel_box) in [
        (1, 1, BBox::new(0.20, 0.10, 0.08, 0.35)), // person 1's head and torso
        (2, 1, BBox::new(0.21, 0.45, 0.08, 0.30)), // ... and legs, found at the same time
        (3, 3, BBox::new(0.60, 0.10, 0.08, 0.60)), // someone else, beside them
    ] {
        let et = seen_at(id, Modality::Thermal, feature(person, 0.0, Modality::Thermal), 0, rel_box);
        ids.push(record_harvested(&mut g, &mut harvester, PairUnit::Single(Box::new(et), None))[0].id);
    }
    let impostors = harvested(&g, HarvestKind::ImpostorSame);
    assert_eq!(impostors, vec![(ids[0], ids[2]), (ids[1], ids[2])], "the stacked pair is not an impostor pair");
}

/// A night thermal track scores low against its daytime thermal self (ambient
/// changes the picture): it joins through `cross_light_threshold`, only across
/// light, and the light of each exemplar survives a reopen.
#[test]
fn night_thermal_joins_its_day_identity_across_light() {
    use vireid::core::Light;
    let dir = tempfile::tempdir().unwrap();
    let cfg = GalleryConfig { cross_modality_threshold: 1.0, cross_light_threshold: Some(0.5), ..config() };
    let seen = |id: u64, wobble: f32, light: Option<Light>| {
        let mut t = track(id, Modality::Thermal, feature(2, wobble, Modality::Thermal));
        t.track.light = light;
        t
    };
    let mut g = Gallery::open(&cfg, dir.path(), DIM).unwrap();
    let day = g.record_sighting(&seen(1, 0.0, Some(Light::Day))).unwrap();
    // wobble 1.5: cos ~0.62 to the day exemplar, under the same-modality 0.8.
    let unknown = g.record_sighting(&seen(2, 1.5, None)).unwrap();
    assert!(unknown.new_identity, "light unknown: the same-modality threshold");
    g.forget(unknown.identity_id).unwrap();
    let night = g.record_sighting(&seen(3, 1.5, Some(Light::Night))).unwrap();
    assert_eq!((night.identity_id, night.matched_modality), (day.identity_id, Some(Modality::Thermal)));
    let s = night.similarity.unwrap();
    assert!((0.5..0.8).contains(&s), "{s}");
    drop(g);
    let store = GalleryStore::open(&dir.path().join("gallery.db"), Duration::from_secs(2)).unwrap();
    let mut lights: Vec<_> = store.load_features().unwrap().iter().map(|f| f.light).collect();
    lights.sort_by_key(|l| l.map(Light::as_str));
    assert_eq!(lights, vec![Some(Light::Day), Some(Light::Night)]);
}

#[test]
fn exemplars_stay_bounded_and_diverse() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let first = g.record_sighting(&track(1, Modality::Rgb, feature(2, 0.0, Modality::Rgb))).unwrap();
    for i in 0..20 {
        let e =
            g.record_sighting(&track(10 + i, Modality::Rgb, feature(2, 0.05 * (i % 7) as f32, Modality::Rgb))).unwrap();
        assert_eq!(e.identity_id, first.identity_id);
    }
    let rows: Vec<_> = g.index().rows().iter().filter(|r| r.identity_id == first.identity_id).collect();
    assert_eq!(rows.len(), 3, "bounded by exemplars_per_modality");
    // Diverse: the kept exemplars are not near-duplicates of each other.
    let idx: Vec<usize> =
        (0..g.index().len()).filter(|&i| g.index().rows()[i].identity_id == first.identity_id).collect();
    let min_pair = idx
        .iter()
        .flat_map(|&i| idx.iter().filter(move |&&j| j > i).map(move |&j| (i, j)))
        .map(|(i, j)| g.index().row(i).iter().zip(g.index().row(j)).map(|(a, b)| a * b).sum::<f32>())
        .fold(f32::MAX, f32::min);
    assert!(min_pair < 0.99, "exemplars spread over the variation, min pair cos {min_pair}");
    assert_eq!(g.store().load_features().unwrap().len(), 3, "database agrees with the index");
}

#[test]
fn forget_deletes_every_trace() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&config(), dir.path(), DIM).unwrap();
    let a = g.record_sighting(&track(1, Modality::Rgb, feature(3, 0.0, Modality::Rgb))).unwrap();
    g.record_sighting(&track(2, Modality::Thermal, feature(3, 0.0, Modality::Thermal))).unwrap();
    let b = g.record_sighting(&track(3, Modality::Rgb, feature(7, 0.0, Modality::Rgb))).unwrap();
    let crops: Vec<String> =
        g.store().sightings_of(Some(a.identity_id)).unwrap().into_iter().filter_map(|s| s.crop_path).collect();
    assert_eq!(crops.len(), 2);
    g.forget(a.identity_id).unwrap();
    assert!(crops.iter().all(|c| !std::path::Path::new(c).exists()), "crop files deleted");
    assert!(g.index().rows().iter().all(|r| r.identity_id != a.identity_id));
    drop(g);
    let store = GalleryStore::open(&dir.path().join("gallery.db"), Duration::from_secs(1)).unwrap();
    assert!(!store.identity_exists(a.identity_id).unwrap());
    assert!(store.sightings_of(Some(a.identity_id)).unwrap().is_empty());
    assert!(store.load_features().unwrap().iter().all(|f| f.identity_id == b.identity_id));
    assert_eq!(store.counts().unwrap(), (1, 1, 0), "links of the forgotten identity are gone too");
    let mut store = store;
    let err = vireid::gallery::forget_identity(&mut store, a.identity_id).unwrap_err();
    assert!(format!("{err:#}").contains("not in the gallery"));
}

#[test]
fn expired_crops_are_deleted_but_sightings_kept() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = GalleryConfig { crop_retention_days: 0.0, ..config() };
    let mut g = Gallery::open(&cfg, dir.path(), DIM).unwrap();
    g.record_sighting(&track(1, Modality::Rgb, feature(4, 0.0, Modality::Rgb))).unwrap();
    let path = g.store().sightings_of(None).unwrap()[0].crop_path.clone().unwrap();
    assert!(std::path::Path::new(&path).exists());
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(g.purge_expired_crops().unwrap(), 1);
    assert!(!std::path::Path::new(&path).exists());
    let s = g.store().sightings_of(None).unwrap();
    assert_eq!(s.len(), 1);
    assert!(s[0].crop_path.is_none());
}

#[test]
fn bad_databases_are_clear_errors_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    // Corrupt: random bytes where the database should be.
    let junk: Vec<u8> = (0..8192u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("gallery.db"), &junk).unwrap();
    let err = match Gallery::open(&config(), dir.path(), DIM) {
        Ok(_) => panic!("corrupt database opened"),
        Err(e) => format!("{e:#}"),
    };
    assert!(err.contains("gallery.db") && err.contains("corrupt") && err.contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read(dir.path().join("gallery.db")).unwrap(), junk, "the file is not modified");

    // Another SQLite database (not ours) is refused, not migrated into.
    let other = tempfile::tempdir().unwrap();
    let c = rusqlite::Connection::open(other.path().join("gallery.db")).unwrap();
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    drop(c);
    let err = format!("{:#}", Gallery::open(&config(), other.path(), DIM).err().expect("foreign db refused"));
    assert!(err.contains("not a vireid gallery"), "{err}");

    // Locked: another process holds the write lock. WAL lets readers in (opening
    // works), a write waits busy_timeout_ms and then fails naming the lock.
    let locked = tempfile::tempdir().unwrap();
    let short = GalleryConfig { busy_timeout_ms: 100, ..config() };
    let mut g = Gallery::open(&short, locked.path(), DIM).unwrap();
    g.record_sighting(&track(1, Modality::Rgb, feature(5, 0.0, Modality::Rgb))).unwrap();
    let holder = rusqlite::Connection::open(locked.path().join("gallery.db")).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE;").unwrap();
    let err = format!("{:#}", g.record_sighting(&track(2, Modality::Rgb, feature(6, 0.0, Modality::Rgb))).unwrap_err());
    assert!(err.contains("locked by another process") && err.contains("gallery.db"), "{err}");
    holder.execute_batch("ROLLBACK;").unwrap();
    drop(holder);
    // After the lock is gone the gallery works again and nothing stored was lost.
    g.record_sighting(&track(3, Modality::Rgb, feature(6, 0.0, Modality::Rgb))).unwrap();
    drop(g);
    let g = Gallery::open(&config(), locked.path(), DIM).unwrap();
    assert_eq!(g.store().counts().unwrap(), (2, 2, 0));
    drop(g);

    // A gallery built by a model of another dimension is refused.
    let err = format!("{:#}", Gallery::open(&config(), locked.path(), DIM + 1).err().expect("dim mismatch"));
    assert!(err.contains("16-dimensional") && err.contains("another model"), "{err}");
}
