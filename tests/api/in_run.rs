//! `vireid run` with `[api] enabled`: the API is served beside the pipeline,
//! over the same gallery, with the cameras' live counters in `/metrics`;
//! SIGTERM stops both cleanly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A minimal HTTP/1.1 GET; returns (status, body).
fn get(port: u16, path: &str, token: Option<&str>) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Connection: close\r\n\r\n").ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

const TOKEN: &str = "sesame-0123456789abcdef";

/// A config in `dir` with test-pattern cameras (`name=pattern`, modality from
/// the name) and the API on a free port; returns (config path, port).
fn config_with_api(dir: &std::path::Path, cameras: &[(&str, &str, &str)]) -> (std::path::PathBuf, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.join("config.toml");
    let mut text = format!("state_dir = \"{}\"\n", dir.join("state").display());
    for (name, modality, pattern) in cameras {
        text += &format!("[[camera]]\nname = \"{name}\"\nmodality = \"{modality}\"\nsource = \"{pattern}\"\n");
    }
    text += &format!(
        "[ingest]\nwidth = 160\nheight = 120\n[api]\nenabled = true\nbind = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n"
    );
    std::fs::write(&config, text).unwrap();
    (config, port)
}

/// `vireid --log LOG run EMBEDDER… --config CONFIG` for at most 60 s, stderr piped.
fn spawn_run(log: &str, embedder: &[&std::ffi::OsStr], config: &std::path::Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", log, "run"])
        .args(embedder)
        .arg("--config")
        .arg(config)
        .args(["--tracks", "/dev/null", "--duration", "60"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGTERM, then the exit status and everything it wrote to stderr.
fn stop(mut child: std::process::Child, within: Duration) -> (std::process::ExitStatus, String) {
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + within;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "vireid run did not exit within {within:?} of SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status, err)
}

#[test]
fn run_serves_the_api_with_live_camera_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let (config, port) =
        config_with_api(dir.path(), &[("cam-rgb", "rgb", "test:ball"), ("cam-thermal", "thermal", "test:snow")]);
    let mut child = spawn_run("warn", &["--baseline".as_ref(), "colorhist".as_ref()], &config);

    // Wait until frames from both cameras show in /metrics.
    let deadline = Instant::now() + Duration::from_secs(40);
    let metrics = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("vireid run exited early with {status}: {err}");
        }
        if let Some((200, body)) = get(port, "/metrics", Some(TOKEN)) {
            let counted = |cam: &str| {
                body.lines()
                    .find(|l| l.starts_with("vireid_frames_total") && l.contains(cam))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            if counted("cam-rgb") > 0 && counted("cam-thermal") > 0 {
                break body;
            }
        }
        assert!(Instant::now() < deadline, "the API in vireid run never showed frames from both cameras");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(metrics.contains("vireid_camera_up{camera=\"cam-rgb\",state=\"running\"} 1"), "{metrics}");
    assert_eq!(get(port, "/healthz", None).map(|r| r.0), Some(200));
    assert_eq!(get(port, "/api/v1/identities", None).map(|r| r.0), Some(401), "the gallery needs the token");
    let (status, body) = get(port, "/api/v1/identities", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<serde_json::Value>(&body).unwrap().is_array(), "{body}");

    let (status, err) = stop(child, Duration::from_secs(30));
    assert!(status.success(), "exit {status} after SIGTERM: {err}");
    assert!(get(port, "/healthz", None).is_none(), "the API should be gone after exit");
}

/// `vireid run` with the API loads its embedding model once: the pipeline's
/// embed worker and the API's uploads share it (the log says "embedding model
/// loaded" once per load), and both work.
#[test]
fn run_with_the_api_loads_the_model_once() {
    let dir = tempfile::tempdir().unwrap();
    let model = crate::support::tiny_model(dir.path());
    let (config, port) = config_with_api(dir.path(), &[("cam-rgb", "rgb", "test:ball")]);
    let mut child = spawn_run("info", &["--model".as_ref(), model.as_os_str()], &config);
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        assert!(child.try_wait().unwrap().is_none(), "vireid run exited early");
        if let Some((200, _)) = get(port, "/api/v1/identities", Some(TOKEN)) {
            break;
        }
        assert!(Instant::now() < deadline, "the API in vireid run never answered");
        std::thread::sleep(Duration::from_millis(200));
    }
    let (status, err) = stop(child, Duration::from_secs(30));
    assert!(status.success(), "exit {status} after SIGTERM: {err}");
    let loads = err.lines().filter(|l| l.contains("embedding model loaded")).count();
    assert_eq!(loads, 1, "the model should be loaded once for the pipeline and the API:\n{err}");
}

/// `/metrics` pipeline counters rise during `vireid run` (they once stayed at
/// 0 with sightings stored): a looping synthetic scene with people, the API on.
#[test]
fn run_feeds_the_pipeline_counters_and_stage_times() {
    let dir = tempfile::tempdir().unwrap();
    let scene =
        vireid::synth::scene::render_scene(&vireid::synth::scene::SceneOptions::new(dir.path().join("scene"), 8.0, 3))
            .unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = dir.path().join("config.toml");
    let mut text = format!("state_dir = \"{}\"\n", dir.path().join("state").display());
    for (name, video) in [("rgb", &scene.rgb_video), ("thermal", &scene.thermal_video)] {
        text += &format!(
            "[[camera]]\nname = \"{name}\"\nmodality = \"{name}\"\nsource = \"{}\"\nloop = true\n",
            video.as_ref().unwrap().display()
        );
    }
    text += &format!("[api]\nenabled = true\nbind = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\n");
    std::fs::write(&config, text).unwrap();
    let mut child = spawn_run("warn", &["--baseline".as_ref(), "colorhist".as_ref()], &config);

    let value = |body: &str, name: &str| -> u64 {
        body.lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let wanted = [
        "vireid_detections_total",
        "vireid_tracks_total",
        "vireid_embeddings_total",
        "vireid_new_identities_total",
        "vireid_gallery_sightings",
    ];
    let deadline = Instant::now() + Duration::from_secs(90);
    let metrics = loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
            panic!("vireid run exited early with {status}: {err}");
        }
        let body = get(port, "/metrics", Some(TOKEN)).map(|r| r.1).unwrap_or_default();
        if wanted.iter().all(|n| value(&body, n) > 0) {
            break body;
        }
        assert!(Instant::now() < deadline, "pipeline counters stayed at 0 in /metrics:\n{body}");
        std::thread::sleep(Duration::from_millis(300));
    };
    for stage in ["detect", "track", "embed", "gallery"] {
        let count = metrics
            .lines()
            .find(|l| l.starts_with(&format!("vireid_stage_latency_seconds_count{{stage=\"{stage}\"}}")))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok());
        assert!(count.unwrap_or(0) > 0, "no {stage} latencies in:\n{metrics}");
    }
    // Stored sightings are the new identities plus the matches.
    let stored = value(&metrics, "vireid_gallery_sightings");
    assert!(value(&metrics, "vireid_new_identities_total") <= stored, "{metrics}");
    let (status, err) = stop(child, Duration::from_secs(30));
    assert!(status.success(), "exit {status} after SIGTERM: {err}");
}

/// `vireid serve` reads no camera, so it lists none (it once listed every
/// configured camera as "starting" forever: "0/2 cameras running").
#[test]
fn serve_lists_no_cameras() {
    let dir = tempfile::tempdir().unwrap();
    let (config, port) =
        config_with_api(dir.path(), &[("cam-rgb", "rgb", "test:ball"), ("cam-thermal", "thermal", "test:snow")]);
    let child = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "serve", "--baseline", "colorhist", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while get(port, "/healthz", None).map(|r| r.0) != Some(200) {
        assert!(Instant::now() < deadline, "vireid serve did not come up");
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, body) = get(port, "/api/v1/cameras", Some(TOKEN)).unwrap();
    assert_eq!((status, body.trim()), (200, "[]"));
    let (status, err) = stop(child, Duration::from_secs(30));
    assert!(status.success(), "exit {status} after SIGTERM: {err}");
}
