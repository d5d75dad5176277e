//! The sighting: the product's unit of output. One finished track of one
//! person on one camera, filed under an identity by the gallery.
//!
//! There is one model, [`Sighting`]. Each place a sighting leaves the process
//! has its own wire form, converted from it with `From` and named for what it
//! is, so a change here shows up in every form at compile time:
//!
//! | wire form | type | where |
//! | --- | --- | --- |
//! | SQL row | `sightings` table | `gallery::store` (insert / `TryFrom<&Row>`) |
//! | JSON event line | `events::SightingEvent` | `events` (`[events] jsonl`, `vireid score`) |
//! | MQTT payload | `events::mqtt::MqttSighting` | `events::mqtt` |
//! | API body | `api::SightingBody` | `api` (`/api/v1/sightings`, identity detail) |
//!
//! Sinks ([`SightingSink`]) receive each sighting after it is committed to the
//! database: an emitted sighting always survives a crash.

use serde::Serialize;

use super::bbox::BBox;
use super::modality::Modality;

/// A track assigned to an identity, as the gallery stored it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sighting {
    /// Unique per gallery database, never reused.
    pub id: i64,
    pub identity_id: i64,
    /// The identity's watch-list label, if it was enrolled with one.
    pub label: Option<String>,
    /// The track matched nothing and started this identity.
    pub new_identity: bool,
    pub camera: String,
    pub modality: Modality,
    /// The tracker's id (unique per camera for the life of the process).
    pub track_id: u64,
    /// Wall clock, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Stream timestamps (for matching against recorded video / ground truth).
    pub start_pts_ns: Option<i64>,
    pub end_pts_ns: Option<i64>,
    pub best_pts_ns: Option<i64>,
    /// The box of the best crop, in frame pixels.
    pub best_box: BBox,
    /// Cosine similarity of the deciding match (`None`: a new identity, or joined by co-observation).
    pub similarity: Option<f32>,
    /// Modality of the exemplar that decided the match.
    pub matched_modality: Option<Modality>,
    /// The identity joined is known from the other modality (a thermal
    /// sighting of an identity seen in RGB, or the reverse), by appearance or
    /// co-observation.
    pub day_night_link: bool,
    /// The stored best crop (JPEG), until retention deletes it.
    pub crop_path: Option<String>,
    /// The sighting of the box's other modality that saw the same person at
    /// the same time (`pair`).
    pub paired_sighting_id: Option<i64>,
}

impl Sighting {
    /// How the sighting came to its identity, for people: `new identity`,
    /// the score of the deciding match, or the co-observed partner it joined
    /// (which has no score of its own and is not new).
    pub fn how_assigned(&self) -> String {
        match (self.new_identity, self.similarity, self.paired_sighting_id) {
            (true, _, _) => "new identity".to_string(),
            (false, Some(s), _) => format!("score {s:.3}"),
            (false, None, Some(p)) => format!("with sighting {p} (co-observed)"),
            (false, None, None) => "joined".to_string(),
        }
    }
}

/// Where committed sightings go: event files, MQTT, … (`events`).
pub trait SightingSink: Send {
    /// Called once per sighting, after it is committed. An error is logged by
    /// the caller; the sighting stays stored.
    fn emit(&mut self, sighting: &Sighting) -> Result<(), SinkError>;
}

/// A sink could not take a sighting.
#[derive(Debug, thiserror::Error)]
#[error("cannot emit sighting {sighting_id} to {sink}: {source}")]
pub struct SinkError {
    /// Which sink: a file path, `stdout`, `MQTT broker host:port`.
    pub sink: String,
    pub sighting_id: i64,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}
