//! `vireid run`: the cameras of a config through the whole pipeline —
//! ingest → detect → track → pair → embed → gallery → events (and the API
//! with `[api] enabled`) — until SIGTERM/SIGINT, `--duration`, or the end of
//! every file source (`pipeline::service`).

use anyhow::{Context, Result};
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::embed::{Baseline, EmbedderSpec};
use crate::pipeline::{Plan, Service, Until};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The TOML config file.
    #[arg(long)]
    pub config: PathBuf,
    /// Where finished tracks go, one JSON line each (`-` for stdout).
    #[arg(long, default_value = "-")]
    pub tracks: PathBuf,
    /// Stop after this many seconds (default: until every source ends, or SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write run statistics (per camera: frames, drops, reconnects, per-stage times) as JSON here on exit.
    #[arg(long)]
    pub stats: Option<PathBuf>,
    /// Log camera counters every this many seconds.
    #[arg(long, default_value_t = 10.0)]
    pub stats_interval: f64,
    /// Embed finished tracks, assign them in the gallery and write sighting events here
    /// as JSON lines (`-` for stdout); overrides [events].jsonl. Without either, no gallery.
    #[arg(long)]
    pub sightings: Option<PathBuf>,
    /// Embedding model (overrides [embed].model).
    #[arg(long, conflicts_with = "baseline")]
    pub model: Option<PathBuf>,
    /// A hand-crafted baseline embedder instead of a model.
    #[arg(long, value_enum)]
    pub baseline: Option<Baseline>,
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut config = Config::load(&args.config)?;
    if let Some(s) = &args.sightings {
        config.events.jsonl = Some(s.display().to_string());
    }
    let embedder = match (&args.model, args.baseline) {
        (Some(m), _) => EmbedderSpec::Model(m.clone()),
        (None, Some(b)) => EmbedderSpec::Baseline(b),
        (None, None) => EmbedderSpec::Model(config.embed.model_path()),
    };
    let tracks: Box<dyn Write + Send> = if args.tracks.as_os_str() == "-" {
        Box::new(std::io::stdout())
    } else {
        let f = std::fs::File::create(&args.tracks)
            .with_context(|| format!("cannot create --tracks {}", args.tracks.display()))?;
        Box::new(std::io::BufWriter::new(f))
    };
    // Back half, API and MQTT start before the cameras, so a bad model or database fails fast.
    let mut service = Service::start(&config, Plan { embedder, gallery: false, cameras: Some(tracks) })?;
    let until = Until {
        duration: args.duration.map(Duration::from_secs_f64),
        log_every: Some(Duration::from_secs_f64(args.stats_interval.max(0.1))),
    };
    service.run_until_stop(until);
    let (report, result) = service.shutdown();
    if let Some(s) = &report.gallery {
        eprintln!(
            "gallery: {} sightings ({} new identities, {} day/night links), {} crops embedded in {} batches, {} failed",
            s.sightings,
            s.new_identities,
            s.day_night_links,
            s.crops_embedded,
            s.embed_batches,
            s.sightings_failed + s.tracks_failed_embedding
        );
    }
    if let Some(p) = &args.stats {
        std::fs::write(p, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write --stats {}", p.display()))?;
    }
    for r in &report.cameras {
        eprintln!(
            "camera {}: {} frames in, {} processed, {} dropped, {} reconnects, detect {:.1} ms/frame, track {:.2} ms/frame",
            r.ingest.camera,
            r.ingest.frames,
            r.processed_frames,
            r.ingest.dropped,
            r.ingest.reconnects,
            r.detect_ms_per_frame,
            r.track_ms_per_frame
        );
    }
    Ok(result?)
}
