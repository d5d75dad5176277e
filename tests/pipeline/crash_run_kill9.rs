//! Restart safety of the real thing: `vireid run` on a looping synthetic
//! day/night scene with the gallery back half, `kill -9` once sightings have
//! been emitted, then: the database opens, every emitted sighting is in it, and
//! `vireid run` starts again on the same state dir.

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vireid::events::SightingEvent;
use vireid::gallery::store::GalleryStore;
use vireid::synth::scene::{render_scene, SceneOptions};

fn config(dir: &Path) -> String {
    format!(
        r#"state_dir = "{d}/state"
[[camera]]
name = "rgb"
modality = "rgb"
source = "{d}/scene/rgb.mp4"
loop = true
[[camera]]
name = "thermal"
modality = "thermal"
source = "{d}/scene/thermal.mp4"
loop = true
[ingest]
file_pace = "fast"
width = 0
height = 0
[track]
max_age = 4
"#,
        d = dir.display()
    )
}

fn emitted(path: &Path) -> Vec<SightingEvent> {
    let Ok(f) = std::fs::File::open(path) else { return vec![] };
    // A torn last line (killed mid-write) was never fully emitted.
    std::io::BufReader::new(f).lines().map_while(Result::ok).filter_map(|l| serde_json::from_str(&l).ok()).collect()
}

#[test]
fn kill_9_vireid_run_then_restart_loses_no_emitted_sighting() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let opts = SceneOptions {
        out_dir: d.join("scene"),
        seconds: 6.0,
        seed: 11,
        fps: 10,
        width: 640,
        height: 360,
        people: 3,
        crops_dir: None,
        video: true,
    };
    render_scene(&opts).unwrap();
    std::fs::write(d.join("run.toml"), config(d)).unwrap();
    let sightings = d.join("sightings.jsonl");
    let run = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vireid"));
        c.args(["--log", "warn", "run", "--config"])
            .arg(d.join("run.toml"))
            .args(["--tracks", "/dev/null", "--baseline", "colorhist", "--sightings"])
            .arg(&sightings)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        c
    };
    let mut child = run(&[]).spawn().unwrap();
    let started = Instant::now();
    while emitted(&sightings).len() < 3 {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!("vireid run exited early ({status}): {err}");
        }
        assert!(started.elapsed() < Duration::from_secs(400), "no 3 sightings within 400 s");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let events = emitted(&sightings);

    let store =
        GalleryStore::open(&d.join("state/gallery.db"), Duration::from_secs(2)).expect("database opens after kill -9");
    let stored: std::collections::HashMap<i64, _> =
        store.sightings_of(None).unwrap().into_iter().map(|s| (s.id, s)).collect();
    for e in &events {
        let s = stored
            .get(&e.sighting_id)
            .unwrap_or_else(|| panic!("emitted sighting {} missing after kill -9", e.sighting_id));
        assert_eq!((s.identity_id, s.camera.as_str(), s.track_id), (e.identity_id, e.camera.as_str(), e.track_id));
    }
    drop(store);

    // The same state dir serves a new run, which appends to the same gallery.
    let out = run(&["--duration", "3"]).output().unwrap();
    assert!(out.status.success(), "restart failed: {}", String::from_utf8_lossy(&out.stderr));
    let store = GalleryStore::open(&d.join("state/gallery.db"), Duration::from_secs(2)).unwrap();
    assert!(store.sightings_of(None).unwrap().len() >= events.len());
}
