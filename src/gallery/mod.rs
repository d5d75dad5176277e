//! Gallery: identities, exemplar features, sightings and day/night links.
//!
//! SQLite ([`store`]) is the truth; [`index::FeatureIndex`] mirrors the
//! exemplar features in memory for exact cosine top-k. [`Gallery`] keeps both
//! in step; [`actor`] runs it on one thread that owns the connection.
//!
//! Open-set assignment ([`assign`]): a track joins the identity it matches
//! best above threshold, or becomes a new identity. Same-modality and
//! cross-modality matches have separate thresholds (cross-modality similarities
//! are systematically lower); a match through an exemplar of the other modality
//! is a *day/night link*.
//!
//! The gallery never emits anything itself: it returns the [`Sighting`] it
//! stored, and the actor hands it to the sinks (`core::SightingSink`).

use serde::Deserialize;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::core::time::unix_ns;
use crate::core::{ConfigError, Modality, Sighting};
use crate::embed::batcher::EmbeddedTrack;

pub mod actor;
pub mod assign;
pub mod harvest;
pub mod index;
pub mod store;

use crate::pair::{seen_apart, Clock, PairUnit, Partner};
use crate::track::path::PathPoint;
use assign::{assign, assign_pair, margin_to, Assignment, Query, Thresholds};
use index::{FeatureIndex, RowInfo};
use store::{GalleryStore, LinkVia, StoreError};

/// What can go wrong in the gallery, by what a caller can do about it.
#[derive(Debug, thiserror::Error)]
pub enum GalleryError {
    /// The database (locked, corrupt, not writable, …): see [`StoreError::kind`].
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "gallery {} holds {stored}-dimensional features but the embedder gives {model}: it was built with another model; \
         use another state dir (or [gallery].db) for this model",
        path.display()
    )]
    ModelMismatch { path: PathBuf, stored: usize, model: usize },
    /// A feature of the wrong size (from a different embedder).
    #[error("{what} has dimension {got}, gallery expects {expected}")]
    Dimension { what: &'static str, got: usize, expected: usize },
    #[error("identity {id} is not in the gallery {}: see `vireid gallery list`", path.display())]
    UnknownIdentity { id: i64, path: PathBuf },
    #[error("no enrolment images given")]
    NoEnrolmentImages,
    #[error("gallery {}: its recorded feature space is damaged ({reason}); restore a backup or use a new state dir", path.display())]
    CorruptSpace { path: PathBuf, reason: String },
    /// A crop or enrolment image file could not be written or deleted.
    #[error("{action} {}: {source}", path.display())]
    File { action: &'static str, path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
}

impl GalleryError {
    /// True when trying again later may succeed (another process holds the database).
    pub fn is_busy(&self) -> bool {
        matches!(self, GalleryError::Store(e) if e.is_locked())
    }

    fn file(action: &'static str, path: &Path, source: impl std::error::Error + Send + Sync + 'static) -> GalleryError {
        GalleryError::File { action, path: path.to_path_buf(), source: Box::new(source) }
    }
}

pub type GalleryResult<T> = Result<T, GalleryError>;

/// The `[gallery]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GalleryConfig {
    /// The SQLite file; `<state_dir>/gallery.db` when absent.
    pub db: Option<PathBuf>,
    /// Minimum cosine similarity to join an identity through an exemplar of the same modality.
    pub same_modality_threshold: f32,
    /// Thermal↔thermal threshold when it differs from `same_modality_threshold`
    /// (`vireid thresholds` calibrates each modality on its own).
    pub same_modality_threshold_thermal: Option<f32>,
    /// Minimum cosine similarity to join through an exemplar of the other modality (a day/night link).
    pub cross_modality_threshold: f32,
    /// Thermal↔thermal, day against night (each exemplar is tagged with the
    /// light its box saw, `ingest.night_luma`): a night thermal track joins its
    /// daytime identity above this. Unset: `same_modality_threshold(_thermal)`, which
    /// day-against-night pairs almost never reach. `vireid thresholds` calibrates it.
    pub cross_light_threshold: Option<f32>,
    /// How far (cosine) the best identity must clear the runner-up; closer is
    /// ambiguous and starts a new identity (a wrong merge costs far more than a split).
    pub min_gap: f32,
    /// Exemplar features kept per identity and modality (a bounded, diverse set).
    pub exemplars_per_modality: usize,
    /// Keep each sighting's best crop as a JPEG under `<state_dir>/crops/`.
    pub store_crops: bool,
    /// Crops older than this are deleted (the sighting stays).
    pub crop_retention_days: f64,
    /// Sightings, exemplar features and harvested pairs older than this are
    /// deleted, and identities left with nothing; `inf` = kept until forgotten.
    pub retention_days: f64,
    /// Enrolled (watch-list) identities and their enrolment features outlive `retention_days`.
    pub keep_enrolled: bool,
    /// How long to wait for a database another process holds locked.
    pub busy_timeout_ms: u64,
}

impl Default for GalleryConfig {
    fn default() -> Self {
        GalleryConfig {
            db: None,
            same_modality_threshold: 0.6,
            same_modality_threshold_thermal: None,
            cross_modality_threshold: 0.4,
            cross_light_threshold: None,
            min_gap: 0.05,
            exemplars_per_modality: 8,
            store_crops: true,
            crop_retention_days: 30.0,
            retention_days: 90.0,
            keep_enrolled: true,
            busy_timeout_ms: 2000,
        }
    }
}

impl GalleryConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (k, v) in [
            ("same_modality_threshold", self.same_modality_threshold),
            ("same_modality_threshold_thermal", self.same_modality_threshold_thermal.unwrap_or(0.0)),
            ("cross_modality_threshold", self.cross_modality_threshold),
            ("cross_light_threshold", self.cross_light_threshold.unwrap_or(0.0)),
        ] {
            if !(-1.0..=1.0).contains(&v) {
                return Err(ConfigError::new(
                    format!("gallery.{k}"),
                    format!("gallery.{k} = {v} must be a cosine similarity between -1 and 1"),
                ));
            }
        }
        if !(0.0..=1.0).contains(&self.min_gap) {
            return Err(ConfigError::new(
                "gallery.min_gap",
                format!("gallery.min_gap = {} must be a cosine difference within 0..=1 (e.g. 0.05; 0 = always take the best)", self.min_gap),
            ));
        }
        if self.exemplars_per_modality == 0 {
            return Err(ConfigError::new(
                "gallery.exemplars_per_modality",
                "gallery.exemplars_per_modality must be at least 1",
            ));
        }
        if self.crop_retention_days.is_nan() || self.crop_retention_days < 0.0 {
            return Err(ConfigError::new(
                "gallery.crop_retention_days",
                "gallery.crop_retention_days must be zero or more",
            ));
        }
        if self.retention_days.is_nan() || self.retention_days < 0.0 {
            return Err(ConfigError::new(
                "gallery.retention_days",
                "gallery.retention_days must be a number of days (e.g. 90), or inf to keep everything until forgotten",
            ));
        }
        Ok(())
    }

    pub fn db_path(&self, state_dir: &Path) -> PathBuf {
        self.db.clone().unwrap_or_else(|| state_dir.join("gallery.db"))
    }

    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            same_modality: self.same_modality_threshold,
            same_thermal: self.same_modality_threshold_thermal,
            cross_modality: self.cross_modality_threshold,
            cross_light: self.cross_light_threshold,
            min_gap: self.min_gap,
        }
    }
}

/// One identity a query found, with its sightings in both modalities.
#[derive(Debug, Clone, serde::Serialize)]
pub struct QueryResult {
    pub identity_id: i64,
    pub label: Option<String>,
    pub similarity: f32,
    pub matched_modality: Modality,
    pub sightings: Vec<Sighting>,
}

/// The database plus its in-memory exemplar index.
pub struct Gallery {
    store: GalleryStore,
    index: FeatureIndex,
    config: GalleryConfig,
    crops_dir: PathBuf,
    /// The space the exemplars are in (`harvest`); an empty base: not on record yet.
    space: harvest::FeatureSpace,
    /// The space of the features handed in, when known ([`Gallery::use_model`]).
    model: Option<harvest::FeatureSpace>,
    /// The latest sightings (bounded): a track cannot be anyone its own camera
    /// saw elsewhere at the same time, and a late co-observed partner weighs
    /// its own view against the margin its partner joined by.
    recent: VecDeque<RecentSighting>,
}

/// Sightings remembered in [`Gallery::recent`]: minutes of a busy scene, more
/// than `crate::pair` remembers recorded tracks for late partners.
const RECENT_SIGHTINGS: usize = 1024;
/// Two tracks of one camera are two people when they overlap by at least this
/// (shorter: a hand-over between track fragments of one person; as the
/// harvest's default `[adapt] min_overlap_ms`).
const MEANWHILE_NS: i64 = 500_000_000;

/// Who a camera saw, when (wall clock, ns since the Unix epoch), and by how far
/// the sighting cleared its identity's threshold (`None`: not by appearance).
struct RecentSighting {
    sighting_id: i64,
    identity_id: i64,
    camera: String,
    span: (i64, i64),
    /// Where the camera saw it (its track's bounded path).
    path: Vec<PathPoint>,
    margin: Option<f32>,
    /// It matched nobody and started its identity.
    started: bool,
}

/// Whether two spans (ns) share at least `min_ns`.
pub(crate) fn overlap_by(a: (i64, i64), b: (i64, i64), min_ns: i64) -> bool {
    a.0.max(b.0).saturating_add(min_ns) <= a.1.min(b.1)
}

impl Gallery {
    /// Opens the gallery for features of dimension `dim`; a gallery built by a
    /// model of another dimension is refused (its features would be meaningless).
    pub fn open(config: &GalleryConfig, state_dir: &Path, dim: usize) -> GalleryResult<Gallery> {
        let path = config.db_path(state_dir);
        let store = GalleryStore::open(&path, Duration::from_millis(config.busy_timeout_ms))?;
        let mut index = FeatureIndex::new(dim);
        for f in store.load_features()? {
            if f.vector.len() != dim {
                return Err(GalleryError::ModelMismatch { path, stored: f.vector.len(), model: dim });
            }
            index.push(f.row_info(), &f.vector);
        }
        let space = harvest::FeatureSpace::of_store(&store)
            .map_err(|reason| GalleryError::CorruptSpace { path: path.clone(), reason })?
            .unwrap_or_else(|| harvest::FeatureSpace::named(""));
        if space.adapter.as_ref().is_some_and(|a| a.dim() != dim) {
            return Err(GalleryError::CorruptSpace { path, reason: format!("its adapter is not {dim}-dimensional") });
        }
        tracing::info!(db = %path.display(), exemplars = index.len(), "gallery opened");
        Ok(Gallery {
            store,
            index,
            config: config.clone(),
            crops_dir: state_dir.join("crops"),
            space,
            model: None,
            recent: VecDeque::new(),
        })
    }

    pub fn store(&self) -> &GalleryStore {
        &self.store
    }

    pub fn index(&self) -> &FeatureIndex {
        &self.index
    }

    /// Assigns a track to an identity by appearance, stores the sighting (and
    /// its crop), and returns the event to emit. The database commit happens
    /// before this returns, so an emitted event always has its sighting on disk.
    pub fn record_sighting(&mut self, et: &EmbeddedTrack) -> GalleryResult<Sighting> {
        let a = self.assign_by_appearance(et)?;
        self.record_decided(et, &a, None)
    }

    /// Records what pairing (`crate::pair`) decided: a track alone (joining
    /// its recorded partner's identity when it has one), or two tracks of one
    /// person from a box's two modalities, filed under one identity.
    pub fn record_unit(&mut self, unit: PairUnit<EmbeddedTrack>) -> Vec<(Box<EmbeddedTrack>, GalleryResult<Sighting>)> {
        match unit {
            PairUnit::Single(et, None) => {
                let r = self.record_sighting(&et);
                vec![(et, r)]
            }
            PairUnit::Single(et, Some(partner)) => {
                let r = self.record_joining(&et, &partner);
                vec![(et, r)]
            }
            PairUnit::Pair(a, b, iou) => {
                let (ra, rb) = self.record_pair(&a, &b, iou);
                let mut out = vec![(a, ra), (b, rb)];
                // In the order stored (the lead first), so events keep ids ascending.
                out.sort_by_key(|(_, r)| r.as_ref().map_or(i64::MAX, |s| s.id));
                out
            }
        }
    }

    fn checked_feature<'a>(&self, et: &'a EmbeddedTrack) -> GalleryResult<&'a [f32]> {
        let feature = et.feature.as_slice().ok_or(GalleryError::Dimension {
            what: "feature (not contiguous)",
            got: et.feature.len(),
            expected: self.index.dim(),
        })?;
        self.check_dim("feature", feature)?;
        Ok(feature)
    }

    fn check_dim(&self, what: &'static str, feature: &[f32]) -> GalleryResult<()> {
        if feature.len() != self.index.dim() {
            return Err(GalleryError::Dimension { what, got: feature.len(), expected: self.index.dim() });
        }
        Ok(())
    }

    fn track_query<'a>(et: &EmbeddedTrack, feature: &'a [f32], cannot_be: &'a [i64]) -> Query<'a> {
        Query { feature, modality: et.track.modality, light: et.track.light, cannot_be }
    }

    /// The identities `et`'s own camera saw elsewhere while it was seen: two
    /// tracks of one camera at one time, side by side at some instant, are two
    /// people (as `harvest` holds; stacked boxes can be one person found twice,
    /// [`seen_apart`]). Where either path is unknown, the time alone decides.
    fn seen_meanwhile(&self, et: &EmbeddedTrack) -> Vec<i64> {
        let span = (unix_ns(et.track.start_time), unix_ns(et.track.end_time));
        let apart = |path: &[PathPoint]| {
            path.is_empty() || et.track.path.is_empty() || seen_apart(path, &et.track.path, Clock::Wall)
        };
        let mut ids: Vec<i64> = self
            .recent
            .iter()
            .filter(|s| *s.camera == *et.track.camera && overlap_by(s.span, span, MEANWHILE_NS) && apart(&s.path))
            .map(|s| s.identity_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn note_recent(&mut self, sighting: &Sighting, path: &[PathPoint], margin: Option<f32>) {
        if self.recent.len() == RECENT_SIGHTINGS {
            self.recent.pop_front();
        }
        self.recent.push_back(RecentSighting {
            sighting_id: sighting.id,
            identity_id: sighting.identity_id,
            camera: sighting.camera.clone(),
            span: (sighting.start_ns, sighting.end_ns),
            path: path.to_vec(),
            margin,
            started: sighting.new_identity,
        });
    }

    fn assign_by_appearance(&self, et: &EmbeddedTrack) -> GalleryResult<Assignment> {
        let cannot_be = self.seen_meanwhile(et);
        Ok(assign(&self.index, Self::track_query(et, self.checked_feature(et)?, &cannot_be), self.config.thresholds()))
    }

    /// A track whose partner from the box's other modality is already stored:
    /// it joins that identity, unless it has been forgotten meanwhile, or, as
    /// when a pair is decided together ([`assign_pair`]), the partner joined it
    /// by appearance and this track's own view clearly disagrees (its margin
    /// outweighs the partner's), or the partner matched nobody and this track
    /// clearly matches someone the partner's view does not rule out: then it is
    /// decided on its own.
    fn record_joining(&mut self, et: &EmbeddedTrack, partner: &Partner) -> GalleryResult<Sighting> {
        if !self.store.identity_exists(partner.identity_id)? {
            return self.record_sighting(et);
        }
        let cannot_be = self.seen_meanwhile(et);
        if cannot_be.contains(&partner.identity_id) {
            tracing::debug!(camera = %et.track.camera, identity = partner.identity_id, partner = partner.sighting_id, "a late partner's own camera saw the identity its partner joined elsewhere meanwhile: decided on its own");
            return self.record_sighting(et);
        }
        let partner_decision = self.recent.iter().rev().find(|s| s.sighting_id == partner.sighting_id);
        let (partner_margin, partner_started) = partner_decision.map_or((None, false), |s| (s.margin, s.started));
        let query = Self::track_query(et, self.checked_feature(et)?, &cannot_be);
        if let Some(partner_margin) = partner_margin {
            let own = margin_to(&self.index, query, self.config.thresholds(), partner.identity_id);
            if let Some(own) = own.filter(|own| partner_margin + own < 0.0) {
                tracing::debug!(camera = %et.track.camera, identity = partner.identity_id, partner = partner.sighting_id, partner_margin, own, "a late partner's own view disagrees with the identity its partner joined: decided on its own");
                return self.record_sighting(et);
            }
        }
        if partner_started {
            // The partner matched nobody. Where it could not be compared with
            // this track's clear match (at night a dim colour track is compared
            // with nobody seen by day), that is no evidence against it; where it
            // could, both views vote as in a pair decided together.
            let own = assign(&self.index, query, self.config.thresholds());
            if let (Some(id), Some(o)) = (own.identity_id.filter(|id| *id != partner.identity_id), own.margin) {
                let partner_view = self.stored_view_margin(partner.identity_id, partner.modality, id);
                if partner_view.is_none_or(|p| o + p >= 0.0) {
                    tracing::debug!(camera = %et.track.camera, identity = id, partner = partner.sighting_id, ?partner_view, own = o, "a late partner matches an identity its partner, which matched nobody, did not rule out: decided on its own");
                    return self.record_decided(et, &own, None);
                }
            }
        }
        let joined = Assignment::joining(partner.identity_id, partner.modality, et.track.modality);
        let sighting = self.record_decided(et, &joined, Some(partner.sighting_id))?;
        self.note_partner(partner.sighting_id, sighting.id);
        tracing::debug!(iou = partner.iou, camera = %et.track.camera, identity = partner.identity_id, sightings = ?(partner.sighting_id, sighting.id), "joined a recorded partner");
        Ok(sighting)
    }

    /// How the stored view of `identity` in `modality` (its exemplars, e.g. a
    /// fresh identity's one track) scores against `candidate`: the best margin
    /// over those exemplars, `None` where none can be compared with it.
    fn stored_view_margin(&self, identity: i64, modality: Modality, candidate: i64) -> Option<f32> {
        let t = self.config.thresholds();
        (self.index.rows().iter().enumerate())
            .filter(|(_, r)| r.identity_id == identity && r.modality == modality)
            .filter_map(|(i, r)| {
                let view = Query { feature: self.index.row(i), modality, light: r.light, cannot_be: &[] };
                margin_to(&self.index, view, t, candidate)
            })
            .max_by(f32::total_cmp)
    }

    /// Two tracks of one person: both views vote on the identity
    /// ([`assign_pair`]); the track with the stronger match leads (a new
    /// identity if none qualifies) and the other joins it. Results come back
    /// in the order given. Each track is stored once whatever fails: if the
    /// lead cannot be stored the other is recorded on its own.
    fn record_pair(
        &mut self,
        a: &EmbeddedTrack,
        b: &EmbeddedTrack,
        iou: f32,
    ) -> (GalleryResult<Sighting>, GalleryResult<Sighting>) {
        // One person: whoever either camera saw elsewhere meanwhile, the pair is not.
        let mut cannot_be = self.seen_meanwhile(a);
        cannot_be.extend(self.seen_meanwhile(b));
        let p = match (self.checked_feature(a), self.checked_feature(b)) {
            (Ok(fa), Ok(fb)) => assign_pair(
                &self.index,
                Self::track_query(a, fa, &cannot_be),
                Self::track_query(b, fb, &cannot_be),
                self.config.thresholds(),
            ),
            // A malformed feature: each on its own, the bad one failing with its own error.
            _ => return (self.record_sighting(a), self.record_sighting(b)),
        };
        let (lead, follow) = if p.first_leads { (a, b) } else { (b, a) };
        let mut lead_r = self.record_decided(lead, &p.lead, None);
        let mut follow_r = match &lead_r {
            Ok(first) => {
                let joined = Assignment::joining(first.identity_id, lead.track.modality, follow.track.modality);
                self.record_decided(follow, &joined, Some(first.id))
            }
            Err(_) => self.record_sighting(follow),
        };
        if let (Ok(first), Ok(second)) = (&mut lead_r, &mut follow_r) {
            second.paired_sighting_id = Some(first.id);
            if self.note_partner(first.id, second.id) {
                first.paired_sighting_id = Some(second.id);
            }
            tracing::debug!(iou, lead = %lead.track.camera, follow = %follow.track.camera, identity = first.identity_id, sightings = ?(first.id, second.id), "paired tracks");
        }
        if p.first_leads {
            (lead_r, follow_r)
        } else {
            (follow_r, lead_r)
        }
    }

    /// Notes on the stored sighting `sighting_id` the partner that joined it.
    /// Both are stored whatever happens here and the partner's own row names
    /// this one, so a failure is logged, not returned (false).
    fn note_partner(&self, sighting_id: i64, partner_id: i64) -> bool {
        match self.store.set_paired(sighting_id, partner_id) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(
                    "sighting {sighting_id} is stored but its partner {partner_id} could not be noted on it: {}",
                    crate::core::error_chain(&e)
                );
                false
            }
        }
    }

    /// Stores a sighting under a decided assignment. A sighting is a day/night
    /// link when the identity it joins is known from the other modality
    /// (an exemplar of it), whether the deciding match was across modalities,
    /// within its own modality, or by co-observation.
    fn record_decided(
        &mut self,
        et: &EmbeddedTrack,
        a: &Assignment,
        paired_with: Option<i64>,
    ) -> GalleryResult<Sighting> {
        let t = &et.track;
        let feature = self.checked_feature(et)?;
        let day_night_link = a.identity_id.is_some_and(|id| {
            a.day_night_link || self.index.rows().iter().any(|r| r.identity_id == id && r.modality != t.modality)
        });
        let via = if paired_with.is_some() { LinkVia::CoObservation } else { LinkVia::Appearance };
        // Exemplar plan first: it reads only the index (a new identity has no exemplars yet).
        let (add_exemplar, removed) = match a.identity_id {
            Some(id) => self.plan_exemplar_update(id, t.modality, feature),
            None => (true, vec![]),
        };
        let label = match a.identity_id {
            Some(id) => self.store.label_of(id)?,
            None => None,
        };
        let mut sighting = Sighting {
            id: 0,
            identity_id: a.identity_id.unwrap_or(0),
            label,
            new_identity: a.identity_id.is_none(),
            camera: t.camera.to_string(),
            modality: t.modality,
            track_id: t.track_id,
            start_ns: unix_ns(t.start_time),
            end_ns: unix_ns(t.end_time),
            start_pts_ns: t.first_pts_ns.map(|p| p as i64),
            end_pts_ns: t.last_pts_ns.map(|p| p as i64),
            best_pts_ns: t.crops.first().and_then(|c| c.pts_ns).map(|p| p as i64),
            best_box: t.best_box,
            similarity: a.similarity,
            matched_modality: a.matched_modality,
            day_night_link,
            crop_path: None,
            paired_sighting_id: paired_with,
        };
        let (store_crops, crops_dir) = (self.config.store_crops, &self.crops_dir);
        let inserted = self.store.write(|w| -> GalleryResult<Option<RowInfo>> {
            if a.identity_id.is_none() {
                sighting.identity_id = w.insert_identity(None, false, t.modality)?;
            }
            let identity_id = sighting.identity_id;
            sighting.id = w.insert_sighting(&sighting)?;
            if day_night_link {
                w.insert_link(identity_id, sighting.id, t.modality.other(), t.modality, a.similarity, via)?;
            }
            if store_crops {
                if let Some(best) = t.crops.first() {
                    let dir = crops_dir.join(identity_id.to_string());
                    let file = dir.join(format!("{}.jpg", sighting.id));
                    let saved = std::fs::create_dir_all(&dir)
                        .map_err(|e| GalleryError::file("cannot create crop directory", &dir, e))
                        .and_then(|_| {
                            best.crop
                                .image
                                .save_with_format(&file, image::ImageFormat::Jpeg)
                                .map_err(|e| GalleryError::file("cannot save crop", &file, e))
                        });
                    match saved {
                        Ok(()) => {
                            let p = file.to_string_lossy().to_string();
                            w.set_crop_path(sighting.id, &p)?;
                            sighting.crop_path = Some(p);
                        }
                        // A full disk must not lose the sighting itself.
                        Err(e) => tracing::warn!("{}", crate::core::error_chain(&e)),
                    }
                }
            }
            for fid in &removed {
                w.delete_feature(*fid)?;
            }
            if add_exemplar {
                let fid = w.insert_feature(identity_id, t.modality, t.light, feature)?;
                return Ok(Some(RowInfo { feature_id: fid, identity_id, modality: t.modality, light: t.light }));
            }
            Ok(None)
        })?;
        for fid in removed {
            self.index.remove_feature(fid);
        }
        if let Some(info) = inserted {
            self.index.push(info, feature);
        }
        self.note_recent(&sighting, &t.path, a.margin);
        Ok(sighting)
    }

    /// Bounded, diverse exemplar set: add while below the bound; at the bound,
    /// replace the most redundant exemplar (highest similarity to its nearest
    /// neighbour) if the new feature is less redundant than it.
    fn plan_exemplar_update(&self, identity_id: i64, modality: Modality, f: &[f32]) -> (bool, Vec<i64>) {
        let mine: Vec<usize> = (0..self.index.len())
            .filter(|&i| {
                let r = self.index.rows()[i];
                r.identity_id == identity_id && r.modality == modality
            })
            .collect();
        if mine.len() < self.config.exemplars_per_modality {
            return (true, vec![]);
        }
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let new_nn = mine.iter().map(|&i| dot(self.index.row(i), f)).fold(f32::MIN, f32::max);
        let mut worst: Option<(usize, f32)> = None;
        for &i in &mine {
            let nn = mine
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| dot(self.index.row(i), self.index.row(j)))
                .fold(f32::MIN, f32::max);
            if worst.is_none_or(|(_, w)| nn > w) {
                worst = Some((i, nn));
            }
        }
        match worst {
            Some((i, nn)) if new_nn < nn => (true, vec![self.index.rows()[i].feature_id]),
            _ => (false, vec![]),
        }
    }

    /// Adds a watch-list identity from features of enrolment images.
    pub fn enrol(&mut self, label: &str, features: &[(Modality, Vec<f32>)]) -> GalleryResult<i64> {
        let Some((first, _)) = features.first() else { return Err(GalleryError::NoEnrolmentImages) };
        for (_, v) in features {
            self.check_dim("enrolment feature", v)?;
        }
        let limit = self.config.exemplars_per_modality;
        let (id, rows) = self.store.write(|w| -> GalleryResult<_> {
            let id = w.insert_identity(Some(label), true, *first)?;
            let mut rows = vec![];
            // Enrolment images are all kept (up to the bound): they are the reference.
            let mut per_mod = std::collections::HashMap::new();
            for (m, v) in features {
                let n = per_mod.entry(*m).or_insert(0usize);
                if *n >= limit {
                    continue;
                }
                *n += 1;
                let fid = w.insert_feature(id, *m, None, v)?;
                rows.push((RowInfo { feature_id: fid, identity_id: id, modality: *m, light: None }, v.clone()));
            }
            Ok((id, rows))
        })?;
        for (info, v) in rows {
            self.index.push(info, &v);
        }
        Ok(id)
    }

    /// Enrols one reference image: a new watch-list identity with its feature
    /// and the image kept as JPEG. Returns (identity id, enrolment image id).
    pub fn enrol_image(
        &mut self,
        label: Option<&str>,
        modality: Modality,
        feature: &[f32],
        image: &image::RgbImage,
    ) -> GalleryResult<(i64, i64)> {
        self.check_dim("enrolment feature", feature)?;
        let crops_dir = self.crops_dir.clone();
        let (id, fid, img_id) = self.store.write(|w| -> GalleryResult<_> {
            let id = w.insert_identity(label, true, modality)?;
            let fid = w.insert_feature(id, modality, None, feature)?;
            let dir = crops_dir.join(id.to_string());
            std::fs::create_dir_all(&dir).map_err(|e| GalleryError::file("cannot create crop directory", &dir, e))?;
            let file = dir.join("enrol.jpg");
            image
                .save_with_format(&file, image::ImageFormat::Jpeg)
                .map_err(|e| GalleryError::file("cannot save", &file, e))?;
            let img_id = w.insert_enrol_image(id, modality, &file.to_string_lossy())?;
            Ok((id, fid, img_id))
        })?;
        self.index.push(RowInfo { feature_id: fid, identity_id: id, modality, light: None }, feature);
        Ok((id, img_id))
    }

    /// Identities most similar to a feature, best first, with their sightings.
    pub fn query(&self, feature: &[f32], top: usize) -> GalleryResult<Vec<QueryResult>> {
        self.check_dim("query feature", feature)?;
        let scores = self.index.cosines(feature);
        let mut best: std::collections::HashMap<i64, (f32, Modality)> = std::collections::HashMap::new();
        for (s, r) in scores.iter().zip(self.index.rows()) {
            let e = best.entry(r.identity_id).or_insert((f32::MIN, r.modality));
            if *s > e.0 {
                *e = (*s, r.modality);
            }
        }
        let mut ranked: Vec<(i64, f32, Modality)> = best.into_iter().map(|(id, (s, m))| (id, s, m)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(top);
        ranked
            .into_iter()
            .map(|(id, s, m)| {
                Ok(QueryResult {
                    identity_id: id,
                    label: self.store.label_of(id)?,
                    similarity: s,
                    matched_modality: m,
                    sightings: self.store.sightings_of(Some(id))?,
                })
            })
            .collect()
    }

    /// Deletes every trace of an identity: rows, exemplars, crop files.
    /// Returns how many crop files were deleted.
    pub fn forget(&mut self, identity_id: i64) -> GalleryResult<usize> {
        let crops = forget_identity(&mut self.store, identity_id)?;
        self.index.remove_identity(identity_id);
        self.recent.retain(|s| s.identity_id != identity_id);
        Ok(crops.len())
    }

    /// The retention sweep: crops past `crop_retention_days`, then everything
    /// past `retention_days` (rows, exemplars, harvest, crop and enrolment
    /// files), leaving no copy in the write-ahead log. Returns what expired.
    pub fn sweep_retention(&mut self) -> GalleryResult<store::Expired> {
        self.purge_expired_crops()?;
        if self.config.retention_days.is_infinite() {
            return Ok(store::Expired::default());
        }
        let cutoff = unix_ns(SystemTime::now()) - (self.config.retention_days * 86_400e9) as i64;
        let expired = self.store.expire(cutoff, self.config.keep_enrolled)?;
        if expired.sightings + expired.features + expired.identities == 0 {
            return Ok(expired);
        }
        delete_files(&expired.files);
        self.index = FeatureIndex::new(self.index.dim());
        for f in self.store.load_features()? {
            self.index.push(f.row_info(), &f.vector);
        }
        self.erase_log();
        Ok(expired)
    }

    /// After deleting personal data: no copy left in the write-ahead log.
    fn erase_log(&self) {
        match self.store.checkpoint_truncate() {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!("a reader kept the write-ahead log from being truncated; it is on the next sweep")
            }
            Err(e) => tracing::warn!("write-ahead log not truncated: {}", crate::core::error_chain(&e)),
        }
    }

    /// Deletes crop files past the retention period; returns how many.
    pub fn purge_expired_crops(&self) -> GalleryResult<usize> {
        let cutoff = unix_ns(SystemTime::now()) - (self.config.crop_retention_days * 86_400e9) as i64;
        let expired = self.store.expired_crops(cutoff)?;
        for (id, path) in &expired {
            if let Err(e) = std::fs::remove_file(path) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("cannot delete expired crop {path}: {e}");
                    continue;
                }
            }
            self.store.clear_crop(*id)?;
        }
        Ok(expired.len())
    }
}

/// `forget` without an embedder (the CLI): database rows, then crop files.
pub fn forget_identity(store: &mut GalleryStore, identity_id: i64) -> GalleryResult<Vec<String>> {
    if !store.identity_exists(identity_id)? {
        return Err(GalleryError::UnknownIdentity { id: identity_id, path: store.path().to_path_buf() });
    }
    let crops = store.forget(identity_id)?;
    for c in &crops {
        if let Err(e) = std::fs::remove_file(c) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(GalleryError::file(
                    "identity removed from the database but its crop could not be deleted:",
                    Path::new(c),
                    e,
                ));
            }
        }
    }
    if let Some(dir) = crops.first().and_then(|c| Path::new(c).parent()) {
        let _ = std::fs::remove_dir(dir); // only if empty
    }
    // No copy of the forgotten rows left in the write-ahead log.
    if !store.checkpoint_truncate()? {
        tracing::warn!("a reader kept the write-ahead log from being truncated after forget; it is on the next sweep");
    }
    Ok(crops)
}

/// Deletes expired files (and their folders, once empty); a file already gone is fine.
fn delete_files(files: &[String]) {
    for f in files {
        if let Err(e) = std::fs::remove_file(f) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot delete expired file {f}: {e}");
                continue;
            }
        }
        if let Some(dir) = Path::new(f).parent() {
            let _ = std::fs::remove_dir(dir); // only if empty
        }
    }
}
