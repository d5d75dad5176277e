//! One lifecycle for `vireid run` and `vireid serve`: [`Service::start`],
//! [`Service::run_until_stop`], [`Service::shutdown`].
//!
//! Start (anything that can fail fails here, before a camera runs):
//! 1. the process's runtime and shutdown ([`Process`]: SIGTERM/SIGINT);
//! 2. the embedder, loaded once ([`SharedEmbedder`]) for the back half and the API;
//! 3. MQTT on the runtime, when sightings can come (there are cameras);
//! 4. the back half: embed worker and gallery actor, with the sinks;
//! 5. the API on the runtime, over the same gallery;
//! 6. the cameras with their detect+track workers, and the `--tracks` writer;
//! 7. `READY=1` to systemd and the progress watchdog.
//!
//! Run until the process shutdown is requested (a signal), a `--duration`
//! passes, or every file source has ended; the stages' counters and latency
//! histograms go to `/metrics` (the stages count, the service copies).
//!
//! Shutdown, in the order data flows: cameras stop and the workers flush
//! their live tracks; the track writer drains; the API stops taking requests;
//! the back half drains every track in flight to SQLite (within a deadline);
//! then MQTT says `offline` and disconnects.

use std::io::Write;
use std::sync::atomic::Ordering;
use std::sync::Arc;
#[cfg(feature = "media")]
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::back::{BackHalf, BackHalfStats};
#[cfg(feature = "media")]
use super::front::{CameraReport, FrontHalf};
use super::process::{drain_within, Process};
use super::systemd::{Progress, ServiceNotifier, Watchdog, WatchdogConfig};
use super::{PipelineError, PipelineResult};
use crate::api::{ApiServer, ApiState, GalleryApiHandle, PipelineMetrics};
use crate::config::Config;
use crate::core::SightingSink;
use crate::embed::{open_embedder, Embedder, EmbedderSpec, SharedEmbedder};
use crate::events::mqtt::MqttService;
#[cfg(feature = "media")]
use crate::track::{finished_track_json, FinishedTrack, TrackObserver};

/// How long shutdown waits for in-flight sightings to reach SQLite; below
/// systemd's default `TimeoutStopSec` (90 s) so a hung drain still exits cleanly.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(60);

/// What to start.
pub struct Plan {
    /// The embedder of the back half and the API.
    pub embedder: EmbedderSpec,
    /// Start the back half (embed → gallery → events) even without cameras (`serve`).
    /// With cameras it starts when `[events] jsonl` or `[api]` needs it.
    pub gallery: bool,
    /// Start the cameras (`run`); their finished tracks go to `tracks` as JSON lines.
    pub cameras: Option<Box<dyn Write + Send>>,
}

/// When [`Service::run_until_stop`] returns, besides a signal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Until {
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Log the camera counters this often.
    pub log_every: Option<Duration>,
}

/// Why the service stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    Signal,
    DurationReached,
    AllSourcesEnded,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Signal => "signal",
            StopReason::DurationReached => "duration reached",
            StopReason::AllSourcesEnded => "all sources ended",
        }
    }
}

/// What a run did, for the summary and `--stats`.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub wall_s: f64,
    pub stopped_because: &'static str,
    pub tracks_written: u64,
    #[cfg(feature = "media")]
    pub cameras: Vec<CameraReport>,
    pub gallery: Option<BackHalfStats>,
}

/// The cameras and the writer of their finished tracks.
#[cfg(feature = "media")]
struct Front {
    half: FrontHalf,
    writer: JoinHandle<PipelineResult<u64>>,
}

/// A started service.
pub struct Service {
    process: Process,
    mqtt: Option<MqttService>,
    back: Option<BackHalf>,
    api: Option<(ApiServer, Arc<PipelineMetrics>)>,
    #[cfg(feature = "media")]
    front: Option<Front>,
    watchdog: Option<Watchdog>,
    /// The watchdog's heartbeat: frames processed by the cameras' workers.
    #[cfg(feature = "media")]
    progress: Progress,
    started: Instant,
    stopped: Option<StopReason>,
}

impl Service {
    /// Starts what `plan` asks for (see the module doc for the order) and
    /// tells systemd the service is ready.
    pub fn start(config: &Config, plan: Plan) -> PipelineResult<Service> {
        let process = Process::start()?;
        let cameras = plan.cameras.is_some();
        #[cfg(not(feature = "media"))]
        if cameras {
            return Err(PipelineError::Unavailable(
                "cameras need the `media` feature (GStreamer, OpenCV): this vireid was built without it",
            ));
        }
        let Acquired { token, embedder } = acquire(config, &plan.embedder, wants_gallery(config, plan.gallery))?;
        if embedder.is_none() {
            tracing::info!(
                "no --sightings, no [events].jsonl and no [api]: finished tracks are written, not embedded or stored"
            );
        }
        let mqtt = if cameras { MqttService::start(&config.mqtt, &config.cameras, process.handle())? } else { None };
        let back = match &embedder {
            Some(e) => {
                let sinks: Vec<Box<dyn SightingSink>> = mqtt.iter().map(MqttService::sink).collect();
                Some(BackHalf::start(config, e.clone(), &plan.embedder, sinks)?)
            }
            None => None,
        };
        let api = match (&back, embedder, token) {
            (Some(b), Some(e), Some(token)) => {
                let gallery = GalleryApiHandle::new(b.requests(), &config.gallery.db_path(&config.state_dir), e)?;
                let metrics = Arc::new(PipelineMetrics::new());
                // `serve` reads no camera: none is listed (they were "starting" forever).
                for cam in config.cameras.iter().filter(|_| cameras) {
                    metrics.register_camera(&cam.name, cam.modality);
                }
                let state = ApiState::new(Arc::new(gallery), metrics.clone(), token, config.api.max_image_side);
                Some((ApiServer::start(process.handle(), &config.api, state)?, metrics))
            }
            _ => None,
        };
        #[cfg(feature = "media")]
        let front = match plan.cameras {
            Some(out) => {
                let observer = mqtt.as_ref().map(MqttService::observer);
                Some(start_front(config, out, back.as_ref().map(BackHalf::sender), observer)?)
            }
            None => None,
        };
        #[cfg(not(feature = "media"))]
        drop(plan.cameras);
        let status = match (cameras, &api) {
            (true, _) => format!("{} camera(s) up", config.cameras.len()),
            (false, Some((server, _))) => format!("API on {}", server.local_addr()),
            (false, None) => "gallery up".to_string(),
        };
        // systemd (no-ops outside it): READY now that everything is up;
        // WATCHDOG only while frames get processed (see `systemd`).
        if let Err(e) = ServiceNotifier.ready(&status) {
            tracing::warn!("{e}");
        }
        let progress = Progress::new();
        let watchdog = match WatchdogConfig::from_env() {
            Some(c) if cameras => Some(Watchdog::start(c, progress.clone())?),
            _ => None,
        };
        Ok(Service {
            process,
            mqtt,
            back,
            api,
            #[cfg(feature = "media")]
            front,
            watchdog,
            #[cfg(feature = "media")]
            progress,
            started: Instant::now(),
            stopped: None,
        })
    }

    /// Start-up's checks, without starting anything (`vireid check-config`):
    /// the same [`acquire`] as [`Service::start`] (the API token read and
    /// checked; the embedder loaded, so its file is readable and meets the
    /// model contract) and, with `cameras`, each camera's GStreamer pipeline
    /// built as [`crate::ingest::start_camera`] builds it (elements, decoder,
    /// test pattern) but not played. Returns one line per thing checked.
    pub fn check(
        config: &Config,
        embedder: &EmbedderSpec,
        gallery: bool,
        cameras: bool,
    ) -> PipelineResult<Vec<String>> {
        config.validate()?;
        let mut lines = vec![];
        if cameras {
            #[cfg(not(feature = "media"))]
            return Err(PipelineError::Unavailable(
                "cameras need the `media` feature (GStreamer, OpenCV): this vireid was built without it",
            ));
            #[cfg(feature = "media")]
            for cam in &config.cameras {
                crate::ingest::check_camera(cam, &config.ingest)?;
                lines.push(format!(
                    "camera {} [{}] box={} source={}{}: pipeline builds",
                    cam.name,
                    cam.modality,
                    cam.box_name,
                    cam.source,
                    cam.decoder.as_ref().map(|d| format!(" decoder={d}")).unwrap_or_default()
                ));
            }
        }
        let wanted = wants_gallery(config, gallery);
        let Acquired { token, embedder: loaded } = acquire(config, embedder, wanted)?;
        if token.is_some() {
            let from = match (&config.api.token, &config.api.token_file) {
                (Some(_), _) => "api.token".to_string(),
                (None, Some(p)) => format!("api.token_file {}", p.display()),
                (None, None) => "?".to_string(),
            };
            lines.push(format!("api: on {}, token from {from}", config.api.bind));
        }
        match (loaded, embedder) {
            (Some(e), EmbedderSpec::Model(path)) => {
                lines.push(format!("embed: model {} loads ({}, {} dims)", path.display(), e.name(), e.dim()))
            }
            (Some(e), EmbedderSpec::Baseline(_)) => lines.push(format!("embed: baseline {}", e.name())),
            (None, _) => lines.push(
                "embed: no model loaded (no [api], no [events] jsonl: `vireid run` writes finished tracks only)"
                    .to_string(),
            ),
        }
        Ok(lines)
    }

    /// Where the API listens, if it runs.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api.as_ref().map(|(s, _)| s.local_addr())
    }

    /// Runs until a signal, the duration, or the end of every file source.
    pub fn run_until_stop(&mut self, until: Until) -> StopReason {
        let shutdown = self.process.shutdown().clone();
        let mut last_log = Instant::now();
        let reason = loop {
            if shutdown.wait_timeout(Duration::from_millis(100)) {
                break StopReason::Signal;
            }
            let cameras = self.watch_cameras(until, &mut last_log);
            self.watch_gallery();
            if let Some(reason) = cameras {
                break reason;
            }
            if until.duration.is_some_and(|d| self.started.elapsed() >= d) {
                break StopReason::DurationReached;
            }
        };
        tracing::info!("stopping: {}", reason.as_str());
        self.stopped = Some(reason);
        reason
    }

    /// One look at the cameras: their counters to the watchdog's heartbeat,
    /// `/metrics` and (every `log_every`) the log; `AllSourcesEnded` once
    /// every camera has stopped and its worker has drained.
    #[cfg(feature = "media")]
    fn watch_cameras(&self, until: Until, last_log: &mut Instant) -> Option<StopReason> {
        let front = self.front.as_ref()?;
        let reports = front.half.reports();
        self.progress.advance_to(reports.iter().map(|r| r.processed_frames).sum());
        if let Some((_, metrics)) = &self.api {
            for r in &reports {
                metrics.camera_totals(&r.ingest.camera, r.ingest.state, r.ingest.frames, r.ingest.dropped);
            }
            let total = |f: fn(&CameraReport) -> u64| reports.iter().map(f).sum::<u64>();
            metrics.detections.store(total(|r| r.detections), Ordering::Relaxed);
            metrics.dropped_detections.store(total(|r| r.dropped_detections), Ordering::Relaxed);
            metrics.tracks.store(total(|r| r.finished_tracks), Ordering::Relaxed);
            for (stage, h) in front.half.latencies() {
                metrics.stage_totals(stage, h);
            }
        }
        if until.log_every.is_some_and(|every| last_log.elapsed() >= every) {
            *last_log = Instant::now();
            for r in &reports {
                tracing::info!(
                    camera = %r.ingest.camera, state = ?r.ingest.state, frames = r.ingest.frames, dropped = r.ingest.dropped,
                    reconnects = r.ingest.reconnects, detect_ms = format!("{:.1}", r.detect_ms_per_frame), "camera"
                );
            }
        }
        front.half.finished().then_some(StopReason::AllSourcesEnded)
    }

    /// The back half's counters and stage times to `/metrics` (one path: the
    /// embed worker and the gallery actor count, the service copies).
    fn watch_gallery(&self) {
        let (Some(back), Some((_, metrics))) = (&self.back, &self.api) else { return };
        let (s, latencies) = back.stats();
        metrics.embeddings.store(s.crops_embedded, Ordering::Relaxed);
        metrics.matches.store(s.sightings - s.new_identities, Ordering::Relaxed);
        metrics.new_identities.store(s.new_identities, Ordering::Relaxed);
        metrics.day_night_links.store(s.day_night_links, Ordering::Relaxed);
        metrics.adapter_swaps.store(s.adapter_swaps, Ordering::Relaxed);
        for (stage, h) in latencies {
            metrics.stage_totals(stage, h);
        }
    }

    /// Without `media` there are no cameras to watch.
    #[cfg(not(feature = "media"))]
    fn watch_cameras(&self, _: Until, _: &mut Instant) -> Option<StopReason> {
        None
    }

    /// Stops everything in the order data flows and drains what is in flight
    /// to the database. Returns the report and the first error (after
    /// stopping everything: one failing part does not keep the others running).
    pub fn shutdown(mut self) -> (Report, PipelineResult<()>) {
        let wall_s = self.started.elapsed().as_secs_f64();
        let reason = self.stopped.unwrap_or(StopReason::Signal);
        if let Some(w) = self.watchdog.take() {
            w.stop();
        }
        let mut first_err: Option<PipelineError> = None;
        let mut keep = |r: PipelineResult<()>| {
            if let Err(e) = r {
                tracing::warn!("{}", crate::core::error_chain(&e));
                first_err.get_or_insert(e);
            }
        };
        #[allow(unused_mut)]
        let mut tracks_written = 0;
        #[cfg(feature = "media")]
        let mut cameras = vec![];
        #[cfg(feature = "media")]
        if let Some(front) = self.front.take() {
            let (reports, stopped) = front.half.shutdown();
            cameras = reports;
            keep(stopped);
            match front.writer.join() {
                Ok(Ok(n)) => tracks_written = n,
                Ok(Err(e)) => keep(Err(e)),
                Err(_) => keep(Err(PipelineError::Panicked("the track writer".into()))),
            }
        }
        if let Some((server, _)) = self.api.take() {
            keep(server.stop().map_err(PipelineError::from));
        }
        // Drain: every finished track is embedded and committed before we exit.
        let gallery = match self.back.take() {
            Some(b) => match drain_within(DRAIN_DEADLINE, move || b.finish()) {
                Ok(s) => Some(s),
                Err(e) => {
                    keep(Err(e));
                    None
                }
            },
            None => None,
        };
        if let Some(m) = self.mqtt.take() {
            keep(m.shutdown().map_err(PipelineError::from));
        }
        let report = Report {
            wall_s,
            stopped_because: reason.as_str(),
            tracks_written,
            #[cfg(feature = "media")]
            cameras,
            gallery,
        };
        (report, first_err.map_or(Ok(()), Err))
    }
}

/// Whether the back half (embedder, gallery) starts: `serve` asks for it;
/// with cameras, `[events] jsonl` (or `--sightings`) or `[api]` need it.
fn wants_gallery(config: &Config, asked: bool) -> bool {
    asked || config.events.jsonl.is_some() || config.api.enabled
}

/// What start-up reads and loads before anything runs.
struct Acquired {
    token: Option<String>,
    embedder: Option<SharedEmbedder>,
}

/// Reads the API token (a bad token fails now, not at the first request) and
/// loads the embedder once. [`Service::start`] and [`Service::check`] share
/// it, so a config `vireid check-config` passes also starts.
fn acquire(config: &Config, spec: &EmbedderSpec, wants_gallery: bool) -> PipelineResult<Acquired> {
    let token = if config.api.enabled { Some(config.api.resolve_token()?) } else { None };
    let embedder = if wants_gallery { Some(SharedEmbedder::new(open_embedder(spec, &config.embed)?)) } else { None };
    Ok(Acquired { token, embedder })
}

/// Starts the cameras and the writer that sends each finished track to
/// `out` (JSON lines) and on to the back half.
#[cfg(feature = "media")]
fn start_front(
    config: &Config,
    mut out: Box<dyn Write + Send>,
    back: Option<crossbeam_channel::Sender<FinishedTrack>>,
    observer: Option<Arc<dyn TrackObserver>>,
) -> PipelineResult<Front> {
    // Bounded: a stuck writer blocks the workers (and then ingest drops
    // frames) instead of growing memory.
    let (tx, rx) = crossbeam_channel::bounded::<FinishedTrack>(256);
    let writer = std::thread::Builder::new()
        .name("tracks-out".into())
        .spawn(move || -> PipelineResult<u64> {
            let mut n = 0;
            let failed = |e: &dyn std::fmt::Display| PipelineError::Tracks(e.to_string());
            for t in rx {
                serde_json::to_writer(&mut out, &finished_track_json(&t)).map_err(|e| failed(&e))?;
                out.write_all(b"\n").and_then(|_| out.flush()).map_err(|e| failed(&e))?;
                if let Some(b) = &back {
                    // Closed only if the back half died; its error is reported by finish().
                    let _ = b.send(t);
                }
                n += 1;
            }
            Ok(n)
        })
        .map_err(|e| PipelineError::Spawn("track writer", e))?;
    let half = FrontHalf::start(config, tx, observer)?;
    Ok(Front { half, writer })
}
