//! The running gallery behind the HTTP API: implements [`GalleryApi`].
//!
//! Reads (lists, details, crops, stats) use their own read-only SQLite
//! connection — WAL lets them run beside the gallery actor's writes. Anything
//! that changes the gallery or needs its in-memory index (enrol, query,
//! forget) is a request to the gallery actor, so one thread still owns all
//! mutation. Uploaded images are embedded with the pipeline's own embedder
//! ([`SharedEmbedder`]: the model is loaded once per process).

use crossbeam_channel::{bounded, Sender};
use std::sync::Mutex;
use std::time::Duration;

use super::gallery::{enrol_crop_id, sighting_crop_id};
use super::{
    CropImage, Enrolled, GalleryApi, GalleryApiError, GalleryApiResult, GalleryStats, IdentityBody, IdentityDetail,
    QueryMatch, SightingBody, SightingFilter, UploadedImage,
};
use crate::core::time::{ns_to_secs, secs_to_ns};
use crate::core::{Crop, Modality, Sighting};
use crate::embed::{Embedder, SharedEmbedder};
use crate::gallery::actor::GalleryRequest;
use crate::gallery::store::{GalleryStore, IdentitySummary, SightingQuery, StoreError};
use crate::gallery::GalleryError;

/// How long an API call waits for the gallery actor.
const ACTOR_TIMEOUT: Duration = Duration::from_secs(30);

pub struct GalleryApiHandle {
    requests: Sender<GalleryRequest>,
    reader: Mutex<GalleryStore>,
    embedder: SharedEmbedder,
}

impl From<GalleryError> for GalleryApiError {
    fn from(e: GalleryError) -> GalleryApiError {
        if e.is_busy() {
            return GalleryApiError::Busy(
                "the gallery database is busy (locked by another process): retry shortly".into(),
            );
        }
        match e {
            GalleryError::Dimension { .. } => GalleryApiError::Invalid(e.to_string()),
            e => GalleryApiError::internal(e),
        }
    }
}

impl From<StoreError> for GalleryApiError {
    fn from(e: StoreError) -> GalleryApiError {
        GalleryError::from(e).into()
    }
}

/// The API body of an identity summary.
impl From<&IdentitySummary> for IdentityBody {
    fn from(i: &IdentitySummary) -> IdentityBody {
        IdentityBody {
            id: i.id.max(0) as u64,
            label: i.label.clone(),
            first_seen: ns_to_secs(i.first_seen_ns),
            last_seen: i.last_seen_ns.map(ns_to_secs),
            sightings_rgb: i.rgb_sightings.max(0) as u64,
            sightings_thermal: i.thermal_sightings.max(0) as u64,
            day_night_linked: i.rgb_sightings > 0 && i.thermal_sightings > 0,
            thumbnail_rgb: i.rgb_crop_sighting.map(sighting_crop_id).or(i.enrol_image.map(enrol_crop_id)),
            thumbnail_thermal: i.thermal_crop_sighting.map(sighting_crop_id),
        }
    }
}

/// The API bodies of stored sightings, each with all its co-observed partners.
fn bodies(store: &GalleryStore, rows: &[Sighting]) -> Result<Vec<SightingBody>, StoreError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut partners = store.partners_of(&ids)?;
    Ok(rows
        .iter()
        .map(|r| SightingBody {
            partner_sighting_ids: partners
                .remove(&r.id)
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.max(0) as u64)
                .collect(),
            ..SightingBody::from(r)
        })
        .collect())
}

impl GalleryApiHandle {
    /// `requests` goes to the running gallery actor; `embedder` is the one the
    /// pipeline embeds tracks with (the same model, loaded once).
    pub fn new(
        requests: Sender<GalleryRequest>,
        db: &std::path::Path,
        embedder: SharedEmbedder,
    ) -> Result<Self, StoreError> {
        let reader = GalleryStore::open(db, Duration::from_secs(2))?;
        Ok(GalleryApiHandle { requests, reader: Mutex::new(reader), embedder })
    }

    fn embed(&self, image: &UploadedImage) -> GalleryApiResult<Vec<f32>> {
        let crop = Crop::from_image(&image.image, image.modality);
        let f = self.embedder.clone().embed(std::slice::from_ref(&crop)).map_err(GalleryApiError::internal)?;
        Ok(f.row(0).to_vec())
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<Result<T, GalleryError>>) -> GalleryRequest) -> GalleryApiResult<T> {
        let (tx, rx) = bounded(1);
        self.requests.send(make(tx)).map_err(|_| GalleryApiError::Unavailable("the gallery is shut down".into()))?;
        rx.recv_timeout(ACTOR_TIMEOUT)
            .map_err(|_| {
                GalleryApiError::Unavailable(format!("the gallery did not answer within {} s", ACTOR_TIMEOUT.as_secs()))
            })?
            .map_err(GalleryApiError::from)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&GalleryStore) -> Result<T, StoreError>) -> GalleryApiResult<T> {
        let store = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(f(&store)?)
    }
}

impl GalleryApi for GalleryApiHandle {
    fn identities(&self, offset: usize, limit: usize) -> GalleryApiResult<Vec<IdentityBody>> {
        let list = self.with_reader(|s| s.recent_identities(offset, limit))?;
        Ok(list.iter().map(IdentityBody::from).collect())
    }

    fn identity(&self, id: u64) -> GalleryApiResult<Option<IdentityDetail>> {
        self.with_reader(|s| {
            let Some(summary) = s.identity_summary(id as i64)? else { return Ok(None) };
            let q = SightingQuery { identity_id: Some(id as i64), ..Default::default() };
            let sightings = bodies(s, &s.recent_sightings(&q)?)?;
            let crops_of = |m: Modality| -> Vec<u64> {
                sightings.iter().filter(|x| x.modality == m).flat_map(|x| x.crops.iter().copied()).collect()
            };
            let (mut crops_rgb, mut crops_thermal) = (crops_of(Modality::Rgb), crops_of(Modality::Thermal));
            for (image, m) in s.enrol_images_of(id as i64)? {
                if m == Modality::Rgb { &mut crops_rgb } else { &mut crops_thermal }.insert(0, enrol_crop_id(image));
            }
            Ok(Some(IdentityDetail { summary: IdentityBody::from(&summary), sightings, crops_rgb, crops_thermal }))
        })
    }

    fn sightings(&self, f: &SightingFilter) -> GalleryApiResult<Vec<SightingBody>> {
        let q = SightingQuery {
            identity_id: None,
            since_ns: f.since.map(secs_to_ns),
            camera: f.camera.clone(),
            modality: f.modality,
            limit: Some(f.limit),
        };
        self.with_reader(|s| bodies(s, &s.recent_sightings(&q)?))
    }

    fn enrol(&self, image: UploadedImage, label: Option<String>) -> GalleryApiResult<Enrolled> {
        // Enrolment builds the watch list: an entry nobody can name is of no use.
        let label = match label.map(|l| l.trim().to_string()) {
            Some(l) if !l.is_empty() => Some(l),
            _ => {
                return Err(GalleryApiError::Invalid("enrolment needs a non-empty 'label' field (who this is)".into()))
            }
        };
        let feature = self.embed(&image)?;
        let modality = image.modality;
        let rgb = image.image.to_rgb8();
        let (id, img) = self.ask(|reply| GalleryRequest::Enrol { label, modality, feature, image: rgb, reply })?;
        Ok(Enrolled { identity_id: id as u64, crop_id: Some(enrol_crop_id(img)) })
    }

    fn query(&self, image: UploadedImage, k: usize) -> GalleryApiResult<Vec<QueryMatch>> {
        let feature = self.embed(&image)?;
        let modality = image.modality;
        let results = self.ask(|reply| GalleryRequest::Query { feature, modality, top: k, reply })?;
        Ok(results.iter().map(|r| QueryMatch::of(r, modality)).collect())
    }

    fn forget(&self, id: u64) -> GalleryApiResult<bool> {
        if !self.with_reader(|s| s.identity_exists(id as i64))? {
            return Ok(false);
        }
        self.ask(|reply| GalleryRequest::Forget { identity_id: id as i64, reply })?;
        Ok(true)
    }

    fn crop(&self, crop_id: u64) -> GalleryApiResult<Option<CropImage>> {
        let id = (crop_id / 2) as i64;
        let path = self.with_reader(|s| {
            if crop_id.is_multiple_of(2) {
                s.sighting_crop_path(id)
            } else {
                s.enrol_image_path(id)
            }
        })?;
        let Some(path) = path else { return Ok(None) };
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(CropImage { content_type: "image/jpeg", bytes })),
            // Past retention (or removed by hand): the crop is gone, the sighting stays.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(GalleryApiError::internal(CropFileError { path, source: e })),
        }
    }

    fn stats(&self) -> GalleryApiResult<GalleryStats> {
        self.with_reader(|s| {
            let (identities, sightings, _) = s.counts()?;
            let exemplars = s.feature_count()?;
            Ok(GalleryStats { identities: identities as u64, sightings: sightings as u64, exemplars: exemplars as u64 })
        })
    }
}

/// A stored crop that exists but cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read crop {path}: {source}")]
struct CropFileError {
    path: String,
    source: std::io::Error,
}
