//! Events: sighting events to JSON lines (file or stdout), MQTT.

pub mod mqtt;

use anyhow::Result;
use serde::Deserialize;

/// The `[events]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {}

impl EventsConfig {
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}
