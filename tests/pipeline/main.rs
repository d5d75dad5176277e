//! `vireid run` and `vireid detect` end to end: synthetic scenes, the ONNX
//! detector, RTSP reconnection on loopback, bad input, kill -9 of a run, real
//! footage (OpenCV's vtest.avi) on an RGB-only box.
//!
//! One test binary per topic (docs/ARCHITECTURE.md): each file below was its own
//! binary; together they link the library once.

mod bad_input;
mod crash_run_kill9;
mod onnx_detector;
mod real_footage;
mod rtsp_reconnect;
mod scene;
