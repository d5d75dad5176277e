//! The one TOML configuration file. Each stage owns its section's type (in its
//! own module); this file only puts them together, loads and validates.
//!
//! Errors name the key and the fix: a user edits this file by hand on a box.
//! Each stage validates its own section (`validate()` → [`ConfigError`]); a
//! stage is handed its own section, never the whole `Config` — only
//! `pipeline` and `cli`, which wire the stages, hold all of it.

use serde::Deserialize;
use std::path::{Path, PathBuf};

use crate::core::ConfigError;
use crate::{api, detect, embed, events, gallery, ingest, pair, track};

/// A config file that cannot be used: which file, which section, which key.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read config file {}: check the path and its permissions: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    /// Not TOML, or a key no section has (the TOML error names line, column
    /// and key; `hint` where a key is known to belong elsewhere).
    #[error("invalid config file {}: {message}{hint}", path.display())]
    Parse { path: PathBuf, message: String, hint: String },
    #[error("invalid config file {}: {source}", path.display())]
    Invalid { path: PathBuf, source: SectionError },
}

/// Keys people write in the wrong place, and where they go.
const MOVED: [(&str, &str); 1] = [(
    "unknown field `mqtt`",
    "MQTT has a section of its own: write [mqtt] (enabled, host, port, topic_prefix, …), not [events.mqtt]",
)];

impl LoadError {
    fn parse(path: &Path, e: toml::de::Error) -> LoadError {
        let text = e.to_string();
        let hint = MOVED.iter().find(|(m, _)| text.contains(m)).map(|(_, h)| format!("hint: {h}")).unwrap_or_default();
        LoadError::Parse { path: path.to_path_buf(), message: crate::core::in_words(&text), hint }
    }
}

/// A setting of one section that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("{}{error}", section.map(|s| format!("in [{s}]: ")).unwrap_or_default())]
pub struct SectionError {
    /// The section (`gallery`, `detect`, …); `None` for the camera list.
    pub section: Option<&'static str>,
    pub error: ConfigError,
}

fn in_section(section: &'static str) -> impl Fn(ConfigError) -> SectionError {
    move |error| SectionError { section: Some(section), error }
}

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
    /// The harvest of co-observed and simultaneous tracks, and re-fitting the cross-modal adapter.
    #[serde(default)]
    pub adapt: gallery::harvest::AdaptConfig,
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/vireid")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let config = Self::read(path)?;
        config.validate().map_err(|source| LoadError::Invalid { path: path.to_path_buf(), source })?;
        Ok(config)
    }

    /// Parses and validates config text (as if read from a file called `<config text>`).
    pub fn parse(text: &str) -> Result<Config, LoadError> {
        let path = PathBuf::from("<config text>");
        let config: Config = toml::from_str(text).map_err(|e| LoadError::parse(&path, e))?;
        config.validate().map_err(|source| LoadError::Invalid { path, source })?;
        Ok(config)
    }

    /// Parses a config file without validating it. TOML errors already carry
    /// the line, the column and the key.
    fn read(path: &Path) -> Result<Config, LoadError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
        toml::from_str(&text).map_err(|e| LoadError::parse(path, e))
    }

    /// Reads the sections commands without cameras need (`vireid embed`,
    /// `query`, `enrol`, `gallery`, `eval`, …): the whole file must parse (a
    /// typo anywhere is an error), but no `[[camera]]` is required. `None`
    /// gives the defaults with the state dir `.`.
    pub fn load_sections(path: Option<&Path>) -> Result<Config, LoadError> {
        let Some(path) = path else { return Ok(Config { state_dir: PathBuf::from("."), ..Default::default() }) };
        let config = Self::read(path)?;
        let check = || -> Result<(), SectionError> {
            config.embed.validate().map_err(in_section("embed"))?;
            config.gallery.validate().map_err(in_section("gallery"))?;
            config.adapt.validate().map_err(in_section("adapt"))?;
            config.events.validate().map_err(in_section("events"))
        };
        check().map_err(|source| LoadError::Invalid { path: path.to_path_buf(), source })?;
        Ok(config)
    }

    /// Checks every section (each stage's own `validate()`) and the cameras.
    pub fn validate(&self) -> Result<(), SectionError> {
        if self.cameras.is_empty() {
            return Err(SectionError {
                section: None,
                error: ConfigError::new(
                    "camera",
                    "no cameras configured: add at least one [[camera]] table with name, modality and source",
                ),
            });
        }
        ingest::validate_cameras(&self.cameras).map_err(|error| SectionError { section: None, error })?;
        self.ingest.validate().map_err(in_section("ingest"))?;
        self.detect.validate().map_err(in_section("detect"))?;
        self.track.validate().map_err(in_section("track"))?;
        self.embed.validate().map_err(in_section("embed"))?;
        self.gallery.validate().map_err(in_section("gallery"))?;
        self.events.validate().map_err(in_section("events"))?;
        self.mqtt.validate().map_err(in_section("mqtt"))?;
        self.api.validate().map_err(in_section("api"))?;
        self.pair.validate().map_err(in_section("pair"))?;
        self.adapt.validate().map_err(in_section("adapt"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `config/example.toml` shows every section with its defaults: it must
    /// stay a valid config (README: "documents every key").
    #[test]
    fn the_example_config_is_valid_and_complete() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("{}", crate::core::error_chain(&e)));
        assert_eq!(config.cameras.len(), 2);
        let text = std::fs::read_to_string(&path).unwrap();
        for section in [
            "ingest",
            "detect",
            "detect.hog",
            "detect.onnx",
            "detect.perspective",
            "track",
            "pair",
            "embed",
            "gallery",
            "events",
            "mqtt",
            "api",
        ] {
            assert!(text.contains(&format!("\n[{section}]\n")), "config/example.toml lacks [{section}]");
        }
    }

    /// Every key a config can hold (serde's own field lists, traced through
    /// every section) is written, set or commented out, in its section of
    /// `config/example.toml`: the file claims to document every key, and a
    /// new field without a line there fails here.
    #[test]
    fn the_example_config_documents_every_key() {
        use serde_reflection::{ContainerFormat, Format, Registry, Samples, Tracer, TracerConfig};
        let mut tracer = Tracer::new(TracerConfig::default());
        tracer.trace_type::<Config>(&Samples::new()).unwrap();
        // Unchecked: enum variants (modality, file_pace, …) are values, not keys.
        let registry = tracer.registry_unchecked();
        fn keys(registry: &Registry, container: &str, section: &str, out: &mut Vec<(String, String)>) {
            let Some(ContainerFormat::Struct(fields)) = registry.get(container) else { return };
            for field in fields {
                let mut format = &field.value;
                while let Format::Option(inner) | Format::Seq(inner) = format {
                    format = inner;
                }
                match format {
                    Format::TypeName(t) if matches!(registry.get(t), Some(ContainerFormat::Struct(_))) => {
                        let name =
                            if section.is_empty() { field.name.clone() } else { format!("{section}.{}", field.name) };
                        keys(registry, t, &name, out);
                    }
                    _ => out.push((section.to_string(), field.name.clone())),
                }
            }
        }
        let mut wanted = vec![];
        keys(&registry, "Config", "", &mut wanted);
        assert!(wanted.len() > 80, "the trace found only {} keys: {wanted:?}", wanted.len());

        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml")).unwrap();
        let mut documented = std::collections::HashSet::new();
        let mut section = String::new();
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
                section = name.to_string();
            } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name.to_string();
            } else if let Some((key, _)) = line.trim_start_matches(['#', ' ']).split_once('=') {
                let key = key.trim();
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
                    documented.insert((section.clone(), key.to_string()));
                }
            }
        }
        let missing: Vec<String> = wanted
            .iter()
            .filter(|k| !documented.contains(*k))
            .map(|(s, k)| if s.is_empty() { k.clone() } else { format!("[{s}] {k}") })
            .collect();
        assert!(missing.is_empty(), "config/example.toml does not document: {}", missing.join(", "));
    }

    /// A wrong type named a Rust type ("expected usize").
    #[test]
    fn type_errors_are_in_words() {
        for (value, words) in
            [("\"x\"", "expected a whole number, 0 or more"), ("-3", "expected a whole number, 0 or more")]
        {
            let err = Config::parse(&format!(
                "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[ingest]\nqueue_frames = {value}\n"
            ))
            .unwrap_err()
            .to_string();
            assert!(err.contains(words) && !err.contains("usize"), "{err}");
            assert!(err.contains("queue_frames"), "the key is shown: {err}");
        }
    }

    /// `[events.mqtt]` said only "unknown field `mqtt`".
    #[test]
    fn mqtt_under_events_points_to_its_own_section() {
        let err = Config::parse(
            "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[events.mqtt]\nhost = \"h\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `mqtt`") && err.contains("write [mqtt]"), "{err}");
    }

    #[test]
    fn errors_name_the_file_the_section_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("box.toml");
        std::fs::write(
            &path,
            "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[gallery]\nmin_gap = 3\n",
        )
        .unwrap();
        let err = Config::load(&path).unwrap_err();
        let LoadError::Invalid { source, .. } = &err else { panic!("{err}") };
        assert_eq!((source.section, source.error.key.as_str()), (Some("gallery"), "gallery.min_gap"));
        let text = crate::core::error_chain(&err);
        assert!(text.contains("box.toml") && text.contains("in [gallery]: gallery.min_gap = 3"), "{text}");
        assert_eq!(text.matches("gallery.min_gap = 3").count(), 1, "said once: {text}");
    }
}
