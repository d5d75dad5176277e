//! The back half of `vireid run`: finished tracks → embed worker (batches
//! across cameras) → gallery actor (SQLite commit) → event sinks.
//!
//! Both stages are threads joined by bounded channels, so a slow database
//! back-pressures the embedder, which back-pressures the trackers; memory does
//! not grow with run time. `finish` drains everything in flight to the database.

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use super::actor::{run_gallery_actor, GalleryActorStats, GalleryRequest};
use super::Gallery;
use crate::config::Config;
use crate::embed::batcher::{run_embed_worker, EmbedWorkerStats};
use crate::embed::{open_embedder, EmbedderSpec};
use crate::events::{EventSink, JsonLinesSink};
use crate::track::FinishedTrack;

pub struct BackHalf {
    tracks: Option<Sender<FinishedTrack>>,
    requests: Option<Sender<GalleryRequest>>,
    embed_thread: JoinHandle<Result<EmbedWorkerStats>>,
    actor_thread: JoinHandle<Result<GalleryActorStats>>,
}

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
}

impl BackHalf {
    /// Opens the embedder and the gallery (errors surface here, before any
    /// camera starts) and starts both threads. `sinks` get every event after
    /// its sighting is committed.
    pub fn start(config: &Config, spec: Option<EmbedderSpec>, mut sinks: Vec<Box<dyn EventSink>>) -> Result<BackHalf> {
        let spec = spec.unwrap_or_else(|| EmbedderSpec::Model(config.embed.model_path()));
        let embedder = open_embedder(&spec, &config.embed).context("cannot start the embedder for the gallery")?;
        let gallery = Gallery::open(&config.gallery, &config.state_dir, embedder.dim())?;
        if let Some(sink) = JsonLinesSink::from_config(&config.events)? {
            sinks.push(Box::new(sink));
        }
        tracing::info!(embedder = embedder.name(), dim = embedder.dim(), "gallery back half started");
        let (tracks_tx, tracks_rx) = bounded::<FinishedTrack>(64);
        let (emb_tx, emb_rx) = bounded(64);
        let (req_tx, req_rx) = bounded::<GalleryRequest>(16);
        let e = config.embed.clone();
        let pairer = crate::pair::Pairer::new(config.pair.clone(), crate::pair::camera_places(&config.cameras));
        let embed_thread = std::thread::Builder::new()
            .name("embed".into())
            .spawn(move || {
                run_embed_worker(embedder, tracks_rx, emb_tx, e.max_batch, Duration::from_millis(e.max_wait_ms), e.crops_per_track)
            })
            .context("cannot spawn the embed thread")?;
        let actor_thread = std::thread::Builder::new()
            .name("gallery".into())
            .spawn(move || run_gallery_actor(gallery, emb_rx, req_rx, sinks, None, pairer))
            .context("cannot spawn the gallery thread")?;
        Ok(BackHalf { tracks: Some(tracks_tx), requests: Some(req_tx), embed_thread, actor_thread })
    }

    /// Where finished tracks go.
    pub fn sender(&self) -> Sender<FinishedTrack> {
        self.tracks.clone().expect("back half running")
    }

    /// For the API: queries and forgets go to the gallery thread.
    pub fn requests(&self) -> Sender<GalleryRequest> {
        self.requests.clone().expect("back half running")
    }

    /// Closes the input and waits until every track sent has been stored.
    pub fn finish(mut self) -> Result<BackHalfStats> {
        drop(self.tracks.take());
        drop(self.requests.take());
        let e = self.embed_thread.join().map_err(|_| anyhow!("embed thread panicked"))??;
        let g = self.actor_thread.join().map_err(|_| anyhow!("gallery thread panicked"))??;
        Ok(BackHalfStats {
            tracks_embedded: e.tracks,
            crops_embedded: e.crops,
            embed_batches: e.batches,
            tracks_failed_embedding: e.failed_tracks,
            sightings: g.sightings,
            new_identities: g.new_identities,
            day_night_links: g.day_night_links,
            sightings_failed: g.failed,
        })
    }
}
