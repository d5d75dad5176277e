//! The service re-fitting its cross-modal adapter (`[adapt] interval_hours`):
//! the gallery moves to the new feature space in one step and stays
//! consistent, across a restart, and through the gallery actor's timer.

use std::collections::HashMap;
use std::time::Duration;

use vireid::core::Modality;
use vireid::gallery::actor::run_gallery_actor;
use vireid::gallery::harvest::{AdaptConfig, FeatureSpace, HarvestKind, HarvestRow, Harvester};
use vireid::gallery::{Gallery, GalleryConfig};

use crate::store::{track, DIM};

const PEOPLE: usize = 60;

/// A unit feature near axis `person` of the first DIM − 1; thermal features also sit high on
/// the last axis, for everybody: a modality gap the adapter learns to weigh down.
fn feature(person: usize, wobble: f32, modality: Modality) -> ndarray::Array1<f32> {
    let mut v = ndarray::Array1::<f32>::zeros(DIM);
    v[person % (DIM - 1)] = 1.0;
    v[(person + 5) % (DIM - 1)] += wobble;
    if modality == Modality::Thermal {
        v[DIM - 1] += 1.3;
    }
    let n = v.dot(&v).sqrt();
    v / n
}

/// A gallery with an RGB and a thermal sighting of each person, and a harvest:
/// each person's pair (genuine) and person p's RGB with person p+1's thermal (impostor).
/// Returns the gallery and each sighting's (id, original feature, modality).
fn harvested(dir: &std::path::Path) -> (Gallery, Vec<(i64, Vec<f32>, Modality)>) {
    let mut g = Gallery::open(&GalleryConfig::default(), dir, DIM).unwrap();
    g.use_model(FeatureSpace::named("base-model"), false).unwrap();
    let mut seen = vec![];
    for p in 0..PEOPLE {
        for (k, m) in [Modality::Rgb, Modality::Thermal].into_iter().enumerate() {
            let f = feature(p, 0.05 * (p % 7) as f32, m);
            let s = g.record_sighting(&track((2 * p + k) as u64, m, f.clone())).unwrap();
            seen.push((s.id, f.to_vec(), m));
        }
    }
    let row = |kind, a: &(i64, Vec<f32>, Modality), b: &(i64, Vec<f32>, Modality)| HarvestRow {
        kind,
        a_sighting_id: a.0,
        b_sighting_id: b.0,
        a_modality: a.2,
        b_modality: b.2,
        a_feature: a.1.clone(),
        b_feature: b.1.clone(),
    };
    let mut rows = vec![];
    for p in 0..PEOPLE {
        rows.push(row(HarvestKind::Pair, &seen[2 * p], &seen[2 * p + 1]));
        rows.push(row(HarvestKind::Impostor, &seen[2 * p], &seen[(2 * p + 3) % (2 * PEOPLE)]));
    }
    g.store_harvest(&rows, "base-model", 1000).unwrap();
    (g, seen)
}

fn adapt(min_pairs: usize, interval_hours: f64) -> AdaptConfig {
    AdaptConfig { min_pairs, interval_hours, ..AdaptConfig::default() }
}

#[test]
fn a_refit_moves_every_exemplar_and_later_features_follow() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, seen) = harvested(dir.path());
    // Before: each sighting's own feature finds its identity with score ~1.
    let top = |g: &Gallery, f: &[f32], m: Modality| {
        let r = g.query(&g.from_model(f, m), 1).unwrap();
        (r[0].identity_id, r[0].similarity)
    };
    let before: Vec<_> = seen.iter().map(|(_, f, m)| top(&g, f, *m)).collect();

    let r = Harvester::new(adapt(10, 0.0), HashMap::new()).refit(&mut g).unwrap();
    assert!(r.swapped, "{r:?}");
    assert_eq!((r.fitted.pairs, r.fitted.impostors), (PEOPLE, PEOPLE));
    assert_eq!(r.migrated_exemplars, g.index().len());
    assert!(r.fitted.validation.is_some(), "≥ 50 pairs: a held-out check");
    let adapter = g.space().adapter.clone().expect("the gallery is in the adapter's space now");

    // After: the embedder's features are converted on arrival and meet the migrated exemplars.
    for ((_, f, m), (id, score)) in seen.iter().zip(&before) {
        let (id2, score2) = top(&g, f, *m);
        assert_eq!(id2, *id);
        assert!((score2 - score).abs() < 1e-4, "{score} -> {score2}");
    }
    // ... and the conversion closes the modality gap: one person's two features come closer.
    let cosine = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    for p in [0, 17, 42] {
        let ((_, rgb, _), (_, thermal, _)) = (&seen[2 * p], &seen[2 * p + 1]);
        let converted = cosine(&g.from_model(rgb, Modality::Rgb), &g.from_model(thermal, Modality::Thermal));
        assert!(converted > cosine(rgb, thermal) + 0.1, "person {p}: {} -> {converted}", cosine(rgb, thermal));
    }

    // A restart finds the space on record, and the same model's features still convert.
    drop(g);
    let mut g = Gallery::open(&GalleryConfig::default(), dir.path(), DIM).unwrap();
    assert_eq!(g.space().adapter.as_ref(), Some(&adapter));
    g.use_model(FeatureSpace::named("base-model"), false).unwrap();
    for ((_, f, m), (id, _)) in seen.iter().zip(&before) {
        assert_eq!(top(&g, f, *m).0, *id);
    }
    // Another base model's features cannot be converted: left as they are (and warned about).
    g.use_model(FeatureSpace::named("another-model"), false).unwrap();
    assert_eq!(g.from_model(&seen[0].1, Modality::Rgb), seen[0].1);
}

#[test]
fn too_few_pairs_is_a_clear_refusal_and_nothing_moves() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, _) = harvested(dir.path());
    let e = Harvester::new(adapt(PEOPLE + 1, 0.0), HashMap::new()).refit(&mut g).unwrap_err().to_string();
    assert!(e.contains(&format!("{PEOPLE} co-observed pairs")) && e.contains("at least"), "{e}");
    assert!(g.space().adapter.is_none());
}

#[test]
fn the_actor_refits_on_its_timer_and_counts_the_swap() {
    let dir = tempfile::tempdir().unwrap();
    let (g, _) = harvested(dir.path());
    let (tracks_tx, tracks_rx) = crossbeam_channel::bounded(1);
    let (_req_tx, req_rx) = crossbeam_channel::bounded(1);
    // Every 0.9 s.
    let harvester = Harvester::new(adapt(10, 0.25 / 1000.0), HashMap::new());
    let stats = std::sync::Arc::new(vireid::gallery::actor::GalleryActorStats::default());
    let actor = std::thread::spawn({
        let stats = stats.clone();
        move || run_gallery_actor(g, tracks_rx, req_rx, vec![], vireid::pair::Pairer::disabled(), harvester, &stats)
    });
    std::thread::sleep(Duration::from_millis(1500));
    drop(tracks_tx);
    actor.join().unwrap();
    assert!(stats.adapter_swaps.load(std::sync::atomic::Ordering::Relaxed) >= 1, "{stats:?}");
    let g = Gallery::open(&GalleryConfig::default(), dir.path(), DIM).unwrap();
    assert!(g.space().adapter.is_some());
}

#[test]
fn a_gallery_follows_an_adapted_model_of_its_base_unless_it_refits_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (mut g, seen) = harvested(dir.path());
    let fitted = Harvester::new(adapt(10, 0.0), HashMap::new()).refit(&mut g).unwrap().fitted;
    // Back to base space, as if nothing had been re-fitted.
    g.move_to_space(FeatureSpace::named("base-model")).unwrap();
    let adapted = FeatureSpace { base: "base-model".into(), adapter: Some(fitted.adapter) };
    g.use_model(adapted.clone(), false).unwrap();
    assert!(g.space().adapter.is_none(), "keeps its own space");
    g.use_model(adapted.clone(), true).unwrap();
    assert_eq!(g.space(), &adapted, "follows the model (`vireid adapt`'s output in the config)");
    // The adapted model's own features need no conversion now, and still find their identities.
    let (_, f, m) = &seen[4];
    let mut own = f.clone();
    adapted.adapter.as_ref().unwrap().apply(&mut own, *m);
    assert_eq!(g.from_model(&own, *m), own);
    assert!(g.query(&own, 1).unwrap()[0].similarity > 0.999);
}
