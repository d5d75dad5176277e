//! The gallery behind the HTTP API: implements `api::GalleryApi`.
//!
//! Reads (lists, details, crops, stats) use their own read-only SQLite
//! connection — WAL lets them run beside the gallery actor's writes. Anything
//! that changes the gallery or needs its in-memory index (enrol, query,
//! forget) is a request to the gallery actor, so one thread still owns all
//! mutation. Uploaded images are embedded here with the API's own embedder.
//!
//! Crop ids: a sighting's crop is `2 × sighting id`, an enrolment image is
//! `2 × enrolment image id + 1` (two tables, one id space for the API).

use anyhow::{anyhow, Context};
use crossbeam_channel::{bounded, Sender};
use rusqlite::{params, OptionalExtension};
use std::sync::Mutex;
use std::time::Duration;

use super::actor::GalleryRequest;
use super::store::GalleryStore;
use crate::api::{
    CropImage, Enrolled, GalleryApi, GalleryError, GalleryResult, GalleryStats, IdentityDetail, IdentitySummary, QueryMatch,
    SightingFilter, SightingRecord, UploadedImage,
};
use crate::embed::{Crop, Embedder};
use crate::modality::Modality;

pub struct GalleryApiHandle {
    requests: Sender<GalleryRequest>,
    reader: Mutex<GalleryStore>,
    embedder: Mutex<Box<dyn Embedder>>,
}

fn internal(e: impl Into<anyhow::Error>) -> GalleryError {
    GalleryError::Internal(e.into())
}

fn secs(ns: i64) -> f64 {
    ns as f64 / 1e9
}

fn modality(s: String) -> rusqlite::Result<Modality> {
    s.parse().map_err(|e: String| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into()))
}

const SUMMARY_SQL: &str = "SELECT i.id, i.label, i.created_ns,
        COALESCE(MIN(s.start_ns), i.created_ns), COALESCE(MAX(s.end_ns), i.created_ns),
        COALESCE(SUM(s.modality = 'rgb'), 0), COALESCE(SUM(s.modality = 'thermal'), 0),
        (SELECT s2.id FROM sightings s2 WHERE s2.identity_id = i.id AND s2.modality = 'rgb' AND s2.crop_path IS NOT NULL ORDER BY s2.id LIMIT 1),
        (SELECT s3.id FROM sightings s3 WHERE s3.identity_id = i.id AND s3.modality = 'thermal' AND s3.crop_path IS NOT NULL ORDER BY s3.id LIMIT 1),
        (SELECT e.id FROM enrol_images e WHERE e.identity_id = i.id ORDER BY e.id LIMIT 1)
     FROM identities i LEFT JOIN sightings s ON s.identity_id = i.id";

fn summary_row(r: &rusqlite::Row) -> rusqlite::Result<IdentitySummary> {
    let rgb: i64 = r.get(5)?;
    let thermal: i64 = r.get(6)?;
    let enrol: Option<i64> = r.get(9)?;
    Ok(IdentitySummary {
        id: r.get::<_, i64>(0)? as u64,
        label: r.get(1)?,
        first_seen: secs(r.get(3)?),
        last_seen: secs(r.get(4)?),
        sightings_rgb: rgb as u64,
        sightings_thermal: thermal as u64,
        day_night_linked: rgb > 0 && thermal > 0,
        thumbnail_rgb: r.get::<_, Option<i64>>(7)?.map(|id| 2 * id as u64).or(enrol.map(|e| 2 * e as u64 + 1)),
        thumbnail_thermal: r.get::<_, Option<i64>>(8)?.map(|id| 2 * id as u64),
    })
}

const SIGHTING_SQL: &str = "SELECT id, identity_id, camera, modality, start_ns, end_ns, similarity, day_night_link, crop_path FROM sightings";

fn sighting_row(r: &rusqlite::Row) -> rusqlite::Result<SightingRecord> {
    let id: i64 = r.get(0)?;
    let crop: Option<String> = r.get(8)?;
    Ok(SightingRecord {
        id: id as u64,
        identity_id: r.get::<_, i64>(1)? as u64,
        camera: r.get(2)?,
        modality: modality(r.get(3)?)?,
        start_time: secs(r.get(4)?),
        end_time: Some(secs(r.get(5)?)),
        score: r.get(6)?,
        day_night_link: r.get::<_, i64>(7)? != 0,
        crops: crop.map(|_| vec![2 * id as u64]).unwrap_or_default(),
    })
}

impl GalleryApiHandle {
    /// `requests` goes to the running gallery actor (`BackHalf::requests`);
    /// `embedder` must be the same model as the pipeline's.
    pub fn new(requests: Sender<GalleryRequest>, db: &std::path::Path, embedder: Box<dyn Embedder>) -> anyhow::Result<Self> {
        let reader = GalleryStore::open(db, Duration::from_secs(2))?;
        Ok(GalleryApiHandle { requests, reader: Mutex::new(reader), embedder: Mutex::new(embedder) })
    }

    fn embed(&self, image: &UploadedImage) -> GalleryResult<Vec<f32>> {
        let crop = match image.modality {
            Modality::Rgb => Crop::new(image.image.to_rgb8(), Modality::Rgb),
            Modality::Thermal => Crop::from_gray(&image.image.to_luma8(), Modality::Thermal),
        };
        let mut e = self.embedder.lock().map_err(|_| internal(anyhow!("embedder lock poisoned")))?;
        let f = e.embed(std::slice::from_ref(&crop)).map_err(internal)?;
        Ok(f.row(0).to_vec())
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<anyhow::Result<T>>) -> GalleryRequest) -> GalleryResult<T> {
        let (tx, rx) = bounded(1);
        self.requests.send(make(tx)).map_err(|_| internal(anyhow!("the gallery is shut down")))?;
        rx.recv_timeout(Duration::from_secs(30))
            .map_err(|_| internal(anyhow!("the gallery did not answer within 30 s")))?
            .map_err(internal)
    }

    fn with_reader<T>(&self, f: impl FnOnce(&GalleryStore) -> anyhow::Result<T>) -> GalleryResult<T> {
        let store = self.reader.lock().map_err(|_| internal(anyhow!("gallery reader lock poisoned")))?;
        f(&store).map_err(internal)
    }
}

impl GalleryApi for GalleryApiHandle {
    fn identities(&self, offset: usize, limit: usize) -> GalleryResult<Vec<IdentitySummary>> {
        self.with_reader(|s| {
            let sql = format!("{SUMMARY_SQL} GROUP BY i.id ORDER BY 5 DESC, i.id DESC LIMIT ?1 OFFSET ?2");
            let mut stmt = s.conn().prepare(&sql)?;
            let rows = stmt.query_map(params![limit as i64, offset as i64], summary_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn identity(&self, id: u64) -> GalleryResult<Option<IdentityDetail>> {
        self.with_reader(|s| {
            let sql = format!("{SUMMARY_SQL} WHERE i.id = ?1 GROUP BY i.id");
            let Some(summary) = s.conn().query_row(&sql, params![id as i64], summary_row).optional()? else { return Ok(None) };
            let mut stmt = s.conn().prepare(&format!("{SIGHTING_SQL} WHERE identity_id = ?1 ORDER BY start_ns DESC"))?;
            let sightings = stmt.query_map(params![id as i64], sighting_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
            let crops_of = |m: Modality| -> Vec<u64> {
                sightings.iter().filter(|x| x.modality == m).flat_map(|x| x.crops.iter().copied()).collect()
            };
            let (mut crops_rgb, mut crops_thermal) = (crops_of(Modality::Rgb), crops_of(Modality::Thermal));
            let mut stmt = s.conn().prepare("SELECT id, modality FROM enrol_images WHERE identity_id = ?1 ORDER BY id")?;
            for row in stmt.query_map(params![id as i64], |r| Ok((r.get::<_, i64>(0)?, modality(r.get(1)?)?)))? {
                let (eid, m) = row?;
                if m == Modality::Rgb { &mut crops_rgb } else { &mut crops_thermal }.insert(0, 2 * eid as u64 + 1);
            }
            Ok(Some(IdentityDetail { summary, sightings, crops_rgb, crops_thermal }))
        })
    }

    fn sightings(&self, f: &SightingFilter) -> GalleryResult<Vec<SightingRecord>> {
        self.with_reader(|s| {
            let sql = format!(
                "{SIGHTING_SQL} WHERE (?1 IS NULL OR end_ns >= ?1) AND (?2 IS NULL OR camera = ?2) AND (?3 IS NULL OR modality = ?3)
                 ORDER BY start_ns DESC, id DESC LIMIT ?4"
            );
            let since = f.since.map(|t| (t * 1e9) as i64);
            let mut stmt = s.conn().prepare(&sql)?;
            let rows = stmt.query_map(params![since, f.camera, f.modality.map(|m| m.as_str()), f.limit as i64], sighting_row)?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    fn enrol(&self, image: UploadedImage, label: Option<String>) -> GalleryResult<Enrolled> {
        // Enrolment builds the watch list: an entry nobody can name is of no use.
        let label = match label.map(|l| l.trim().to_string()) {
            Some(l) if !l.is_empty() => Some(l),
            _ => return Err(GalleryError::Invalid("enrolment needs a non-empty 'label' field (who this is)".into())),
        };
        let feature = self.embed(&image)?;
        let modality = image.modality;
        let rgb = image.image.to_rgb8();
        let (id, img) = self.ask(|reply| GalleryRequest::Enrol { label, modality, feature, image: rgb, reply })?;
        Ok(Enrolled { identity_id: id as u64, crop_id: Some(2 * img as u64 + 1) })
    }

    fn query(&self, image: UploadedImage, k: usize) -> GalleryResult<Vec<QueryMatch>> {
        let feature = self.embed(&image)?;
        let results = self.ask(|reply| GalleryRequest::Query { feature, top: k, reply })?;
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
        if !self.with_reader(|s| s.identity_exists(id as i64))? {
            return Ok(false);
        }
        self.ask(|reply| GalleryRequest::Forget { identity_id: id as i64, reply })?;
        Ok(true)
    }

    fn crop(&self, crop_id: u64) -> GalleryResult<Option<CropImage>> {
        let path: Option<String> = self.with_reader(|s| {
            let (sql, id) = if crop_id % 2 == 0 {
                ("SELECT crop_path FROM sightings WHERE id = ?1", crop_id / 2)
            } else {
                ("SELECT path FROM enrol_images WHERE id = ?1", crop_id / 2)
            };
            Ok(s.conn().query_row(sql, params![id as i64], |r| r.get::<_, Option<String>>(0)).optional()?.flatten())
        })?;
        let Some(path) = path else { return Ok(None) };
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(CropImage { content_type: "image/jpeg", bytes })),
            // Past retention (or removed by hand): the crop is gone, the sighting stays.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(internal(anyhow::Error::from(e).context(format!("cannot read crop {path}")))),
        }
    }

    fn stats(&self) -> GalleryResult<GalleryStats> {
        self.with_reader(|s| {
            let (identities, sightings, _) = s.counts()?;
            let exemplars: i64 = s.conn().query_row("SELECT count(*) FROM features", [], |r| r.get(0)).context("count features")?;
            Ok(GalleryStats { identities: identities as u64, sightings: sightings as u64, exemplars: exemplars as u64 })
        })
    }
}
