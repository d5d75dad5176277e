//! What the API needs from the gallery, as a trait the gallery actor's handle
//! implements. The API owns only HTTP concerns (routes, auth, limits, JSON);
//! everything it shows comes through this trait, so the HTTP layer is tested
//! on its own and the gallery can change its storage freely.
//!
//! Calls are blocking (the gallery actor answers over a channel); the API runs
//! them on tokio's blocking pool.

use serde::{Deserialize, Serialize};

use super::error::GalleryApiError;
use crate::core::time::ns_to_secs;
use crate::core::{Modality, Sighting};

pub type GalleryApiResult<T> = Result<T, GalleryApiError>;

/// Crop ids in the API: a sighting's crop is `2 × sighting id`, an enrolment
/// image is `2 × enrolment image id + 1` (two tables, one id space).
pub fn sighting_crop_id(sighting_id: i64) -> u64 {
    2 * sighting_id.max(0) as u64
}

pub fn enrol_crop_id(image_id: i64) -> u64 {
    2 * image_id.max(0) as u64 + 1
}

/// One identity as listed (the API body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityBody {
    pub id: u64,
    /// The name given at enrolment, if any.
    pub label: Option<String>,
    /// Unix seconds.
    pub first_seen: f64,
    /// `null` while it has no sighting (enrolled, never seen).
    pub last_seen: Option<f64>,
    /// Sightings per modality.
    pub sightings_rgb: u64,
    pub sightings_thermal: u64,
    /// Seen in both modalities: linked across day and night.
    pub day_night_linked: bool,
    /// Best crop per modality (ids for `/api/v1/crops/{id}`).
    pub thumbnail_rgb: Option<u64>,
    pub thumbnail_thermal: Option<u64>,
}

/// The API wire form of a [`Sighting`]: one track on one camera, linked to an identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SightingBody {
    pub id: u64,
    pub identity_id: u64,
    pub camera: String,
    pub modality: Modality,
    pub start_time: f64,
    pub end_time: Option<f64>,
    /// Cosine similarity of the match that linked it (None: it founded a new
    /// identity, or joined its co-observed partner's).
    pub score: Option<f32>,
    /// It matched nothing and founded its identity.
    pub new_identity: bool,
    /// The sighting of the box's other camera it was filed with when stored
    /// (whose identity it joined, or that joined it first).
    pub paired_sighting_id: Option<u64>,
    /// Every sighting of the box's other camera that saw the same person at
    /// the same time, both ways: a long thermal track can have two shorter
    /// RGB partners, and each of them lists it.
    #[serde(default)]
    pub partner_sighting_ids: Vec<u64>,
    /// Linked to an identity first known from the other modality.
    pub day_night_link: bool,
    /// Crop ids, best first.
    pub crops: Vec<u64>,
}

impl From<&Sighting> for SightingBody {
    fn from(s: &Sighting) -> SightingBody {
        SightingBody {
            id: s.id.max(0) as u64,
            identity_id: s.identity_id.max(0) as u64,
            camera: s.camera.clone(),
            modality: s.modality,
            start_time: ns_to_secs(s.start_ns),
            end_time: Some(ns_to_secs(s.end_ns)),
            score: s.similarity,
            new_identity: s.new_identity,
            paired_sighting_id: s.paired_sighting_id.map(|p| p.max(0) as u64),
            partner_sighting_ids: s.paired_sighting_id.map(|p| p.max(0) as u64).into_iter().collect(),
            day_night_link: s.day_night_link,
            crops: s.crop_path.as_ref().map(|_| vec![sighting_crop_id(s.id)]).unwrap_or_default(),
        }
    }
}

/// An identity with its sightings and crops in both modalities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdentityDetail {
    #[serde(flatten)]
    pub summary: IdentityBody,
    pub sightings: Vec<SightingBody>,
    pub crops_rgb: Vec<u64>,
    pub crops_thermal: Vec<u64>,
}

/// `/api/v1/sightings` filters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SightingFilter {
    /// Sightings that started or were still open at or after this (unix seconds).
    pub since: Option<f64>,
    pub camera: Option<String>,
    pub modality: Option<Modality>,
    pub limit: usize,
}

/// The image the API decoded and checked; the gallery embeds it.
#[derive(Debug, Clone)]
pub struct UploadedImage {
    pub image: image::DynamicImage,
    pub modality: Modality,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrolled {
    pub identity_id: u64,
    /// The stored crop of the enrolment image, if the gallery keeps one.
    pub crop_id: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryMatch {
    pub identity_id: u64,
    pub label: Option<String>,
    /// Cosine similarity.
    pub score: f32,
    /// The best-matching exemplar is from the other modality.
    pub cross_modality: bool,
}

impl QueryMatch {
    /// The wire form of a gallery match for a query image of `modality` (the
    /// API's and `vireid query --json`'s).
    pub fn of(result: &crate::gallery::QueryResult, modality: Modality) -> QueryMatch {
        QueryMatch {
            identity_id: result.identity_id.max(0) as u64,
            label: result.label.clone(),
            score: result.similarity,
            cross_modality: result.matched_modality != modality,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GalleryStats {
    pub identities: u64,
    pub sightings: u64,
    pub exemplars: u64,
}

/// An encoded crop image.
#[derive(Debug, Clone)]
pub struct CropImage {
    /// `image/jpeg` or `image/png`.
    pub content_type: &'static str,
    pub bytes: Vec<u8>,
}

pub trait GalleryApi: Send + Sync + 'static {
    /// Most recently seen first.
    fn identities(&self, offset: usize, limit: usize) -> GalleryApiResult<Vec<IdentityBody>>;
    fn identity(&self, id: u64) -> GalleryApiResult<Option<IdentityDetail>>;
    /// Newest first.
    fn sightings(&self, filter: &SightingFilter) -> GalleryApiResult<Vec<SightingBody>>;
    fn enrol(&self, image: UploadedImage, label: Option<String>) -> GalleryApiResult<Enrolled>;
    /// Top-k identities for an image, best first.
    fn query(&self, image: UploadedImage, k: usize) -> GalleryApiResult<Vec<QueryMatch>>;
    /// Forgets an identity: its features, sightings and crops. False if unknown.
    fn forget(&self, id: u64) -> GalleryApiResult<bool>;
    fn crop(&self, crop_id: u64) -> GalleryApiResult<Option<CropImage>>;
    fn stats(&self) -> GalleryApiResult<GalleryStats>;
}
