//! `vireid adapt` and `vireid thresholds --from-gallery` through the binary, on
//! a gallery whose harvest is written through the library: the adapted model
//! runs in ONNX Runtime and gives exactly the adapter's features, and bad
//! input gets a clear, non-zero exit.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::embed_onnx::models;
use vireid::core::{BBox, Crop, Modality, Sighting};
use vireid::embed::adapter::Adapter;
use vireid::embed::onnx::OnnxEmbedder;
use vireid::embed::onnx_graph::Model;
use vireid::embed::{EmbedConfig, Embedder};
use vireid::gallery::harvest::{fingerprint, HarvestKind, HarvestRow};
use vireid::gallery::store::GalleryStore;

fn vireid(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vireid")).args(["--log", "warn"]).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn unit(v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / n).collect()
}

fn sighting(identity_id: i64, modality: Modality, t: i64) -> Sighting {
    Sighting {
        id: 0,
        identity_id,
        label: None,
        new_identity: false,
        camera: modality.as_str().into(),
        modality,
        track_id: t as u64,
        start_ns: t,
        end_ns: t + 1,
        start_pts_ns: None,
        end_pts_ns: None,
        best_pts_ns: None,
        best_box: BBox::new(0.0, 0.0, 10.0, 20.0),
        similarity: None,
        matched_modality: None,
        day_night_link: false,
        crop_path: None,
        paired_sighting_id: None,
    }
}

/// A box config over `state`, and a gallery there with `people` identities:
/// each seen once per modality (a co-observed pair), an exemplar per modality,
/// impostor pairs between neighbours, in the space of `model`.
fn harvested_box(dir: &Path, model: &Path, people: usize) -> PathBuf {
    let state = dir.join("state");
    let config = dir.join("box.toml");
    std::fs::write(&config, format!("state_dir = {:?}\n[embed]\nmodel = {:?}\n", state, model)).unwrap();
    let space = fingerprint(&std::fs::read(model).unwrap());
    let mut store = GalleryStore::open(&state.join("gallery.db"), std::time::Duration::from_secs(5)).unwrap();
    // Dimension 0 is who the person is in both modalities; 1 and 2 are each modality's own noise.
    let feature = |i: usize, m: Modality, k: usize| {
        let who = (i as f32 * 0.9).sin();
        let noise = ((i * 7 + k * 13) as f32).cos();
        match m {
            Modality::Rgb => unit(vec![who, noise, 0.1, 0.5, 0.0, 0.2, 0.1, 0.3]),
            Modality::Thermal => unit(vec![who, 0.1, noise, 0.5, 0.0, 0.2, 0.1, 0.3]),
        }
    };
    let mut sightings = vec![];
    store
        .write(|w| -> Result<(), vireid::gallery::store::StoreError> {
            for i in 0..people {
                let id = w.insert_identity(None, false, Modality::Rgb)?;
                let mut pair = vec![];
                for m in [Modality::Rgb, Modality::Thermal] {
                    w.insert_feature(id, m, None, &feature(i, m, 0))?;
                    pair.push(w.insert_sighting(&sighting(id, m, i as i64))?);
                }
                sightings.push((pair[0], pair[1]));
            }
            // (kind, whose first sighting, whose second, their modalities, feature seeds)
            let (r, t) = (Modality::Rgb, Modality::Thermal);
            for i in 0..people {
                let j = (i + 1) % people;
                let side = |who: usize, m| if m == r { sightings[who].0 } else { sightings[who].1 };
                let plan = [
                    (HarvestKind::Pair, i, i, r, t, 1, 2),
                    (HarvestKind::Impostor, i, j, r, t, 3, 4),
                    (HarvestKind::ImpostorSame, i, j, r, r, 5, 6),
                    (HarvestKind::ImpostorSame, i, j, t, t, 7, 8),
                ];
                let rows = plan.map(|(kind, a, b, am, bm, sa, sb)| HarvestRow {
                    kind,
                    a_sighting_id: side(a, am),
                    b_sighting_id: side(b, bm),
                    a_modality: am,
                    b_modality: bm,
                    a_feature: feature(a, am, sa),
                    b_feature: feature(b, bm, sb),
                });
                for x in &rows {
                    w.insert_harvest(x, &space)?;
                }
            }
            Ok(())
        })
        .unwrap();
    config
}

fn embed(model: &Path, crops: &[Crop]) -> ndarray::Array2<f32> {
    OnnxEmbedder::open(model, &EmbedConfig::default()).unwrap().embed(crops).unwrap()
}

#[test]
fn adapted_model_runs_the_adapter_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let base = models().join("tiny.onnx");
    let config = harvested_box(dir.path(), &base, 40);
    let (c, b) = (config.to_str().unwrap(), base.to_str().unwrap());
    let out = dir.path().join("adapted.onnx");
    let o = out.to_str().unwrap();
    let (ok, stdout, stderr) = vireid(&["adapt", "--config", c, "--model", b, "--out", o, "--min-pairs", "10"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("on 40 co-observed and 40 impostor pairs"), "{stdout}");
    assert!(stdout.contains("held-out check skipped"), "{stdout}");

    // ONNX Runtime runs model + adapter as one graph; it gives the adapter's own
    // mapping of the base model's features, in both modalities.
    let bytes = std::fs::read(&out).unwrap();
    let adapter = Adapter::read_from(&Model::parse(&bytes).unwrap()).unwrap().expect("an adapter in the model");
    let crops: Vec<Crop> = [[200, 30, 40], [10, 220, 90], [90, 90, 250]]
        .iter()
        .flat_map(|&c| {
            [Modality::Rgb, Modality::Thermal].map(|m| Crop::new(image::RgbImage::from_pixel(16, 32, image::Rgb(c)), m))
        })
        .collect();
    let (raw, adapted) = (embed(&base, &crops), embed(&out, &crops));
    for (i, crop) in crops.iter().enumerate() {
        let mut want = raw.row(i).to_vec();
        adapter.apply(&mut want, crop.modality);
        for (a, w) in adapted.row(i).iter().zip(&want) {
            assert!((a - w).abs() < 1e-5, "row {i}: {:?} vs {want:?}", adapted.row(i));
        }
    }

    // Refusals, each naming the thing and the fix.
    let (ok, _, e) = vireid(&["adapt", "--config", c, "--model", o, "--out", o]);
    assert!(!ok && e.contains("already adapted"), "{e}");
    let (ok, _, e) = vireid(&["adapt", "--config", c, "--model", b, "--out", o, "--min-pairs", "1000"]);
    assert!(!ok && e.contains("40 co-observed pairs") && e.contains("at least 1000"), "{e}");
    let nometa = models().join("tiny_nometa.onnx");
    let (ok, _, e) = vireid(&["adapt", "--config", c, "--model", nometa.to_str().unwrap(), "--out", o]);
    assert!(!ok && e.contains("metadata contract"), "{e}");
    let bad_out = dir.path().join("no/such/dir/m.onnx");
    let (ok, _, e) =
        vireid(&["adapt", "--config", c, "--model", b, "--out", bad_out.to_str().unwrap(), "--min-pairs", "10"]);
    assert!(!ok && e.contains("cannot write --out"), "{e}");
    // A harvest of another model is not mixed in.
    let two = models().join("tiny_two_stream.onnx");
    let (ok, _, e) = vireid(&["adapt", "--config", c, "--model", two.to_str().unwrap(), "--out", o]);
    assert!(!ok && e.contains("no co-observed pairs") && e.contains("other models only"), "{e}");
    // No gallery at all.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, format!("state_dir = {:?}\n", dir.path().join("nothing"))).unwrap();
    let (ok, _, e) = vireid(&["adapt", "--config", empty.to_str().unwrap(), "--model", b, "--out", o]);
    assert!(!ok && e.contains("no gallery"), "{e}");
}

#[test]
fn thresholds_from_the_harvest_alone() {
    let dir = tempfile::tempdir().unwrap();
    let base = models().join("tiny.onnx");
    let config = harvested_box(dir.path(), &base, 40);
    let (c, b) = (config.to_str().unwrap(), base.to_str().unwrap());
    let (ok, stdout, stderr) = vireid(&["thresholds", "--from-gallery", "--config", c, "--model", b, "--far", "0.05"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("[gallery]") && stdout.contains("from the harvest of"), "{stdout}");
    assert!(stdout.contains("over 80 impostor scores"), "two directions per same-modality impostor pair: {stdout}");
    let value = |key: &str| -> f32 {
        stdout.lines().find(|l| l.starts_with(key)).unwrap().split('=').nth(1).unwrap().trim().parse().unwrap()
    };
    assert!((-1.0..=1.0).contains(&value("same_modality_threshold")), "{stdout}");
    assert!((-1.0..=1.0).contains(&value("cross_modality_threshold")), "{stdout}");
    // Too small a harvest, and --root with --from-gallery, are clear errors.
    let small = tempfile::tempdir().unwrap();
    let config = harvested_box(small.path(), &base, 5);
    let (ok, _, e) = vireid(&["thresholds", "--from-gallery", "--config", config.to_str().unwrap(), "--model", b]);
    assert!(!ok && e.contains("impostor scores") && e.contains("--root"), "{e}");
    let (ok, _, e) = vireid(&["thresholds", "--from-gallery", "--root", "x", "--config", c]);
    assert!(!ok && e.contains("cannot be used with"), "{e}");
}
