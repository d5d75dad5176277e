//! Scene video files: one camera's frames to an H.264 MP4 through GStreamer
//! (`appsrc ! videoconvert ! x264enc ! mp4mux ! filesink`). Feature `media`;
//! without it `vireid synth scene` renders crops and ground truth only (`--no-video`).

use anyhow::{bail, Context, Result};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::{Path, PathBuf};

/// Writes one camera's frames to an MP4 through GStreamer.
pub struct VideoWriter {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    path: PathBuf,
}

impl VideoWriter {
    pub fn open(path: &Path, format: &str, width: u32, height: u32, fps: u32) -> Result<VideoWriter> {
        gst::init().context(
            "GStreamer failed to initialise: install the GStreamer runtime (gstreamer1.0-plugins-base/good/ugly)",
        )?;
        let location = path.to_str().context("output path is not valid UTF-8")?;
        let desc = format!(
            "appsrc name=src format=time is-live=false block=true max-bytes={max} \
             caps=video/x-raw,format={format},width={width},height={height},framerate={fps}/1 \
             ! videoconvert ! video/x-raw,format=I420 \
             ! x264enc speed-preset=ultrafast key-int-max={gop} bitrate=4000 \
             ! mp4mux ! filesink location=\"{location}\"",
            max = (width * height * 3 * 4) as u64,
            gop = fps * 2,
        );
        let pipeline = gst::parse::launch(&desc)
            .with_context(|| {
                format!(
                    "cannot build the video pipeline for {}: is x264enc installed (gstreamer1.0-plugins-ugly)?",
                    path.display()
                )
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("video pipeline description did not produce a pipeline"))?;
        let src = pipeline
            .by_name("src")
            .context("appsrc missing from the video pipeline")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| anyhow::anyhow!("'src' is not an appsrc"))?;
        pipeline
            .set_state(gst::State::Playing)
            .with_context(|| format!("cannot start the video pipeline for {}", path.display()))?;
        Ok(VideoWriter { pipeline, src, path: path.to_path_buf() })
    }

    pub fn push(&self, data: Vec<u8>, frame: u32, fps: u32) -> Result<()> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        {
            let b = buffer.get_mut().context("fresh buffer is not writable")?;
            b.set_pts(gst::ClockTime::from_nseconds(frame as u64 * 1_000_000_000 / fps as u64));
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64));
        }
        if let Err(flow) = self.src.push_buffer(buffer) {
            let detail = self.bus_error().unwrap_or_default();
            bail!("writing {} failed at frame {frame} ({flow:?}){detail}", self.path.display());
        }
        Ok(())
    }

    fn bus_error(&self) -> Option<String> {
        let bus = self.pipeline.bus()?;
        let msg = bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error])?;
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(format!(": {} ({:?})", err.error(), err.debug()));
        }
        None
    }

    /// Sends end-of-stream and waits until the muxer has finished the file.
    pub fn finish(self) -> Result<()> {
        let _ = self.src.end_of_stream();
        let bus = self.pipeline.bus().context("pipeline has no bus")?;
        let result = match bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(err) => {
                    Err(anyhow::anyhow!("writing {} failed: {} ({:?})", self.path.display(), err.error(), err.debug()))
                }
                _ => Ok(()),
            },
            None => Err(anyhow::anyhow!("writing {} timed out waiting for the encoder to finish", self.path.display())),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }
}
