//! The embed worker: one thread takes finished tracks from every camera,
//! batches their best crops (up to `max_batch` crops or `max_wait_ms`), runs the
//! embedder once per batch and hands each track on with one aggregated feature.
//!
//! Batching across cameras keeps the model busy with full batches even when
//! each camera finishes tracks rarely; the wait bound keeps latency bounded.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ndarray::{Array1, Axis};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Embedder;
use crate::core::{Crop, LatencyHistogram};
use crate::track::FinishedTrack;

/// A finished track with its aggregated, L2-normalised feature.
#[derive(Debug, Clone)]
pub struct EmbeddedTrack {
    pub track: FinishedTrack,
    pub feature: Array1<f32>,
    /// How many crops went into the feature.
    pub crops_used: usize,
}

impl AsRef<FinishedTrack> for EmbeddedTrack {
    fn as_ref(&self) -> &FinishedTrack {
        &self.track
    }
}

/// Averages rows and re-normalises: the mean of unit vectors is the standard
/// set-to-one aggregation for re-id features.
pub fn aggregate(rows: ndarray::ArrayView2<f32>) -> Array1<f32> {
    let mut mean = rows.mean_axis(Axis(0)).unwrap_or_else(|| Array1::zeros(rows.ncols()));
    let norm = mean.dot(&mean).sqrt();
    if norm > 0.0 {
        mean.mapv_inplace(|v| v / norm);
    }
    mean
}

/// Runs until `input` is closed and drained; then returns. A failing batch is
/// logged and its tracks dropped with a count (the pipeline goes on).
/// `stats` are counted as it goes (the service reads them while it runs).
pub fn run_embed_worker(
    mut embedder: Box<dyn Embedder>,
    input: Receiver<FinishedTrack>,
    output: Sender<EmbeddedTrack>,
    max_batch: usize,
    max_wait: Duration,
    crops_per_track: usize,
    stats: &EmbedWorkerStats,
) {
    let add = |counter: &AtomicU64, n: usize| counter.fetch_add(n as u64, Ordering::Relaxed);
    let mut pending: Vec<FinishedTrack> = Vec::new();
    let mut pending_crops = 0usize;
    let mut deadline: Option<Instant> = None;
    let mut closed = false;
    loop {
        let timeout =
            deadline.map(|d| d.saturating_duration_since(Instant::now())).unwrap_or(Duration::from_millis(500));
        match input.recv_timeout(timeout) {
            Ok(track) => {
                let n = track.crops.len().min(crops_per_track);
                if n == 0 {
                    add(&stats.tracks_without_crops, 1);
                } else {
                    pending_crops += n;
                    pending.push(track);
                    deadline.get_or_insert_with(|| Instant::now() + max_wait);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => closed = true,
        }
        let due = deadline.is_some_and(|d| Instant::now() >= d);
        if !pending.is_empty() && (pending_crops >= max_batch || due || closed) {
            let tracks = std::mem::take(&mut pending);
            pending_crops = 0;
            deadline = None;
            let mut crops: Vec<Crop> = Vec::new();
            let mut spans = Vec::with_capacity(tracks.len());
            for t in &tracks {
                let start = crops.len();
                crops.extend(t.crops.iter().take(crops_per_track).map(|c| c.crop.clone()));
                spans.push(start..crops.len());
            }
            stats.batches.fetch_add(1, Ordering::Relaxed);
            let t0 = Instant::now();
            let embedded = embedder.embed(&crops);
            stats.latency.observe(t0.elapsed());
            match embedded {
                Ok(features) => {
                    add(&stats.crops, crops.len());
                    for (track, span) in tracks.into_iter().zip(spans) {
                        let feature = aggregate(features.slice(ndarray::s![span.clone(), ..]));
                        add(&stats.tracks, 1);
                        if output.send(EmbeddedTrack { track, feature, crops_used: span.len() }).is_err() {
                            return;
                        }
                    }
                }
                Err(e) => {
                    add(&stats.failed_tracks, tracks.len());
                    tracing::error!(
                        "embedding a batch of {} crops failed, {} tracks dropped: {e}",
                        crops.len(),
                        tracks.len()
                    );
                }
            }
        }
        if closed && pending.is_empty() {
            return;
        }
    }
}

/// The embed worker's counters, read while it runs.
#[derive(Debug, Default)]
pub struct EmbedWorkerStats {
    pub tracks: AtomicU64,
    pub crops: AtomicU64,
    pub batches: AtomicU64,
    pub failed_tracks: AtomicU64,
    pub tracks_without_crops: AtomicU64,
    /// Per batch run through the embedder.
    pub latency: LatencyHistogram,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Modality;
    use ndarray::Array2;
    use std::sync::Arc;

    /// Feature = mean pixel value per channel: enough to check routing and batching.
    struct MeanColour {
        batch_sizes: Arc<std::sync::Mutex<Vec<usize>>>,
    }
    impl Embedder for MeanColour {
        fn name(&self) -> String {
            "mean".into()
        }
        fn dim(&self) -> usize {
            3
        }
        fn embed(&mut self, crops: &[Crop]) -> crate::embed::EmbedResult<Array2<f32>> {
            self.batch_sizes.lock().unwrap().push(crops.len());
            let mut f = Array2::zeros((crops.len(), 3));
            for (i, c) in crops.iter().enumerate() {
                let p = c.image.get_pixel(0, 0);
                for ch in 0..3 {
                    f[[i, ch]] = p[ch] as f32 + 1.0;
                }
            }
            crate::embed::l2_normalize_rows(&mut f);
            Ok(f)
        }
    }

    fn track(id: u64, camera: &str, colour: [u8; 3], n: usize) -> FinishedTrack {
        FinishedTrack::for_test(id, camera, Modality::Rgb, colour, n)
    }

    #[test]
    fn batches_across_cameras_and_keeps_each_track_feature() {
        let sizes = Arc::new(std::sync::Mutex::new(vec![]));
        let (tx, rx) = crossbeam_channel::bounded(16);
        let (otx, orx) = crossbeam_channel::bounded(16);
        tx.send(track(1, "rgb", [255, 0, 0], 3)).unwrap();
        tx.send(track(2, "thermal", [0, 255, 0], 3)).unwrap();
        tx.send(track(3, "rgb", [0, 0, 255], 0)).unwrap();
        drop(tx);
        let stats = EmbedWorkerStats::default();
        run_embed_worker(
            Box::new(MeanColour { batch_sizes: sizes.clone() }),
            rx,
            otx,
            8,
            Duration::from_millis(200),
            2,
            &stats,
        );
        let out: Vec<EmbeddedTrack> = orx.iter().collect();
        assert_eq!(out.len(), 2);
        assert_eq!(*sizes.lock().unwrap(), vec![4], "both cameras' crops in one batch, 2 per track");
        assert_eq!(out[0].track.track_id, 1);
        assert!(out[0].feature[0] > 0.99 && out[1].feature[1] > 0.99);
        assert_eq!((stats.tracks.into_inner(), stats.tracks_without_crops.into_inner()), (2, 1));
        assert_eq!(stats.latency.snapshot().count, 1, "one batch");
    }
}
