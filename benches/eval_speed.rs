//! Speed of the SYSU-MM01 protocol: all-search, single-shot-sized, 3,803
//! queries × 301 gallery × 10 trials, vireid's `evaluate` against the
//! straightforward numpy implementation of the same rules
//! (`bench/eval_reference.py`) on the same matrices, in the same run.
//!
//! `cargo bench --bench eval_speed` (needs `$VIREID_PYTHON` with numpy).
//! File loading is excluded on both sides; both check their mAPs agree.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use vireid::eval::distance::{pairwise, rerank_with_query_block, DistanceKind, RerankParams};
use vireid::eval::metrics::{evaluate, Labels, Protocol};

const QUERIES: usize = 3803;
const GALLERY: usize = 301;
const TRIALS: usize = 10;
const IDS: i64 = 96;

fn write_meta(path: &std::path::Path, labels: &Labels) {
    let mut text = String::from("id,cam\n");
    for (i, c) in labels.ids.iter().zip(&labels.cams) {
        text.push_str(&format!("{i},{c}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn main() {
    let python = PathBuf::from(std::env::var("VIREID_PYTHON").unwrap_or_else(|_| "/work/main/.venv/bin/python".into()));
    assert!(python.exists(), "numpy peer needs Python at {}: set VIREID_PYTHON", python.display());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3803);

    // SYSU-sized labels: 96 test identities, IR queries from cams 3 and 6.
    let query = Labels::new(
        (0..QUERIES).map(|i| i as i64 % IDS).collect(),
        (0..QUERIES).map(|_| if rng.random_bool(0.5) { 3 } else { 6 }).collect(),
    );
    write_meta(&dir.path().join("query.csv"), &query);
    let mut trials = Vec::new();
    for t in 0..TRIALS {
        // 301 of the 96 × 4 (identity, RGB camera) pairs, as a single-shot gallery.
        let mut pairs: Vec<(i64, i64)> = (0..IDS).flat_map(|id| [1, 2, 4, 5].map(|c| (id, c))).collect();
        for i in (1..pairs.len()).rev() {
            pairs.swap(i, rng.random_range(0..=i));
        }
        pairs.truncate(GALLERY);
        let gallery = Labels::new(pairs.iter().map(|p| p.0).collect(), pairs.iter().map(|p| p.1).collect());
        // Distances with some signal so rankings are realistic, quantised for ties.
        let dist = Array2::from_shape_fn((QUERIES, GALLERY), |(q, g)| {
            let base: f32 = rng.random_range(0.0..1.0);
            let d = if query.ids[q] == gallery.ids[g] { base * 0.6 } else { base };
            (d * 1000.0).round() / 1000.0
        });
        ndarray_npy::write_npy(dir.path().join(format!("trial_{t}.npy")), &dist).unwrap();
        write_meta(&dir.path().join(format!("gallery_{t}.csv")), &gallery);
        trials.push((dist, gallery));
    }

    let time_rust = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        let mut best = f64::MAX;
        let mut maps = Vec::new();
        for _ in 0..5 {
            let start = Instant::now();
            maps = pool.install(|| {
                trials
                    .iter()
                    .map(|(d, g)| evaluate(d.view(), &query, g, Protocol::Sysu).unwrap().map)
                    .collect::<Vec<_>>()
            });
            best = best.min(start.elapsed().as_secs_f64());
        }
        (best, maps)
    };
    let (rust_1, maps) = time_rust(1);
    let threads = rayon::current_num_threads();
    let (rust_n, _) = time_rust(threads);

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench/eval_reference.py");
    let out = Command::new(&python).arg(&script).arg("--bench").arg(dir.path()).output().expect("run numpy reference");
    assert!(out.status.success(), "numpy reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let numpy = result["seconds"].as_f64().unwrap();
    for (k, (ours, theirs)) in maps.iter().zip(result["mAP"].as_array().unwrap()).enumerate() {
        assert!((ours - theirs.as_f64().unwrap()).abs() < 1e-6, "trial {k}: mAP {ours} vs numpy {theirs}");
    }

    println!("SYSU all-search, {QUERIES} queries x {GALLERY} gallery x {TRIALS} trials (mAPs agree to 1e-6)");
    println!("  numpy reference (per-query loop)   {:>9.3} s", numpy);
    println!("  vireid evaluate, 1 thread          {:>9.4} s   {:>6.1}x faster", rust_1, numpy / rust_1);
    println!("  vireid evaluate, {threads} threads          {:>9.4} s   {:>6.1}x faster", rust_n, numpy / rust_n);

    // Re-ranking cost at this size (no peer: it is an option, reported for planning).
    let dim = 2048;
    let features = Array2::from_shape_fn((QUERIES + GALLERY, dim), |_| rng.random_range(-1.0f32..1.0));
    let (q, g) = features.view().split_at(ndarray::Axis(0), QUERIES);
    let start = Instant::now();
    let qq = pairwise(q, q, DistanceKind::Cosine);
    let block = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let d = rerank_with_query_block(qq.view(), q, g, DistanceKind::Cosine, RerankParams::default());
    let per_trial = start.elapsed().as_secs_f64();
    assert!(d.iter().all(|v| v.is_finite()));
    println!("k-reciprocal re-ranking, {QUERIES}+{GALLERY} items, dim {dim}: query block {block:.2} s once, then {per_trial:.2} s per trial");
}
