//! Helpers shared by the `synth_*` integration tests.
#![allow(dead_code)]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::path::Path;

/// Decodes every frame of a video file with GStreamer's `decodebin` (what a
/// player would do), calling `each(index, width, height, packed BGR bytes)`.
/// Returns the number of frames decoded.
pub fn decode_bgr(path: &Path, mut each: impl FnMut(u32, u32, u32, &[u8])) -> u32 {
    gst::init().expect("GStreamer initialises");
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=BGR ! appsink name=sink sync=false",
        path.display()
    );
    let pipeline = gst::parse::launch(&desc).expect("decode pipeline").downcast::<gst::Pipeline>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).expect("decode pipeline starts");
    let mut n = 0;
    while let Ok(sample) = sink.pull_sample() {
        let caps = sample.caps().expect("caps");
        let s = caps.structure(0).unwrap();
        let (w, h) = (s.get::<i32>("width").unwrap() as u32, s.get::<i32>("height").unwrap() as u32);
        let buffer = sample.buffer().unwrap();
        let map = buffer.map_readable().unwrap();
        // videoconvert output for BGR rows is padded to 4 bytes.
        let stride = (w * 3).div_ceil(4) * 4;
        let mut packed = Vec::with_capacity((w * h * 3) as usize);
        for y in 0..h {
            let row = (y * stride) as usize;
            packed.extend_from_slice(&map[row..row + (w * 3) as usize]);
        }
        each(n, w, h, &packed);
        n += 1;
    }
    let bus = pipeline.bus().unwrap();
    if let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::ZERO, &[gst::MessageType::Error]) {
        if let gst::MessageView::Error(e) = msg.view() {
            panic!("decoding {} failed: {}", path.display(), e.error());
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    n
}

/// Parsed `ground_truth.jsonl` lines.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct GtLine {
    pub camera: String,
    pub frame: u32,
    pub pts_ns: u64,
    pub person_id: u32,
    pub segment: String,
    pub bbox: [f32; 4],
    pub visible: f32,
}

pub fn read_gt(path: &Path) -> Vec<GtLine> {
    std::fs::read_to_string(path)
        .expect("ground truth readable")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad ground-truth line {l}: {e}")))
        .collect()
}
