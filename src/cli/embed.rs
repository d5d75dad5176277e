//! `vireid embed` (a folder of crops → `.npy`), `vireid bench embed`, and the
//! embedder arguments every command that embeds shares ([`EmbedderArgs`]).

use anyhow::{bail, Context, Result};
use std::path::PathBuf;
use std::time::Instant;

use crate::config::Config;
use crate::core::{list_images, Crop, Modality};
use crate::embed::{
    open_embedder, Baseline, EmbedConfig, Embedder, EmbedderSpec, ExecutionProviderKind, ProviderFailure,
};

/// Which embedder and runtime settings, shared by every command that embeds.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbedderArgs {
    /// ONNX model (default: [embed].model from --config, else engines/vireid_default.onnx in the working
    /// directory, the checkout around the executable, or /usr/share/vireid/engines/).
    #[arg(long, conflicts_with = "baseline")]
    pub model: Option<PathBuf>,
    /// A hand-crafted baseline instead of a model.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
    /// Config file whose [embed] (and [gallery]) sections apply.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Execution providers in order (overrides [embed].providers).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub providers: Vec<ExecutionProviderKind>,
    /// What to do when a provider fails to register (overrides [embed].on_provider_failure).
    #[arg(long, value_enum)]
    pub on_provider_failure: Option<ProviderFailure>,
}

impl EmbedderArgs {
    pub fn embed_config(&self, base: &EmbedConfig) -> EmbedConfig {
        let mut c = base.clone();
        if !self.providers.is_empty() {
            c.providers = self.providers.clone();
        }
        if let Some(p) = self.on_provider_failure {
            c.on_provider_failure = p;
        }
        c
    }

    pub fn spec(&self, config: &EmbedConfig) -> EmbedderSpec {
        match (self.baseline, &self.model) {
            (Some(b), _) => EmbedderSpec::Baseline(b),
            (None, Some(m)) => EmbedderSpec::Model(m.clone()),
            (None, None) => EmbedderSpec::Model(config.model_path()),
        }
    }

    /// The feature space of the embedder these arguments name (`gallery::harvest`).
    pub fn space(&self, config: &Config, embedder: &dyn Embedder) -> crate::gallery::harvest::FeatureSpace {
        crate::gallery::harvest::FeatureSpace::of_spec(&self.spec(&config.embed), &embedder.name())
    }

    /// Opens the embedder these arguments name.
    pub fn open(&self) -> Result<(Box<dyn Embedder>, Config)> {
        self.open_with(|_| {})
    }

    /// Same, with a last adjustment of the `[embed]` settings.
    pub fn open_with(&self, adjust: impl FnOnce(&mut EmbedConfig)) -> Result<(Box<dyn Embedder>, Config)> {
        let mut config = Config::load_sections(self.config.as_deref())?;
        config.embed = self.embed_config(&config.embed);
        adjust(&mut config.embed);
        let e = open_embedder(&self.spec(&config.embed), &config.embed)?;
        Ok((e, config))
    }
}

#[derive(Debug, clap::Args)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    /// Folder of person crops (JPEG/PNG).
    #[arg(long)]
    pub images: PathBuf,
    /// Modality of the crops.
    #[arg(long, default_value = "rgb")]
    pub modality: Modality,
    /// Output `.npy` (float32 `[N, D]`, L2-normalised rows); the image file names go beside it with
    /// `.txt` for `.npy` (F.npy → F.txt).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run_embed(args: &EmbedArgs) -> Result<()> {
    let files = list_images(&args.images)?;
    if files.is_empty() {
        bail!("no .jpg/.png images in {}", args.images.display());
    }
    let (mut embedder, config) = args.embedder.open()?;
    let mut feats = ndarray::Array2::<f32>::zeros((files.len(), embedder.dim()));
    let started = Instant::now();
    let chunk = config.embed.max_batch.max(1);
    for (i, group) in files.chunks(chunk).enumerate() {
        let crops = group.iter().map(|p| Crop::load(p, args.modality)).collect::<Result<Vec<_>, _>>()?;
        let f = embedder.embed(&crops)?;
        feats.slice_mut(ndarray::s![i * chunk..i * chunk + group.len(), ..]).assign(&f);
    }
    ndarray_npy::write_npy(&args.out, &feats).with_context(|| format!("cannot write {}", args.out.display()))?;
    let names: String =
        files.iter().map(|p| format!("{}\n", p.file_name().unwrap_or_default().to_string_lossy())).collect();
    let list = args.out.with_extension("txt");
    std::fs::write(&list, names).with_context(|| format!("cannot write {}", list.display()))?;
    println!(
        "embedded {} crops with {} in {:.2} s → {} ({}×{}), names in {}",
        files.len(),
        embedder.name(),
        started.elapsed().as_secs_f64(),
        args.out.display(),
        feats.nrows(),
        feats.ncols(),
        list.display()
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct BenchEmbedArgs {
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    /// Crops per run.
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Timed runs (after 2 warm-up runs).
    #[arg(long, default_value_t = 10)]
    pub runs: usize,
    /// Crop size fed in (the embedder resizes to its input size; that is part of the cost).
    #[arg(long, default_value = "128x256")]
    pub crop: String,
}

/// Measures end-to-end crops/s (preprocessing + inference + normalisation).
pub fn run_bench_embed(args: &BenchEmbedArgs) -> Result<()> {
    let (w, h) = args
        .crop
        .split_once('x')
        .and_then(|(w, h)| Some((w.parse::<u32>().ok()?, h.parse::<u32>().ok()?)))
        .with_context(|| format!("--crop '{}' must be WIDTHxHEIGHT, e.g. 128x256", args.crop))?;
    if args.batch == 0 || args.runs == 0 {
        bail!("--batch and --runs must be at least 1");
    }
    let (mut embedder, _) = args.embedder.open_with(|c| c.max_batch = args.batch)?;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let crops: Vec<Crop> = (0..args.batch)
        .map(|i| {
            let img = image::RgbImage::from_fn(w, h, |_, _| image::Rgb([rng.random(), rng.random(), rng.random()]));
            Crop::new(img, if i % 2 == 0 { Modality::Rgb } else { Modality::Thermal })
        })
        .collect();
    for _ in 0..2 {
        embedder.embed(&crops)?;
    }
    let mut times = vec![];
    for _ in 0..args.runs {
        let t = Instant::now();
        embedder.embed(&crops)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let total: f64 = times.iter().sum();
    let report = serde_json::json!({
        "embedder": embedder.name(),
        "batch": args.batch,
        "runs": args.runs,
        "median_batch_ms": median * 1e3,
        "crops_per_s": (args.batch * args.runs) as f64 / total,
        "crops_per_s_median": args.batch as f64 / median,
    });
    println!("{report}");
    Ok(())
}
