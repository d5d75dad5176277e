//! Gallery: identities, exemplar features, sightings and day/night links in SQLite.

use anyhow::Result;
use serde::Deserialize;

/// The `[gallery]` section.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct GalleryConfig {}

impl GalleryConfig {
    pub fn validate(&self) -> Result<()> {
        Ok(())
    }
}
