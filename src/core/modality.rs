//! The two kinds of sensor a box carries.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a camera sees: colour (visible light) or heat / active near-infrared.
///
/// Thermal and near-infrared frames are single-channel; they are replicated to
/// three channels only where a model needs it (as SYSU-MM01 and RegDB do).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Rgb,
    Thermal,
}

impl Modality {
    pub const ALL: [Modality; 2] = [Modality::Rgb, Modality::Thermal];

    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Rgb => "rgb",
            Modality::Thermal => "thermal",
        }
    }

    /// Number of channels frames of this modality carry out of ingest.
    pub fn channels(self) -> usize {
        match self {
            Modality::Rgb => 3,
            Modality::Thermal => 1,
        }
    }

    pub fn other(self) -> Modality {
        match self {
            Modality::Rgb => Modality::Thermal,
            Modality::Thermal => Modality::Rgb,
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Exactly the names every wire form writes (`rgb`, `thermal`): one name per
/// modality, so a filter never matches under another name (an `ir` alias
/// once made `?modality=ir` look ignored).
impl FromStr for Modality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match Modality::ALL.into_iter().find(|m| m.as_str() == s) {
            Some(m) => Ok(m),
            None => Err(format!("unknown modality '{s}': valid values are rgb, thermal")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert_eq!("rgb".parse::<Modality>().unwrap(), Modality::Rgb);
        assert_eq!("thermal".parse::<Modality>().unwrap(), Modality::Thermal);
        for bad in ["depth", "ir", "RGB", "visible", ""] {
            let err = bad.parse::<Modality>().unwrap_err();
            assert!(err.contains(&format!("'{bad}'")) && err.contains("rgb, thermal"), "{err}");
        }
        assert_eq!(Modality::Rgb.other(), Modality::Thermal);
    }
}
