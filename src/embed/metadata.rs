//! The model's input contract, read from ONNX `metadata_props` (`vireid.*` keys,
//! documented in `engines/README.md`), with `[embed]` config values as the
//! fallback for models exported without them.

/// A model contract that cannot be resolved: which key, what is wrong, the fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ContractError(pub String);

type Result<T> = std::result::Result<T, ContractError>;

macro_rules! fail {
    ($($msg:tt)+) => { return Err(ContractError(format!($($msg)+))) };
}
use std::collections::HashMap;

use super::EmbedConfig;

pub const KEY_INPUT_HEIGHT: &str = "vireid.input_height";
pub const KEY_INPUT_WIDTH: &str = "vireid.input_width";
pub const KEY_MEAN: &str = "vireid.mean";
pub const KEY_STD: &str = "vireid.std";
pub const KEY_EMBEDDING_DIM: &str = "vireid.embedding_dim";
pub const KEY_MODALITY_HANDLING: &str = "vireid.modality_handling";
pub const KEY_METHOD: &str = "vireid.method";
pub const KEY_TRAINING_DATA: &str = "vireid.training_data";
pub const KEY_METRICS: &str = "vireid.metrics";
pub const KEY_PRECISION: &str = "vireid.precision";

/// Name of the second graph input of a `per_modality` model (0 = RGB, 1 = thermal per row).
pub const MODALITY_INPUT_NAME: &str = "modality";

/// Whether one network serves both modalities or each has its own stem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModalityHandling {
    Shared,
    PerModality,
}

impl std::str::FromStr for ModalityHandling {
    type Err = ContractError;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "shared" => Ok(ModalityHandling::Shared),
            "per_modality" => Ok(ModalityHandling::PerModality),
            other => fail!("unknown modality handling '{other}': use 'shared' or 'per_modality'"),
        }
    }
}

/// Everything preprocessing and the runtime need to know about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelContract {
    pub input_height: u32,
    pub input_width: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub embedding_dim: usize,
    pub modality_handling: ModalityHandling,
    pub method: Option<String>,
    pub training_data: Option<String>,
    pub metrics: Option<String>,
    pub precision: Option<String>,
}

fn parse_triplet(key: &str, text: &str) -> Result<[f32; 3]> {
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() != 3 {
        fail!("{key} = '{text}' must be three comma-separated numbers (R,G,B)");
    }
    let mut out = [0f32; 3];
    for (o, p) in out.iter_mut().zip(&parts) {
        *o = p.parse().map_err(|e| ContractError(format!("{key} = '{text}': '{p}' is not a number: {e}")))?;
    }
    Ok(out)
}

impl ModelContract {
    /// Builds the contract from metadata (`props`) first, config second; a value
    /// found in neither is an error naming both places to put it.
    pub fn resolve(props: &HashMap<String, String>, config: &EmbedConfig) -> Result<ModelContract> {
        let missing = |key: &str, cfg: &str| {
            ContractError(format!(
                "the model has no '{key}' metadata and [embed].{cfg} is not set: export the model with vireid.* metadata \
                 (see engines/README.md) or set embed.{cfg} in the config"
            ))
        };
        let input_height = match props.get(KEY_INPUT_HEIGHT) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ContractError(format!("{KEY_INPUT_HEIGHT} = '{v}' is not a positive integer")))?,
            None => config.input_height.ok_or_else(|| missing(KEY_INPUT_HEIGHT, "input_height"))?,
        };
        let input_width = match props.get(KEY_INPUT_WIDTH) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ContractError(format!("{KEY_INPUT_WIDTH} = '{v}' is not a positive integer")))?,
            None => config.input_width.ok_or_else(|| missing(KEY_INPUT_WIDTH, "input_width"))?,
        };
        let mean = match props.get(KEY_MEAN) {
            Some(v) => parse_triplet(KEY_MEAN, v)?,
            None => config.mean.ok_or_else(|| missing(KEY_MEAN, "mean"))?,
        };
        let std = match props.get(KEY_STD) {
            Some(v) => parse_triplet(KEY_STD, v)?,
            None => config.std.ok_or_else(|| missing(KEY_STD, "std"))?,
        };
        let embedding_dim = match props.get(KEY_EMBEDDING_DIM) {
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ContractError(format!("{KEY_EMBEDDING_DIM} = '{v}' is not a positive integer")))?,
            None => config.embedding_dim.ok_or_else(|| missing(KEY_EMBEDDING_DIM, "embedding_dim"))?,
        };
        let modality_handling = match props.get(KEY_MODALITY_HANDLING) {
            Some(v) => v.parse().map_err(|e| ContractError(format!("in metadata {KEY_MODALITY_HANDLING}: {e}")))?,
            None => config.modality_handling.ok_or_else(|| missing(KEY_MODALITY_HANDLING, "modality_handling"))?,
        };
        let contract = ModelContract {
            input_height,
            input_width,
            mean,
            std,
            embedding_dim,
            modality_handling,
            method: props.get(KEY_METHOD).cloned(),
            training_data: props.get(KEY_TRAINING_DATA).cloned(),
            metrics: props.get(KEY_METRICS).cloned(),
            precision: props.get(KEY_PRECISION).cloned(),
        };
        contract.check()?;
        Ok(contract)
    }

    fn check(&self) -> Result<()> {
        if self.input_height == 0 || self.input_width == 0 || self.input_height > 4096 || self.input_width > 4096 {
            fail!("input size {}x{} is out of range (1..=4096)", self.input_height, self.input_width);
        }
        if self.embedding_dim == 0 {
            fail!("embedding_dim must be at least 1");
        }
        // NaN is not positive either.
        if self.std.iter().any(|s| s.is_nan() || *s <= 0.0) {
            fail!("std {:?} must be positive in every channel", self.std);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_props() -> HashMap<String, String> {
        [
            (KEY_INPUT_HEIGHT, "32"),
            (KEY_INPUT_WIDTH, "16"),
            (KEY_MEAN, "0.5, 0.5,0.5"),
            (KEY_STD, "0.25,0.25,0.25"),
            (KEY_EMBEDDING_DIM, "8"),
            (KEY_MODALITY_HANDLING, "per_modality"),
            (KEY_METHOD, "AGW"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn metadata_wins_and_parses() {
        let c = ModelContract::resolve(&full_props(), &EmbedConfig::default()).unwrap();
        assert_eq!((c.input_height, c.input_width, c.embedding_dim), (32, 16, 8));
        assert_eq!(c.mean, [0.5; 3]);
        assert_eq!(c.modality_handling, ModalityHandling::PerModality);
        assert_eq!(c.method.as_deref(), Some("AGW"));
    }

    #[test]
    fn missing_key_names_key_and_config() {
        let mut p = full_props();
        p.remove(KEY_STD);
        let err = format!("{:#}", ModelContract::resolve(&p, &EmbedConfig::default()).unwrap_err());
        assert!(err.contains("vireid.std") && err.contains("embed.std"), "{err}");
        let cfg = EmbedConfig { std: Some([0.2, 0.2, 0.2]), ..Default::default() };
        assert_eq!(ModelContract::resolve(&p, &cfg).unwrap().std, [0.2; 3]);
    }

    #[test]
    fn bad_values_are_named() {
        let mut p = full_props();
        p.insert(KEY_MEAN.into(), "0.5,0.5".into());
        let err = format!("{:#}", ModelContract::resolve(&p, &EmbedConfig::default()).unwrap_err());
        assert!(err.contains("vireid.mean"), "{err}");
        let mut p = full_props();
        p.insert(KEY_MODALITY_HANDLING.into(), "twostream".into());
        let err = format!("{:#}", ModelContract::resolve(&p, &EmbedConfig::default()).unwrap_err());
        assert!(err.contains("twostream") && err.contains("per_modality"), "{err}");
    }
}
