//! [`GalleryApi`] over the real gallery (SQLite + exemplar index) and an
//! embedder: what `vireid serve` puts behind the HTTP API.
//!
//! Crop ids are sighting ids (a sighting keeps one best crop, a JPEG under
//! `state_dir/crops/`). Listing reads the sightings table once per request and
//! groups in memory: O(sightings), fine at on-device gallery sizes.

use anyhow::Context;
use std::collections::HashMap;
use std::sync::Mutex;

use super::error::GalleryError;
use super::gallery::*;
use crate::embed::{Crop, Embedder};
use crate::gallery::store::SightingRow;
use crate::gallery::Gallery;
use crate::modality::Modality;

pub struct SqliteGallery {
    gallery: Mutex<Gallery>,
    embedder: Mutex<Box<dyn Embedder>>,
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn to_record(s: &SightingRow) -> SightingRecord {
    SightingRecord {
        id: s.id as u64,
        identity_id: s.identity_id as u64,
        camera: s.camera.clone(),
        modality: s.modality,
        start_time: secs(s.start_ns),
        end_time: Some(secs(s.end_ns)),
        score: s.similarity,
        day_night_link: s.day_night_link,
        crops: if s.crop_path.is_some() { vec![s.id as u64] } else { vec![] },
    }
}

fn id_i64(id: u64) -> Result<i64, GalleryError> {
    i64::try_from(id).map_err(|_| GalleryError::Invalid(format!("id {id} is out of range")))
}

impl SqliteGallery {
    pub fn new(gallery: Gallery, embedder: Box<dyn Embedder>) -> SqliteGallery {
        SqliteGallery { gallery: Mutex::new(gallery), embedder: Mutex::new(embedder) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gallery> {
        self.gallery.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn embed(&self, image: &UploadedImage) -> Result<Vec<f32>, GalleryError> {
        let crop = match image.modality {
            Modality::Rgb => Crop::new(image.image.to_rgb8(), Modality::Rgb),
            Modality::Thermal => Crop::from_gray(&image.image.to_luma8(), Modality::Thermal),
        };
        let mut embedder = self.embedder.lock().unwrap_or_else(|p| p.into_inner());
        let f = embedder.embed(std::slice::from_ref(&crop)).context("embedding the uploaded image")?;
        Ok(f.row(0).to_vec())
    }

    /// Summaries of all identities, with first/last seen and thumbnails from their sightings.
    fn summaries(&self) -> Result<Vec<(IdentitySummary, Vec<SightingRow>)>, GalleryError> {
        let g = self.lock();
        let identities = g.store().list_identities()?;
        let mut by_identity: HashMap<i64, Vec<SightingRow>> = HashMap::new();
        for s in g.store().sightings_of(None)? {
            by_identity.entry(s.identity_id).or_default().push(s);
        }
        Ok(identities
            .into_iter()
            .map(|i| {
                let sightings = by_identity.remove(&i.id).unwrap_or_default();
                let created = secs(i.created_ns);
                let first_seen = sightings.iter().map(|s| secs(s.start_ns)).fold(created, f64::min);
                let last_seen = sightings.iter().map(|s| secs(s.end_ns)).fold(created, f64::max);
                // Best thumbnail per modality: the most confident match, else the latest.
                let thumb = |m: Modality| {
                    sightings
                        .iter()
                        .filter(|s| s.modality == m && s.crop_path.is_some())
                        .max_by(|a, b| a.similarity.unwrap_or(1.0).total_cmp(&b.similarity.unwrap_or(1.0)).then(a.id.cmp(&b.id)))
                        .map(|s| s.id as u64)
                };
                let summary = IdentitySummary {
                    id: i.id as u64,
                    label: i.label.clone(),
                    first_seen,
                    last_seen,
                    sightings_rgb: i.rgb_sightings as u64,
                    sightings_thermal: i.thermal_sightings as u64,
                    day_night_linked: i.links > 0 || (i.rgb_sightings > 0 && i.thermal_sightings > 0),
                    thumbnail_rgb: thumb(Modality::Rgb),
                    thumbnail_thermal: thumb(Modality::Thermal),
                };
                (summary, sightings)
            })
            .collect())
    }
}

impl GalleryApi for SqliteGallery {
    fn identities(&self, offset: usize, limit: usize) -> GalleryResult<Vec<IdentitySummary>> {
        let mut all: Vec<IdentitySummary> = self.summaries()?.into_iter().map(|(s, _)| s).collect();
        all.sort_by(|a, b| b.last_seen.total_cmp(&a.last_seen).then(b.id.cmp(&a.id)));
        Ok(all.into_iter().skip(offset).take(limit).collect())
    }

    fn identity(&self, id: u64) -> GalleryResult<Option<IdentityDetail>> {
        let id = id as i64;
        let Some((summary, sightings)) = self.summaries()?.into_iter().find(|(s, _)| s.id as i64 == id) else {
            return Ok(None);
        };
        let crops = |m: Modality| sightings.iter().filter(|s| s.modality == m && s.crop_path.is_some()).map(|s| s.id as u64).collect();
        Ok(Some(IdentityDetail {
            crops_rgb: crops(Modality::Rgb),
            crops_thermal: crops(Modality::Thermal),
            sightings: sightings.iter().map(to_record).collect(),
            summary,
        }))
    }

    fn sightings(&self, f: &SightingFilter) -> GalleryResult<Vec<SightingRecord>> {
        let rows = self.lock().store().sightings_of(None)?;
        let mut out: Vec<SightingRecord> = rows
            .iter()
            .filter(|s| f.since.is_none_or(|t| secs(s.end_ns) >= t))
            .filter(|s| f.camera.as_ref().is_none_or(|c| &s.camera == c))
            .filter(|s| f.modality.is_none_or(|m| s.modality == m))
            .map(to_record)
            .collect();
        out.sort_by(|a, b| b.start_time.total_cmp(&a.start_time).then(b.id.cmp(&a.id)));
        out.truncate(f.limit);
        Ok(out)
    }

    fn enrol(&self, image: UploadedImage, label: Option<String>) -> GalleryResult<Enrolled> {
        let label = label.ok_or_else(|| GalleryError::Invalid("enrol needs a 'label' field: the watch-list name".into()))?;
        let feature = self.embed(&image)?;
        let id = self.lock().enrol(&label, &[(image.modality, feature)])?;
        Ok(Enrolled { identity_id: id as u64, crop_id: None })
    }

    fn query(&self, image: UploadedImage, k: usize) -> GalleryResult<Vec<QueryMatch>> {
        let feature = self.embed(&image)?;
        let results = self.lock().query(&feature, k)?;
        Ok(results
            .into_iter()
            .map(|r| QueryMatch {
                identity_id: r.identity_id as u64,
                label: r.label,
                score: r.similarity,
                cross_modality: r.matched_modality != image.modality,
            })
            .collect())
    }

    fn forget(&self, id: u64) -> GalleryResult<bool> {
        let id = id_i64(id)?;
        let mut g = self.lock();
        if !g.store().identity_exists(id)? {
            return Ok(false);
        }
        g.forget(id)?;
        Ok(true)
    }

    fn crop(&self, crop_id: u64) -> GalleryResult<Option<CropImage>> {
        let id = id_i64(crop_id)?;
        let rows = self.lock().store().sightings_of(None)?;
        let Some(path) = rows.into_iter().find(|s| s.id == id).and_then(|s| s.crop_path) else {
            return Ok(None);
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let content_type = if path.ends_with(".png") { "image/png" } else { "image/jpeg" };
                Ok(Some(CropImage { content_type, bytes }))
            }
            // Removed by crop retention: the sighting stays, its picture is gone.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(GalleryError::Internal(anyhow::anyhow!("cannot read crop {path}: {e}"))),
        }
    }

    fn stats(&self) -> GalleryResult<GalleryStats> {
        let g = self.lock();
        let (identities, sightings, _links) = g.store().counts()?;
        Ok(GalleryStats { identities: identities as u64, sightings: sightings as u64, exemplars: g.index().len() as u64 })
    }
}
