//! `vireid serve`: the HTTP API and dashboard over a box's gallery, on its own
//! (e.g. to browse and curate a gallery). The same lifecycle as `vireid run`
//! (`pipeline::service`), without cameras.

use anyhow::{bail, Result};
use std::path::PathBuf;

use crate::config::Config;
use crate::embed::{Baseline, EmbedderSpec};
use crate::pipeline::{Plan, Service, Until};

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// The TOML config file ([api] must be enabled, with a token).
    #[arg(long)]
    pub config: PathBuf,
    /// Embed enrol/query images with a hand-crafted baseline instead of [embed].model.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    if !config.api.enabled {
        bail!(
            "[api] enabled = false in {}: set enabled = true and api.token_file to serve the API",
            args.config.display()
        );
    }
    let embedder = match args.baseline {
        Some(b) => EmbedderSpec::Baseline(b),
        None => EmbedderSpec::Model(config.embed.model_path()),
    };
    let mut service = Service::start(&config, Plan { embedder, gallery: true, cameras: None })?;
    service.run_until_stop(Until::default());
    Ok(service.shutdown().1?)
}
