//! Events: where sightings go once the gallery has stored them.
//!
//! * [`JsonLinesSink`]: one [`SightingEvent`] per line, to a file or stdout
//!   (`[events] jsonl`); [`read_sightings`] reads such a file back (`vireid score`).
//! * [`mqtt`]: people on an MQTT broker, as Frigate's `new`/`update`/`end`
//!   messages: live from the trackers, ended with the gallery's sighting
//!   ([`lifecycle`] decides which message goes when).
//!
//! Both take the gallery's sightings as [`SightingSink`]s; each wire form is a
//! `From` conversion of the one [`Sighting`] model (`core::sighting`).
//!
//! Ordering contract: the gallery commits a sighting to SQLite *before* its
//! event is written, so every emitted event survives a crash of the process.

pub mod lifecycle;
pub mod mqtt;

use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::core::{BBox, ConfigError, Modality, Sighting, SightingSink, SinkError};

/// The `[events]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// JSON-lines destination: a file path (appended to), or `-` for stdout. None = no events.
    pub jsonl: Option<String>,
}

impl EventsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(p) = &self.jsonl {
            if p.trim().is_empty() {
                crate::invalid_config!("events.jsonl", "events.jsonl is empty: give a file path or \"-\" for stdout");
            }
        }
        Ok(())
    }
}

/// The JSON-lines wire form of a [`Sighting`]: one line per sighting.
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
    /// Cosine similarity of the deciding match (absent for a new identity);
    /// `score`, as in the API and on MQTT (files written before read as `similarity`).
    #[serde(alias = "similarity")]
    pub score: Option<f32>,
    pub matched_modality: Option<Modality>,
    /// The identity joined is known from the other modality (a thermal sighting
    /// of an identity seen in RGB, or the reverse), by appearance or co-observation.
    pub day_night_link: bool,
    /// The sighting of the box's other modality that saw the same person at
    /// the same time (see `crate::pair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paired_sighting_id: Option<i64>,
}

impl From<&Sighting> for SightingEvent {
    fn from(row: &Sighting) -> SightingEvent {
        SightingEvent {
            event: "sighting".into(),
            sighting_id: row.id,
            identity_id: row.identity_id,
            label: row.label.clone(),
            new_identity: row.new_identity,
            camera: row.camera.clone(),
            modality: row.modality,
            track_id: row.track_id,
            start_ns: row.start_ns,
            end_ns: row.end_ns,
            start_pts_ns: row.start_pts_ns,
            end_pts_ns: row.end_pts_ns,
            best_pts_ns: row.best_pts_ns,
            best_box: [row.best_box.x, row.best_box.y, row.best_box.w, row.best_box.h],
            score: row.similarity,
            matched_modality: row.matched_modality,
            day_night_link: row.day_night_link,
            paired_sighting_id: row.paired_sighting_id,
        }
    }
}

impl SightingEvent {
    pub fn bbox(&self) -> BBox {
        BBox::new(self.best_box[0], self.best_box[1], self.best_box[2], self.best_box[3])
    }
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

    pub fn file(path: &Path) -> Result<Self, EventsError> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(d).map_err(|source| EventsError::Open {
                what: "cannot create the events directory",
                path: d.to_path_buf(),
                source,
            })?;
        }
        let f =
            std::fs::OpenOptions::new().create(true).append(true).open(path).map_err(|source| EventsError::Open {
                what: "cannot open the events file for appending (check the path and permissions):",
                path: path.to_path_buf(),
                source,
            })?;
        Ok(JsonLinesSink { out: Box::new(f), what: path.display().to_string() })
    }

    /// From `[events].jsonl`: `-` = stdout, else a file; None = no sink.
    pub fn from_config(config: &EventsConfig) -> Result<Option<Self>, EventsError> {
        match config.jsonl.as_deref() {
            None => Ok(None),
            Some("-") => Ok(Some(Self::stdout())),
            Some(p) => Ok(Some(Self::file(&PathBuf::from(p))?)),
        }
    }
}

impl SightingSink for JsonLinesSink {
    fn emit(&mut self, sighting: &Sighting) -> Result<(), SinkError> {
        let sink_error = |source: Box<dyn std::error::Error + Send + Sync>| SinkError {
            sink: self.what.clone(),
            sighting_id: sighting.id,
            source,
        };
        let mut line = serde_json::to_vec(&SightingEvent::from(sighting)).map_err(|e| sink_error(Box::new(e)))?;
        line.push(b'\n');
        self.out.write_all(&line).and_then(|_| self.out.flush()).map_err(|e| sink_error(Box::new(e)))
    }
}

/// An events file or sink that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("{what} {}: {source}", path.display())]
    Open { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("cannot read sightings file {}: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{} line {line}: {problem}: {source}", path.display())]
    Line { path: PathBuf, line: usize, problem: &'static str, source: serde_json::Error },
}

/// Reads a JSON-lines sightings file (the events stream), naming the bad line.
pub fn read_sightings(path: &Path) -> Result<Vec<SightingEvent>, EventsError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| EventsError::Read { path: path.to_path_buf(), source })?;
    let mut out = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |problem, source| EventsError::Line { path: path.to_path_buf(), line: i + 1, problem, source };
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad("not JSON (a truncated last line after a crash?)", e))?;
        if v.get("event").and_then(|e| e.as_str()) != Some("sighting") {
            continue;
        }
        out.push(serde_json::from_value(v).map_err(|e| bad("not a sighting event", e))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The match's `score` is named as in the API and on MQTT; a file written
    /// before (`similarity`) still reads.
    #[test]
    fn score_is_the_field_and_old_files_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let old = r#"{"event":"sighting","sighting_id":3,"identity_id":1,"new_identity":false,"camera":"c","modality":"thermal","track_id":2,"start_ns":1,"end_ns":2,"start_pts_ns":null,"end_pts_ns":null,"best_pts_ns":null,"best_box":[0,0,1,1],"similarity":0.5,"matched_modality":"rgb","day_night_link":true}"#;
        std::fs::write(&path, format!("{old}\n")).unwrap();
        let read = read_sightings(&path).unwrap();
        assert_eq!(read[0].score, Some(0.5));
        let v = serde_json::to_value(&read[0]).unwrap();
        assert_eq!(v["score"], 0.5);
        assert!(v.get("similarity").is_none());
    }
}
