//! A camera's source → the GStreamer pipeline that decodes it (feature `media`).

use gstreamer as gst;
use gstreamer::prelude::*;

use super::source::SourceKind;
use super::{CameraConfig, FilePace, IngestConfig, IngestError};

type Result<T> = std::result::Result<T, IngestError>;
use crate::core::Modality;

/// Initialises GStreamer once; a clear error if the library cannot start.
pub fn init_gstreamer() -> Result<()> {
    gst::init().map_err(|e| {
        IngestError::Gstreamer(format!(
            "cannot initialise GStreamer: is libgstreamer1.0 installed? (scripts/setup.sh installs it): {e}"
        ))
    })
}

/// Fails with the element's name (and the package that usually has it) when
/// this machine lacks a GStreamer element the pipeline needs.
pub fn require_element(name: &str, why: &str) -> Result<gst::ElementFactory> {
    gst::ElementFactory::find(name).ok_or_else(|| {
        IngestError::Gstreamer(format!(
            "GStreamer element '{name}' ({why}) is not available on this machine: install the plugin that provides it \
             (check with `gst-inspect-1.0 {name}`)"
        ))
    })
}

/// The raw-video caps appsink asks for: RGB or GRAY8 by modality, optionally scaled.
pub fn sink_caps(modality: Modality, ingest: &IngestConfig) -> String {
    let format = match modality {
        Modality::Rgb => "RGB",
        Modality::Thermal => "GRAY8",
    };
    let mut caps = format!("video/x-raw,format={format}");
    if ingest.width > 0 {
        caps.push_str(&format!(",width={},height={},pixel-aspect-ratio=1/1", ingest.width, ingest.height));
    }
    caps
}

/// Builds (but does not start) the pipeline for one camera. The source
/// element is called `src`, the sink `sink`. Properties taken from the user
/// (paths, URIs) are set on the elements, never pasted into pipeline text, so
/// no quoting can break the description.
pub fn build_pipeline(cam: &CameraConfig, ingest: &IngestConfig) -> Result<gst::Pipeline> {
    let kind = SourceKind::parse(&cam.source)
        .map_err(|e| IngestError::Invalid(format!("camera '{}' source: {e}", cam.name)))?;
    if let Some(dec) = &cam.decoder {
        // Prefer the configured (e.g. hardware) decoder when decodebin autoplugs.
        let factory = require_element(dec, &format!("decoder configured for camera '{}'", cam.name))?;
        factory.set_rank(gst::Rank::PRIMARY + 100);
    }
    for (el, why) in [("videoconvert", "colour conversion"), ("videoscale", "scaling"), ("appsink", "frame hand-off")] {
        require_element(el, why)?;
    }
    let caps = sink_caps(cam.modality, ingest);
    // Files read in "fast" mode must not be clocked; everything else is
    // delivered at its own rate like a camera would.
    let sync = !(matches!(kind, SourceKind::File(_)) && ingest.file_pace == FilePace::Fast);
    let tail = format!(
        "videoconvert ! videoscale ! {caps} ! appsink name=sink sync={sync} max-buffers=2 drop=false enable-last-sample=false"
    );
    let head = match &kind {
        SourceKind::File(_) => {
            require_element("uridecodebin", "file decoding")?;
            "uridecodebin name=src".to_string()
        }
        SourceKind::Rtsp(_) => {
            require_element("rtspsrc", "RTSP client")?;
            require_element("decodebin", "decoding")?;
            format!("rtspsrc name=src latency={} ! decodebin", ingest.rtsp_latency_ms)
        }
        SourceKind::V4l2(_) => {
            require_element("v4l2src", "V4L2 capture")?;
            require_element("decodebin", "decoding")?;
            "v4l2src name=src ! decodebin".to_string()
        }
        SourceKind::Test(_) => {
            require_element("videotestsrc", "test pattern")?;
            let (w, h) = if ingest.width > 0 { (ingest.width, ingest.height) } else { (640, 480) };
            format!("videotestsrc name=src is-live=true ! video/x-raw,width={w},height={h},framerate=10/1")
        }
    };
    let description = format!("{head} ! {tail}");
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| {
            IngestError::Gstreamer(format!(
                "camera '{}': cannot build GStreamer pipeline '{description}': {e}",
                cam.name
            ))
        })?
        .downcast::<gst::Pipeline>()
        .map_err(|_| {
            IngestError::Gstreamer(format!("camera '{}': pipeline description did not give a pipeline", cam.name))
        })?;
    let src = pipeline.by_name("src").ok_or_else(|| IngestError::Gstreamer("pipeline has no 'src' element".into()))?;
    match &kind {
        SourceKind::File(path) => {
            let abs = std::fs::canonicalize(path).map_err(|e| {
                IngestError::Invalid(format!(
                    "camera '{}': video file {} does not exist: check the path ({e})",
                    cam.name,
                    path.display()
                ))
            })?;
            let uri = gst::glib::filename_to_uri(&abs, None).map_err(|e| {
                IngestError::Invalid(format!("camera '{}': cannot make a URI from {}: {e}", cam.name, abs.display()))
            })?;
            src.set_property("uri", uri.as_str());
        }
        SourceKind::Rtsp(uri) => src.set_property("location", uri.as_str()),
        SourceKind::V4l2(dev) => src.set_property("device", dev.to_string_lossy().as_ref()),
        SourceKind::Test(pattern) => {
            let nick = test_pattern(&src, pattern).map_err(|names| {
                IngestError::Invalid(format!(
                    "camera '{}' source 'test:{pattern}': videotestsrc has no pattern '{pattern}': use one of {names}",
                    cam.name
                ))
            })?;
            src.set_property_from_str("pattern", &nick);
        }
    }
    Ok(pipeline)
}

/// The nick of the `pattern` a `test:` source names (by nick, name or
/// number), or the list of valid nicks: `set_property_from_str` panics on a
/// value the enum lacks, so the value is looked up first.
fn test_pattern(src: &gst::Element, pattern: &str) -> std::result::Result<String, String> {
    let class = src.find_property("pattern").and_then(|p| gst::glib::EnumClass::with_type(p.value_type()));
    let Some(class) = class else { return Err("(videotestsrc has no pattern property)".into()) };
    let found = class
        .value_by_nick(pattern)
        .or_else(|| class.value_by_name(pattern))
        .or_else(|| pattern.parse::<i32>().ok().and_then(|n| class.value(n)));
    match found {
        Some(v) => Ok(v.nick().to_string()),
        None => Err(class.values().iter().map(|v| v.nick()).collect::<Vec<_>>().join(", ")),
    }
}

/// Builds `cam`'s pipeline and drops it: the check `vireid check-config`
/// shares with [`super::start_camera`] (source, decoder and elements, test
/// pattern names), without opening the source.
pub fn check_camera(cam: &CameraConfig, ingest: &IngestConfig) -> Result<()> {
    init_gstreamer()?;
    build_pipeline(cam, ingest).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_decoder_element_is_named() {
        init_gstreamer().unwrap();
        let cam = CameraConfig {
            name: "front".into(),
            modality: Modality::Rgb,
            source: "test:".into(),
            box_name: "box0".into(),
            loop_file: false,
            decoder: Some("nosuchdecoder_xyz".into()),
        };
        let err = format!("{:#}", build_pipeline(&cam, &IngestConfig::default()).unwrap_err());
        assert!(err.contains("'nosuchdecoder_xyz'") && err.contains("front"), "{err}");
    }

    /// `test:zzz` was a panic (`set_property_from_str` on an unknown enum value).
    #[test]
    fn unknown_test_pattern_is_an_error_listing_the_patterns() {
        init_gstreamer().unwrap();
        let mut cam = CameraConfig {
            name: "front".into(),
            modality: Modality::Rgb,
            source: "test:zzz".into(),
            box_name: "box0".into(),
            loop_file: false,
            decoder: None,
        };
        let err = check_camera(&cam, &IngestConfig::default()).unwrap_err().to_string();
        assert!(
            err.contains("'zzz'") && err.contains("front") && err.contains("smpte") && err.contains("ball"),
            "{err}"
        );
        for ok in ["test:ball", "test:", "test:18"] {
            cam.source = ok.into();
            check_camera(&cam, &IngestConfig::default()).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }
}
