//! VI-ReID evaluation protocols: SYSU-MM01, RegDB, LLCM (CMC, mAP, mINP).
//!
//! - [`metrics`]: one trial's CMC / mAP / mINP under each benchmark's rules.
//! - [`datasets`]: the real test-set layouts and their trials (seeded gallery
//!   sampling, RegDB splits).
//! - [`features`]: embedding through the project's [`crate::embed::Embedder`],
//!   flip TTA, on-disk feature cache.
//! - [`distance`]: cosine / Euclidean distances, optional k-reciprocal re-ranking.
//! - [`report`]: tables, `report.json`, `report.md`, `cmc.png`.
//! - `vireid eval distmat` ([`distmat`]) and the protocol run behind
//!   `vireid eval dataset` ([`run_dataset`]; its command line is in `cli::eval`).

pub mod datasets;
pub mod distance;
pub mod distmat;
pub mod features;
pub mod metrics;
pub mod report;

use std::path::PathBuf;

use crate::embed::{Embedder, EmbedderSpec};
use datasets::{Direction, SysuMode, TestSet, STANDARD_TRIALS};
use distance::{DistanceKind, RerankParams};
use metrics::{evaluate, Labels, Metrics, Protocol};
use report::{Report, TrialReport};

/// What can go wrong evaluating, by what the user can do.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An option, a dataset layout or a matrix that cannot be evaluated; the message says why and what to give.
    #[error("{0}")]
    Invalid(String),
    /// A file or folder that cannot be read or written (the message names it).
    #[error("{what}: {source}")]
    File { what: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error(transparent)]
    Embed(#[from] crate::embed::EmbedError),
    #[error(transparent)]
    Image(#[from] crate::core::ImageFileError),
    /// An error with where it happened (a trial, an embedder, a file).
    #[error("{what}: {source}")]
    In { what: String, source: Box<EvalError> },
}

pub type Result<T> = std::result::Result<T, EvalError>;

/// Error context for `eval`: `file` for I/O and encoding (the message names
/// the file), `invalid` for content that cannot be parsed.
pub(crate) trait ResultExt<T> {
    fn file(self, what: impl FnOnce() -> String) -> Result<T>;
    fn invalid(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> ResultExt<T> for std::result::Result<T, E> {
    fn file(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| EvalError::File { what: what(), source: Box::new(e) })
    }

    fn invalid(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| EvalError::Invalid(format!("{}: {e}", what())))
    }
}

/// Says where an eval error happened.
pub(crate) trait Within<T> {
    fn within(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: Into<EvalError>> Within<T> for std::result::Result<T, E> {
    fn within(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| EvalError::In { what: what(), source: Box::new(e.into()) })
    }
}

/// `return Err(EvalError::Invalid(format!(…)))`.
macro_rules! invalid {
    ($($msg:tt)+) => { return Err($crate::eval::EvalError::Invalid(format!($($msg)+))) };
}
pub(crate) use invalid;

/// What `vireid eval dataset` runs, besides the embedder.
#[derive(Debug, Clone, clap::Args)]
pub struct DatasetOptions {
    /// Which benchmark: its layout under --root and its rules.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// The dataset folder (SYSU-MM01: cam1..cam6 + exp/; RegDB / LLCM: idx/ + images).
    #[arg(long)]
    pub root: PathBuf,
    /// SYSU-MM01 search mode.
    #[arg(long, value_enum, default_value = "all")]
    pub mode: SysuMode,
    /// Gallery images per identity per camera (SYSU: 1 single-shot, 10 multi-shot; LLCM: 1).
    #[arg(long, default_value_t = 1)]
    pub shots: usize,
    /// RegDB / LLCM query → gallery modality [default: v2t for RegDB, t2v for LLCM].
    #[arg(long, value_enum)]
    pub direction: Option<Direction>,
    /// Trials: seeded gallery samplings (SYSU, LLCM) or splits 1..=N (RegDB).
    #[arg(long, default_value_t = STANDARD_TRIALS)]
    pub trials: usize,
    /// Seed of the first trial; trial t uses seed + t.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder for report.json, report.md and cmc.png.
    #[arg(long, default_value = "eval-report")]
    pub out: PathBuf,
    /// Flip test-time augmentation: average each crop's features with its mirror image's.
    #[arg(long)]
    pub flip: bool,
    /// Distance between features.
    #[arg(long, value_enum, default_value = "cosine")]
    pub distance: DistanceKind,
    /// k-reciprocal re-ranking (k1=20, k2=6, λ=0.3). Labelled in every report: it inflates numbers.
    #[arg(long)]
    pub rerank: bool,
    /// Feature cache folder [default: OUT/cache].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Always embed afresh; read and write no cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// Identifies what produced features, for the cache: the baseline's name, or
/// the model file's size and modification time.
pub fn fingerprint(spec: &EmbedderSpec) -> String {
    match spec {
        EmbedderSpec::Baseline(b) => format!("{b:?}"),
        EmbedderSpec::Model(path) => {
            let meta = std::fs::metadata(path).ok();
            let mtime = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
            format!("{}:{}:{:?}", path.display(), meta.map(|m| m.len()).unwrap_or(0), mtime)
        }
    }
}

fn direction(args: &DatasetOptions) -> Direction {
    args.direction.unwrap_or(match args.protocol {
        Protocol::Llcm => Direction::T2v,
        _ => Direction::V2t,
    })
}

/// Loads the protocol's test set from `--root` and checks every image exists.
pub fn load_test_set(args: &DatasetOptions) -> Result<TestSet> {
    if args.trials == 0 {
        invalid!("--trials must be at least 1");
    }
    if args.shots == 0 {
        invalid!("--shots must be at least 1 (1 single-shot, 10 multi-shot)");
    }
    if args.protocol == Protocol::Sysu && args.direction.is_some() {
        invalid!(
            "--direction applies to regdb and llcm; SYSU-MM01 queries are always infrared (use --mode all|indoor)"
        );
    }
    if args.protocol == Protocol::Regdb && args.shots != 1 {
        invalid!("--shots applies to sysu and llcm; RegDB's galleries are its fixed splits (drop --shots)");
    }
    let set = match args.protocol {
        Protocol::Sysu => datasets::load_sysu(&args.root, args.mode, args.shots, args.trials, args.seed)?,
        Protocol::Regdb => datasets::load_regdb(&args.root, direction(args), args.trials)?,
        Protocol::Llcm => datasets::load_llcm(&args.root, direction(args), args.shots, args.trials, args.seed)?,
    };
    set.check_files_exist()?;
    Ok(set)
}

fn setting(args: &DatasetOptions) -> String {
    let shots = if args.shots == 1 { "single-shot".to_string() } else { format!("multi-shot ({})", args.shots) };
    match args.protocol {
        Protocol::Sysu => format!(
            "{}-search, {shots}",
            match args.mode {
                SysuMode::All => "all",
                SysuMode::Indoor => "indoor",
            }
        ),
        Protocol::Regdb => direction(args).as_str().to_string(),
        Protocol::Llcm => format!("{}, {shots}", direction(args).as_str()),
    }
}

/// Embeds the test set with `embedder`, runs every trial and writes the report.
pub fn run_dataset(
    args: &DatasetOptions,
    set: &TestSet,
    embedder: &mut dyn Embedder,
    fingerprint: &str,
) -> Result<Report> {
    let cache_dir = (!args.no_cache).then(|| args.cache_dir.clone().unwrap_or_else(|| args.out.join("cache")));
    let options = features::FeatureOptions {
        flip: args.flip,
        cache_dir: cache_dir.as_deref(),
        embedder_fingerprint: fingerprint.to_string(),
        progress: !args.quiet,
    };
    let feats = features::test_set_features(embedder, set, &options)?;
    let labels = Labels::new(set.images.iter().map(|i| i.id).collect(), set.images.iter().map(|i| i.cam).collect());
    let rerank = args.rerank.then(RerankParams::default);
    let mut trials = Vec::new();
    // Re-ranking's query × query block, kept while consecutive trials share queries.
    let mut query_block: Option<(&[usize], ndarray::Array2<f32>)> = None;
    for trial in &set.trials {
        let q = feats.select(ndarray::Axis(0), &trial.query);
        let g = feats.select(ndarray::Axis(0), &trial.gallery);
        let dist = match rerank {
            Some(params) => {
                if query_block.as_ref().is_none_or(|(queries, _)| *queries != trial.query.as_slice()) {
                    query_block = Some((&trial.query, distance::pairwise(q.view(), q.view(), args.distance)));
                }
                let (_, qq) = query_block.as_ref().expect("just set");
                distance::rerank_with_query_block(qq.view(), q.view(), g.view(), args.distance, params)
            }
            None => distance::pairwise(q.view(), g.view(), args.distance),
        };
        let metrics =
            evaluate(dist.view(), &labels.select(&trial.query), &labels.select(&trial.gallery), args.protocol)
                .within(|| format!("trial {}", trial.name))?;
        tracing::debug!("{}: R1 {:.2}% mAP {:.2}%", trial.name, 100.0 * metrics.rank(1), 100.0 * metrics.map);
        trials.push(TrialReport {
            name: trial.name.clone(),
            seed: trial.seed,
            num_queries: trial.query.len(),
            num_gallery: trial.gallery.len(),
            metrics,
        });
    }
    let mean = Metrics::mean(&trials.iter().map(|t| t.metrics.clone()).collect::<Vec<_>>())?;
    let report = Report {
        protocol: args.protocol.as_str().to_string(),
        setting: setting(args),
        embedder: embedder.name(),
        flip_tta: args.flip,
        distance: format!("{:?}", args.distance).to_lowercase(),
        reranking: rerank,
        num_images: set.images.len(),
        trials,
        mean,
    };
    report.write(&args.out)?;
    Ok(report)
}
