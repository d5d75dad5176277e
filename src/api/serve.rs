//! `vireid serve`: the HTTP API and dashboard over a box's gallery, on its own
//! (e.g. next to a running pipeline, or to browse and curate a gallery).

use anyhow::{bail, Result};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::{bind, serve_listener, ApiState, PipelineMetrics};
use crate::config::Config;
use crate::embed::{open_embedder, Baseline, EmbedderSpec};
use crate::gallery::api::GalleryApiHandle;
use crate::gallery::runner::BackHalf;
use crate::service::{ServiceNotifier, Shutdown};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file ([api] must be enabled, with a token).
    #[arg(long)]
    pub config: PathBuf,
    /// Embed enrol/query images with a hand-crafted baseline instead of [embed].model.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
}

pub fn run_serve(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    if !config.api.enabled {
        bail!("[api] enabled = false in {}: set enabled = true and api.token_file to serve the API", args.config.display());
    }
    let token = config.api.resolve_token()?;
    let spec = match args.baseline {
        Some(b) => EmbedderSpec::Baseline(b),
        None => EmbedderSpec::Model(config.embed.model_path()),
    };
    // The same gallery actor `vireid run` uses owns every write; the API reads
    // beside it on its own WAL connection and embeds uploads with its own embedder.
    let back = BackHalf::start(&config, Some(spec.clone()), Vec::new())?;
    let embedder = open_embedder(&spec, &config.embed)?;
    let gallery = GalleryApiHandle::new(back.requests(), &config.gallery.db_path(&config.state_dir), embedder)?;
    let metrics = Arc::new(PipelineMetrics::new());
    for cam in &config.cameras {
        metrics.register_camera(&cam.name, cam.modality);
    }
    let state = ApiState::new(Arc::new(gallery), metrics, token, config.api.max_image_side);
    let shutdown = Shutdown::new();
    shutdown.install_signal_handlers()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(async {
        let listener = bind(&config.api).await?;
        if let Err(e) = ServiceNotifier.ready(&format!("API on {}", listener.local_addr()?)) {
            tracing::warn!("{e:#}");
        }
        let stop = shutdown.clone();
        let signalled = async move {
            let _ = tokio::task::spawn_blocking(move || while !stop.wait_timeout(Duration::from_secs(3600)) {}).await;
        };
        serve_listener(listener, config.api.max_upload_bytes, state, signalled).await
    })?;
    back.finish()?;
    Ok(())
}
