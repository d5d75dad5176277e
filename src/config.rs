//! The one TOML configuration file. Each stage owns its section's type (in its
//! own module); this file only puts them together, loads and validates.
//!
//! Errors name the key and the fix: a user edits this file by hand on a box.

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::{api, detect, embed, events, gallery, ingest, pair, track};

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the gallery database, crops and engine caches live.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// The cameras, each with a name, a modality and a source, grouped into boxes.
    #[serde(default, rename = "camera")]
    pub cameras: Vec<ingest::CameraConfig>,
    #[serde(default)]
    pub ingest: ingest::IngestConfig,
    #[serde(default)]
    pub detect: detect::DetectConfig,
    #[serde(default)]
    pub track: track::TrackConfig,
    #[serde(default)]
    pub embed: embed::EmbedConfig,
    #[serde(default)]
    pub gallery: gallery::GalleryConfig,
    #[serde(default)]
    pub events: events::EventsConfig,
    #[serde(default)]
    pub mqtt: events::mqtt::MqttConfig,
    #[serde(default)]
    pub api: api::ApiConfig,
    /// Pairing of a box's RGB and thermal tracks that saw the same person.
    #[serde(default)]
    pub pair: pair::PairConfig,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/vireid")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}: check the path and its permissions", path.display()))?;
        let config = Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))?;
        Ok(config)
    }

    /// Parses and validates config text. TOML errors already carry the line,
    /// the column and the key; validation errors name the key they concern.
    pub fn parse(text: &str) -> Result<Config> {
        let config: Config = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        if self.cameras.is_empty() {
            bail!("no cameras configured: add at least one [[camera]] table with name, modality and source");
        }
        ingest::validate_cameras(&self.cameras)?;
        self.ingest.validate().context("in [ingest]")?;
        self.detect.validate().context("in [detect]")?;
        self.track.validate().context("in [track]")?;
        self.embed.validate().context("in [embed]")?;
        self.gallery.validate().context("in [gallery]")?;
        self.events.validate().context("in [events]")?;
        self.mqtt.validate().context("in [mqtt]")?;
        self.api.validate().context("in [api]")?;
        self.pair.validate().context("in [pair]")?;
        Ok(())
    }
}
