//! An RTSP server for H.264 MP4 files (e.g. a synthetic scene) or test
//! patterns (`vireid serve-rtsp`), so a box's ingest can be exercised end to
//! end without cameras: demos, and the reconnection integration test (which
//! kills and restarts this server mid-stream). Feature `media`.

use gstreamer_rtsp_server as rtsp;
use gstreamer_rtsp_server::prelude::*;
use std::path::PathBuf;

use super::gst_pipeline::{init_gstreamer, require_element};
use super::IngestError;

type Result<T> = std::result::Result<T, IngestError>;

macro_rules! bail {
    ($($msg:tt)+) => { return Err(IngestError::Invalid(format!($($msg)+))) };
}

/// The media pipeline for one mount (payloader must be called `pay0`).
fn launch_for(source: &str) -> Result<String> {
    if source == "test:" || source.starts_with("test:") {
        for e in ["videotestsrc", "x264enc", "rtph264pay"] {
            require_element(e, "test-pattern stream")?;
        }
        return Ok("( videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1 \
                   ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )"
            .to_string());
    }
    let path = PathBuf::from(source);
    if !path.is_file() {
        bail!("--mount source {}: file does not exist", path.display());
    }
    let path = std::fs::canonicalize(&path)
        .map_err(|e| IngestError::Invalid(format!("--mount source {}: {e}", path.display())))?;
    // An MP4 starts with its `ftyp` box; anything else (a .toml given by
    // mistake) would only fail once a client connects.
    let mut head = [0u8; 8];
    let read = std::fs::File::open(&path).and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head));
    if read.is_err() || &head[4..8] != b"ftyp" {
        bail!(
            "--mount source {} is not an MP4 file: serve an H.264 .mp4 (as `vireid synth scene` writes) or test:",
            path.display()
        );
    }
    let p = path.to_string_lossy();
    if p.contains('"') || p.contains('\\') {
        bail!("--mount source {p}: paths with quotes or backslashes are not supported; rename the file");
    }
    for e in ["filesrc", "qtdemux", "h264parse", "rtph264pay"] {
        require_element(e, "MP4 file stream")?;
    }
    // No re-encoding: the file's H.264 is sent as is (files must be H.264 MP4,
    // as `vireid synth scene` writes them).
    Ok(format!("( filesrc location=\"{p}\" ! qtdemux ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"))
}

/// Serves `mounts` (each `NAME=SOURCE`) on `address:port` until the process ends.
pub fn serve(address: &str, port: u16, mount_specs: &[String]) -> Result<()> {
    init_gstreamer()?;
    let server = rtsp::RTSPServer::new();
    server.set_address(address);
    server.set_service(&port.to_string());
    let mounts =
        server.mount_points().ok_or_else(|| IngestError::Gstreamer("RTSP server has no mount points".into()))?;
    let mut serving = vec![];
    for m in mount_specs {
        let (name, source) = m.split_once('=').ok_or_else(|| {
            IngestError::Invalid(format!("--mount '{m}' must be NAME=SOURCE (e.g. rgb=scene/rgb.mp4)"))
        })?;
        let name = name.trim_start_matches('/');
        if name.is_empty() {
            bail!("--mount '{m}' has an empty NAME");
        }
        let factory = rtsp::RTSPMediaFactory::new();
        factory.set_launch(&launch_for(source)?);
        // Every client gets its own pipeline from the file's start.
        factory.set_shared(false);
        mounts.add_factory(&format!("/{name}"), factory);
        serving.push(format!("serving rtsp://{address}:{port}/{name} from {source}"));
    }
    let main_loop = gstreamer::glib::MainLoop::new(None, false);
    let _source = server
        .attach(None)
        .map_err(|e| IngestError::Gstreamer(format!("cannot listen on {address}:{port}: is the port in use? ({e})")))?;
    // Only now that the port is bound: "serving" was once printed before a failed bind.
    for line in serving {
        println!("{line}");
    }
    main_loop.run();
    Ok(())
}
