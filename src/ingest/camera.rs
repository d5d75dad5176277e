//! One camera: a supervisor thread that runs its GStreamer pipeline, restarts
//! live sources with exponential back-off, and a bounded, leaky frame queue.
//!
//! GStreamer's streaming thread only copies the frame out of its buffer and
//! pushes it into the queue: when the queue is full the OLDEST frame is thrown
//! away and counted, so a slow detector sees the newest frames and memory is
//! bounded by `queue_frames` frames per camera whatever the run time.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::gst_pipeline::{build_pipeline, init_gstreamer};
use super::source::SourceKind;
use super::stats::{CameraState, CameraStats};
use super::timeline::Timeline;
use super::{CameraConfig, FilePace, IngestConfig, IngestError};
use crate::core::{Frame, Shutdown};

type Result<T> = std::result::Result<T, IngestError>;
use crate::core::Modality;

/// A running camera. Frames come out of `frames`; the channel disconnects
/// when the camera stops for good (file ended, fatal error, or [`CameraHandle::stop`]).
pub struct CameraHandle {
    pub name: Arc<str>,
    pub modality: Modality,
    pub frames: Receiver<Frame>,
    pub stats: Arc<CameraStats>,
    stop: Shutdown,
    thread: Option<JoinHandle<Result<()>>>,
}

impl CameraHandle {
    /// Asks the camera to stop; frames already queued can still be read.
    pub fn stop(&self) {
        self.stop.request();
    }

    /// Stops the camera and waits for its thread; returns its fatal error, if any.
    pub fn join(mut self) -> Result<()> {
        self.stop();
        self.join_inner()
    }

    /// Waits for the camera to finish on its own (a file reaching its end).
    pub fn wait(mut self) -> Result<()> {
        self.join_inner()
    }

    fn join_inner(&mut self) -> Result<()> {
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| IngestError::Panicked(self.name.to_string()))?,
            None => Ok(()),
        }
    }
}

impl Drop for CameraHandle {
    fn drop(&mut self) {
        self.stop();
        let _ = self.join_inner();
    }
}

/// Starts a camera. Errors that no retry can fix (a GStreamer element this
/// machine lacks, a bad source string) are returned here, before any thread runs.
pub fn start_camera(cam: &CameraConfig, ingest: &IngestConfig) -> Result<CameraHandle> {
    init_gstreamer()?;
    let kind = SourceKind::parse(&cam.source)
        .map_err(|e| IngestError::Invalid(format!("camera '{}' source: {e}", cam.name)))?;
    let first = build_pipeline(cam, ingest)?;
    let name: Arc<str> = Arc::from(cam.name.as_str());
    let (tx, rx) = bounded::<Frame>(ingest.queue_frames);
    let stats = Arc::new(CameraStats::new(name.clone()));
    let stop = Shutdown::new();
    let sup = Supervisor {
        cam: cam.clone(),
        ingest: ingest.clone(),
        kind,
        name: name.clone(),
        tx,
        rx: rx.clone(),
        stats: stats.clone(),
        stop: stop.clone(),
        timeline: Arc::default(),
    };
    let thread = std::thread::Builder::new()
        .name(format!("ingest-{}", cam.name))
        .spawn(move || sup.run(first))
        .map_err(IngestError::Spawn)?;
    Ok(CameraHandle { name, modality: cam.modality, frames: rx, stats, stop, thread: Some(thread) })
}

/// Why one pipeline run ended.
enum RunEnd {
    StopRequested,
    Eos,
    Failed(String),
}

struct Supervisor {
    cam: CameraConfig,
    ingest: IngestConfig,
    kind: SourceKind,
    name: Arc<str>,
    tx: Sender<Frame>,
    rx: Receiver<Frame>,
    stats: Arc<CameraStats>,
    stop: Shutdown,
    /// Placed on the camera's timeline by the streaming thread; a new connection breaks the segment.
    timeline: Arc<Mutex<Timeline>>,
}

impl Supervisor {
    fn run(self, first: gst::Pipeline) -> Result<()> {
        let live = self.kind.is_live();
        let initial = Duration::from_millis(self.ingest.reconnect_initial_ms);
        let max = Duration::from_millis(self.ingest.reconnect_max_ms);
        let mut backoff = initial;
        let mut next = Some(first);
        let result = loop {
            if self.stop.is_requested() {
                break Ok(());
            }
            let pipeline = match next.take() {
                Some(p) => p,
                None => match build_pipeline(&self.cam, &self.ingest) {
                    Ok(p) => p,
                    Err(e) => break Err(e),
                },
            };
            let frames_before = self.stats.frames.load(Ordering::Relaxed);
            let end = self.run_once(&pipeline);
            shut_down(&pipeline);
            drop(pipeline);
            let got_frames = self.stats.frames.load(Ordering::Relaxed) > frames_before;
            let reason = match end {
                RunEnd::StopRequested => break Ok(()),
                RunEnd::Eos if !live => break Ok(()),
                RunEnd::Failed(msg) if !live => {
                    break Err(IngestError::Failed {
                        camera: self.name.to_string(),
                        source_uri: self.cam.source.clone(),
                        message: msg,
                    });
                }
                RunEnd::Eos => "stream ended".to_string(),
                RunEnd::Failed(msg) => msg,
            };
            // A connection that delivered frames worked: start the back-off afresh.
            if got_frames {
                backoff = initial;
            }
            self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
            self.stats.set_error(reason.clone());
            self.stats.set_state(CameraState::Retrying);
            tracing::warn!(camera = %self.name, source = %self.cam.source, "{reason}; retrying in {:.1} s", backoff.as_secs_f64());
            // Wakes at once when the camera is asked to stop.
            self.stop.wait_timeout(backoff);
            backoff = (backoff * 2).min(max);
        };
        if let Err(e) = &result {
            self.stats.set_error(format!("{e:#}"));
            tracing::error!(camera = %self.name, "{e:#}");
        }
        self.stats.set_state(CameraState::Stopped);
        result
    }

    /// Plays one pipeline until it ends, fails, stalls or we are asked to stop.
    fn run_once(&self, pipeline: &gst::Pipeline) -> RunEnd {
        let Some(sink) = pipeline.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()) else {
            return RunEnd::Failed("pipeline has no appsink".into());
        };
        self.timeline.lock().unwrap_or_else(|p| p.into_inner()).reconnected();
        sink.set_callbacks(self.callbacks());
        if self.stats.state() != CameraState::Running {
            self.stats.set_state(CameraState::Starting);
        }
        if let Err(e) = pipeline.set_state(gst::State::Playing) {
            // The bus usually holds the real reason; fall back to the state error.
            return match pop_error(pipeline) {
                Some(msg) => RunEnd::Failed(msg),
                None => RunEnd::Failed(format!("cannot start pipeline: {e}")),
            };
        }
        let Some(bus) = pipeline.bus() else { return RunEnd::Failed("pipeline has no bus".into()) };
        let stall = Duration::from_millis(self.ingest.stall_timeout_ms);
        let mut last_count = self.stats.frames.load(Ordering::Relaxed);
        let mut last_progress = Instant::now();
        loop {
            if self.stop.is_requested() {
                return RunEnd::StopRequested;
            }
            if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match msg.view() {
                    gst::MessageView::Eos(_) => {
                        if self.cam.loop_file && !self.kind.is_live() {
                            tracing::info!(camera = %self.name, "file ended; looping");
                            if pipeline
                                .seek_simple(gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT, gst::ClockTime::ZERO)
                                .is_err()
                            {
                                return RunEnd::Failed("cannot seek back to the start to loop the file".into());
                            }
                            continue;
                        }
                        return RunEnd::Eos;
                    }
                    gst::MessageView::Error(err) => return RunEnd::Failed(describe_error(err)),
                    _ => {}
                }
            }
            // A live source that has gone quiet (server gone, cable pulled) does
            // not always post an error: restart it ourselves.
            let count = self.stats.frames.load(Ordering::Relaxed);
            if count != last_count {
                last_count = count;
                last_progress = Instant::now();
            } else if self.kind.is_live() && last_progress.elapsed() > stall {
                return RunEnd::Failed(format!("no frame for {:.1} s", stall.as_secs_f64()));
            }
        }
    }

    fn callbacks(&self) -> gst_app::AppSinkCallbacks {
        let tx = self.tx.clone();
        let rx = self.rx.clone();
        let stats = self.stats.clone();
        let stop = self.stop.clone();
        let name = self.name.clone();
        let modality = self.cam.modality;
        let timeline = self.timeline.clone();
        let blocking = matches!(self.kind, SourceKind::File(_)) && self.ingest.file_pace == FilePace::Fast;
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let started = Instant::now();
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let mut frame = frame_from_sample(&sample, &name, modality).map_err(|e| {
                    tracing::error!(camera = %name, "cannot read frame: {e:#}");
                    gst::FlowError::Error
                })?;
                (frame.pts_ns, frame.segment) =
                    timeline.lock().unwrap_or_else(|p| p.into_inner()).place(frame.pts_ns, started);
                stats.copy_ns.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
                stats.frames.fetch_add(1, Ordering::Relaxed);
                if stats.state() != CameraState::Running {
                    stats.set_state(CameraState::Running);
                }
                if blocking {
                    // Offline file processing: wait for the consumer, lose nothing.
                    loop {
                        match tx.send_timeout(frame, Duration::from_millis(100)) {
                            Ok(()) => break,
                            Err(crossbeam_channel::SendTimeoutError::Timeout(f)) => {
                                if stop.is_requested() {
                                    return Err(gst::FlowError::Flushing);
                                }
                                frame = f;
                            }
                            Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                                return Err(gst::FlowError::Eos)
                            }
                        }
                    }
                } else {
                    push_drop_oldest(&tx, &rx, frame, &stats);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build()
    }
}

/// Pushes a frame; when the queue is full, throws away the oldest queued
/// frame (counted in `dropped`) to make room.
fn push_drop_oldest(tx: &Sender<Frame>, rx: &Receiver<Frame>, mut frame: Frame, stats: &CameraStats) {
    loop {
        match tx.try_send(frame) {
            Ok(()) => return,
            Err(TrySendError::Full(f)) => {
                frame = f;
                if rx.try_recv().is_ok() {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Copies a sample into a packed frame (GStreamer rows may be padded).
fn frame_from_sample(
    sample: &gst::Sample,
    camera: &Arc<str>,
    modality: Modality,
) -> std::result::Result<Frame, String> {
    let caps = sample.caps().ok_or("sample without caps")?;
    let info = gst_video::VideoInfo::from_caps(caps).map_err(|e| format!("caps are not raw video: {e}"))?;
    let buffer = sample.buffer().ok_or("sample without buffer")?;
    let map = buffer.map_readable().map_err(|e| format!("cannot map buffer: {e}"))?;
    let (w, h) = (info.width() as usize, info.height() as usize);
    let row = w * modality.channels();
    let stride = info.stride()[0] as usize;
    let offset = info.offset()[0];
    let bytes = map.as_slice();
    if stride < row || bytes.len() < offset + stride * (h.saturating_sub(1)) + row {
        return Err(format!("buffer of {} bytes too small for {w}×{h} {modality} frame", bytes.len()));
    }
    let mut data = Vec::with_capacity(row * h);
    for y in 0..h {
        let start = offset + y * stride;
        data.extend_from_slice(&bytes[start..start + row]);
    }
    Ok(Frame {
        camera: camera.clone(),
        modality,
        pts_ns: buffer.pts().map(|t| t.nseconds()),
        segment: 0,
        wall_time: SystemTime::now(),
        width: w as u32,
        height: h as u32,
        data,
    })
}

fn describe_error(err: &gst::message::Error) -> String {
    let src = err.src().map(|s| s.path_string().to_string()).unwrap_or_else(|| "pipeline".into());
    match err.debug() {
        Some(dbg) => format!("{} (from {src}; {})", err.error(), first_line(&dbg)),
        None => format!("{} (from {src})", err.error()),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty()).unwrap_or(s).trim()
}

fn pop_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(200), &[gst::MessageType::Error]) {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(describe_error(err));
        }
    }
    None
}

/// Stops a pipeline and unhooks the appsink callbacks, so the queue's sender
/// they hold is dropped even if GStreamer keeps the element alive a bit longer.
fn shut_down(pipeline: &gst::Pipeline) {
    let _ = pipeline.set_state(gst::State::Null);
    if let Some(sink) = pipeline.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()) {
        sink.set_callbacks(gst_app::AppSinkCallbacks::builder().build());
    }
}
