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

/// A config `vireid run` rejects: `vireid check-config` (the unit's
/// `ExecStartPre`) must reject it too, with the same message.
fn check_config_fails(dir: &Path, toml: &str, expect: &[&str]) {
    let path = dir.join("bad.toml");
    std::fs::write(&path, toml).unwrap();
    let path = path.to_str().unwrap();
    for args in [&["check-config", "--config", path][..], &["run", "--config", path, "--duration", "1"]] {
        let out = vireid(args);
        let err = stderr_of(&out);
        assert!(!out.status.success(), "expected `vireid {}` to fail for:\n{toml}\nstderr: {err}", args[0]);
        for e in expect {
            assert!(err.contains(e), "`vireid {}`: expected {e:?} in: {err}", args[0]);
        }
    }
}

/// What start-up loads or builds, check-config loads or builds too: the
/// model (readable, meets the contract), the token file, the test pattern
/// (`test:zzz` was a panic, exit 101); and a config it passes starts.
#[test]
fn check_config_makes_the_start_up_checks() {
    let dir = tempfile::tempdir().unwrap();
    let cam = "[[camera]]\nname = \"a\"\nmodality = \"rgb\"\nsource = \"test:\"\n";
    let token = "0123456789abcdef0123";
    let api = "[api]\nenabled = true\nbind = \"127.0.0.1:0\"\n";
    check_config_fails(
        dir.path(),
        &format!("{cam}{api}token = \"{token}\"\n[embed]\nmodel = \"/no/such/model.onnx\"\n"),
        &["/no/such/model.onnx", "cannot be read"],
    );
    let not_onnx = dir.path().join("not_a_model.onnx");
    std::fs::write(&not_onnx, b"not onnx").unwrap();
    check_config_fails(
        dir.path(),
        &format!("{cam}{api}token = \"{token}\"\n[embed]\nmodel = \"{}\"\n", not_onnx.display()),
        &["not_a_model.onnx", "not a loadable ONNX model"],
    );
    check_config_fails(
        dir.path(),
        &format!("{cam}{api}token_file = \"/no/such/api-token\"\n"),
        &["api.token_file", "/no/such/api-token"],
    );
    check_config_fails(
        dir.path(),
        "[[camera]]\nname = \"gate\"\nmodality = \"rgb\"\nsource = \"test:zzz\"\n",
        &["camera 'gate'", "'zzz'", "smpte", "ball"],
    );
    // The shipped unit's config, on a machine without its model and token.
    let unit_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/config.toml");
    if !Path::new("/etc/vireid/api-token").exists() {
        let out = vireid(&["check-config", "--config", unit_config.to_str().unwrap()]);
        let err = stderr_of(&out);
        assert!(
            !out.status.success() && err.contains("api.token_file") && err.contains("/etc/vireid/api-token"),
            "{err}"
        );
    }

    // Passes check-config, then starts (with the API and the model loaded).
    let good = dir.path().join("good.toml");
    let token_file = dir.path().join("api-token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::write(&good, format!("{cam}{api}token_file = \"{}\"\n", token_file.display())).unwrap();
    let good = good.to_str().unwrap();
    let out = vireid(&["check-config", "--config", good]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr_of(&out));
    assert!(
        text.contains("camera a [rgb]") && text.contains("api.token_file") && text.contains("vireid_default"),
        "{text}"
    );
    let out = vireid(&["run", "--config", good, "--duration", "1", "--tracks", "/dev/null"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
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

/// `serve-rtsp` said "serving…" and then failed to bind, and took a .toml
/// file as a stream (failing only once a client connected).
#[test]
fn serve_rtsp_rejects_a_busy_port_and_a_file_that_is_not_mp4() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = vireid(&["serve-rtsp", "--port", &port, "--mount", "cam=test:"]);
    let err = stderr_of(&out);
    assert!(!out.status.success(), "serve-rtsp on a busy port should fail: {err}");
    assert!(err.contains(&format!("cannot listen on 127.0.0.1:{port}")), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("serving"), "'serving' before the bind failed");

    let dir = tempfile::tempdir().unwrap();
    let toml = dir.path().join("config.toml");
    std::fs::write(&toml, "[[camera]]\nname = \"a\"\n").unwrap();
    let out = vireid(&["serve-rtsp", "--port", "0", "--mount", &format!("cam={}", toml.display())]);
    let err = stderr_of(&out);
    assert!(!out.status.success() && err.contains("is not an MP4 file"), "{err}");
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
    // The final state is what the log said at the end (it once read `retrying`).
    assert_eq!(cam["state"], "stopped", "{s}");
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
