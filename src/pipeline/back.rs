//! The back half: finished tracks → embed worker (batches across cameras) →
//! gallery actor (pairing, SQLite commit) → sighting sinks.
//!
//! Both stages are threads joined by bounded channels, so a slow database
//! back-pressures the embedder, which back-pressures the trackers; memory does
//! not grow with run time. [`BackHalf::finish`] drains everything in flight to
//! the database.

use super::{PipelineError, PipelineResult};
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::core::{LatencySnapshot, SightingSink};
use crate::embed::batcher::{run_embed_worker, EmbedWorkerStats};
use crate::embed::{Embedder, EmbedderSpec, SharedEmbedder};
use crate::events::JsonLinesSink;
use crate::gallery::actor::{run_gallery_actor, GalleryActorStats, GalleryRequest};
use crate::gallery::harvest::{FeatureSpace, Harvester};
use crate::gallery::Gallery;
use crate::pair::{camera_places, Pairer};
use crate::track::FinishedTrack;

pub struct BackHalf {
    tracks: Option<Sender<FinishedTrack>>,
    requests: Option<Sender<GalleryRequest>>,
    embed_thread: JoinHandle<()>,
    actor_thread: JoinHandle<()>,
    embed_stats: Arc<EmbedWorkerStats>,
    actor_stats: Arc<GalleryActorStats>,
}

/// What the back half did, for the run's summary and `--stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackHalfStats {
    pub tracks_embedded: u64,
    pub crops_embedded: u64,
    pub embed_batches: u64,
    pub tracks_failed_embedding: u64,
    pub sightings: u64,
    pub new_identities: u64,
    pub day_night_links: u64,
    pub sightings_failed: u64,
    /// Re-fits of the cross-modal adapter that were swapped in (`[adapt] interval_hours`).
    pub adapter_swaps: u64,
}

impl BackHalf {
    /// Opens the gallery (errors surface here, before any camera starts) and
    /// starts both threads on `embedder`. `sinks` get every sighting after it
    /// is committed; `[events] jsonl` is added to them here.
    pub fn start(
        config: &Config,
        embedder: SharedEmbedder,
        spec: &EmbedderSpec,
        mut sinks: Vec<Box<dyn SightingSink>>,
    ) -> PipelineResult<BackHalf> {
        let mut gallery = Gallery::open(&config.gallery, &config.state_dir, embedder.dim())?;
        if let Some(sink) = JsonLinesSink::from_config(&config.events)? {
            sinks.push(Box::new(sink));
        }
        tracing::info!(embedder = embedder.name(), dim = embedder.dim(), "gallery back half started");
        let (tracks_tx, tracks_rx) = bounded::<FinishedTrack>(64);
        let (emb_tx, emb_rx) = bounded(64);
        let (req_tx, req_rx) = bounded::<GalleryRequest>(16);
        let e = config.embed.clone();
        let pairer = Pairer::new(config.pair.clone(), camera_places(&config.cameras));
        // Which space the embedder's features are in (the gallery converts them to its own).
        let space = FeatureSpace::of_spec(spec, &embedder.name());
        let mut harvester = Harvester::new(config.adapt.clone(), camera_places(&config.cameras));
        if let (EmbedderSpec::Model(path), None) = (spec, &space.adapter) {
            harvester = harvester.write_models(path.clone(), config.state_dir.join("models").join("adapted.onnx"));
        }
        // A service that re-fits its own adapter keeps the gallery's space; otherwise the gallery follows the model.
        gallery.use_model(space, config.adapt.refit_every().is_none())?;
        let (embed_stats, actor_stats) =
            (Arc::new(EmbedWorkerStats::default()), Arc::new(GalleryActorStats::default()));
        let counters = embed_stats.clone();
        let embed_thread = std::thread::Builder::new()
            .name("embed".into())
            .spawn(move || {
                run_embed_worker(
                    Box::new(embedder),
                    tracks_rx,
                    emb_tx,
                    e.max_batch,
                    Duration::from_millis(e.max_wait_ms),
                    e.crops_per_track,
                    &counters,
                )
            })
            .map_err(|e| PipelineError::Spawn("embed", e))?;
        let actor_thread = std::thread::Builder::new()
            .name("gallery".into())
            .spawn({
                let counters = actor_stats.clone();
                move || run_gallery_actor(gallery, emb_rx, req_rx, sinks, pairer, harvester, &counters)
            })
            .map_err(|e| PipelineError::Spawn("gallery", e))?;
        Ok(BackHalf {
            tracks: Some(tracks_tx),
            requests: Some(req_tx),
            embed_thread,
            actor_thread,
            embed_stats,
            actor_stats,
        })
    }

    /// Where finished tracks go.
    pub fn sender(&self) -> Sender<FinishedTrack> {
        self.tracks.clone().expect("back half running")
    }

    /// For the API: queries and forgets go to the gallery thread.
    pub fn requests(&self) -> Sender<GalleryRequest> {
        self.requests.clone().expect("back half running")
    }

    /// The counters so far (the embed worker's and the gallery actor's own),
    /// and the `embed` and `gallery` stage histograms.
    pub fn stats(&self) -> (BackHalfStats, [(&'static str, LatencySnapshot); 2]) {
        let (e, g) = (&self.embed_stats, &self.actor_stats);
        (counts(e, g), [("embed", e.latency.snapshot()), ("gallery", g.latency.snapshot())])
    }

    /// Closes the input and waits until every track sent has been stored.
    pub fn finish(mut self) -> PipelineResult<BackHalfStats> {
        drop(self.tracks.take());
        drop(self.requests.take());
        let (e, g) = (self.embed_stats.clone(), self.actor_stats.clone());
        self.embed_thread.join().map_err(|_| PipelineError::Panicked("the embed thread".into()))?;
        self.actor_thread.join().map_err(|_| PipelineError::Panicked("the gallery thread".into()))?;
        Ok(counts(&e, &g))
    }
}

fn counts(e: &EmbedWorkerStats, g: &GalleryActorStats) -> BackHalfStats {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    BackHalfStats {
        tracks_embedded: get(&e.tracks),
        crops_embedded: get(&e.crops),
        embed_batches: get(&e.batches),
        tracks_failed_embedding: get(&e.failed_tracks),
        sightings: get(&g.sightings),
        new_identities: get(&g.new_identities),
        day_night_links: get(&g.day_night_links),
        sightings_failed: get(&g.failed),
        adapter_swaps: get(&g.adapter_swaps),
    }
}
