//! A camera's `source` string: what kind of source it names. The GStreamer
//! pipeline that decodes it is built in [`super::gst_pipeline`] (feature `media`).

/// A `source` string this build does not understand.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

macro_rules! bail {
    ($($msg:tt)+) => { return Err(SourceError(format!($($msg)+))) };
}
use std::path::PathBuf;

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// A local video file (`/path`, `./path` or `file:///path`).
    File(PathBuf),
    /// An RTSP stream (`rtsp://`, `rtsps://`, `rtspt://`).
    Rtsp(String),
    /// A V4L2 device (`v4l2:///dev/video0`).
    V4l2(PathBuf),
    /// GStreamer's test pattern (`test:` or `test:PATTERN`, e.g. `test:ball`); live.
    Test(String),
}

impl SourceKind {
    /// Parses a source string. Anything with a scheme other than the ones
    /// above is rejected with the list of supported forms.
    pub fn parse(source: &str) -> Result<SourceKind, SourceError> {
        let s = source.trim();
        if let Some(rest) = s.strip_prefix("test:") {
            let pattern = rest.trim_start_matches("//");
            return Ok(SourceKind::Test(if pattern.is_empty() { "smpte".to_string() } else { pattern.to_string() }));
        }
        if let Some(rest) = s.strip_prefix("file://") {
            if !rest.starts_with('/') {
                bail!("'{s}' is not an absolute file URI: write file:///absolute/path or a plain path");
            }
            return Ok(SourceKind::File(PathBuf::from(rest)));
        }
        if let Some(rest) = s.strip_prefix("v4l2://") {
            let dev = if rest.is_empty() { "/dev/video0" } else { rest };
            return Ok(SourceKind::V4l2(PathBuf::from(dev)));
        }
        for scheme in ["rtsp://", "rtsps://", "rtspt://"] {
            if s.starts_with(scheme) {
                if s.len() == scheme.len() {
                    bail!("'{s}' has no host: write rtsp://HOST[:PORT]/PATH");
                }
                return Ok(SourceKind::Rtsp(s.to_string()));
            }
        }
        if let Some(idx) = s.find("://") {
            let scheme = &s[..idx];
            bail!(
                "unknown URI scheme '{scheme}' in '{s}': use a file path, file:///path, rtsp://host/path, v4l2:///dev/videoN or test:"
            );
        }
        if s.contains(':') && !s.starts_with('/') && !s.starts_with('.') {
            let scheme = s.split(':').next().unwrap_or("");
            if !scheme.is_empty()
                && scheme.chars().all(|c| c.is_ascii_alphanumeric())
                && !std::path::Path::new(s).exists()
            {
                bail!("unknown source scheme '{scheme}:' in '{s}': use a file path, file:///path, rtsp://host/path, v4l2:///dev/videoN or test:");
            }
        }
        Ok(SourceKind::File(PathBuf::from(s)))
    }

    /// Live sources are reconnected on error/end; files end (or loop).
    pub fn is_live(&self) -> bool {
        !matches!(self, SourceKind::File(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_source_forms() {
        assert_eq!(SourceKind::parse("/a/b.mp4").unwrap(), SourceKind::File("/a/b.mp4".into()));
        assert_eq!(SourceKind::parse("file:///a/b.mp4").unwrap(), SourceKind::File("/a/b.mp4".into()));
        assert_eq!(SourceKind::parse("rtsp://h:8554/x").unwrap(), SourceKind::Rtsp("rtsp://h:8554/x".into()));
        assert_eq!(SourceKind::parse("v4l2:///dev/video2").unwrap(), SourceKind::V4l2("/dev/video2".into()));
        assert_eq!(SourceKind::parse("test:").unwrap(), SourceKind::Test("smpte".into()));
        assert_eq!(SourceKind::parse("test:ball").unwrap(), SourceKind::Test("ball".into()));
        let err = SourceKind::parse("http://cam/stream").unwrap_err().to_string();
        assert!(err.contains("unknown URI scheme 'http'"), "{err}");
        let err = SourceKind::parse("srt:host").unwrap_err().to_string();
        assert!(err.contains("'srt:'"), "{err}");
        assert!(SourceKind::parse("file://relative").is_err());
        assert!(!SourceKind::parse("a.mp4").unwrap().is_live());
        assert!(SourceKind::parse("rtsp://h/x").unwrap().is_live());
    }
}
