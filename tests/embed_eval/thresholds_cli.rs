//! `vireid thresholds` through the binary on a synthetic RegDB-layout set:
//! both calibration levels print a usable `[gallery]` snippet, and bad input
//! gets a clear, non-zero exit.

use std::process::Command;

fn vireid(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vireid")).args(["--log", "warn"]).args(args).output().unwrap()
}

fn threshold(stdout: &str, key: &str) -> f32 {
    let line = stdout.lines().find(|l| l.starts_with(key)).unwrap_or_else(|| panic!("no {key} in:\n{stdout}"));
    line.split('=').nth(1).unwrap().trim().parse().unwrap()
}

#[test]
fn track_and_crop_level_thresholds_and_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("regdb");
    let r = root.to_str().unwrap();
    let out = vireid(&["synth", "regdb", "--out", r, "--ids", "12", "--seed", "5"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let run = |extra: &[&str]| {
        let mut a = vec!["thresholds", "--root", r, "--far", "0.05", "--baseline", "colorhist"];
        a.extend_from_slice(extra);
        vireid(&a)
    };
    let track = run(&[]);
    let track_out = String::from_utf8_lossy(&track.stdout).to_string();
    assert!(track.status.success(), "{}", String::from_utf8_lossy(&track.stderr));
    assert!(track_out.contains("per track-to-identity decisions"), "{track_out}");
    let crop = run(&["--level", "crop"]);
    let crop_out = String::from_utf8_lossy(&crop.stdout).to_string();
    assert!(crop.status.success() && crop_out.contains("per crop pairs"), "{crop_out}");
    for out in [&track_out, &crop_out] {
        let same = threshold(out, "same_modality_threshold");
        assert!((-1.0..=1.0).contains(&same), "{out}");
        let cross = threshold(out, "cross_modality_threshold");
        assert!((-1.0..=1.0).contains(&cross), "{out}");
    }
    // --per-modality writes thermal's own threshold; by default the one
    // same-modality threshold is the stricter of the two.
    let per = run(&["--per-modality"]);
    let per_out = String::from_utf8_lossy(&per.stdout).to_string();
    assert!(per.status.success(), "{}", String::from_utf8_lossy(&per.stderr));
    let (rgb, thermal) =
        (threshold(&per_out, "same_modality_threshold ="), threshold(&per_out, "same_modality_threshold_thermal"));
    assert_eq!(
        threshold(&track_out, "same_modality_threshold"),
        (rgb.max(thermal) * 1e4).round() / 1e4,
        "{per_out}\n{track_out}"
    );
    assert!(!track_out.contains("same_modality_threshold_thermal"));
    // A best-of-several-sets score is higher than a single crop pair's: the
    // track-level same-modality threshold is the stricter one.
    assert!(
        threshold(&track_out, "same_modality_threshold") > threshold(&crop_out, "same_modality_threshold"),
        "{track_out}\n{crop_out}"
    );

    // One set per person and modality leaves no genuine score: a clear error naming the fix.
    let few = run(&["--per-person-cam", "4", "--track-crops", "4"]);
    let err = String::from_utf8_lossy(&few.stderr);
    assert!(!few.status.success() && err.contains("track-sized sets") && !err.contains("panicked"), "{err}");
    let zero = run(&["--track-crops", "0"]);
    let err = String::from_utf8_lossy(&zero.stderr);
    assert!(!zero.status.success() && err.contains("--track-crops") && !err.contains("panicked"), "{err}");

    // A reader that goes away (`| head`) ends the command quietly, not in a panic.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vireid"))
        .args(["--log", "warn", "thresholds", "--root", r, "--far", "0.05", "--baseline", "colorhist"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let closed = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&closed.stderr);
    assert!(!closed.status.success() && !err.contains("panicked"), "{err}");
}

fn impostor_scores(stdout: &str, kind: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with(kind)).unwrap_or_else(|| panic!("no {kind} in:\n{stdout}"));
    let count = line.split(" over ").nth(1).and_then(|t| t.split(' ').next());
    count.and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no impostor count in {line}"))
}

/// Several `--root`s (e.g. the crops of several scenes) set one threshold, and
/// each folder's people are scored against each other only.
#[test]
fn several_roots_score_each_folders_people_among_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let roots: Vec<String> = [5, 6]
        .iter()
        .map(|seed| {
            let root = dir.path().join(format!("regdb-{seed}"));
            let r = root.to_str().unwrap().to_string();
            let out = vireid(&["synth", "regdb", "--out", &r, "--ids", "8", "--seed", &seed.to_string()]);
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            r
        })
        .collect();
    let run = |roots: &[&String]| {
        let mut a = vec!["thresholds", "--far", "0.05", "--baseline", "colorhist"];
        for r in roots {
            a.extend(["--root", r.as_str()]);
        }
        let out = vireid(&a);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (a, b, both) = (run(&[&roots[0]]), run(&[&roots[1]]), run(&[&roots[0], &roots[1]]));
    assert!(both.contains(" of 16 people from ") && both.contains(&format!("{}, {}", roots[0], roots[1])), "{both}");
    for kind in ["# RGB↔RGB", "# thermal↔thermal", "# RGB↔thermal"] {
        assert_eq!(impostor_scores(&both, kind), impostor_scores(&a, kind) + impostor_scores(&b, kind), "{both}");
    }
}
