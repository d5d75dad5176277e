//! `vireid gallery list|show|forget`, `vireid enrol`, `vireid query`.

use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::embed::EmbedderArgs;
use crate::api::{IdentityBody, QueryMatch};
use crate::config::Config;
use crate::core::{Crop, Modality};
use crate::gallery::store::GalleryStore;
use crate::gallery::{forget_identity, Gallery};

/// Where the gallery is: a config file's `state_dir`/`[gallery].db`, or `--state-dir`.
#[derive(Debug, Clone, clap::Args)]
pub struct GalleryLocation {
    /// State directory holding gallery.db and crops/ (overrides the config's state_dir).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

fn resolve(loc: &GalleryLocation, config_path: Option<&Path>) -> Result<Config> {
    let mut config = Config::load_sections(config_path)?;
    if let Some(d) = &loc.state_dir {
        config.state_dir = d.clone();
    } else if config_path.is_none() {
        bail!("say where the gallery is: --state-dir DIR or --config FILE");
    }
    Ok(config)
}

fn open_store(config: &Config) -> Result<GalleryStore> {
    let path = config.gallery.db_path(&config.state_dir);
    if !path.exists() {
        bail!("no gallery at {}: check --state-dir / [gallery].db (a gallery is created by `vireid run` or `vireid enrol`)", path.display());
    }
    Ok(GalleryStore::open(&path, Duration::from_millis(config.gallery.busy_timeout_ms))?)
}

#[derive(Debug, clap::Subcommand)]
pub enum GalleryCommand {
    /// Identities with their sighting counts per modality and day/night links.
    List {
        #[command(flatten)]
        loc: GalleryLocation,
        /// Config file whose state_dir and [gallery] section locate the gallery.
        #[arg(long)]
        config: Option<PathBuf>,
        /// JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// One identity's sightings.
    Show {
        /// The identity's id (`vireid gallery list`).
        id: i64,
        #[command(flatten)]
        loc: GalleryLocation,
        /// Config file whose state_dir and [gallery] section locate the gallery.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Delete every trace of an identity: features, sightings, links, crop files.
    Forget {
        /// The identity's id (`vireid gallery list`).
        id: i64,
        #[command(flatten)]
        loc: GalleryLocation,
        /// Config file whose state_dir and [gallery] section locate the gallery.
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

/// A stored time as people read it (it was raw Unix seconds).
fn ts(ns: i64) -> String {
    crate::core::time::utc_string(crate::core::time::from_unix_ns(ns))
}

pub fn run_gallery(cmd: &GalleryCommand) -> Result<()> {
    match cmd {
        GalleryCommand::List { loc, config, json } => {
            let cfg = resolve(loc, config.as_deref())?;
            let store = open_store(&cfg)?;
            let ids = store.list_identities()?;
            if *json {
                // The API's wire form (`GET /api/v1/identities`): one naming everywhere.
                let bodies: Vec<IdentityBody> = ids.iter().map(IdentityBody::from).collect();
                println!("{}", serde_json::to_string_pretty(&bodies)?);
                return Ok(());
            }
            println!(
                "{:>6}  {:<16} {:>8} {:>8} {:>9} {:>6}  first",
                "id", "label", "rgb", "thermal", "exemplars", "links"
            );
            for i in &ids {
                println!(
                    "{:>6}  {:<16} {:>8} {:>8} {:>9} {:>6}  {}",
                    i.id,
                    i.label.as_deref().unwrap_or(if i.enrolled { "(enrolled)" } else { "-" }),
                    i.rgb_sightings,
                    i.thermal_sightings,
                    i.features,
                    i.links,
                    i.first_modality
                );
            }
            let (n, s, l) = store.counts()?;
            println!("{n} identities, {s} sightings, {l} day/night links");
            Ok(())
        }
        GalleryCommand::Show { id, loc, config } => {
            let cfg = resolve(loc, config.as_deref())?;
            let store = open_store(&cfg)?;
            if !store.identity_exists(*id)? {
                bail!("identity {id} is not in the gallery {}: see `vireid gallery list`", store.path().display());
            }
            println!("identity {id}{}", store.label_of(*id)?.map(|l| format!(" ({l})")).unwrap_or_default());
            for s in store.sightings_of(Some(*id))? {
                println!(
                    "  sighting {:>6}  {:<8} {:<10} track {:>5}  {}–{}  {}  {}{}",
                    s.id,
                    s.modality,
                    s.camera,
                    s.track_id,
                    ts(s.start_ns),
                    ts(s.end_ns),
                    s.how_assigned(),
                    if s.day_night_link { "DAY/NIGHT LINK " } else { "" },
                    s.crop_path.as_deref().unwrap_or("")
                );
            }
            Ok(())
        }
        GalleryCommand::Forget { id, loc, config } => {
            let cfg = resolve(loc, config.as_deref())?;
            let mut store = open_store(&cfg)?;
            let crops = forget_identity(&mut store, *id)?;
            println!("identity {id} forgotten: database rows and {} crop file(s) deleted", crops.len());
            Ok(())
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct EnrolArgs {
    /// Watch-list label, e.g. a name or badge number.
    #[arg(long)]
    pub label: String,
    /// Enrolment images (person crops); repeat or give several.
    #[arg(long = "image", required = true, num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Modality of the images: rgb or thermal.
    #[arg(long, default_value = "rgb")]
    pub modality: Modality,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    #[command(flatten)]
    pub loc: GalleryLocation,
}

pub fn run_enrol(args: &EnrolArgs) -> Result<()> {
    // Read every image before touching the gallery: a bad file changes nothing.
    let crops = args.images.iter().map(|p| Crop::load(p, args.modality)).collect::<Result<Vec<_>, _>>()?;
    let (mut embedder, embed_cfg) = args.embedder.open()?;
    let cfg = resolve(&args.loc, args.embedder.config.as_deref())?;
    let feats = embedder.embed(&crops)?;
    let mut gallery = Gallery::open(&cfg.gallery, &cfg.state_dir, embedder.dim())?;
    gallery.use_model(args.embedder.space(&embed_cfg, &*embedder), false)?;
    let rows: Vec<(Modality, Vec<f32>)> =
        feats.rows().into_iter().map(|r| (args.modality, gallery.from_model(&r.to_vec(), args.modality))).collect();
    let id = gallery.enrol(&args.label, &rows)?;
    println!("enrolled '{}' as identity {id} from {} image(s)", args.label, rows.len());
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// A person crop to look up.
    #[arg(long)]
    pub image: PathBuf,
    /// Modality of the crop: rgb or thermal.
    #[arg(long, default_value = "rgb")]
    pub modality: Modality,
    /// How many identities to list, best first.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub embedder: EmbedderArgs,
    #[command(flatten)]
    pub loc: GalleryLocation,
}

pub fn run_query(args: &QueryArgs) -> Result<()> {
    let crop = Crop::load(&args.image, args.modality)?;
    let cfg = resolve(&args.loc, args.embedder.config.as_deref())?;
    // Query must not create a gallery: a typo in --state-dir is an error.
    drop(open_store(&cfg)?);
    let (mut embedder, embed_cfg) = args.embedder.open()?;
    let f = embedder.embed(std::slice::from_ref(&crop))?;
    let mut gallery = Gallery::open(&cfg.gallery, &cfg.state_dir, embedder.dim())?;
    gallery.use_model(args.embedder.space(&embed_cfg, &*embedder), false)?;
    let results = gallery.query(&gallery.from_model(&f.row(0).to_vec(), args.modality), args.top)?;
    if args.json {
        // The API's wire form (`POST /api/v1/query`).
        let matches: Vec<QueryMatch> = results.iter().map(|r| QueryMatch::of(r, args.modality)).collect();
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "matches": matches }))?);
        return Ok(());
    }
    let t = cfg.gallery.thresholds();
    for r in &results {
        let thr = if r.matched_modality == args.modality { t.same(args.modality) } else { t.cross_modality };
        let rgb = r.sightings.iter().filter(|s| s.modality == Modality::Rgb).count();
        let th = r.sightings.len() - rgb;
        println!(
            "identity {:>5}{}  score {:.3} via {} exemplar{}  sightings: {rgb} rgb, {th} thermal",
            r.identity_id,
            r.label.as_ref().map(|l| format!(" ({l})")).unwrap_or_default(),
            r.similarity,
            r.matched_modality,
            if r.similarity >= thr { " (above threshold)" } else { "" },
        );
        for s in r.sightings.iter().take(10) {
            println!("    {} on {} track {} at {}", s.modality, s.camera, s.track_id, ts(s.start_ns));
        }
    }
    if results.is_empty() {
        println!("the gallery is empty");
    }
    Ok(())
}
