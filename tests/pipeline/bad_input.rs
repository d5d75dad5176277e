//! Bad input through the real `vireid` binary: each case must exit non-zero
//! (or, for an unreachable camera, keep retrying) with a message naming the
//! thing and the fix — never a panic.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Runs vireid under coreutils `timeout`, so a hang fails the test (exit 124)
/// instead of blocking the whole test run.
fn vireid(args: &[&str]) -> Output {
    let out = Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_vireid"))
        .args(args)
        .output()
        .expect("cannot run vireid under timeout");
    assert_ne!(out.status.code(), Some(124), "vireid {args:?} hung for 60 s: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn stderr_of(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!s.contains("panicked"), "vireid panicked: {s}");
    s
}

fn check_config_fails(dir: &Path, toml: &str, expect: &[&str]) {
    let path = dir.join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let out = vireid(&["run", "--config", path.to_str().unwrap(), "--duration", "1"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "expected failure for:\n{toml}\nstderr: {err}");
    for e in expect {
        assert!(err.contains(e), "expected {e:?} in: {err}");
    }
}

#[test]
fn config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[[camera]]\nname = \"a\"\nmodality = \"thermal\"\nsource = \"test:\"\n",
        &["camera[1].name 'a'", "unique"],
    );
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"http://cam.local/stream\"\n",
        &["camera[0].source", "unknown URI scheme 'http'"],
    );
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"/no/such/video.mp4\"\n",
        &["/no/such/video.mp4", "does not exist"],
    );
    // Bad TOML: the parser's line/column and the offending text.
    check_config_fails(dir.path(), "[[camera]\nname = \"a\"\n", &["invalid config file", "line 1"]);
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"uv\"\nsource = \"test:\"\n",
        &["modality", "uv"],
    );
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[detect.hog]\nscale = 3.0\n",
        &["detect.hog.scale"],
    );
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n[ingest]\nqueue_frame = 3\n",
        &["queue_frame"],
    );
    let out = vireid(&["run", "--config", "/no/such/config.toml"]);
    assert!(!out.status.success() && stderr_of(&out).contains("/no/such/config.toml"));
}

#[test]
fn corrupt_and_missing_videos_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.mp4");
    // An MP4-looking header followed by garbage.
    let mut bytes = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom".to_vec();
    bytes.extend((0..20000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
    std::fs::write(&corrupt, bytes).unwrap();
    let out = vireid(&["detect", "--input", corrupt.to_str().unwrap(), "--modality", "rgb", "--jsonl", "-"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("corrupt.mp4"), "{err}");

    let out = vireid(&["detect", "--input", "/no/such.mp4", "--modality", "thermal", "--jsonl", "-"]);
    let err = stderr_of(&out);
    assert!(!out.status.success() && err.contains("/no/such.mp4") && err.contains("does not exist"), "{err}");
}

#[test]
fn missing_decoder_element_is_named() {
    let dir = tempfile::tempdir().unwrap();
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"jetson\"\nmodality = \"rgb\"\nsource = \"test:\"\ndecoder = \"nvv4l2decoder_not_here\"\n",
        &["'nvv4l2decoder_not_here'", "not available on this machine"],
    );
}

#[test]
fn unreachable_camera_keeps_retrying_and_says_so() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[[camera]]\nname = \"gate\"\nmodality = \"rgb\"\nsource = \"rtsp://127.0.0.1:{port}/none\"\n\
             [ingest]\nreconnect_initial_ms = 100\nreconnect_max_ms = 400\n"
        ),
    )
    .unwrap();
    let stats = dir.path().join("stats.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["run", "--config", cfg.to_str().unwrap(), "--duration", "3", "--tracks", "/dev/null", "--stats"])
        .arg(&stats)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    let status = child.wait_timeout_or_kill(Duration::from_secs(30));
    assert!(!err.contains("panicked"), "{err}");
    // It is still trying when the run ends, and it said why and that it retries.
    assert!(err.contains("gate") && err.contains("retrying in"), "{err}");
    assert!(status, "vireid run did not end cleanly: {err}");
    let s: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&stats).unwrap()).unwrap();
    let cam = &s["cameras"][0]["ingest"];
    assert!(cam["reconnects"].as_u64().unwrap() >= 3, "{s}");
    assert_eq!(cam["frames"], 0);
    assert!(cam["last_error"].as_str().unwrap().len() > 5, "{s}");
}

trait WaitTimeout {
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> bool;
}

impl WaitTimeout for std::process::Child {
    /// True if the process exited successfully within `limit`.
    fn wait_timeout_or_kill(&mut self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(st) = self.try_wait().unwrap() {
                return st.success();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
