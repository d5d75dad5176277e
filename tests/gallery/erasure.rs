//! Personal data really goes: after `forget` or retention, nothing of the
//! person is left in the database file, its write-ahead log, or the crops
//! folder (issue 18, item 7). The check can fail: the same byte scan finds a
//! person who was kept.

use std::path::Path;
use std::time::Duration;

use ndarray::Array1;
use vireid::core::Modality;
use vireid::gallery::harvest::{HarvestKind, HarvestRow};
use vireid::gallery::store::vector_to_blob;
use vireid::gallery::{Gallery, GalleryConfig};

use crate::store::{track, DIM};

/// A unit feature with bytes no other person's has.
fn distinct(seed: u32) -> Vec<f32> {
    let v: Vec<f32> =
        (0..DIM).map(|i| ((seed * 97 + i as u32 * 13) as f32 * 0.731).sin() + 0.01 * seed as f32).collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

/// Every byte the gallery keeps on disk: the database, its WAL and shared memory.
fn database_bytes(dir: &Path) -> Vec<u8> {
    ["gallery.db", "gallery.db-wal", "gallery.db-shm"]
        .iter()
        .filter_map(|f| std::fs::read(dir.join(f)).ok())
        .flatten()
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else { return vec![] };
    rd.flatten().flat_map(|e| if e.path().is_dir() { files_under(&e.path()) } else { vec![e.path()] }).collect()
}

/// Person `who`: enrolled under `label` with feature `distinct(who)`, then seen
/// twice (sightings join the enrolment), with a harvest row of its own.
fn person(g: &mut Gallery, who: u32, label: &str, track_id: u64) -> i64 {
    let id = g.enrol(label, &[(Modality::Rgb, distinct(who))]).unwrap();
    let a = g.record_sighting(&track(track_id, Modality::Rgb, Array1::from(distinct(who)))).unwrap();
    let b = g.record_sighting(&track(track_id + 1, Modality::Rgb, Array1::from(distinct(who)))).unwrap();
    assert_eq!((a.identity_id, b.identity_id), (id, id));
    let row = HarvestRow {
        kind: HarvestKind::ImpostorSame,
        a_sighting_id: a.id,
        b_sighting_id: b.id,
        a_modality: Modality::Rgb,
        b_modality: Modality::Rgb,
        a_feature: distinct(who + 1000),
        b_feature: distinct(who + 2000),
    };
    g.store_harvest(&[row], "base", 100).unwrap();
    id
}

#[test]
fn nothing_of_a_forgotten_person_is_left_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gallery::open(&GalleryConfig::default(), dir.path(), DIM).unwrap();
    let gone = person(&mut g, 1, "ERASE-ME-7Q", 10);
    person(&mut g, 2, "KEEP-ME-5X", 20);
    let crops_of_gone = dir.path().join("crops").join(gone.to_string());
    assert!(!files_under(&crops_of_gone).is_empty());
    let traces = |who: u32, label: &str| -> Vec<Vec<u8>> {
        vec![
            label.as_bytes().to_vec(),
            vector_to_blob(&distinct(who)),
            vector_to_blob(&distinct(who + 1000)),
            vector_to_blob(&distinct(who + 2000)),
        ]
    };
    let bytes = database_bytes(dir.path());
    assert!(traces(1, "ERASE-ME-7Q").iter().all(|t| contains(&bytes, t)), "the scan sees a stored person");

    g.forget(gone).unwrap();
    let bytes = database_bytes(dir.path());
    for t in traces(1, "ERASE-ME-7Q") {
        assert!(!contains(&bytes, &t), "a trace of the forgotten person is still on disk: {:?}", &t[..8.min(t.len())]);
    }
    assert!(traces(2, "KEEP-ME-5X").iter().all(|t| contains(&bytes, t)), "the other person is kept");
    assert!(files_under(&crops_of_gone).is_empty(), "crops deleted");
}

#[test]
fn retention_deletes_old_people_and_keeps_enrolled_ones_if_asked() {
    for keep_enrolled in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        // Everything is older than 1 ms at the sweep.
        let config = GalleryConfig { retention_days: 1e-3 / 86_400.0, keep_enrolled, ..GalleryConfig::default() };
        let mut g = Gallery::open(&config, dir.path(), DIM).unwrap();
        let enrolled = person(&mut g, 3, "WATCH-LIST-9K", 30);
        // Someone seen but never enrolled: a new identity of its own.
        let seen = g.record_sighting(&track(40, Modality::Thermal, Array1::from(distinct(4)))).unwrap();
        assert_ne!(seen.identity_id, enrolled);
        std::thread::sleep(Duration::from_millis(20));
        let expired = g.sweep_retention().unwrap();
        assert_eq!(expired.sightings, 3, "{expired:?}");

        let bytes = database_bytes(dir.path());
        assert!(!contains(&bytes, &vector_to_blob(&distinct(4))), "the unenrolled person's exemplar is gone");
        assert!(!contains(&bytes, &vector_to_blob(&distinct(1003))), "harvested pairs are gone");
        assert!(g.store().sightings_of(None).unwrap().is_empty());
        assert!(files_under(&dir.path().join("crops").join(seen.identity_id.to_string())).is_empty());
        assert!(!g.store().identity_exists(seen.identity_id).unwrap());
        // The watch list: kept with its enrolment feature, or gone too.
        assert_eq!(g.store().identity_exists(enrolled).unwrap(), keep_enrolled);
        assert_eq!(contains(&bytes, b"WATCH-LIST-9K"), keep_enrolled);
        assert_eq!(
            g.query(&distinct(3), 1).unwrap().first().map(|r| r.identity_id == enrolled),
            keep_enrolled.then_some(true)
        );
    }
}

#[test]
fn retention_inf_keeps_everything_and_bad_values_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = GalleryConfig { retention_days: f64::INFINITY, ..GalleryConfig::default() };
    let mut g = Gallery::open(&config, dir.path(), DIM).unwrap();
    person(&mut g, 5, "KEPT", 50);
    assert_eq!(g.sweep_retention().unwrap().sightings, 0);
    assert_eq!(g.store().sightings_of(None).unwrap().len(), 2);
    for bad in [-1.0, f64::NAN] {
        let e = GalleryConfig { retention_days: bad, ..GalleryConfig::default() }.validate().unwrap_err();
        assert!(format!("{e}").contains("retention_days"), "{e}");
    }
}
