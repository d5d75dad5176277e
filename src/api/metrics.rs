//! Pipeline counters the stages bump, rendered as Prometheus text on `/metrics`.
//!
//! One shared [`PipelineMetrics`] (behind an `Arc`) is written by the pipeline
//! threads and read by the API: atomics for the hot counters, a mutex only for
//! the per-camera and per-stage maps (bounded by the number of cameras/stages).

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::core::latency::LATENCY_BUCKETS;
use crate::core::{LatencySnapshot, Modality};

use super::gallery::GalleryStats;

/// What a camera is doing: ingest's own state, shown as is by the dashboard and `/metrics`.
pub use crate::ingest::CameraState;

#[derive(Debug, Clone, Serialize)]
pub struct CameraStatus {
    pub name: String,
    pub modality: Modality,
    pub state: CameraState,
    pub frames_in: u64,
    pub frames_dropped: u64,
    /// Unix seconds of the last frame, if any.
    pub last_frame: Option<f64>,
}

#[derive(Debug, Default)]
pub struct PipelineMetrics {
    cameras: Mutex<BTreeMap<String, CameraStatus>>,
    stages: Mutex<BTreeMap<&'static str, LatencySnapshot>>,
    pub detections: AtomicU64,
    pub dropped_detections: AtomicU64,
    pub tracks: AtomicU64,
    pub embeddings: AtomicU64,
    pub matches: AtomicU64,
    pub new_identities: AtomicU64,
    pub day_night_links: AtomicU64,
    pub adapter_swaps: AtomicU64,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

impl PipelineMetrics {
    pub fn new() -> PipelineMetrics {
        PipelineMetrics::default()
    }

    pub fn register_camera(&self, name: &str, modality: Modality) {
        let mut cams = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        cams.entry(name.to_string()).or_insert_with(|| CameraStatus {
            name: name.to_string(),
            modality,
            state: CameraState::Starting,
            frames_in: 0,
            frames_dropped: 0,
            last_frame: None,
        });
    }

    fn with_camera(&self, name: &str, f: impl FnOnce(&mut CameraStatus)) {
        let mut cams = self.cameras.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = cams.get_mut(name) {
            f(c);
        }
    }

    pub fn frame_in(&self, camera: &str) {
        self.with_camera(camera, |c| {
            c.frames_in += 1;
            c.last_frame = Some(unix_now());
            c.state = CameraState::Running;
        });
    }

    pub fn frames_dropped(&self, camera: &str, n: u64) {
        self.with_camera(camera, |c| c.frames_dropped += n);
    }

    /// Sets a camera's totals from the pipeline's own counters (`vireid run`
    /// reports absolute numbers; deltas would be derivable state to keep in step).
    pub fn camera_totals(&self, camera: &str, state: CameraState, frames_in: u64, frames_dropped: u64) {
        self.with_camera(camera, |c| {
            if frames_in > c.frames_in {
                c.last_frame = Some(unix_now());
            }
            c.frames_in = frames_in;
            c.frames_dropped = frames_dropped;
            c.state = state;
        });
    }

    pub fn camera_state(&self, camera: &str, state: CameraState) {
        self.with_camera(camera, |c| c.state = state);
    }

    pub fn cameras(&self) -> Vec<CameraStatus> {
        self.cameras.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    /// Records how long one stage (`ingest`, `detect`, `track`, `embed`, `gallery`) took.
    pub fn stage_latency(&self, stage: &'static str, took: Duration) {
        self.stages.lock().unwrap_or_else(|p| p.into_inner()).entry(stage).or_default().observe(took);
    }

    /// Sets a stage's histogram from the stage's own (`vireid run`: the
    /// pipeline's threads fill theirs, the service copies them here).
    pub fn stage_totals(&self, stage: &'static str, histogram: LatencySnapshot) {
        self.stages.lock().unwrap_or_else(|p| p.into_inner()).insert(stage, histogram);
    }

    /// Prometheus text exposition format (version 0.0.4).
    pub fn render(&self, gallery: Option<GalleryStats>) -> String {
        let mut text = String::with_capacity(4096);
        let cams = self.cameras();
        let _ = writeln!(
            text,
            "# HELP vireid_frames_total Frames received per camera.\n# TYPE vireid_frames_total counter"
        );
        for c in &cams {
            let _ = writeln!(
                text,
                "vireid_frames_total{{camera=\"{}\",modality=\"{}\"}} {}",
                esc(&c.name),
                c.modality,
                c.frames_in
            );
        }
        let _ = writeln!(text, "# HELP vireid_frames_dropped_total Frames dropped per camera because a later stage was behind.\n# TYPE vireid_frames_dropped_total counter");
        for c in &cams {
            let _ = writeln!(
                text,
                "vireid_frames_dropped_total{{camera=\"{}\",modality=\"{}\"}} {}",
                esc(&c.name),
                c.modality,
                c.frames_dropped
            );
        }
        let _ = writeln!(
            text,
            "# HELP vireid_camera_up 1 while the camera's frames are arriving.\n# TYPE vireid_camera_up gauge"
        );
        for c in &cams {
            let _ = writeln!(
                text,
                "vireid_camera_up{{camera=\"{}\",state=\"{}\"}} {}",
                esc(&c.name),
                c.state.as_str(),
                u8::from(c.state == CameraState::Running)
            );
        }
        for (name, help, v) in [
            ("vireid_detections_total", "Person detections.", &self.detections),
            (
                "vireid_dropped_detections_total",
                "Person boxes dropped for a height nobody standing there has ([detect.perspective]).",
                &self.dropped_detections,
            ),
            ("vireid_tracks_total", "Tracks finished (each one a candidate sighting).", &self.tracks),
            ("vireid_embeddings_total", "Crops embedded (rate() gives embeddings/s).", &self.embeddings),
            ("vireid_matches_total", "Sightings matched to a known identity.", &self.matches),
            (
                "vireid_new_identities_total",
                "Sightings that matched nothing and founded an identity.",
                &self.new_identities,
            ),
            (
                "vireid_day_night_links_total",
                "Matches across modalities (thermal to RGB or back).",
                &self.day_night_links,
            ),
            (
                "vireid_adapter_swaps_total",
                "Re-fits of the cross-modal adapter swapped in by the running service ([adapt] interval_hours).",
                &self.adapter_swaps,
            ),
        ] {
            let _ = writeln!(text, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        if let Some(g) = gallery {
            let _ = writeln!(text, "# HELP vireid_gallery_identities Identities in the gallery.\n# TYPE vireid_gallery_identities gauge\nvireid_gallery_identities {}", g.identities);
            let _ = writeln!(text, "# HELP vireid_gallery_sightings Sightings in the gallery.\n# TYPE vireid_gallery_sightings gauge\nvireid_gallery_sightings {}", g.sightings);
            let _ = writeln!(text, "# HELP vireid_gallery_exemplars Exemplar features held for search.\n# TYPE vireid_gallery_exemplars gauge\nvireid_gallery_exemplars {}", g.exemplars);
        }
        let stages = self.stages.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let _ = writeln!(text, "# HELP vireid_stage_latency_seconds Time per unit of work in each pipeline stage: a frame (detect, track), a batch (embed), a sighting (gallery).\n# TYPE vireid_stage_latency_seconds histogram");
        for (stage, h) in &stages {
            for (i, le) in LATENCY_BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    text,
                    "vireid_stage_latency_seconds_bucket{{stage=\"{stage}\",le=\"{le}\"}} {}",
                    h.buckets[i]
                );
            }
            let _ = writeln!(text, "vireid_stage_latency_seconds_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(text, "vireid_stage_latency_seconds_sum{{stage=\"{stage}\"}} {}", h.sum_s);
            let _ = writeln!(text, "vireid_stage_latency_seconds_count{{stage=\"{stage}\"}} {}", h.count);
        }
        text
    }
}

/// Label values escape `\`, `"` and newlines.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_cumulative_histogram_and_escapes_labels() {
        let m = PipelineMetrics::new();
        m.register_camera("a\"b", Modality::Rgb);
        m.frame_in("a\"b");
        m.frames_dropped("a\"b", 3);
        m.stage_latency("embed", Duration::from_millis(3));
        m.stage_latency("embed", Duration::from_millis(300));
        let text = m.render(Some(GalleryStats { identities: 2, sightings: 5, exemplars: 9 }));
        assert!(text.contains("vireid_frames_total{camera=\"a\\\"b\",modality=\"rgb\"} 1"), "{text}");
        assert!(text.contains("vireid_frames_dropped_total{camera=\"a\\\"b\",modality=\"rgb\"} 3"));
        assert!(text.contains("vireid_stage_latency_seconds_bucket{stage=\"embed\",le=\"0.005\"} 1"));
        assert!(text.contains("vireid_stage_latency_seconds_bucket{stage=\"embed\",le=\"0.5\"} 2"));
        assert!(text.contains("vireid_stage_latency_seconds_count{stage=\"embed\"} 2"));
        assert!(text.contains("vireid_gallery_identities 2"));
    }
}
