//! The `vireid embed`, `enrol`, `query`, `gallery` commands through the binary:
//! outputs, and clear non-zero exits on bad input.

use std::path::{Path, PathBuf};
use std::process::Command;

fn python() -> PathBuf {
    let p = std::env::var_os("VIREID_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".venv/bin/python"));
    assert!(p.exists(), "VIREID_PYTHON ({}) does not exist: run `make setup` or export VIREID_PYTHON", p.display());
    p
}

fn vireid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vireid")).args(["--log", "warn"]).args(args).output().unwrap()
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn fail(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected failure, got: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!err.contains("panicked"), "panic: {err}");
    err
}

fn solid(path: &Path, rgb: [u8; 3]) {
    image::RgbImage::from_pixel(20, 40, image::Rgb(rgb)).save(path).unwrap();
}

#[test]
fn embed_enrol_query_forget_round_trip_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = Command::new(python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed_models.py"))
        .arg(d)
        .status()
        .unwrap();
    assert!(status.success());
    let model = d.join("tiny.onnx");
    let m = model.to_str().unwrap();
    let imgs = d.join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    solid(&imgs.join("a.png"), [250, 10, 10]);
    solid(&imgs.join("b.jpg"), [10, 250, 10]);
    std::fs::write(imgs.join("notes.txt"), "not an image, ignored by extension").unwrap();

    let npy = d.join("f.npy");
    ok(&vireid(&["embed", "--model", m, "--images", imgs.to_str().unwrap(), "--out", npy.to_str().unwrap()]));
    let f: ndarray::Array2<f32> = ndarray_npy::read_npy(&npy).unwrap();
    assert_eq!(f.dim(), (2, 8));
    for r in f.rows() {
        assert!((r.dot(&r) - 1.0).abs() < 1e-4, "unit rows");
    }
    assert_eq!(std::fs::read_to_string(d.join("f.txt")).unwrap(), "a.png\nb.jpg\n");

    let state = d.join("state");
    let s = state.to_str().unwrap();
    let a = imgs.join("a.png");
    let out =
        ok(&vireid(&["enrol", "--model", m, "--label", "alice", "--image", a.to_str().unwrap(), "--state-dir", s]));
    assert!(out.contains("identity 1"), "{out}");
    let out = ok(&vireid(&["query", "--model", m, "--image", a.to_str().unwrap(), "--state-dir", s, "--json"]));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The API's body (`POST /api/v1/query`).
    let best = &v["matches"][0];
    assert_eq!(best["identity_id"], 1);
    assert_eq!(best["label"], "alice");
    assert!(best["score"].as_f64().unwrap() > 0.999);
    assert_eq!(best["cross_modality"], false);

    // Bad input: not an image, missing model, missing gallery, unknown identity.
    let bogus = d.join("bogus.jpg");
    std::fs::write(&bogus, "hello").unwrap();
    let err = fail(&vireid(&["query", "--model", m, "--image", bogus.to_str().unwrap(), "--state-dir", s]));
    assert!(err.contains("bogus.jpg") && err.contains("not a readable image"), "{err}");
    let err =
        fail(&vireid(&["enrol", "--model", m, "--label", "x", "--image", bogus.to_str().unwrap(), "--state-dir", s]));
    assert!(err.contains("not a readable image"), "{err}");
    let err = fail(&vireid(&["query", "--model", "/no/model.onnx", "--image", a.to_str().unwrap(), "--state-dir", s]));
    assert!(err.contains("/no/model.onnx"), "{err}");
    let err = fail(&vireid(&[
        "query",
        "--model",
        m,
        "--image",
        a.to_str().unwrap(),
        "--state-dir",
        d.join("none").to_str().unwrap(),
    ]));
    assert!(err.contains("no gallery at"), "{err}");
    let err = fail(&vireid(&["gallery", "forget", "99", "--state-dir", s]));
    assert!(err.contains("identity 99 is not in the gallery"), "{err}");

    // The failed enrol stored nothing; forget removes the identity.
    let out = ok(&vireid(&["gallery", "list", "--state-dir", s]));
    assert!(out.contains("1 identities"), "{out}");
    ok(&vireid(&["gallery", "forget", "1", "--state-dir", s]));
    let out = ok(&vireid(&["gallery", "list", "--state-dir", s]));
    assert!(out.contains("0 identities"), "{out}");
}

/// The default model and ONNX Runtime are found from any working directory
/// (they once had to be the repo root: "embedding model
/// engines/vireid_default.onnx cannot be read", then "ONNX Runtime library
/// not found" without ORT_DYLIB_PATH, as a user running the README's
/// walkthrough elsewhere has it).
#[test]
fn the_default_model_is_found_from_another_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let imgs = d.join("imgs");
    std::fs::create_dir(&imgs).unwrap();
    solid(&imgs.join("a.png"), [250, 10, 10]);
    let out = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "embed", "--images", "imgs", "--out", "f.npy"])
        .current_dir(d)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(text.contains("vireid_default"), "{text}");
    let f: ndarray::Array2<f32> = ndarray_npy::read_npy(d.join("f.npy")).unwrap();
    assert_eq!(f.nrows(), 1);
}
