//! The API and dashboard inside `vireid run` (when `[api] enabled = true`):
//! served beside the pipeline over the same gallery actor, so queries see
//! sightings as they are stored, with camera metrics fed from the pipeline.

use anyhow::{anyhow, Context, Result};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{bind, serve_listener, ApiState, PipelineMetrics};
use crate::config::Config;
use crate::embed::{open_embedder, EmbedderSpec};
use crate::gallery::api::GalleryApiHandle;
use crate::gallery::runner::BackHalf;
use crate::ingest::StatsSnapshot;

pub struct LiveApi {
    metrics: Arc<PipelineMetrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl LiveApi {
    /// Binds `api.bind` now (a port in use fails the start, naming it) and
    /// serves on a thread of its own with a small tokio runtime.
    pub fn start(config: &Config, back: &BackHalf, spec: &EmbedderSpec) -> Result<LiveApi> {
        let token = config.api.resolve_token()?;
        let embedder = open_embedder(spec, &config.embed).context("cannot open the API's embedder")?;
        let gallery = GalleryApiHandle::new(back.requests(), &config.gallery.db_path(&config.state_dir), embedder)?;
        let metrics = Arc::new(PipelineMetrics::new());
        for cam in &config.cameras {
            metrics.register_camera(&cam.name, cam.modality);
        }
        let state = ApiState::new(Arc::new(gallery), metrics.clone(), token, config.api.max_image_side);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("api")
            .enable_all()
            .build()
            .context("cannot start the API runtime")?;
        let listener = runtime.block_on(bind(&config.api))?;
        let max_upload = config.api.max_upload_bytes;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("api".into())
            .spawn(move || {
                runtime.block_on(serve_listener(listener, max_upload, state, async move {
                    let _ = stop_rx.await;
                }))
            })
            .context("cannot spawn the API thread")?;
        Ok(LiveApi { metrics, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// Copies the cameras' counters into `/metrics` and the dashboard.
    pub fn update_cameras(&self, cameras: &[StatsSnapshot]) {
        for c in cameras {
            self.metrics.camera_totals(&c.camera, c.state, c.frames, c.dropped);
        }
    }

    /// Finishes in-flight requests and stops serving.
    pub fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| anyhow!("the API thread panicked"))?,
            None => Ok(()),
        }
    }
}
