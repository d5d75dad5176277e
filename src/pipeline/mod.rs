//! `vireid run`: per camera, ingest → detect → track on its own worker
//! thread; finished tracks go to one output channel. Until the embedder and
//! gallery are wired in, `vireid run` writes them as JSON lines.

use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::detect::{open_detector, Detector};
use crate::ingest::{self, CameraHandle, StatsSnapshot};
use crate::track::{finished_track_json, FinishedTrack, Tracker};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Where finished tracks go, one JSON line each (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub tracks: PathBuf,
    /// Stop after this many seconds (default: until every source ends, or SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write run statistics (per camera: frames, drops, reconnects, per-stage times) as JSON here on exit.
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Log camera counters every this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Embed finished tracks, assign them in the gallery and write sighting events here
    /// as JSON lines (`-` for stdout); overrides [events].jsonl. Without either, no gallery.
    #[arg(long)]
    pub sightings: Option<PathBuf>,
    /// Embedding model (overrides [embed].model).
    #[arg(long, conflicts_with = "baseline")]
    pub model: Option<PathBuf>,
    /// A hand-crafted baseline embedder instead of a model.
    #[arg(long, value_enum)]
    pub baseline: Option<crate::embed::Baseline>,
}

/// Per-camera worker counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub frames: AtomicU64,
    /// Frames the detector ran on (`detect.every_n_frames`).
    pub detected_frames: AtomicU64,
    pub detections: AtomicU64,
    pub detect_ns: AtomicU64,
    pub track_ns: AtomicU64,
    pub finished_tracks: AtomicU64,
}

/// A camera's ingest and worker counters together.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraReport {
    pub ingest: StatsSnapshot,
    pub processed_frames: u64,
    pub detected_frames: u64,
    pub detections: u64,
    pub finished_tracks: u64,
    /// Detector time over all processed frames (skipped ones count as 0).
    pub detect_ms_per_frame: f64,
    pub track_ms_per_frame: f64,
    pub copy_ms_per_frame: f64,
}

struct CameraWorker {
    camera: CameraHandle,
    stats: Arc<WorkerStats>,
    thread: Option<JoinHandle<Result<()>>>,
}

/// The running front half: cameras with their detect+track workers.
pub struct Pipeline {
    workers: Vec<CameraWorker>,
    stop: Arc<AtomicBool>,
}

impl Pipeline {
    /// Starts every camera and its worker; finished tracks are sent to `out`.
    pub fn start(config: &Config, out: Sender<FinishedTrack>) -> Result<Pipeline> {
        config.validate()?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for cam in &config.cameras {
            // Each worker owns its detector: OpenCV/ORT objects are not shared across threads.
            let detector = open_detector(&config.detect).with_context(|| format!("camera '{}': cannot open detector", cam.name))?;
            let camera = ingest::start_camera(cam, &config.ingest)?;
            let stats = Arc::new(WorkerStats::default());
            let tracker = Tracker::new(camera.name.clone(), cam.modality, config.track.clone());
            let (frames, wstats, wstop, wout) = (camera.frames.clone(), stats.clone(), stop.clone(), out.clone());
            let detect_cfg = config.detect.clone();
            let thread = std::thread::Builder::new()
                .name(format!("detect-{}", cam.name))
                .spawn(move || worker_loop(frames, &detect_cfg, detector, tracker, wstats, wstop, wout))
                .context("cannot spawn worker thread")?;
            workers.push(CameraWorker { camera, stats, thread: Some(thread) });
        }
        Ok(Pipeline { workers, stop })
    }

    /// True once every camera has stopped and its worker has drained.
    pub fn finished(&self) -> bool {
        self.workers.iter().all(|w| w.thread.as_ref().is_none_or(|t| t.is_finished()))
    }

    pub fn reports(&self) -> Vec<CameraReport> {
        self.workers
            .iter()
            .map(|w| {
                let s = &w.stats;
                let n = s.frames.load(Ordering::Relaxed).max(1) as f64;
                let ingest = w.camera.stats.snapshot();
                CameraReport {
                    processed_frames: s.frames.load(Ordering::Relaxed),
                    detected_frames: s.detected_frames.load(Ordering::Relaxed),
                    detections: s.detections.load(Ordering::Relaxed),
                    finished_tracks: s.finished_tracks.load(Ordering::Relaxed),
                    detect_ms_per_frame: s.detect_ns.load(Ordering::Relaxed) as f64 / 1e6 / n,
                    track_ms_per_frame: s.track_ns.load(Ordering::Relaxed) as f64 / 1e6 / n,
                    copy_ms_per_frame: ingest.copy_ms / (ingest.frames.max(1) as f64),
                    ingest,
                }
            })
            .collect()
    }

    /// Stops the cameras, lets the workers flush their live tracks, and
    /// returns the first error any camera or worker hit.
    pub fn shutdown(mut self) -> Result<()> {
        self.stop.store(true, Ordering::Release);
        let mut first_err = None;
        for w in &mut self.workers {
            w.camera.stop();
        }
        for mut w in std::mem::take(&mut self.workers) {
            if let Some(t) = w.thread.take() {
                match t.join() {
                    Ok(Err(e)) => first_err = first_err.or(Some(e)),
                    Err(_) => first_err = first_err.or(Some(anyhow!("camera '{}': worker thread panicked", w.camera.name))),
                    Ok(Ok(())) => {}
                }
            }
            if let Err(e) = w.camera.join() {
                first_err = first_err.or(Some(e));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn worker_loop(
    frames: Receiver<crate::ingest::Frame>,
    detect_cfg: &crate::detect::DetectConfig,
    mut detector: Box<dyn Detector>,
    mut tracker: Tracker,
    stats: Arc<WorkerStats>,
    stop: Arc<AtomicBool>,
    out: Sender<FinishedTrack>,
) -> Result<()> {
    let send = |tracks: Vec<FinishedTrack>| {
        for t in tracks {
            stats.finished_tracks.fetch_add(1, Ordering::Relaxed);
            // The output side gone means we are shutting down: nothing to keep.
            let _ = out.send(t);
        }
    };
    loop {
        let frame = match frames.recv_timeout(Duration::from_millis(200)) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => {
                if stop.load(Ordering::Acquire) {
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let index = stats.frames.fetch_add(1, Ordering::Relaxed);
        if !detect_cfg.runs_on(index) {
            let t0 = Instant::now();
            tracker.coast();
            stats.track_ns.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
            continue;
        }
        let t0 = Instant::now();
        let dets = detector.detect(&frame)?;
        let t1 = Instant::now();
        let finished = tracker.update(&frame, &dets);
        let t2 = Instant::now();
        stats.detect_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
        stats.track_ns.fetch_add((t2 - t1).as_nanos() as u64, Ordering::Relaxed);
        stats.detections.fetch_add(dets.len() as u64, Ordering::Relaxed);
        stats.detected_frames.fetch_add(1, Ordering::Relaxed);
        send(finished);
    }
    send(tracker.finish());
    Ok(())
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

/// `vireid run`.
pub fn run(args: RunArgs) -> Result<()> {
    let mut config = Config::load(&args.config)?;
    // Back half (embed → gallery → events), started before the cameras so a bad model or database fails fast.
    if let Some(s) = &args.sightings {
        config.events.jsonl = Some(s.display().to_string());
    }
    let spec = match (&args.model, args.baseline) {
        (Some(m), _) => Some(crate::embed::EmbedderSpec::Model(m.clone())),
        (None, Some(b)) => Some(crate::embed::EmbedderSpec::Baseline(b)),
        (None, None) => None,
    };
    let mqtt = crate::events::mqtt::MqttService::start(&config)?;
    let sinks: Vec<Box<dyn crate::events::EventSink>> = mqtt.iter().map(|m| m.sink(&config.cameras)).collect();
    let spec = spec.unwrap_or_else(|| crate::embed::EmbedderSpec::Model(config.embed.model_path()));
    // The API needs the gallery, so enabling it starts the back half too.
    let back = if config.events.jsonl.is_some() || config.api.enabled {
        Some(crate::gallery::runner::BackHalf::start(&config, Some(spec.clone()), sinks)?)
    } else {
        tracing::info!("no --sightings, no [events].jsonl and no [api]: finished tracks are written, not embedded or stored");
        None
    };
    let api = match &back {
        Some(b) if config.api.enabled => Some(crate::api::live::LiveApi::start(&config, b, &spec)?),
        _ => None,
    };
    let back_tx = back.as_ref().map(|b| b.sender());
    let mut out: Box<dyn Write + Send> = if args.tracks.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        let f = std::fs::File::create(&args.tracks).with_context(|| format!("cannot create --tracks {}", args.tracks.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    // Bounded: a stuck writer blocks the workers (and then ingest drops
    // frames) instead of growing memory.
    let (tx, rx) = bounded::<FinishedTrack>(256);
    let writer = std::thread::Builder::new().name("tracks-out".into()).spawn(move || -> Result<u64> {
        let mut n = 0;
        for t in rx {
            serde_json::to_writer(&mut out, &finished_track_json(&t))?;
            out.write_all(b"\n")?;
            out.flush()?;
            if let Some(b) = &back_tx {
                // Closed only if the back half died; its error is reported by finish().
                let _ = b.send(t);
            }
            n += 1;
        }
        Ok(n)
    })?;
    install_signal_handlers();
    let pipeline = Pipeline::start(&config, tx)?;
    // systemd (no-ops outside it): READY now that cameras and detectors are up;
    // WATCHDOG only while frames get processed (see `service`).
    let progress = crate::service::Progress::new();
    let notifier = crate::service::ServiceNotifier;
    if let Err(e) = notifier.ready(&format!("{} camera(s) up", config.cameras.len())) {
        tracing::warn!("{e:#}");
    }
    let watchdog = crate::service::WatchdogConfig::from_env()
        .map(|c| crate::service::Watchdog::start(c, progress.clone()))
        .transpose()?;
    let started = Instant::now();
    let mut last_log = Instant::now();
    let reason = loop {
        std::thread::sleep(Duration::from_millis(100));
        let reports = pipeline.reports();
        progress.advance_to(reports.iter().map(|r| r.processed_frames).sum());
        if let Some(api) = &api {
            api.update_cameras(&reports.iter().map(|r| r.ingest.clone()).collect::<Vec<_>>());
        }
        if SIGNALLED.load(Ordering::SeqCst) {
            let _ = notifier.stopping(None);
            break "signal";
        }
        if args.duration.is_some_and(|d| started.elapsed().as_secs_f64() >= d) {
            break "duration reached";
        }
        if pipeline.finished() {
            break "all sources ended";
        }
        if last_log.elapsed().as_secs_f64() >= args.stats_interval {
            last_log = Instant::now();
            for r in pipeline.reports() {
                tracing::info!(
                    camera = %r.ingest.camera, state = ?r.ingest.state, frames = r.ingest.frames, dropped = r.ingest.dropped,
                    reconnects = r.ingest.reconnects, detect_ms = format!("{:.1}", r.detect_ms_per_frame), "camera"
                );
            }
        }
    };
    let wall = started.elapsed().as_secs_f64();
    tracing::info!("stopping: {reason}");
    let reports = pipeline.reports();
    if let Some(w) = watchdog {
        w.stop();
    }
    let result = pipeline.shutdown();
    if let Some(api) = api {
        if let Err(e) = api.stop() {
            tracing::warn!("{e:#}");
        }
    }
    let written = writer.join().map_err(|_| anyhow!("track writer panicked"))??;
    // Drain: every finished track is embedded and committed before we exit.
    let gallery_stats = match back {
        Some(b) => {
            let s = b.finish()?;
            eprintln!(
                "gallery: {} sightings ({} new identities, {} day/night links), {} crops embedded in {} batches, {} failed",
                s.sightings, s.new_identities, s.day_night_links, s.crops_embedded, s.embed_batches, s.sightings_failed + s.tracks_failed_embedding
            );
            Some(s)
        }
        None => None,
    };
    if let Some(m) = mqtt {
        if let Err(e) = m.shutdown() {
            tracing::warn!("{e:#}");
        }
    }
    let reports: Vec<CameraReport> = reports;
    let summary = serde_json::json!({ "wall_s": wall, "stopped_because": reason, "tracks_written": written, "cameras": reports, "gallery": gallery_stats });
    if let Some(p) = &args.stats {
        std::fs::write(p, serde_json::to_string_pretty(&summary)?).with_context(|| format!("cannot write --stats {}", p.display()))?;
    }
    for r in &reports {
        eprintln!(
            "camera {}: {} frames in, {} processed, {} dropped, {} reconnects, detect {:.1} ms/frame, track {:.2} ms/frame",
            r.ingest.camera, r.ingest.frames, r.processed_frames, r.ingest.dropped, r.ingest.reconnects, r.detect_ms_per_frame, r.track_ms_per_frame
        );
    }
    result
}
