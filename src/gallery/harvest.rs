//! The box's own training signal: pairs of track features it knows the truth
//! about from geometry and time alone, kept for `vireid adapt` and for
//! `vireid thresholds --from-gallery`.
//!
//! - **pair** (genuine, RGB × thermal): a co-observed RGB track and thermal
//!   track (`crate::pair` saw one person in both cameras at one place and time).
//! - **impostor_same** (one camera): two tracks of one camera that overlap in
//!   time and were, at some instant, side by side are two different people
//!   ([`crate::pair::seen_apart`]: one person can be detected twice at once,
//!   one box above the other).
//! - **impostor** (RGB × thermal): a track and the *partner* of another track
//!   of its own camera that overlaps it: the partner is that other person.
//!
//! Features are stored in the base model's space (an adapted model's adapter
//! is undone first, [`FeatureSpace`]), tagged with the base model's
//! fingerprint, so a harvest outlives re-fitting and is never mixed across
//! models. Each kind keeps at most `[adapt] max_pairs` rows (oldest go first);
//! rows go with their sightings (`forget`, retention).

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;

use super::index::{FeatureIndex, RowInfo};
use super::store::StoreResult;
use super::{Gallery, GalleryResult};
use crate::core::{ConfigError, Modality, Sighting};
use crate::embed::adapter::{Adapter, ADAPTATION_KEY};
use crate::embed::batcher::EmbeddedTrack;
use crate::embed::onnx_graph::Model;
use crate::pair::{instant_ns, seen_apart, CameraPlace, Clock};
use crate::track::path::PathPoint;

/// The `[adapt]` section: harvesting, and re-fitting the adapter in the service.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptConfig {
    /// Keep harvested pairs (features of co-observed and simultaneous tracks).
    pub harvest: bool,
    /// At most this many rows of each kind (pair, impostor, impostor_same); the oldest go first.
    pub max_pairs: usize,
    /// Two tracks overlap when they share at least this much time.
    pub min_overlap_ms: u64,
    /// `vireid adapt` and the service need at least this many pairs (and impostors).
    pub min_pairs: usize,
    /// The service re-fits the adapter this often (hours); 0 = never.
    pub interval_hours: f64,
}

impl Default for AdaptConfig {
    fn default() -> Self {
        AdaptConfig { harvest: true, max_pairs: 20_000, min_overlap_ms: 500, min_pairs: 100, interval_hours: 0.0 }
    }
}

impl AdaptConfig {
    /// How often the service re-fits the adapter (None: never).
    pub fn refit_every(&self) -> Option<std::time::Duration> {
        (self.interval_hours > 0.0).then(|| std::time::Duration::from_secs_f64(self.interval_hours * 3600.0))
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_pairs == 0 || self.max_pairs > 10_000_000 {
            crate::invalid_config!(
                "adapt.max_pairs",
                "adapt.max_pairs = {} must be within 1..=10000000 (e.g. 20000)",
                self.max_pairs
            );
        }
        if self.min_pairs < 2 {
            crate::invalid_config!(
                "adapt.min_pairs",
                "adapt.min_pairs = {} must be at least 2 (e.g. 100)",
                self.min_pairs
            );
        }
        if !(self.interval_hours.is_finite() && self.interval_hours >= 0.0) {
            crate::invalid_config!(
                "adapt.interval_hours",
                "adapt.interval_hours must be zero (never) or a positive number of hours, e.g. 24"
            );
        }
        if self.min_overlap_ms > 60_000 {
            crate::invalid_config!(
                "adapt.min_overlap_ms",
                "adapt.min_overlap_ms = {} is over a minute (e.g. 500)",
                self.min_overlap_ms
            );
        }
        Ok(())
    }
}

/// Which space a model's features live in: the base model's fingerprint, and
/// the adapter that model appends (none for a base model).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureSpace {
    pub base: String,
    pub adapter: Option<Adapter>,
}

/// FNV-1a, 64 bits: a content fingerprint with no dependency (not a security hash).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The fingerprint of a model file's bytes, as `vireid.adapted_from` records it.
pub fn fingerprint(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}:{}", fnv1a(bytes), bytes.len())
}

impl FeatureSpace {
    /// An embedder that is not an ONNX file (the colour-histogram baseline).
    pub fn named(name: &str) -> FeatureSpace {
        FeatureSpace { base: name.to_string(), adapter: None }
    }

    /// The space of an ONNX model file.
    pub fn of_model(path: &Path) -> Result<FeatureSpace, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read model {}: {e}", path.display()))?;
        let model = Model::parse(&bytes).map_err(|e| format!("model {}: {e}", path.display()))?;
        let adapter = Adapter::read_from(&model).map_err(|e| format!("model {}: {e}", path.display()))?;
        let base = match &adapter {
            Some(_) => {
                let meta = model.metadata();
                let from = meta
                    .iter()
                    .find(|(k, _)| k == "vireid.adapted_from")
                    .map(|(_, v)| v.clone())
                    .or_else(|| meta.iter().find(|(k, _)| k == ADAPTATION_KEY).map(|_| fingerprint(&bytes)));
                from.unwrap_or_else(|| fingerprint(&bytes))
            }
            None => fingerprint(&bytes),
        };
        Ok(FeatureSpace { base, adapter })
    }

    /// The space of the embedder `spec` names (`name`: the embedder's name, for
    /// one that is not an ONNX file or cannot be read as one).
    pub fn of_spec(spec: &crate::embed::EmbedderSpec, name: &str) -> FeatureSpace {
        match spec {
            crate::embed::EmbedderSpec::Model(path) => FeatureSpace::of_model(path).unwrap_or_else(|e| {
                tracing::warn!("features tagged by embedder name only: {e}");
                FeatureSpace::named(name)
            }),
            _ => FeatureSpace::named(name),
        }
    }

    /// The space a gallery's exemplars are in, as its database records it
    /// (None: not recorded yet).
    pub fn of_store(store: &super::store::GalleryStore) -> Result<Option<FeatureSpace>, String> {
        let Some((base, blob)) = store.feature_space().map_err(|e| e.to_string())? else { return Ok(None) };
        let adapter = blob.map(|b| Adapter::from_bytes(&b)).transpose().map_err(|e| e.to_string())?;
        Ok(Some(FeatureSpace { base, adapter }))
    }

    /// A feature of this space, taken back to the base model's.
    pub fn to_base(&self, feature: &[f32], modality: Modality) -> Vec<f32> {
        let mut f = feature.to_vec();
        if let Some(a) = &self.adapter {
            a.invert(&mut f, modality);
        }
        f
    }

    /// A base-model feature, taken to this space.
    pub fn from_base(&self, feature: &[f32], modality: Modality) -> Vec<f32> {
        let mut f = feature.to_vec();
        if let Some(a) = &self.adapter {
            a.apply(&mut f, modality);
        }
        f
    }
}

/// What kind of pair a harvest row is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HarvestKind {
    Pair,
    Impostor,
    ImpostorSame,
}

impl HarvestKind {
    pub const ALL: [HarvestKind; 3] = [HarvestKind::Pair, HarvestKind::Impostor, HarvestKind::ImpostorSame];

    pub fn as_str(self) -> &'static str {
        match self {
            HarvestKind::Pair => "pair",
            HarvestKind::Impostor => "impostor",
            HarvestKind::ImpostorSame => "impostor_same",
        }
    }
}

/// One harvested pair, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestRow {
    pub kind: HarvestKind,
    pub a_sighting_id: i64,
    pub b_sighting_id: i64,
    pub a_modality: Modality,
    pub b_modality: Modality,
    pub a_feature: Vec<f32>,
    pub b_feature: Vec<f32>,
}

/// A recently recorded track, remembered to find its simultaneous neighbours.
struct Recent {
    sighting_id: i64,
    camera: Arc<str>,
    modality: Modality,
    box_name: String,
    span: (i64, i64),
    /// Where it was seen, on `clock` (bounded: `TrackPath`).
    path: Vec<PathPoint>,
    clock: Clock,
    feature: Vec<f32>,
    partner: Option<i64>,
}

/// How many recorded tracks are remembered for harvesting.
const RECENT: usize = 256;

/// Finds harvest pairs among the tracks the gallery records, and re-fits the
/// gallery's adapter from them every `[adapt] interval_hours`; lives on the
/// gallery thread.
pub struct Harvester {
    config: AdaptConfig,
    places: HashMap<String, CameraPlace>,
    /// Features in base space (they outlive re-fits).
    recent: VecDeque<Recent>,
    /// Where a re-fit writes the adapted model (the base model file, the output), when the
    /// embedder is a base ONNX model.
    model_out: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// What a re-fit in the service did.
#[derive(Debug, Clone)]
pub struct Refit {
    pub fitted: Fitted,
    /// False when the held-out check said the new adapter does worse than the gallery's current space.
    pub swapped: bool,
    pub migrated_exemplars: usize,
    pub model_written: Option<std::path::PathBuf>,
}

impl Harvester {
    pub fn new(config: AdaptConfig, places: HashMap<String, CameraPlace>) -> Harvester {
        Harvester { config, places, recent: VecDeque::new(), model_out: None }
    }

    /// No harvesting (tests, tools that only read the gallery).
    pub fn disabled() -> Harvester {
        Harvester::new(AdaptConfig { harvest: false, ..AdaptConfig::default() }, HashMap::new())
    }

    /// After each re-fit, write `base` + the adapter to `out` (an ONNX file a user can take
    /// elsewhere, or give to TensorRT).
    pub fn write_models(mut self, base: std::path::PathBuf, out: std::path::PathBuf) -> Harvester {
        self.model_out = Some((base, out));
        self
    }

    /// How often the service re-fits (None: never).
    pub fn refit_every(&self) -> Option<std::time::Duration> {
        self.config.refit_every()
    }

    /// Fits a new adapter on the harvest and moves the gallery to it (exemplars
    /// migrated in one transaction; later tracks are converted on arrival), unless
    /// its held-out check is worse than the gallery's current space.
    pub fn refit(&self, gallery: &mut Gallery) -> Result<Refit, crate::embed::adapter::AdaptError> {
        let current = gallery.space().clone();
        let fitted = fit_from_harvest(gallery.store(), &current.base, current.adapter.as_ref(), self.config.min_pairs)?;
        // On the held-out pairs: the new adapter against the space the gallery is in now.
        let worse = fitted.validation.is_some_and(|v| v.r1_adapted + 1e-9 < v.r1_current.unwrap_or(v.r1_base));
        if worse {
            return Ok(Refit { fitted, swapped: false, migrated_exemplars: 0, model_written: None });
        }
        let migrated = gallery
            .move_to_space(FeatureSpace { base: current.base.clone(), adapter: Some(fitted.adapter.clone()) })
            .map_err(|e| crate::embed::adapter::AdaptError::Model(format!("moving the gallery: {e}")))?;
        let mut model_written = None;
        if let Some((base, out)) = &self.model_out {
            match write_adapted(base, &fitted, out) {
                Ok(()) => model_written = Some(out.clone()),
                Err(e) => {
                    tracing::warn!("adapted model not written to {} (the gallery uses it anyway): {e}", out.display())
                }
            }
        }
        Ok(Refit { fitted, swapped: true, migrated_exemplars: migrated, model_written })
    }

    fn span(&self, et: &EmbeddedTrack) -> Option<(i64, i64)> {
        let place = self.places.get(&*et.track.camera)?;
        let times = et.track.path.iter().map(|p| instant_ns(p, place.clock));
        let (lo, hi) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
        (lo <= hi).then_some((lo, hi))
    }

    fn overlap(&self, a: (i64, i64), b: (i64, i64)) -> bool {
        super::overlap_by(a, b, self.config.min_overlap_ms as i64 * 1_000_000)
    }

    /// The sightings of one recorded unit (one track, or a co-observed pair),
    /// after the gallery stored them. `late_partner`: the stored sighting a
    /// lone track was co-observed with, as pairing saw it, whether or not the
    /// gallery filed it under that identity (`Gallery::record_joining`): the
    /// geometry is the harvest's truth. Harvest failures are logged, never
    /// returned: the sightings are stored whatever happens here.
    pub fn observe(
        &mut self,
        gallery: &mut Gallery,
        recorded: &[(&EmbeddedTrack, &Sighting)],
        late_partner: Option<i64>,
    ) {
        if !self.config.harvest {
            return;
        }
        let mut rows = Vec::new();
        for &(et, s) in recorded {
            let (Some(span), Some(place)) = (self.span(et), self.places.get(&*et.track.camera)) else { continue };
            let Some(feature) = et.feature.as_slice() else { continue };
            let me = Recent {
                sighting_id: s.id,
                camera: et.track.camera.clone(),
                modality: s.modality,
                box_name: place.box_name.clone(),
                span,
                path: et.track.path.clone(),
                clock: place.clock,
                feature: gallery.space().to_base(feature, s.modality),
                partner: s.paired_sighting_id.or(late_partner.filter(|_| recorded.len() == 1)),
            };
            // A late partner names the recorded track: note it there too.
            if let Some(p) = me.partner {
                if let Some(r) = self.recent.iter_mut().find(|r| r.sighting_id == p) {
                    r.partner = Some(me.sighting_id);
                }
            }
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(me);
        }
        for &(_, s) in recorded {
            let Some(me) = self.recent.iter().find(|r| r.sighting_id == s.id) else { continue };
            self.pairs_of(me, &mut rows);
        }
        if rows.is_empty() {
            return;
        }
        let base = gallery.space().base.clone();
        if let Err(e) = gallery.store_harvest(&rows, &base, self.config.max_pairs) {
            tracing::warn!("harvest not stored (the sightings are): {}", crate::core::error_chain(&e));
        }
    }

    fn pairs_of(&self, me: &Recent, rows: &mut Vec<HarvestRow>) {
        let find = |id: i64| self.recent.iter().find(|r| r.sighting_id == id);
        let row = |kind, a: &Recent, b: &Recent| {
            // RGB first across modalities; the older sighting first within one.
            let (a, b) = if (a.modality == Modality::Thermal && b.modality == Modality::Rgb)
                || (a.modality == b.modality && a.sighting_id > b.sighting_id)
            {
                (b, a)
            } else {
                (a, b)
            };
            HarvestRow {
                kind,
                a_sighting_id: a.sighting_id,
                b_sighting_id: b.sighting_id,
                a_modality: a.modality,
                b_modality: b.modality,
                a_feature: a.feature.clone(),
                b_feature: b.feature.clone(),
            }
        };
        if let Some(p) = me.partner.and_then(find) {
            if p.modality != me.modality {
                rows.push(row(HarvestKind::Pair, me, p));
            }
        }
        for other in self.recent.iter().filter(|r| r.sighting_id != me.sighting_id && r.box_name == me.box_name) {
            let two_people = other.camera == me.camera
                && self.overlap(me.span, other.span)
                && seen_apart(&me.path, &other.path, me.clock);
            if two_people {
                rows.push(row(HarvestKind::ImpostorSame, me, other));
                // `other`'s partner is `other`'s person, not mine.
                if let Some(op) = other.partner.and_then(find).filter(|op| op.modality != me.modality) {
                    if Some(op.sighting_id) != me.partner {
                        rows.push(row(HarvestKind::Impostor, me, op));
                    }
                }
            }
        }
    }
}

impl Gallery {
    /// The feature space the stored exemplars are in.
    pub fn space(&self) -> &FeatureSpace {
        &self.space
    }

    /// Says which space the features handed to this gallery come from (the
    /// embedder's model). A gallery that has no space on record takes this
    /// one. One in another adapter of the same base either follows the model
    /// (`follow`: its exemplars move to the model's space, as when a user
    /// switches to a model from `vireid adapt`) or keeps its own space and
    /// converts every feature on arrival ([`Gallery::from_model`]; a service
    /// that re-fits its own adapter, and tools that only read). One of another
    /// base model is left alone, with a warning (its exemplars cannot be converted).
    pub fn use_model(&mut self, model: FeatureSpace, follow: bool) -> GalleryResult<()> {
        if self.space.base.is_empty() {
            let blob = model.adapter.as_ref().map(Adapter::to_bytes);
            self.store.write(|w| w.set_feature_space(&model.base, blob.as_deref()))?;
            self.space = model.clone();
        } else if self.space.base == model.base && self.space.adapter != model.adapter && follow {
            let n = self.move_to_space(model.clone())?;
            tracing::info!(exemplars = n, "gallery moved to the model's adapter");
        } else if self.space.base != model.base {
            tracing::warn!(
                gallery = %self.space.base, model = %model.base,
                "the gallery's exemplars were made by another model: matching against them will be poor; \
                 use a new state_dir (or [gallery] db) for this model"
            );
            self.model = None;
            return Ok(());
        }
        self.model = Some(model);
        Ok(())
    }

    /// A feature from the model given to [`Gallery::use_model`], in the gallery's space.
    pub fn from_model(&self, feature: &[f32], modality: Modality) -> Vec<f32> {
        match &self.model {
            Some(m) if self.converts() => self.space.from_base(&m.to_base(feature, modality), modality),
            _ => feature.to_vec(),
        }
    }

    /// Whether features handed in need converting (the model's adapter is not the gallery's).
    pub fn converts(&self) -> bool {
        self.model.as_ref().is_some_and(|m| m.adapter != self.space.adapter)
    }

    /// Moves every stored exemplar to `space` (same base model) in one
    /// transaction, and the index with them. Returns how many moved.
    pub fn move_to_space(&mut self, space: FeatureSpace) -> GalleryResult<usize> {
        let (from, to) = (self.space.adapter.clone(), space.adapter.clone());
        let rows: Vec<(RowInfo, Vec<f32>)> = (0..self.index.len())
            .map(|i| {
                let info = self.index.rows()[i];
                let mut v = self.index.row(i).to_vec();
                Adapter::migrate(&mut v, info.modality, from.as_ref(), to.as_ref());
                (info, v)
            })
            .collect();
        let blob = to.as_ref().map(Adapter::to_bytes);
        self.store.write(|w| -> GalleryResult<()> {
            for (info, v) in &rows {
                w.update_feature(info.feature_id, v)?;
            }
            w.set_feature_space(&space.base, blob.as_deref())?;
            Ok(())
        })?;
        self.index = FeatureIndex::new(self.index.dim());
        for (info, v) in &rows {
            self.index.push(*info, v);
        }
        self.space = space;
        Ok(rows.len())
    }

    /// Stores harvest rows (duplicates ignored) and keeps each kind within `max_per_kind`.
    pub fn store_harvest(&mut self, rows: &[HarvestRow], space: &str, max_per_kind: usize) -> StoreResult<()> {
        self.store.write(|w| {
            for r in rows {
                w.insert_harvest(r, space)?;
            }
            for kind in HarvestKind::ALL {
                w.prune_harvest(kind, max_per_kind)?;
            }
            Ok(())
        })
    }
}

/// How a freshly fitted adapter did on the newest harvested pairs, which it was not fitted on.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Validation {
    /// Held-out co-observed pairs: each thermal track is a query against the held-out RGB tracks.
    pub held_out_pairs: usize,
    /// Share of those queries whose best match is their own partner: base model, then adapted.
    pub r1_base: f64,
    pub r1_adapted: f64,
    /// The same under the adapter the gallery uses now, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub r1_current: Option<f64>,
}

/// An adapter fitted on a gallery's harvest, with what it was fitted on.
#[derive(Debug, Clone)]
pub struct Fitted {
    pub adapter: Adapter,
    pub pairs: usize,
    pub impostors: usize,
    pub validation: Option<Validation>,
}

/// Rank-1 of thermal → RGB among co-observed pairs (features mapped by `map`).
fn pair_r1(pairs: &[HarvestRow], map: impl Fn(&[f32], Modality) -> Vec<f32>) -> f64 {
    let rgb: Vec<Vec<f32>> = pairs.iter().map(|p| map(&p.a_feature, p.a_modality)).collect();
    let hits = pairs
        .iter()
        .enumerate()
        .filter(|(i, p)| {
            let q = map(&p.b_feature, p.b_modality);
            let score = |g: &Vec<f32>| g.iter().zip(&q).map(|(a, b)| a * b).sum::<f32>();
            let best = rgb.iter().enumerate().max_by(|a, b| score(a.1).total_cmp(&score(b.1))).map(|(j, _)| j);
            best == Some(*i)
        })
        .count();
    hits as f64 / pairs.len().max(1) as f64
}

/// Most held-out pairs checked: the check is quadratic in them (every held-out
/// thermal track against every held-out RGB track).
const MAX_HELD_OUT: usize = 500;

/// Fits the adapter on the harvest of feature space `space`. The newest fifth
/// (at most [`MAX_HELD_OUT`]) of the co-observed pairs (when there are at least 50) is held out first to
/// say how a fit on the rest does on tracks it has not seen; the adapter
/// returned is then fitted on everything. `current` is the adapter in use now,
/// scored on the held-out pairs too.
pub fn fit_from_harvest(
    store: &super::store::GalleryStore,
    space: &str,
    current: Option<&Adapter>,
    min_pairs: usize,
) -> Result<Fitted, crate::embed::adapter::AdaptError> {
    use crate::embed::adapter::AdaptError;
    let read = |kind| store.harvest(kind, space).map_err(|e| AdaptError::Model(format!("reading the harvest: {e}")));
    let pairs = read(HarvestKind::Pair)?;
    let impostors = read(HarvestKind::Impostor)?;
    if pairs.is_empty() {
        let others: Vec<String> = store
            .harvest_counts()
            .map_err(|e| AdaptError::Model(format!("reading the harvest: {e}")))?
            .into_iter()
            .filter(|(s, k, _)| s != space && *k == HarvestKind::Pair)
            .map(|(s, _, n)| format!("{n} of model {s}"))
            .collect();
        let hint = if others.is_empty() {
            "run the box (`vireid run`) with [adapt] harvest = true until it has seen people in both cameras"
                .to_string()
        } else {
            format!(
                "the harvest holds pairs of other models only ({}): run the box with this model first",
                others.join(", ")
            )
        };
        return Err(AdaptError::TooFew(format!("no co-observed pairs harvested for this model: {hint}")));
    }
    fn view(rows: &[HarvestRow]) -> Vec<(&[f32], &[f32])> {
        rows.iter().map(|r| (r.a_feature.as_slice(), r.b_feature.as_slice())).collect()
    }
    let validation = if pairs.len() >= 50 {
        let cut = pairs.len() - (pairs.len() / 5).min(MAX_HELD_OUT);
        let cut_i = impostors.len() - (impostors.len() / 5).min(MAX_HELD_OUT);
        Adapter::fit(&view(&pairs[..cut]), &view(&impostors[..cut_i]), 2).ok().map(|a| {
            let held = &pairs[cut..];
            Validation {
                held_out_pairs: held.len(),
                r1_base: pair_r1(held, |f, _| f.to_vec()),
                r1_adapted: pair_r1(held, |f, m| {
                    let mut v = f.to_vec();
                    a.apply(&mut v, m);
                    v
                }),
                r1_current: current.map(|c| {
                    pair_r1(held, |f, m| {
                        let mut v = f.to_vec();
                        c.apply(&mut v, m);
                        v
                    })
                }),
            }
        })
    } else {
        None
    };
    let adapter = Adapter::fit(&view(&pairs), &view(&impostors), min_pairs)?;
    Ok(Fitted { adapter, pairs: pairs.len(), impostors: impostors.len(), validation })
}

/// The base model `base` with `fitted`'s adapter appended, described in its
/// `vireid.*` metadata. Refuses a model that is already adapted or that does
/// not carry the metadata contract (the adapted file must describe itself).
pub fn adapted_model(base: &Path, bytes: &[u8], fitted: &Fitted) -> Result<Model, crate::embed::adapter::AdaptError> {
    let mut model = adaptable(base, bytes)?;
    let description = serde_json::json!({
        "method": "per-dimension weights from co-observed (genuine) and simultaneous (impostor) RGB/thermal track pairs",
        "pairs": fitted.pairs,
        "impostors": fitted.impostors,
        "fitted_utc": crate::core::time::utc_string(std::time::SystemTime::now()),
        "base_model": base.file_name().map(|n| n.to_string_lossy().into_owned()),
        "validation": fitted.validation,
    });
    fitted.adapter.append_to(&mut model, &description.to_string())?;
    model.set_metadata("vireid.adapted_from", &fingerprint(bytes));
    Ok(model)
}

/// The parsed model, if an adapter may be appended to it (see [`adapted_model`]).
pub fn adaptable(base: &Path, bytes: &[u8]) -> Result<Model, crate::embed::adapter::AdaptError> {
    use crate::embed::adapter::AdaptError;
    let model = Model::parse(bytes).map_err(|e| AdaptError::Model(format!("model {}: {e}", base.display())))?;
    let props: HashMap<String, String> = model.metadata().into_iter().collect();
    if let Some(v) = props.get(ADAPTATION_KEY) {
        return Err(AdaptError::Model(format!(
            "model {} is already adapted ({v}): adapt the base model it was made from (its vireid.adapted_from)",
            base.display()
        )));
    }
    crate::embed::metadata::ModelContract::resolve(&props, &crate::embed::EmbedConfig::default()).map_err(|e| {
        AdaptError::Model(format!("model {} does not carry the vireid.* metadata contract: {e}", base.display()))
    })?;
    Ok(model)
}

/// Writes through a temporary file in the same folder, so a crash never
/// leaves half a model where a service would load it.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| std::io::Error::other(format!("{} names no file", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

fn write_adapted(base: &Path, fitted: &Fitted, out: &Path) -> Result<(), String> {
    let bytes = std::fs::read(base).map_err(|e| format!("cannot read {}: {e}", base.display()))?;
    let model = adapted_model(base, &bytes, fitted).map_err(|e| e.to_string())?;
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    write_atomically(out, &model.to_bytes()).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

/// Scores for thresholds from the harvest alone (`vireid thresholds --from-gallery`),
/// as the gallery decides: a track against an identity's best exemplar.
#[derive(Debug, Default, Clone)]
pub struct CalibrationScores {
    /// A track against the RGB (thermal) exemplars of an identity that is
    /// certainly someone else (a simultaneous track of the same camera).
    pub rgb_impostor: Vec<f32>,
    pub thermal_impostor: Vec<f32>,
    /// A track against the other modality's exemplars of someone else (the
    /// partner of a simultaneous track).
    pub cross_impostor: Vec<f32>,
    /// Co-observed RGB and thermal tracks of one person.
    pub cross_genuine: Vec<f32>,
}

/// The threshold kinds' scores from the harvest, as a gallery in space
/// `current` would compute them: the stored exemplars (in space `stored`) and
/// the harvested features (in base space) are both taken to `current`.
pub fn calibration_scores(
    store: &super::store::GalleryStore,
    stored: &FeatureSpace,
    current: &FeatureSpace,
) -> StoreResult<CalibrationScores> {
    let mut exemplars: HashMap<(i64, Modality), Vec<Vec<f32>>> = HashMap::new();
    for mut f in store.load_features()? {
        Adapter::migrate(&mut f.vector, f.modality, stored.adapter.as_ref(), current.adapter.as_ref());
        exemplars.entry((f.identity_id, f.modality)).or_default().push(f.vector);
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    // The best score of `feature` against identity `id`'s exemplars of `modality`.
    let best = |feature: &[f32], id: i64, modality: Modality| {
        exemplars.get(&(id, modality)).and_then(|es| es.iter().map(|e| dot(feature, e)).max_by(f32::total_cmp))
    };
    let identity = |sighting: i64| store.identity_of_sighting(sighting);
    let mut out = CalibrationScores::default();
    for row in store.harvest(HarvestKind::ImpostorSame, &current.base)? {
        let (Some(ia), Some(ib)) = (identity(row.a_sighting_id)?, identity(row.b_sighting_id)?) else { continue };
        if ia == ib {
            continue; // the gallery merged two simultaneous people: no certain impostor here
        }
        let m = row.a_modality;
        let (fa, fb) = (current.from_base(&row.a_feature, m), current.from_base(&row.b_feature, m));
        let scores = if m == Modality::Rgb { &mut out.rgb_impostor } else { &mut out.thermal_impostor };
        scores.extend(best(&fa, ib, m));
        scores.extend(best(&fb, ia, m));
    }
    for row in store.harvest(HarvestKind::Impostor, &current.base)? {
        let (Some(ia), Some(ib)) = (identity(row.a_sighting_id)?, identity(row.b_sighting_id)?) else { continue };
        if ia == ib {
            continue;
        }
        let (fa, fb) =
            (current.from_base(&row.a_feature, row.a_modality), current.from_base(&row.b_feature, row.b_modality));
        out.cross_impostor.extend(best(&fa, ib, row.b_modality));
        out.cross_impostor.extend(best(&fb, ia, row.a_modality));
    }
    for row in store.harvest(HarvestKind::Pair, &current.base)? {
        let (fa, fb) =
            (current.from_base(&row.a_feature, row.a_modality), current.from_base(&row.b_feature, row.b_modality));
        out.cross_genuine.push(dot(&fa, &fb));
    }
    Ok(out)
}
