//! The front half: per camera, ingest → detect → track on its own worker
//! thread (feature `media`); finished tracks go to one output channel, which
//! the service hands to the back half (`super::back`) and the `--tracks` file.

use super::{PipelineError, PipelineResult};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::core::light::mean_luma;
use crate::core::{Frame, LatencyHistogram, LatencySnapshot, LightMeter, Modality, Shutdown};
use crate::detect::{open_detector, CameraDetector, DetectConfig, HeightPrior};
use crate::ingest::{self, CameraHandle, StatsSnapshot};
use crate::pair::{self, Clock};
use crate::track::{FinishedTrack, TrackObserver, Tracker};

/// Per-camera worker counters.
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub frames: AtomicU64,
    /// Frames the detector ran on (`detect.every_n_frames`).
    pub detected_frames: AtomicU64,
    pub detections: AtomicU64,
    /// Boxes `[detect.perspective]` dropped (not in `detections`).
    pub dropped_detections: AtomicU64,
    pub detect_ns: AtomicU64,
    pub track_ns: AtomicU64,
    pub finished_tracks: AtomicU64,
    /// Per frame the detector ran on.
    pub detect_latency: LatencyHistogram,
    /// Per frame.
    pub track_latency: LatencyHistogram,
}

/// A camera's ingest and worker counters together.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CameraReport {
    pub ingest: StatsSnapshot,
    pub processed_frames: u64,
    pub detected_frames: u64,
    pub detections: u64,
    pub dropped_detections: u64,
    pub finished_tracks: u64,
    /// Detector time over all processed frames (skipped ones count as 0).
    pub detect_ms_per_frame: f64,
    pub track_ms_per_frame: f64,
    pub copy_ms_per_frame: f64,
}

struct CameraWorker {
    camera: CameraHandle,
    stats: Arc<WorkerStats>,
    thread: Option<JoinHandle<PipelineResult<()>>>,
}

/// The running front half: cameras with their detect+track workers.
pub struct FrontHalf {
    workers: Vec<CameraWorker>,
    stop: Shutdown,
}

impl FrontHalf {
    /// Starts every camera and its worker; finished tracks are sent to `out`,
    /// and live ones shown to `observer` (MQTT's `new`/`update`).
    pub fn start(
        config: &Config,
        out: Sender<FinishedTrack>,
        observer: Option<Arc<dyn TrackObserver>>,
    ) -> PipelineResult<FrontHalf> {
        config.validate()?;
        let stop = Shutdown::new();
        let mut workers = Vec::new();
        // One light meter per box: its colour cameras write it, all its cameras read it.
        let mut meters: std::collections::HashMap<&str, Arc<LightMeter>> = Default::default();
        for cam in config.cameras.iter().filter(|c| c.modality == Modality::Rgb) {
            meters.entry(cam.box_name.as_str()).or_default().add_writer();
        }
        let places = pair::camera_places(&config.cameras);
        for cam in &config.cameras {
            let meter = meters.entry(cam.box_name.as_str()).or_default().clone();
            let clock = places.get(&cam.name).map_or(Clock::Wall, |p| p.clock);
            let light = Light { meter, night_luma: config.ingest.night_luma, clock };
            // Each worker owns its detector: OpenCV/ORT objects are not shared across threads.
            let detector = open_detector(&config.detect, config.embed.ort_library.as_deref())
                .map_err(|source| PipelineError::OpenDetector { camera: cam.name.clone(), source })?;
            let perspective = HeightPrior::remembered(
                Arc::from(cam.name.as_str()),
                config.detect.perspective.clone(),
                perspective_memory(&config.state_dir, &cam.name),
            );
            let detector = CameraDetector::new(detector, perspective);
            let camera = ingest::start_camera(cam, &config.ingest)?;
            let stats = Arc::new(WorkerStats::default());
            let tracker = Tracker::new(camera.name.clone(), cam.modality, config.track.clone());
            let (frames, wstats, wstop) = (camera.frames.clone(), stats.clone(), stop.clone());
            let outputs = Outputs { tracks: out.clone(), observer: observer.clone(), light };
            let detect_cfg = config.detect.clone();
            let thread = std::thread::Builder::new()
                .name(format!("detect-{}", cam.name))
                .spawn(move || worker_loop(frames, &detect_cfg, detector, tracker, wstats, wstop, outputs))
                .map_err(|e| PipelineError::Spawn("detect worker", e))?;
            workers.push(CameraWorker { camera, stats, thread: Some(thread) });
        }
        Ok(FrontHalf { workers, stop })
    }

    /// True once every camera has stopped and its worker has drained.
    pub fn finished(&self) -> bool {
        self.workers.iter().all(|w| w.thread.as_ref().is_none_or(|t| t.is_finished()))
    }

    /// The `detect` and `track` stage histograms, over every camera.
    pub fn latencies(&self) -> [(&'static str, LatencySnapshot); 2] {
        let (mut detect, mut track) = (LatencySnapshot::default(), LatencySnapshot::default());
        for w in &self.workers {
            detect.merge(&w.stats.detect_latency.snapshot());
            track.merge(&w.stats.track_latency.snapshot());
        }
        [("detect", detect), ("track", track)]
    }

    pub fn reports(&self) -> Vec<CameraReport> {
        self.workers.iter().map(|w| report(&w.stats, w.camera.stats.snapshot())).collect()
    }

    /// Stops the cameras, lets the workers flush their live tracks, and
    /// returns the cameras' final reports (their state `stopped`) and the
    /// first error any camera or worker hit.
    pub fn shutdown(mut self) -> (Vec<CameraReport>, PipelineResult<()>) {
        let counters: Vec<_> = self.workers.iter().map(|w| (w.stats.clone(), w.camera.stats.clone())).collect();
        let result = self.stop_all();
        (counters.iter().map(|(w, c)| report(w, c.snapshot())).collect(), result)
    }

    fn stop_all(&mut self) -> PipelineResult<()> {
        self.stop.request();
        let mut first_err = None;
        for w in &mut self.workers {
            w.camera.stop();
        }
        for mut w in std::mem::take(&mut self.workers) {
            if let Some(t) = w.thread.take() {
                match t.join() {
                    Ok(Err(e)) => first_err = first_err.or(Some(e)),
                    Err(_) => {
                        first_err = first_err
                            .or(Some(PipelineError::Panicked(format!("camera '{}': the worker thread", w.camera.name))))
                    }
                    Ok(Ok(())) => {}
                }
            }
            if let Err(e) = w.camera.join() {
                first_err = first_err.or(Some(e.into()));
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

fn report(s: &WorkerStats, ingest: StatsSnapshot) -> CameraReport {
    let n = s.frames.load(Ordering::Relaxed).max(1) as f64;
    CameraReport {
        processed_frames: s.frames.load(Ordering::Relaxed),
        detected_frames: s.detected_frames.load(Ordering::Relaxed),
        detections: s.detections.load(Ordering::Relaxed),
        dropped_detections: s.dropped_detections.load(Ordering::Relaxed),
        finished_tracks: s.finished_tracks.load(Ordering::Relaxed),
        detect_ms_per_frame: s.detect_ns.load(Ordering::Relaxed) as f64 / 1e6 / n,
        track_ms_per_frame: s.track_ns.load(Ordering::Relaxed) as f64 / 1e6 / n,
        copy_ms_per_frame: ingest.copy_ms / (ingest.frames.max(1) as f64),
        ingest,
    }
}

/// Where a worker's tracks go: finished ones down the flow, and what is
/// live to the observer.
struct Outputs {
    tracks: Sender<FinishedTrack>,
    observer: Option<Arc<dyn TrackObserver>>,
    light: Light,
}

/// The box's light meter, where night begins, and the box's clock.
struct Light {
    meter: Arc<LightMeter>,
    night_luma: u8,
    clock: Clock,
}

/// How long a worker waits for its box's colour camera to reach a finished
/// track's instant (files replayed fast run at their own speeds).
const LIGHT_WAIT: Duration = Duration::from_secs(5);

impl Light {
    fn instant_ns(&self, pts_ns: Option<u64>, wall: std::time::SystemTime) -> i64 {
        pair::instant_of(pts_ns, crate::core::time::unix_ns(wall), self.clock)
    }

    /// Tags tracks with the light at their last frame. On stream timestamps
    /// it first waits (boundedly) for the colour camera to get there; live
    /// cameras' wall clocks are never far apart.
    fn tag(&self, tracks: &mut [FinishedTrack], stop: &Shutdown) {
        let instants: Vec<i64> = tracks.iter().map(|t| self.instant_ns(t.last_pts_ns, t.end_time)).collect();
        if let (Clock::Pts, Some(&latest)) = (self.clock, instants.iter().max()) {
            let since = Instant::now();
            while !self.meter.reached(latest) && since.elapsed() < LIGHT_WAIT && !stop.is_requested() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        for (t, at) in tracks.iter_mut().zip(instants) {
            t.light = self.meter.light_at(at, self.night_luma);
        }
    }
}

/// A colour camera's worker stops writing its box's meter however it ends.
struct Writing(Option<Arc<LightMeter>>);

impl Drop for Writing {
    fn drop(&mut self) {
        if let Some(meter) = &self.0 {
            meter.remove_writer();
        }
    }
}

fn worker_loop(
    frames: Receiver<Frame>,
    detect_cfg: &DetectConfig,
    mut detector: CameraDetector,
    mut tracker: Tracker,
    stats: Arc<WorkerStats>,
    stop: Shutdown,
    outputs: Outputs,
) -> PipelineResult<()> {
    let Outputs { tracks: out, observer, light } = outputs;
    let _writing = Writing((tracker.modality() == Modality::Rgb).then(|| light.meter.clone()));
    let send = |mut tracks: Vec<FinishedTrack>| {
        if let (Some(o), false) = (&observer, tracks.is_empty()) {
            o.ended(&tracks);
        }
        light.tag(&mut tracks, &stop);
        for t in tracks {
            stats.finished_tracks.fetch_add(1, Ordering::Relaxed);
            // The output side gone means we are shutting down: nothing to keep.
            let _ = out.send(t);
        }
    };
    let mut segment = None;
    loop {
        let frame = match frames.recv_timeout(Duration::from_millis(200)) {
            Ok(f) => f,
            Err(RecvTimeoutError::Timeout) => {
                if stop.is_requested() {
                    break;
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        // A reconnect (or a file loop) broke the stream: whoever was tracked
        // before it is not followed across it.
        if segment.replace(frame.segment).is_some_and(|s| s != frame.segment) {
            send(tracker.finish());
        }
        let index = stats.frames.fetch_add(1, Ordering::Relaxed);
        if !detect_cfg.runs_on(index) {
            let t0 = Instant::now();
            tracker.coast();
            let took = t0.elapsed();
            stats.track_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
            stats.track_latency.observe(took);
            continue;
        }
        // Light changes over minutes: the frames the detector runs on are enough.
        if frame.modality == Modality::Rgb {
            light.meter.record(light.instant_ns(frame.pts_ns, frame.wall_time), mean_luma(&frame.data));
        }
        let t0 = Instant::now();
        let (dets, dropped) = match detector.detect(&frame) {
            Ok(found) => found,
            Err(source) => {
                // What was learnt until now is still the camera's perspective.
                detector.save();
                return Err(PipelineError::Detect { camera: frame.camera.to_string(), source });
            }
        };
        let t1 = Instant::now();
        let finished = tracker.update(&frame, &dets);
        if let Some(o) = &observer {
            o.seen(&frame.camera, frame.modality, frame.wall_time, tracker.active());
        }
        let t2 = Instant::now();
        stats.detect_ns.fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
        stats.track_ns.fetch_add((t2 - t1).as_nanos() as u64, Ordering::Relaxed);
        stats.detect_latency.observe(t1 - t0);
        stats.track_latency.observe(t2 - t1);
        stats.detections.fetch_add(dets.len() as u64, Ordering::Relaxed);
        stats.dropped_detections.fetch_add(dropped.len() as u64, Ordering::Relaxed);
        stats.detected_frames.fetch_add(1, Ordering::Relaxed);
        send(finished);
    }
    detector.save();
    send(tracker.finish());
    Ok(())
}

/// Where a camera's learnt perspective is kept: `<state_dir>/perspective/<camera>.json`,
/// the name made safe for a file.
fn perspective_memory(state_dir: &std::path::Path, camera: &str) -> std::path::PathBuf {
    let name: String =
        camera.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    state_dir.join("perspective").join(format!("{name}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{BBox, Modality};
    use crate::detect::{DetectError, Detection, Detector};
    use crate::track::TrackConfig;
    use std::time::SystemTime;

    /// One person standing still in every frame.
    struct Still;
    impl Detector for Still {
        fn detect(&mut self, _: &Frame) -> Result<Vec<Detection>, DetectError> {
            Ok(vec![Detection { bbox: BBox::new(100.0, 50.0, 40.0, 100.0), score: 1.0 }])
        }
    }

    fn still() -> CameraDetector {
        CameraDetector::new(Box::new(Still), HeightPrior::new(Arc::from("cam"), Default::default()))
    }

    fn frame(pts_s: f64, segment: u64) -> Frame {
        let (w, h) = (320u32, 240u32);
        let data = (0..w * h * 3).map(|p| (p % 251) as u8).collect();
        Frame {
            camera: Arc::from("cam"),
            modality: Modality::Rgb,
            pts_ns: Some((pts_s * 1e9) as u64),
            segment,
            wall_time: SystemTime::now(),
            width: w,
            height: h,
            data,
        }
    }

    /// A reconnect ends the camera's tracks: a person still in view after it
    /// is a new track, and no track spans the outage (one once ran from
    /// 25.44 s to 9.04 s and was stored as a 26 s sighting).
    #[test]
    fn a_new_segment_ends_the_tracks() {
        let (ftx, frx) = crossbeam_channel::bounded(64);
        let (otx, orx) = crossbeam_channel::bounded(64);
        for i in 0..10 {
            ftx.send(frame(20.0 + i as f64 * 0.1, 0)).unwrap();
        }
        for i in 0..10 {
            ftx.send(frame(35.0 + i as f64 * 0.1, 1)).unwrap();
        }
        drop(ftx);
        let tracker = Tracker::new(Arc::from("cam"), Modality::Rgb, TrackConfig::default());
        let stats = Arc::new(WorkerStats::default());
        let meter = Arc::new(LightMeter::default());
        meter.add_writer();
        let light = Light { meter: meter.clone(), night_luma: 50, clock: Clock::Pts };
        let outputs = Outputs { tracks: otx, observer: None, light };
        worker_loop(frx, &DetectConfig::default(), still(), tracker, stats, Shutdown::new(), outputs).unwrap();
        let tracks: Vec<FinishedTrack> = orx.iter().collect();
        assert_eq!(tracks.len(), 2, "one track per segment: {tracks:#?}");
        let s = |ns: Option<u64>| ns.unwrap() as f64 / 1e9;
        for t in &tracks {
            let (first, last) = (s(t.first_pts_ns), s(t.last_pts_ns));
            assert!(first <= last && last - first < 1.0, "track {} spans {first}..{last}", t.track_id);
        }
        assert_ne!(tracks[0].track_id, tracks[1].track_id);
        // The colour frames (mean luma ~125) set the box's light, and each track carries it.
        assert!(tracks.iter().all(|t| t.light == Some(crate::core::Light::Day)), "{tracks:#?}");
        assert!(meter.reached(i64::MAX), "the colour worker stopped writing when it ended");
    }

    /// Replayed fast, a box's thermal camera can run ahead of its colour
    /// camera: a thermal track waits for the colour camera to reach its
    /// instant and gets the light there, not the colour camera's latest.
    #[test]
    fn a_thermal_track_waits_for_the_light_at_its_instant() {
        let (ftx, frx) = crossbeam_channel::bounded(64);
        let (otx, orx) = crossbeam_channel::bounded(64);
        for i in 0..10 {
            let grey = frame(20.0 + i as f64 * 0.1, 0);
            let data = grey.data.chunks_exact(3).map(|px| px[0]).collect();
            ftx.send(Frame { modality: Modality::Thermal, data, ..grey }).unwrap();
        }
        drop(ftx);
        let meter = Arc::new(LightMeter::default());
        meter.add_writer();
        meter.record(0, 120);
        let colour = {
            let meter = meter.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                meter.record(20_000_000_000, 20);
                meter.record(22_000_000_000, 20);
            })
        };
        let tracker = Tracker::new(Arc::from("cam"), Modality::Thermal, TrackConfig::default());
        let light = Light { meter, night_luma: 50, clock: Clock::Pts };
        let outputs = Outputs { tracks: otx, observer: None, light };
        let stats = Arc::new(WorkerStats::default());
        worker_loop(frx, &DetectConfig::default(), still(), tracker, stats, Shutdown::new(), outputs).unwrap();
        colour.join().unwrap();
        let tracks: Vec<FinishedTrack> = orx.iter().collect();
        assert_eq!(tracks.len(), 1);
        assert_eq!(tracks[0].light, Some(crate::core::Light::Night), "tagged with the colour camera's day at 0 s");
    }
}
