//! A setting that cannot work. Every stage's `validate()` returns this for
//! its own section; the message names the key and the fix (a user edits the
//! config by hand on a box), `key` lets a caller point at it.

/// An invalid setting: which key, and what is wrong with it and what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// The dotted key, e.g. `gallery.min_gap` or `camera[1].source`.
    pub key: String,
    /// The whole explanation, naming the key and the fix.
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError { key: key.into(), message: message.into() }
    }
}

/// `return Err(ConfigError::new(key, format!(…)))`.
#[macro_export]
macro_rules! invalid_config {
    ($key:expr, $($msg:tt)+) => {
        return Err($crate::core::ConfigError::new($key, format!($($msg)+)))
    };
}
