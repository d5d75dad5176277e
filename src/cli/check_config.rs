//! `vireid check-config`: the checks `vireid run --config` makes at start-up
//! (`pipeline::Service::check`), without starting anything. The systemd unit
//! runs it as `ExecStartPre`, so a config it passes also starts.

use anyhow::{Context, Result};
use std::path::PathBuf;

use crate::config::Config;
use crate::embed::EmbedderSpec;
use crate::pipeline::Service;

#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
}

pub fn run(args: &CheckConfigArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    let spec = EmbedderSpec::Model(config.embed.model_path());
    let lines = Service::check(&config, &spec, false, true)
        .with_context(|| format!("{} would not start", args.config.display()))?;
    println!("config OK: {} camera(s)", config.cameras.len());
    for line in lines {
        println!("  {line}");
    }
    Ok(())
}
