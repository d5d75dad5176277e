//! `vireid eval distmat|dataset`: the benchmark protocols of [`crate::eval`].

use anyhow::{Context, Result};

use super::embed::EmbedderArgs;
use crate::eval::{distmat, fingerprint, load_test_set, report, run_dataset, DatasetOptions};

/// `vireid eval …`
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    pub command: EvalCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum EvalCommand {
    /// One trial on a given distance matrix (.npy) with id/cam label CSVs.
    Distmat(distmat::DistmatArgs),
    /// Embed a dataset's test set and run its protocol's trials.
    Dataset(DatasetArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct DatasetArgs {
    #[command(flatten)]
    pub options: DatasetOptions,
    /// The embedder: --model FILE.onnx or --baseline colorhist (plus runtime settings).
    #[command(flatten)]
    pub embedder: EmbedderArgs,
}

pub fn run(args: EvalArgs) -> Result<()> {
    match args.command {
        EvalCommand::Distmat(a) => Ok(distmat::run(&a)?),
        EvalCommand::Dataset(a) => {
            // Validate the dataset before opening a (possibly slow) model.
            let set = load_test_set(&a.options)?;
            let (mut embedder, config) = a.embedder.open().context("opening the embedder")?;
            let spec = a.embedder.spec(&config.embed);
            let report = run_dataset(&a.options, &set, embedder.as_mut(), &fingerprint(&spec))?;
            println!("{}", report::metrics_table(&[(&report.method_label(), &report.mean)]));
            println!("report written to {}", a.options.out.display());
            Ok(())
        }
    }
}
