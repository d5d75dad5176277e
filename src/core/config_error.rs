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

/// A serde message ("invalid type: string \"x\", expected usize") with the
/// Rust type names a user never wrote put into words ("expected a whole
/// number, 0 or more"), for config and query-string errors.
pub fn in_words(serde_message: &str) -> String {
    const WORDS: [(&str, &str); 12] = [
        ("usize", "a whole number, 0 or more"),
        ("u64", "a whole number, 0 or more"),
        ("u32", "a whole number from 0 to 4294967295"),
        ("u16", "a whole number from 0 to 65535"),
        ("u8", "a whole number from 0 to 255"),
        ("isize", "a whole number"),
        ("i64", "a whole number"),
        ("i32", "a whole number"),
        ("i16", "a whole number"),
        ("i8", "a whole number"),
        ("f64", "a number"),
        ("f32", "a number"),
    ];
    let mut out = serde_message.to_string();
    for (rust, words) in WORDS {
        let (before, after) = (format!("expected {rust}"), format!("expected {words}"));
        // Whole words only: `u16` must not match inside `u164`.
        let mut from = 0;
        while let Some(at) = out[from..].find(&before).map(|i| i + from) {
            let end = at + before.len();
            if out[end..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                from = end;
                continue;
            }
            out.replace_range(at..end, &after);
            from = at + after.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_types_are_put_into_words() {
        assert_eq!(
            in_words("invalid type: string \"x\", expected usize"),
            "invalid type: string \"x\", expected a whole number, 0 or more"
        );
        assert_eq!(
            in_words("invalid value: integer `-3`, expected u16"),
            "invalid value: integer `-3`, expected a whole number from 0 to 65535"
        );
        assert_eq!(
            in_words("expected f32 or expected u8"),
            "expected a number or expected a whole number from 0 to 255"
        );
        assert_eq!(in_words("expected u164"), "expected u164");
        assert_eq!(in_words("expected a boolean"), "expected a boolean");
    }
}
