//! `vireid eval`: agreement with the independent numpy reference
//! (`bench/eval_reference.py`) on random distance matrices with ties, and
//! clear errors on bad input.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vireid(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vireid")).args(args).env("VIREID_LOG", "warn").output().expect("run vireid")
}

fn python() -> PathBuf {
    let py = PathBuf::from(std::env::var("VIREID_PYTHON").unwrap_or_else(|_| "/work/main/.venv/bin/python".into()));
    assert!(
        py.exists(),
        "Python for the numpy reference not found at {}: set VIREID_PYTHON (the Makefile does) or run `make setup`",
        py.display()
    );
    py
}

fn write_meta(path: &Path, ids: &[i64], cams: &[i64]) {
    let mut text = String::from("id,cam\n");
    for (i, c) in ids.iter().zip(cams) {
        text.push_str(&format!("{i},{c}\n"));
    }
    std::fs::write(path, text).unwrap();
}

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Distances, query ids, query cams, gallery ids, gallery cams.
type Case = (Array2<f64>, Vec<i64>, Vec<i64>, Vec<i64>, Vec<i64>);

/// One random case: labels drawn so that some queries have no match, cameras
/// follow the protocol, and distances are quantised to tenths (many ties).
fn random_case(rng: &mut ChaCha8Rng, protocol: &str, nq: usize, ng: usize) -> Case {
    let (q_cams, g_cams): (&[i64], &[i64]) = match protocol {
        "sysu" => (&[3, 6], &[1, 2, 4, 5]),
        "llcm" => (&[1, 2, 3, 4], &[1, 2, 3, 4]),
        _ => (&[1], &[2]),
    };
    let q_ids: Vec<i64> = (0..nq).map(|_| rng.random_range(0..14)).collect();
    let g_ids: Vec<i64> = (0..ng).map(|_| rng.random_range(0..12)).collect();
    let qc: Vec<i64> = (0..nq).map(|_| q_cams[rng.random_range(0..q_cams.len())]).collect();
    let gc: Vec<i64> = (0..ng).map(|_| g_cams[rng.random_range(0..g_cams.len())]).collect();
    let d = Array2::from_shape_fn((nq, ng), |_| rng.random_range(0..10) as f64 / 10.0);
    (d, q_ids, qc, g_ids, gc)
}

#[test]
fn distmat_agrees_with_numpy_reference_on_random_matrices_with_ties() {
    let py = python();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/eval_reference.py");
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let mut compared = 0;
    for protocol in ["sysu", "regdb", "llcm"] {
        for (case, &(nq, ng)) in [(30usize, 7usize), (50, 25), (40, 60)].iter().enumerate() {
            let (d, qi, qc, gi, gc) = random_case(&mut rng, protocol, nq, ng);
            let (dm, qm, gm) = (dir.path().join("d.npy"), dir.path().join("q.csv"), dir.path().join("g.csv"));
            // Alternate float32 and float64 files.
            if case % 2 == 0 {
                ndarray_npy::write_npy(&dm, &d.mapv(|v| v as f32)).unwrap();
            } else {
                ndarray_npy::write_npy(&dm, &d).unwrap();
            }
            write_meta(&qm, &qi, &qc);
            write_meta(&gm, &gi, &gc);
            let (ours, theirs) = (dir.path().join("ours.json"), dir.path().join("ref.json"));
            let out = vireid(&[
                "eval",
                "distmat",
                "--protocol",
                protocol,
                "--distmat",
                p(&dm),
                "--query-meta",
                p(&qm),
                "--gallery-meta",
                p(&gm),
                "--json",
                p(&ours),
            ]);
            assert!(out.status.success(), "{protocol} case {case}: {}", String::from_utf8_lossy(&out.stderr));
            let out = Command::new(&py)
                .arg(&reference)
                .args([
                    "--protocol",
                    protocol,
                    "--distmat",
                    p(&dm),
                    "--query-meta",
                    p(&qm),
                    "--gallery-meta",
                    p(&gm),
                    "--json",
                    p(&theirs),
                ])
                .output()
                .unwrap();
            assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
            let (a, b) = (read_json(&ours), read_json(&theirs));
            assert_eq!(a["num_valid_queries"], b["num_valid_queries"], "{protocol} case {case}");
            let (ca, cb) = (a["cmc"].as_array().unwrap(), b["cmc"].as_array().unwrap());
            assert_eq!(ca.len(), ng.min(20), "{protocol} case {case}");
            assert_eq!(ca.len(), cb.len());
            for (k, (x, y)) in ca.iter().zip(cb).enumerate() {
                assert!(
                    (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6,
                    "{protocol} case {case} CMC rank {}: {x} vs {y}",
                    k + 1
                );
            }
            for key in ["mAP", "mINP"] {
                let (x, y) = (a[key].as_f64().unwrap(), b[key].as_f64().unwrap());
                assert!((x - y).abs() < 1e-6, "{protocol} case {case} {key}: {x} vs {y}");
            }
            // Not a vacuous comparison: something was matched and something missed.
            let valid = a["num_valid_queries"].as_u64().unwrap() as usize;
            assert!(valid > 0 && valid < nq, "{protocol} case {case}: {valid} valid of {nq}");
            compared += 1;
        }
    }
    assert_eq!(compared, 9);
}

fn failing(args: &[&str]) -> String {
    let out = vireid(args);
    assert!(!out.status.success(), "expected failure for {args:?}");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn distmat_bad_input_gives_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (dm, qm, gm) = (dir.path().join("d.npy"), dir.path().join("q.csv"), dir.path().join("g.csv"));
    ndarray_npy::write_npy(&dm, &Array2::<f32>::from_elem((3, 4), 0.5)).unwrap();
    write_meta(&qm, &[1, 2, 3], &[3, 3, 6]);
    write_meta(&gm, &[1, 2, 3, 4, 5], &[1, 1, 1, 1, 1]);
    let run = |d: &Path, q: &Path, g: &Path| {
        failing(&[
            "eval",
            "distmat",
            "--protocol",
            "sysu",
            "--distmat",
            p(d),
            "--query-meta",
            p(q),
            "--gallery-meta",
            p(g),
        ])
    };

    let err = run(&dm, &qm, &gm);
    assert!(err.contains("3×4") && err.contains("5 gallery"), "shape mismatch: {err}");

    let missing = dir.path().join("nope.npy");
    let err = run(&missing, &qm, &gm);
    assert!(err.contains("nope.npy") && err.contains("does not exist"), "missing matrix: {err}");
    let err = run(&dm, &dir.path().join("nope.csv"), &gm);
    assert!(err.contains("nope.csv"), "missing meta: {err}");

    write_meta(&gm, &[1, 2, 3, 4], &[1, 1, 1, 1]);
    let mut nan = Array2::<f64>::from_elem((3, 4), 0.5);
    nan[[2, 1]] = f64::NAN;
    let nan_path = dir.path().join("nan.npy");
    ndarray_npy::write_npy(&nan_path, &nan).unwrap();
    let err = run(&nan_path, &qm, &gm);
    assert!(err.contains("NaN at row 2, column 1"), "NaN: {err}");

    let ints = dir.path().join("ints.npy");
    ndarray_npy::write_npy(&ints, &Array2::<i32>::zeros((3, 4))).unwrap();
    let err = run(&ints, &qm, &gm);
    assert!(err.contains("float32 or float64"), "wrong dtype: {err}");

    let bad_header = dir.path().join("bad.csv");
    std::fs::write(&bad_header, "pid,camera\n1,1\n").unwrap();
    let err = run(&dm, &bad_header, &gm);
    assert!(err.contains("bad.csv") && err.contains("`id` and `cam`"), "header: {err}");

    write_meta(&gm, &[7, 8, 9, 10], &[1, 1, 1, 1]);
    let err = run(&dm, &qm, &gm);
    assert!(err.contains("no valid query"), "no valid query: {err}");

    // A good call succeeds and prints the table.
    write_meta(&gm, &[1, 2, 3, 4], &[1, 2, 4, 5]);
    let out = vireid(&[
        "eval",
        "distmat",
        "--protocol",
        "sysu",
        "--distmat",
        p(&dm),
        "--query-meta",
        p(&qm),
        "--gallery-meta",
        p(&gm),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("| R1 |"));
}

#[test]
fn dataset_wrong_layout_names_the_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let out_dir = dir.path().join("out");
    let run = |protocol: &str| {
        failing(&[
            "eval",
            "dataset",
            "--protocol",
            protocol,
            "--root",
            p(&root),
            "--baseline",
            "colorhist",
            "--out",
            p(&out_dir),
            "--quiet",
        ])
    };
    let err = run("sysu");
    assert!(err.contains("missing folder") && err.contains("data"), "{err}");
    std::fs::create_dir_all(root.join("exp")).unwrap();
    let err = run("sysu");
    assert!(err.contains("exp/test_id.txt"), "{err}");
    std::fs::write(root.join("exp/test_id.txt"), "1,2").unwrap();
    let err = run("sysu");
    assert!(err.contains("cam3"), "{err}");
    let err = failing(&[
        "eval",
        "dataset",
        "--protocol",
        "sysu",
        "--direction",
        "v2t",
        "--root",
        p(&root),
        "--baseline",
        "colorhist",
    ]);
    assert!(err.contains("--direction applies to regdb and llcm"), "{err}");
    let err = run("regdb");
    assert!(err.contains("idx"), "{err}");
    std::fs::create_dir_all(root.join("idx")).unwrap();
    let err = run("regdb");
    assert!(err.contains("test_visible_1.txt"), "{err}");
    let err = run("llcm");
    assert!(err.contains("test_vis.txt"), "{err}");
    // Listed but absent image files are named before any embedding starts.
    std::fs::write(root.join("idx/test_vis.txt"), "test_vis/cam1/0001/0001_c01_s1_f1_vis.jpg 0\n").unwrap();
    std::fs::write(root.join("idx/test_nir.txt"), "test_nir/cam4/0001/0001_c04_s1_f1_nir.jpg 0\n").unwrap();
    let err = run("llcm");
    assert!(err.contains("0001_c01_s1_f1_vis.jpg") && err.contains("missing"), "{err}");
}
