//! The gallery actor: one thread owns the SQLite connection and the index.
//! Embedded tracks come in on a bounded channel; each is committed, then its
//! sighting handed to the sinks. Queries from other threads (API) come in on
//! the same thread as requests with a reply channel, so there is no shared
//! mutable state.

use crossbeam_channel::{select, Receiver, Sender};
use std::sync::atomic::{AtomicU64, Ordering};

use super::harvest::Harvester;
use super::{Gallery, GalleryResult, QueryResult};
use crate::core::{LatencyHistogram, Modality, SightingSink};
use crate::embed::batcher::EmbeddedTrack;
use crate::pair::{PairUnit, Pairer};

/// How often tracks held for a partner (`crate::pair`) are checked.
const PAIR_TICK: std::time::Duration = std::time::Duration::from_millis(200);

/// How often expired crops and data are deleted while running.
const RETENTION_SWEEP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A request from another thread.
pub enum GalleryRequest {
    /// `feature` is the embedder's, of an image of `modality`.
    Query {
        feature: Vec<f32>,
        modality: Modality,
        top: usize,
        reply: Sender<GalleryResult<Vec<QueryResult>>>,
    },
    Forget {
        identity_id: i64,
        reply: Sender<GalleryResult<()>>,
    },
    /// A watch-list identity from one image; replies (identity id, enrolment image id).
    Enrol {
        label: Option<String>,
        modality: Modality,
        feature: Vec<f32>,
        image: image::RgbImage,
        reply: Sender<GalleryResult<(i64, i64)>>,
    },
}

/// The actor's counters, read while it runs.
#[derive(Debug, Default)]
pub struct GalleryActorStats {
    pub sightings: AtomicU64,
    pub new_identities: AtomicU64,
    pub day_night_links: AtomicU64,
    pub failed: AtomicU64,
    /// Re-fits that moved the gallery to a new adapter.
    pub adapter_swaps: AtomicU64,
    /// Per sighting recorded (assignment and commit).
    pub latency: LatencyHistogram,
}

/// Runs until the track channel is closed (the pipeline has finished); every
/// track received is recorded before this returns (the drain on shutdown),
/// including those still waiting in `pairer` for a partner.
/// Requests are served meanwhile; an API still holding a request sender does
/// not keep the gallery alive past the pipeline (it then gets "shut down").
pub fn run_gallery_actor(
    mut gallery: Gallery,
    tracks: Receiver<EmbeddedTrack>,
    requests: Receiver<GalleryRequest>,
    mut sinks: Vec<Box<dyn SightingSink>>,
    mut pairer: Pairer<EmbeddedTrack>,
    mut harvester: Harvester,
    stats: &GalleryActorStats,
) {
    let add = |counter: &AtomicU64, n: bool| counter.fetch_add(u64::from(n), Ordering::Relaxed);
    let purge = |gallery: &mut Gallery| match gallery.sweep_retention() {
        Ok(e) if e.sightings + e.features + e.identities > 0 => tracing::info!(
            sightings = e.sightings,
            exemplars = e.features,
            identities = e.identities,
            files = e.files.len(),
            "retention: expired data deleted"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("retention sweep failed: {}", crate::core::error_chain(&e)),
    };
    purge(&mut gallery);
    // A service runs for months: crops age out while it runs, not only at start.
    let retention_tick = crossbeam_channel::tick(RETENTION_SWEEP);
    let pair_tick = crossbeam_channel::tick(PAIR_TICK);
    let refit_tick = harvester.refit_every().map(crossbeam_channel::tick).unwrap_or_else(crossbeam_channel::never);
    let mut record = |gallery: &mut Gallery,
                      pairer: &mut Pairer<EmbeddedTrack>,
                      harvester: &mut Harvester,
                      units: Vec<PairUnit<EmbeddedTrack>>| {
        for mut unit in units {
            into_gallery_space(gallery, &mut unit);
            let late_partner = unit.late_partner();
            let t0 = std::time::Instant::now();
            let results = gallery.record_unit(unit);
            let took = t0.elapsed() / results.len().max(1) as u32;
            let stored: Vec<_> = results.iter().filter_map(|(et, r)| r.as_ref().ok().map(|s| (&**et, s))).collect();
            harvester.observe(gallery, &stored, late_partner);
            for (et, result) in results {
                stats.latency.observe(took);
                match result {
                    Ok(sighting) => {
                        pairer.recorded(&et, sighting.identity_id, sighting.id);
                        add(&stats.sightings, true);
                        add(&stats.new_identities, sighting.new_identity);
                        add(&stats.day_night_links, sighting.day_night_link);
                        for sink in sinks.iter_mut() {
                            if let Err(e) = sink.emit(&sighting) {
                                tracing::error!(
                                    "event sink failed (the sighting is stored): {}",
                                    crate::core::error_chain(&e)
                                );
                            }
                        }
                    }
                    Err(e) => {
                        // Database trouble: the track is lost but counted and logged.
                        add(&stats.failed, true);
                        tracing::error!(
                            "cannot record sighting of track {} on {}: {}",
                            et.track.track_id,
                            et.track.camera,
                            crate::core::error_chain(&e)
                        );
                    }
                }
            }
        }
    };
    let (mut tracks_open, mut requests_open) = (true, true);
    while tracks_open {
        let never_r = crossbeam_channel::never();
        let rr = if requests_open { &requests } else { &never_r };
        select! {
            recv(tracks) -> msg => match msg {
                Ok(et) => {
                    let units = pairer.push(et);
                    record(&mut gallery, &mut pairer, &mut harvester, units);
                }
                Err(_) => tracks_open = false,
            },
            recv(rr) -> msg => match msg {
                Ok(GalleryRequest::Query { feature, modality, top, reply }) => {
                    let _ = reply.send(gallery.query(&gallery.from_model(&feature, modality), top));
                }
                Ok(GalleryRequest::Forget { identity_id, reply }) => {
                    pairer.forget(identity_id);
                    let _ = reply.send(gallery.forget(identity_id).map(|_| ()));
                }
                Ok(GalleryRequest::Enrol { label, modality, feature, image, reply }) => {
                    let feature = gallery.from_model(&feature, modality);
                    let _ = reply.send(gallery.enrol_image(label.as_deref(), modality, &feature, &image));
                }
                Err(_) => requests_open = false,
            },
            recv(pair_tick) -> _ => {
                let units = pairer.due(std::time::Instant::now());
                record(&mut gallery, &mut pairer, &mut harvester, units);
            }
            recv(retention_tick) -> _ => purge(&mut gallery),
            recv(refit_tick) -> _ => { add(&stats.adapter_swaps, refit(&harvester, &mut gallery)); }
        }
    }
    let units = pairer.drain();
    record(&mut gallery, &mut pairer, &mut harvester, units);
}

/// Tracks arrive with the embedder's features; the gallery may be in another
/// adapter's space (a re-fit moved it): convert here, where the space cannot
/// change under them.
fn into_gallery_space(gallery: &Gallery, unit: &mut PairUnit<EmbeddedTrack>) {
    if !gallery.converts() {
        return; // the usual case: no copy per track
    }
    let convert = |et: &mut EmbeddedTrack| {
        if let Some(f) = et.feature.as_slice() {
            et.feature = ndarray::Array1::from(gallery.from_model(f, et.track.modality));
        }
    };
    match unit {
        PairUnit::Single(et, _) => convert(et),
        PairUnit::Pair(a, b, _) => {
            convert(a);
            convert(b);
        }
    }
}

/// One re-fit of the gallery's adapter (`[adapt] interval_hours`); true when it swapped.
/// Runs on the gallery thread between two tracks, so no track meets half a swap;
/// tracks wait in the bounded channel meanwhile (a fit takes well under a second).
fn refit(harvester: &Harvester, gallery: &mut Gallery) -> bool {
    let t0 = std::time::Instant::now();
    match harvester.refit(gallery) {
        Ok(r) if r.swapped => {
            tracing::info!(
                pairs = r.fitted.pairs,
                impostors = r.fitted.impostors,
                exemplars = r.migrated_exemplars,
                held_out = ?r.fitted.validation,
                model = ?r.model_written,
                seconds = t0.elapsed().as_secs_f64(),
                "adapter re-fitted and swapped in"
            );
            true
        }
        Ok(r) => {
            tracing::info!(pairs = r.fitted.pairs, held_out = ?r.fitted.validation, "adapter re-fit kept out: it did worse on held-out pairs");
            false
        }
        Err(e) => {
            tracing::info!("adapter not re-fitted: {e}");
            false
        }
    }
}
