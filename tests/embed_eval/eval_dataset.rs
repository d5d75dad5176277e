//! `eval dataset` end to end on synthetic SYSU-MM01 and RegDB sets written by
//! `synth` in the real layouts, embedded by a small test-only embedder (the
//! project's real embedders are exercised once they exist on `main`).

use ndarray::Array2;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use vireid::core::Crop;
use vireid::embed::Embedder;
use vireid::eval::datasets::Direction;
use vireid::eval::distance::{pairwise, DistanceKind};
use vireid::eval::metrics::{evaluate, Labels, Protocol};
use vireid::eval::{load_test_set, run_dataset, DatasetOptions};

/// Test-only: mean luminance of 8 horizontal stripes, centred and L2-normalised.
/// Counts the crops it sees so cache hits and flip TTA can be checked.
struct StripeLuma {
    crops_seen: Arc<AtomicUsize>,
}

impl Embedder for StripeLuma {
    fn name(&self) -> String {
        "stripe-luma-test".into()
    }
    fn dim(&self) -> usize {
        8
    }
    fn embed(&mut self, crops: &[Crop]) -> vireid::embed::EmbedResult<Array2<f32>> {
        self.crops_seen.fetch_add(crops.len(), Ordering::SeqCst);
        let mut out = Array2::zeros((crops.len(), 8));
        for (i, crop) in crops.iter().enumerate() {
            let (w, h) = crop.image.dimensions();
            let mut sums = [0f32; 8];
            let mut counts = [0f32; 8];
            for (x, y, p) in crop.image.enumerate_pixels() {
                // Left-heavy weighting so a horizontal flip changes the feature.
                let weight = 1.0 + x as f32 / w as f32;
                let s = (y * 8 / h) as usize;
                sums[s] += weight * (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32);
                counts[s] += weight;
            }
            let means: Vec<f32> = sums.iter().zip(&counts).map(|(s, c)| s / c.max(1.0)).collect();
            let centre = means.iter().sum::<f32>() / 8.0;
            for (k, m) in means.iter().enumerate() {
                out[[i, k]] = m - centre + 1e-3;
            }
        }
        vireid::embed::l2_normalize_rows(&mut out);
        Ok(out)
    }
}

fn args(protocol: Protocol, root: &Path, out: &Path) -> DatasetOptions {
    DatasetOptions {
        protocol,
        root: root.to_path_buf(),
        mode: vireid::eval::datasets::SysuMode::All,
        shots: 1,
        direction: None,
        trials: 10,
        seed: 0,
        out: out.to_path_buf(),
        flip: false,
        distance: DistanceKind::Cosine,
        rerank: false,
        cache_dir: None,
        no_cache: false,
        quiet: true,
    }
}

#[test]
fn sysu_end_to_end_report_cache_flip_and_rerank() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sysu");
    vireid::synth::dataset::write_sysu(&root, 30, 5, 3, 32, 64).unwrap();
    let out = dir.path().join("report");
    let seen = Arc::new(AtomicUsize::new(0));
    let mut embedder = StripeLuma { crops_seen: seen.clone() };
    let a = args(Protocol::Sysu, &root, &out);
    let set = load_test_set(&a).unwrap();
    let report = run_dataset(&a, &set, &mut embedder, "test").unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), set.images.len(), "each image embedded once");

    // report.json: 10 seeded trials, seeds reported, a 20-or-gallery-long CMC.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    let trials = json["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 10);
    let seeds: Vec<u64> = trials.iter().map(|t| t["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, (0..10).collect::<Vec<_>>());
    assert_eq!(json["reranking"], serde_json::Value::Null);
    let cmc: Vec<f64> = json["mean"]["cmc"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(cmc.windows(2).all(|w| w[0] <= w[1]) && cmc.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(cmc.len(), 20.min(report.trials[0].num_gallery));
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        md.contains("| Method | R1 | R10 | R20 | mAP | mINP |")
            && md.contains("stripe-luma-test")
            && md.contains("seed 9"),
        "{md}"
    );
    let png = image::open(out.join("cmc.png")).unwrap();
    assert!(png.width() > 100);

    // The report's trial 0 is the library's metric on the cached features.
    let feats: Array2<f32> = ndarray_npy::read_npy(out.join("cache/features-stripe-luma-test.npy")).unwrap();
    let t0 = &set.trials[0];
    let labels = Labels::new(set.images.iter().map(|i| i.id).collect(), set.images.iter().map(|i| i.cam).collect());
    let d = pairwise(
        feats.select(ndarray::Axis(0), &t0.query).view(),
        feats.select(ndarray::Axis(0), &t0.gallery).view(),
        DistanceKind::Cosine,
    );
    let m = evaluate(d.view(), &labels.select(&t0.query), &labels.select(&t0.gallery), Protocol::Sysu).unwrap();
    assert_eq!(m, report.trials[0].metrics);

    // A second run reads the cache: no crop embedded.
    seen.store(0, Ordering::SeqCst);
    let again = run_dataset(&a, &set, &mut embedder, "test").unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 0, "features must come from the cache");
    assert_eq!(again.mean, report.mean);

    // Flip TTA embeds each crop twice and changes features (not the cache's).
    let mut flip = args(Protocol::Sysu, &root, &out);
    flip.flip = true;
    flip.rerank = true;
    let flipped = run_dataset(&flip, &set, &mut embedder, "test").unwrap();
    assert_eq!(seen.load(Ordering::SeqCst), 2 * set.images.len());
    assert_ne!(flipped.mean, report.mean);
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("+ flip + re-ranking") && md.contains("Re-ranking: **yes**"), "{md}");
}

#[test]
fn regdb_end_to_end_both_directions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("regdb");
    vireid::synth::dataset::write_regdb(&root, 6, 3, Default::default()).unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let mut embedder = StripeLuma { crops_seen: seen.clone() };
    for direction in [Direction::V2t, Direction::T2v] {
        let mut a = args(Protocol::Regdb, &root, &dir.path().join(direction.as_str()));
        a.direction = Some(direction);
        a.no_cache = true;
        let set = load_test_set(&a).unwrap();
        let report = run_dataset(&a, &set, &mut embedder, "test").unwrap();
        assert_eq!(report.trials.len(), 10);
        assert_eq!(report.trials[3].name, "split 4");
        assert_eq!(report.trials[3].seed, None);
        assert_eq!(report.setting, direction.as_str());
        // 3 test identities × 10 images per modality, all valid queries.
        assert_eq!((report.trials[0].num_queries, report.trials[0].num_gallery), (30, 30));
        assert_eq!(report.trials[0].metrics.num_valid_queries, 30);
    }
}

/// The whole command as a user runs it: `vireid synth sysu`, then
/// `vireid eval dataset --model` with a tiny ONNX model (tests/embed_models.py)
/// through the project's ONNX embedder.
#[test]
fn sysu_through_the_cli_with_an_onnx_model() {
    let python = std::path::PathBuf::from(
        std::env::var("VIREID_PYTHON").unwrap_or_else(|_| "/work/main/.venv/bin/python".into()),
    );
    assert!(
        python.exists(),
        "Python for the ONNX fixture not found at {}: set VIREID_PYTHON (the Makefile does)",
        python.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let models = dir.path().join("models");
    let status = std::process::Command::new(&python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed_models.py"))
        .arg(&models)
        .status()
        .unwrap();
    assert!(status.success(), "tests/embed_models.py failed");
    let bin = env!("CARGO_BIN_EXE_vireid");
    let root = synth_sysu(
        dir.path(),
        &["--ids", "25", "--images-per-cam", "2", "--width", "32", "--height", "64", "--seed", "9"],
    );
    let report_dir = dir.path().join("report");
    let out = std::process::Command::new(bin)
        .args([
            "eval",
            "dataset",
            "--protocol",
            "sysu",
            "--mode",
            "indoor",
            "--shots",
            "1",
            "--trials",
            "3",
            "--seed",
            "40",
            "--quiet",
            "--distance",
            "euclidean",
        ])
        .arg("--root")
        .arg(&root)
        .arg("--model")
        .arg(models.join("tiny.onnx"))
        .arg("--out")
        .arg(&report_dir)
        .env("VIREID_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "eval dataset: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| tiny |"), "{}", String::from_utf8_lossy(&out.stdout));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["setting"], "indoor-search, single-shot");
    assert_eq!(json["distance"], "euclidean");
    let seeds: Vec<u64> = json["trials"].as_array().unwrap().iter().map(|t| t["seed"].as_u64().unwrap()).collect();
    assert_eq!(seeds, vec![40, 41, 42]);
    let map = json["mean"]["mAP"].as_f64().unwrap();
    assert!(map > 0.0 && map <= 1.0, "mAP {map}");
    assert!(report_dir.join("cmc.png").is_file() && report_dir.join("report.md").is_file());
}

/// `vireid eval dataset --baseline colorhist` on a `vireid synth sysu` set:
/// the project's colour-histogram baseline through the real layout loader.
#[test]
fn sysu_through_the_cli_with_the_colorhist_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_vireid");
    let root = synth_sysu(
        dir.path(),
        &["--ids", "25", "--images-per-cam", "3", "--width", "48", "--height", "96", "--seed", "4"],
    );
    let report_dir = dir.path().join("report");
    let out = std::process::Command::new(bin)
        .args([
            "eval",
            "dataset",
            "--protocol",
            "sysu",
            "--mode",
            "all",
            "--shots",
            "1",
            "--quiet",
            "--baseline",
            "colorhist",
            "--flip",
        ])
        .arg("--root")
        .arg(&root)
        .arg("--out")
        .arg(&report_dir)
        .env("VIREID_LOG", "warn")
        .output()
        .unwrap();
    assert!(out.status.success(), "eval dataset: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["trials"].as_array().unwrap().len(), 10);
    assert_eq!(json["flip_tta"], true);
    let map = json["mean"]["mAP"].as_f64().unwrap();
    assert!(map > 0.0 && map <= 1.0, "mAP {map}");
    let md = std::fs::read_to_string(report_dir.join("report.md")).unwrap();
    assert!(md.contains("+ flip") && md.contains("all-search, single-shot"), "{md}");
}

/// `vireid synth sysu ARGS --out DIR/sysu`; returns the dataset root.
fn synth_sysu(dir: &Path, args: &[&str]) -> std::path::PathBuf {
    let root = dir.join("sysu");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["synth", "sysu"])
        .args(args)
        .arg("--out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "synth: {}", String::from_utf8_lossy(&out.stderr));
    root
}
