//! Events: one sighting event per finished track, as JSON lines to a file or
//! stdout (MQTT may be added beside this as `events/mqtt.rs`).
//!
//! Ordering contract: the gallery commits a sighting to SQLite *before* its
//! event is written, so every emitted event survives a crash of the process.

pub mod mqtt;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;

use crate::bbox::BBox;
use crate::gallery::store::SightingRow;
use crate::modality::Modality;

/// The `[events]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// JSON-lines destination: a file path (appended to), or `-` for stdout. None = no events.
    pub jsonl: Option<String>,
}

impl EventsConfig {
    pub fn validate(&self) -> Result<()> {
        if let Some(p) = &self.jsonl {
            if p.trim().is_empty() {
                bail!("events.jsonl is empty: give a file path or \"-\" for stdout");
            }
        }
        Ok(())
    }
}

/// A sighting: a finished track assigned to an identity. One JSON line each.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SightingEvent {
    /// Always `"sighting"` (room for other event kinds on the same stream).
    pub event: String,
    pub sighting_id: i64,
    pub identity_id: i64,
    /// Watch-list label of an enrolled identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The track matched nothing and started this identity.
    pub new_identity: bool,
    pub camera: String,
    pub modality: Modality,
    pub track_id: u64,
    /// Wall clock, nanoseconds since the Unix epoch.
    pub start_ns: i64,
    pub end_ns: i64,
    /// Stream timestamps (for matching against recorded video / ground truth).
    pub start_pts_ns: Option<i64>,
    pub end_pts_ns: Option<i64>,
    pub best_pts_ns: Option<i64>,
    /// `[x, y, w, h]` of the best crop.
    pub best_box: [f32; 4],
    /// Cosine similarity of the deciding match (absent for a new identity).
    pub similarity: Option<f32>,
    pub matched_modality: Option<Modality>,
    /// The identity joined is known from the other modality (a thermal sighting
    /// of an identity seen in RGB, or the reverse), by appearance or co-observation.
    pub day_night_link: bool,
    /// The sighting of the box's other modality that saw the same person at
    /// the same time (see `crate::pair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_sighting_id: Option<i64>,
}

impl SightingEvent {
    pub fn from_sighting(row: &SightingRow, label: Option<String>, new_identity: bool) -> SightingEvent {
        SightingEvent {
            event: "sighting".into(),
            sighting_id: row.id,
            identity_id: row.identity_id,
            label,
            new_identity,
            camera: row.camera.clone(),
            modality: row.modality,
            track_id: row.track_id,
            start_ns: row.start_ns,
            end_ns: row.end_ns,
            start_pts_ns: row.start_pts_ns,
            end_pts_ns: row.end_pts_ns,
            best_pts_ns: row.best_pts_ns,
            best_box: [row.best_box.x, row.best_box.y, row.best_box.w, row.best_box.h],
            similarity: row.similarity,
            matched_modality: row.matched_modality,
            day_night_link: row.day_night_link,
            paired_sighting_id: row.paired_sighting_id,
        }
    }

    pub fn bbox(&self) -> BBox {
        BBox::new(self.best_box[0], self.best_box[1], self.best_box[2], self.best_box[3])
    }
}

/// Where events go.
pub trait EventSink: Send {
    fn emit(&mut self, event: &SightingEvent) -> Result<()>;
}

/// JSON lines, flushed per event so a crash right after `emit` loses nothing emitted.
pub struct JsonLinesSink {
    out: Box<dyn Write + Send>,
    what: String,
}

impl JsonLinesSink {
    pub fn stdout() -> Self {
        JsonLinesSink { out: Box::new(std::io::stdout()), what: "stdout".into() }
    }

    pub fn file(path: &std::path::Path) -> Result<Self> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create the events directory {}", d.display()))?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open the events file {} for appending: check the path and permissions", path.display()))?;
        Ok(JsonLinesSink { out: Box::new(f), what: path.display().to_string() })
    }

    /// From `[events].jsonl`: `-` = stdout, else a file; None = no sink.
    pub fn from_config(config: &EventsConfig) -> Result<Option<Self>> {
        match config.jsonl.as_deref() {
            None => Ok(None),
            Some("-") => Ok(Some(Self::stdout())),
            Some(p) => Ok(Some(Self::file(&PathBuf::from(p))?)),
        }
    }
}

impl EventSink for JsonLinesSink {
    fn emit(&mut self, event: &SightingEvent) -> Result<()> {
        let mut line = serde_json::to_vec(event)?;
        line.push(b'\n');
        self.out.write_all(&line).and_then(|_| self.out.flush()).with_context(|| format!("cannot write an event to {}", self.what))
    }
}

/// Reads a JSON-lines sightings file (the events stream), naming the bad line.
pub fn read_sightings(path: &std::path::Path) -> Result<Vec<SightingEvent>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read sightings file {}", path.display()))?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{} line {}: not JSON (a truncated last line after a crash?)", path.display(), i + 1))?;
        if v.get("event").and_then(|e| e.as_str()) != Some("sighting") {
            continue;
        }
        out.push(
            serde_json::from_value(v).with_context(|| format!("{} line {}: not a sighting event", path.display(), i + 1))?,
        );
    }
    Ok(out)
}
