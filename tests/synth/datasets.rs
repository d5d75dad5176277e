//! `vireid synth sysu|regdb|sheet`: layouts, determinism and bad input, through the real binary.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn vireid() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vireid"))
}

fn run_ok(args: &[&str]) {
    let out = vireid().args(args).output().unwrap();
    assert!(out.status.success(), "vireid {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every file under `dir` with its bytes, by relative path.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(p.strip_prefix(root).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn sysu_layout_and_same_seed_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    for (dir, seed) in [(&a, "3"), (&b, "3"), (&c, "4")] {
        run_ok(&[
            "synth",
            "sysu",
            "--out",
            dir.to_str().unwrap(),
            "--ids",
            "12",
            "--seed",
            seed,
            "--images-per-cam",
            "2",
        ]);
    }
    let ta = tree(&a);
    assert_eq!(ta, tree(&b), "same seed must give byte-identical datasets");
    assert_ne!(ta, tree(&c), "another seed must give another dataset");

    // exp/*.txt: one comma-separated line each; together a partition of 1..=12.
    let mut all = Vec::new();
    for f in ["train_id.txt", "val_id.txt", "test_id.txt"] {
        let text = String::from_utf8(ta[&format!("exp/{f}")].clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{f}: one line");
        let ids: Vec<u32> = text.trim().split(',').map(|s| s.parse().unwrap()).collect();
        assert!(!ids.is_empty(), "{f} empty");
        all.extend(ids);
    }
    all.sort_unstable();
    assert_eq!(all, (1..=12).collect::<Vec<_>>());

    // camN/NNNN/NNNN.jpg; every id in ≥1 RGB cam and ≥1 IR cam (3 or 6); IR crops grey.
    let mut rgb_ids = std::collections::HashSet::new();
    let mut ir_ids = std::collections::HashSet::new();
    let attributes = String::from_utf8(ta["attributes.csv"].clone()).unwrap();
    assert_eq!(attributes.lines().count(), 1 + 12, "attributes.csv: a header and one row per identity");
    for path in ta.keys().filter(|p| !p.starts_with("exp/") && *p != "attributes.csv") {
        let parts: Vec<&str> = path.split('/').collect();
        assert_eq!(parts.len(), 3, "{path}");
        let cam: u32 = parts[0].strip_prefix("cam").unwrap().parse().unwrap();
        assert!((1..=6).contains(&cam), "{path}");
        assert_eq!(parts[1].len(), 4, "{path}");
        let id: u32 = parts[1].parse().unwrap();
        assert!(parts[2].len() == 8 && parts[2].ends_with(".jpg"), "{path}");
        let img = image::load_from_memory(&ta[path]).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (96, 192));
        let grey = img.pixels().all(|p| p[0].abs_diff(p[1]) <= 6 && p[1].abs_diff(p[2]) <= 6);
        if cam == 3 || cam == 6 {
            assert!(grey, "{path}: IR camera images are grey");
            ir_ids.insert(id);
        } else {
            assert!(!grey, "{path}: RGB camera images have colour");
            rgb_ids.insert(id);
        }
    }
    assert_eq!(rgb_ids.len(), 12);
    assert_eq!(ir_ids.len(), 12);
}

#[test]
fn regdb_layout() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("regdb");
    run_ok(&["synth", "regdb", "--out", out.to_str().unwrap(), "--ids", "6", "--seed", "2"]);
    for k in 1..=10 {
        let mut train_ids = std::collections::BTreeSet::new();
        let mut test_ids = std::collections::BTreeSet::new();
        for split in ["train", "test"] {
            let mut per_modality = Vec::new();
            for modality in ["visible", "thermal"] {
                let text = std::fs::read_to_string(out.join(format!("idx/{split}_{modality}_{k}.txt"))).unwrap();
                let lines: Vec<(String, u32)> = text
                    .lines()
                    .map(|l| {
                        let (p, lab) = l.rsplit_once(' ').unwrap();
                        (p.to_string(), lab.parse().unwrap())
                    })
                    .collect();
                assert_eq!(lines.len(), 3 * 10, "{split} {modality} {k}: 3 ids × 10 images");
                for (p, _) in &lines {
                    let folder = if modality == "visible" { "Visible/" } else { "Thermal/" };
                    assert!(p.starts_with(folder), "{p}");
                    assert!(out.join(p).is_file(), "{p} listed but missing");
                    let id: u32 = p.split('/').nth(1).unwrap().parse().unwrap();
                    if split == "train" {
                        train_ids.insert(id)
                    } else {
                        test_ids.insert(id)
                    };
                }
                // Labels are 0-based and contiguous within the split.
                let labels: std::collections::BTreeSet<u32> = lines.iter().map(|l| l.1).collect();
                assert_eq!(labels, (0..3).collect());
                per_modality
                    .push(lines.iter().map(|l| (l.0.split('/').nth(1).unwrap().to_string(), l.1)).collect::<Vec<_>>());
            }
            assert_eq!(per_modality[0], per_modality[1], "visible and thermal labels agree");
        }
        assert!(train_ids.is_disjoint(&test_ids));
        assert_eq!(train_ids.len() + test_ids.len(), 6);
    }
    let thermal = std::fs::read_dir(out.join("Thermal/1")).unwrap().count();
    let visible = std::fs::read_dir(out.join("Visible/1")).unwrap().count();
    assert_eq!((thermal, visible), (10, 10));
}

#[test]
fn regdb_paired_sized_with_attributes() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("regdb");
    let o = out.to_str().unwrap();
    run_ok(&[
        "synth", "regdb", "--out", o, "--ids", "4", "--seed", "2", "--images", "3", "--width", "48", "--height", "96",
        "--paired",
    ]);
    let pairs = std::fs::read_to_string(out.join("idx/pairs.txt")).unwrap();
    let pairs: Vec<(&str, &str)> =
        pairs.lines().filter(|l| !l.starts_with('#')).map(|l| l.split_once(' ').unwrap()).collect();
    assert_eq!(pairs.len(), 4 * 3, "one pair per identity and instant");
    for (v, t) in &pairs {
        assert!(v.starts_with("Visible/") && t.starts_with("Thermal/"), "{v} {t}");
        assert_eq!(v.split('/').nth(1), t.split('/').nth(1), "a pair is one person");
        let (vi, ti) = (image::open(out.join(v)).unwrap().to_luma8(), image::open(out.join(t)).unwrap().to_luma8());
        assert_eq!(vi.dimensions(), (48, 96));
        assert_eq!(ti.dimensions(), (48, 96));
    }
    // Paired crops share the person's outline: a thermal crop is closer (in
    // its edge map) to its own instant's RGB crop than to the person's other instants.
    let edges = |p: &str| {
        let img = image::open(out.join(p)).unwrap().to_luma8();
        let mut e = Vec::new();
        for y in 0..img.height() {
            for x in 1..img.width() {
                e.push((img.get_pixel(x, y)[0] as f32 - img.get_pixel(x - 1, y)[0] as f32).abs().min(40.0));
            }
        }
        e
    };
    let corr = |a: &[f32], b: &[f32]| {
        let (ma, mb) = (a.iter().sum::<f32>() / a.len() as f32, b.iter().sum::<f32>() / b.len() as f32);
        let cov: f32 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
        let va: f32 = a.iter().map(|x| (x - ma).powi(2)).sum();
        let vb: f32 = b.iter().map(|y| (y - mb).powi(2)).sum();
        cov / (va * vb).sqrt()
    };
    let (mut same, mut other) = (0.0, 0.0);
    for (i, (v, t)) in pairs.iter().enumerate() {
        let j = if i % 3 == 2 { i - 2 } else { i + 1 }; // another instant of the same person
        same += corr(&edges(v), &edges(t));
        other += corr(&edges(pairs[j].0), &edges(t));
    }
    assert!(same > other + 0.5, "paired instants should align: {same} vs {other}");
    let csv = std::fs::read_to_string(out.join("attributes.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("id,female:2,"), "{}", lines[0]);
    assert_eq!(lines.len(), 1 + 4);
    assert_eq!(std::fs::read_dir(out.join("Thermal/1")).unwrap().count(), 3);
    // bad sizes and counts are clear errors
    assert!(run_err(&["synth", "regdb", "--out", o, "--ids", "4", "--images", "0"]).contains("--images"));
    assert!(run_err(&["synth", "regdb", "--out", o, "--ids", "4", "--width", "8"]).contains("--width"));
}

#[test]
fn sheet_writes_a_png() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sheet.png");
    run_ok(&["synth", "sheet", "--out", out.to_str().unwrap(), "--ids", "2", "--cell", "64"]);
    let img = image::open(&out).unwrap();
    assert_eq!((img.width(), img.height()), (4 * (32 + 4) + 4, 2 * (64 + 4) + 4));
}

fn run_err(args: &[&str]) -> String {
    let out = vireid().args(args).output().unwrap();
    assert!(!out.status.success(), "vireid {args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "vireid {args:?} panicked: {err}");
    err
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("x");
    let d = d.to_str().unwrap();
    assert!(run_err(&["synth", "sysu", "--out", d, "--ids", "0"]).contains("--ids 0"));
    assert!(run_err(&["synth", "regdb", "--out", d, "--ids", "1"]).contains("at least 2"));
    assert!(run_err(&["synth", "sysu", "--out", d, "--ids", "-3"]).contains("--ids"));
    assert!(run_err(&["synth", "sysu", "--out", d, "--ids", "5", "--images-per-cam", "0"]).contains("--images-per-cam"));
    assert!(run_err(&["synth", "scene", "--out", d, "--seconds", "0"]).contains("--seconds"));
    assert!(run_err(&["synth", "scene", "--out", d, "--seconds", "nan"]).contains("--seconds"));
    assert!(run_err(&["synth", "sheet", "--out", &format!("{d}/s.png"), "--ids", "0"]).contains("--ids"));
    assert!(run_err(&["synth", "teapot"]).contains("teapot"));
    // An output path under a regular file cannot be created.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let under_file = file.join("out");
    let err = run_err(&["synth", "sysu", "--out", under_file.to_str().unwrap(), "--ids", "3"]);
    assert!(err.contains("cannot create output directory") && err.contains("--out"), "{err}");
    let err = run_err(&["synth", "scene", "--out", under_file.to_str().unwrap(), "--seconds", "2"]);
    assert!(err.contains("cannot create output directory"), "{err}");
}
