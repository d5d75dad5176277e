//! The shared core: the types every stage speaks, and nothing else.
//!
//! A frame ([`Frame`]), a box ([`BBox`]), a modality ([`Modality`]), day or night at a box ([`Light`]), a person
//! crop ([`Crop`]), points in time ([`time`]), the sighting every output is a
//! form of ([`Sighting`], [`SightingSink`]) and the stop signal
//! ([`Shutdown`]), the error every config section's `validate()` gives
//! ([`ConfigError`]), and where shipped files are looked for ([`places`]). Every stage may use these; this module uses no stage. A
//! type moves here when two stages on different branches of the flow need it
//! (docs/ARCHITECTURE.md), not before.

pub mod bbox;
pub mod config_error;
pub mod crop;
pub mod frame;
pub mod latency;
pub mod light;
pub mod modality;
pub mod places;
pub mod shutdown;
pub mod sighting;
pub mod time;

pub use bbox::BBox;
pub use config_error::{in_words, ConfigError};
pub use crop::{list_images, Crop, ImageFileError};
pub use frame::Frame;
pub use latency::{LatencyHistogram, LatencySnapshot};
pub use light::{Light, LightMeter};
pub use modality::Modality;
pub use shutdown::Shutdown;
pub use sighting::{Sighting, SightingSink, SinkError};

/// An error and its causes on one line (`a: b: c`), for logs and the CLI:
/// typed errors keep their source apart, and a line should still say
/// everything once — a cause the message already quotes is not repeated.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        // Many errors quote their source in their own message.
        if !out.contains(text.trim_end()) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read config file x.toml: {source}")]
    struct Quoting {
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("opening the embedder")]
    struct Context {
        #[source]
        source: Quoting,
    }

    #[test]
    fn chain_says_each_cause_once() {
        let e = Context { source: Quoting { source: std::io::Error::other("no such file") } };
        assert_eq!(error_chain(&e), "opening the embedder: cannot read config file x.toml: no such file");
    }
}
