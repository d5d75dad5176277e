//! Scene video files: one camera's frames to an H.264 MP4 through GStreamer
//! (`appsrc ! videoconvert ! x264enc ! mp4mux ! filesink`). Feature `media`;
//! without it `vireid synth scene` renders crops and ground truth only (`--no-video`).

use super::{Result, SynthError};
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
        let video = |m: String| SynthError::Video(m);
        gst::init().map_err(|e| {
            video(format!(
                "GStreamer failed to initialise: install the GStreamer runtime (gstreamer1.0-plugins-base/good/ugly): {e}"
            ))
        })?;
        let location = path
            .to_str()
            .ok_or_else(|| SynthError::Invalid(format!("output path {} is not valid UTF-8", path.display())))?;
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
            .map_err(|e| {
                video(format!(
                    "cannot build the video pipeline for {}: is x264enc installed (gstreamer1.0-plugins-ugly)? ({e})",
                    path.display()
                ))
            })?
            .downcast::<gst::Pipeline>()
            .map_err(|_| video("video pipeline description did not produce a pipeline".into()))?;
        let src = pipeline
            .by_name("src")
            .ok_or_else(|| video("appsrc missing from the video pipeline".into()))?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| video("'src' is not an appsrc".into()))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| video(format!("cannot start the video pipeline for {}: {e}", path.display())))?;
        Ok(VideoWriter { pipeline, src, path: path.to_path_buf() })
    }

    pub fn push(&self, data: Vec<u8>, frame: u32, fps: u32) -> Result<()> {
        let mut buffer = gst::Buffer::from_mut_slice(data);
        {
            let b = buffer.get_mut().ok_or_else(|| SynthError::Video("fresh buffer is not writable".into()))?;
            b.set_pts(gst::ClockTime::from_nseconds(frame as u64 * 1_000_000_000 / fps as u64));
            b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / fps as u64));
        }
        if let Err(flow) = self.src.push_buffer(buffer) {
            let detail = self.bus_error().unwrap_or_default();
            return Err(SynthError::Video(format!(
                "writing {} failed at frame {frame} ({flow:?}){detail}",
                self.path.display()
            )));
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
        let bus = self.pipeline.bus().ok_or_else(|| SynthError::Video("pipeline has no bus".into()))?;
        let result = match bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(120), &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(msg) => match msg.view() {
                gst::MessageView::Eos(_) => Ok(()),
                gst::MessageView::Error(err) => Err(SynthError::Video(format!(
                    "writing {} failed: {} ({:?})",
                    self.path.display(),
                    err.error(),
                    err.debug()
                ))),
                _ => Ok(()),
            },
            None => Err(SynthError::Video(format!(
                "writing {} timed out waiting for the encoder to finish",
                self.path.display()
            ))),
        };
        let _ = self.pipeline.set_state(gst::State::Null);
        result
    }
}
