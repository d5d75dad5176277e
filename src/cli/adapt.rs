//! `vireid adapt`: fit the cross-modal adapter on a box's own harvest and
//! write a self-describing adapted model (`embed::adapter`, `gallery::harvest`).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::gallery::harvest::{adaptable, adapted_model, fingerprint, fit_from_harvest, write_atomically};
use crate::gallery::store::GalleryStore;

#[derive(Debug, clap::Args)]
pub struct AdaptArgs {
    /// The box's config: where its gallery (and harvest) is.
    #[arg(long)]
    pub config: PathBuf,
    /// The base model the box ran (default: the config's [embed] model).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Where to write the adapted model.
    #[arg(long)]
    pub out: PathBuf,
    /// Fewest co-observed pairs (and impostor pairs) to fit on (default: [adapt] min_pairs).
    #[arg(long)]
    pub min_pairs: Option<usize>,
}

pub fn run_adapt(args: &AdaptArgs) -> Result<()> {
    let t0 = Instant::now();
    let config = Config::load_sections(Some(&args.config))?;
    let model_path = match (&args.model, &config.embed.model) {
        (Some(m), _) | (None, Some(m)) => m.clone(),
        (None, None) => bail!("which model? give --model M.onnx or set [embed] model in {}", args.config.display()),
    };
    let bytes = std::fs::read(&model_path)
        .with_context(|| format!("cannot read model {}: check --model / [embed] model", model_path.display()))?;
    adaptable(&model_path, &bytes)?;
    let db = config.gallery.db_path(&config.state_dir);
    if !db.exists() {
        bail!("no gallery at {}: run the box (`vireid run --config {}`) first", db.display(), args.config.display());
    }
    let store = GalleryStore::open(&db, Duration::from_millis(config.gallery.busy_timeout_ms))?;
    let space = fingerprint(&bytes);
    let min_pairs = args.min_pairs.unwrap_or(config.adapt.min_pairs);
    let fitted =
        fit_from_harvest(&store, &space, None, min_pairs).with_context(|| format!("harvest in {}", db.display()))?;
    let model = adapted_model(&model_path, &bytes, &fitted)?;
    write_atomically(&args.out, &model.to_bytes()).with_context(|| {
        format!("cannot write --out {}: check the folder exists and is writable", args.out.display())
    })?;
    println!(
        "adapted {} on {} co-observed and {} impostor pairs in {:.2} s: {}",
        model_path.display(),
        fitted.pairs,
        fitted.impostors,
        t0.elapsed().as_secs_f64(),
        args.out.display()
    );
    match fitted.validation {
        Some(v) => println!(
            "held-out check ({} newest pairs, fitted without them): thermal→RGB R1 {:.1} % base, {:.1} % adapted{}",
            v.held_out_pairs,
            100.0 * v.r1_base,
            100.0 * v.r1_adapted,
            if v.r1_adapted + 1e-9 < v.r1_base { " — WORSE: keep the base model" } else { "" }
        ),
        None => println!("held-out check skipped: fewer than 50 pairs"),
    }
    Ok(())
}
