//! The ONNX embedder against tiny generated models (tests/embed_models.py):
//! exact features, the metadata contract, bad model files, provider failure.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use vireid::core::Crop;
use vireid::core::Modality;
use vireid::embed::metadata::ModalityHandling;
use vireid::embed::onnx::OnnxEmbedder;
use vireid::embed::{EmbedConfig, Embedder, ExecutionProviderKind, ProviderFailure};

fn python() -> PathBuf {
    let p = std::env::var_os("VIREID_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".venv/bin/python"));
    assert!(p.exists(), "VIREID_PYTHON ({}) does not exist: run `make setup` or export VIREID_PYTHON", p.display());
    p
}

/// Generates the fixture models once per test binary.
pub(crate) fn models() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(python())
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/embed_models.py"))
            .arg(dir.path())
            .status()
            .expect("run tests/embed_models.py");
        assert!(status.success(), "tests/embed_models.py failed");
        dir
    })
    .path()
}

fn solid(rgb: [u8; 3], w: u32, h: u32, m: Modality) -> Crop {
    Crop::new(image::RgbImage::from_pixel(w, h, image::Rgb(rgb)), m)
}

fn err_text(r: Result<OnnxEmbedder, vireid::embed::EmbedError>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => format!("{e:#}"),
    }
}

#[test]
fn tiny_model_gives_exact_normalised_features_in_chunks() {
    let cfg = EmbedConfig { max_batch: 2, ..Default::default() };
    let mut e = OnnxEmbedder::open(&models().join("tiny.onnx"), &cfg).unwrap();
    assert_eq!(e.dim(), 8);
    assert_eq!(e.contract().modality_handling, ModalityHandling::Shared);
    // 5 crops through max_batch 2: three runs, rows stay in order. Crops of other
    // sizes are resized; a uniform colour stays uniform.
    let colours = [[255u8, 127, 0], [0, 255, 255], [255, 255, 255], [0, 0, 0], [51, 102, 204]];
    let crops: Vec<Crop> =
        colours.iter().enumerate().map(|(i, c)| solid(*c, 16 + i as u32 * 7, 40, Modality::Rgb)).collect();
    let f = e.embed(&crops).unwrap();
    assert_eq!(f.dim(), (5, 8));
    for (row, c) in f.rows().into_iter().zip(colours) {
        let n: Vec<f32> = c.iter().map(|v| (*v as f32 / 255.0 - 0.5) / 0.5).collect();
        let mut want = [n[0], n[1], n[2], n[0], n[1], n[2], 0.0, 0.0];
        let norm = want.iter().map(|v| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            want.iter_mut().for_each(|v| *v /= norm);
        }
        for (a, b) in row.iter().zip(want) {
            assert!((a - b).abs() < 1e-3, "row {row:?} want {want:?}");
        }
    }
}

#[test]
fn two_stream_model_gets_the_modality_of_each_row() {
    let mut e = OnnxEmbedder::open(&models().join("tiny_two_stream.onnx"), &EmbedConfig::default()).unwrap();
    assert_eq!(e.contract().modality_handling, ModalityHandling::PerModality);
    let grey = image::GrayImage::from_pixel(16, 32, image::Luma([200]));
    let f =
        e.embed(&[solid([200, 200, 200], 16, 32, Modality::Rgb), Crop::from_gray(&grey, Modality::Thermal)]).unwrap();
    assert!(f[[0, 7]].abs() < 1e-5, "rgb row has no thermal shift: {:?}", f.row(0));
    assert!(f[[1, 7]] > 0.9, "thermal row is dominated by its shift: {:?}", f.row(1));
}

#[test]
fn model_without_metadata_needs_config_values() {
    let path = models().join("tiny_nometa.onnx");
    let msg = err_text(OnnxEmbedder::open(&path, &EmbedConfig::default()));
    assert!(
        msg.contains("vireid.input_height") && msg.contains("embed.input_height") && msg.contains("tiny_nometa"),
        "{msg}"
    );
    let cfg = EmbedConfig {
        input_height: Some(32),
        input_width: Some(16),
        mean: Some([0.5; 3]),
        std: Some([0.5; 3]),
        embedding_dim: Some(8),
        modality_handling: Some(ModalityHandling::Shared),
        ..Default::default()
    };
    let mut e = OnnxEmbedder::open(&path, &cfg).unwrap();
    let f = e.embed(&[solid([255, 0, 0], 16, 32, Modality::Rgb)]).unwrap();
    assert!((f[[0, 0]] - f[[0, 3]]).abs() < 1e-6 && f[[0, 0]] > 0.0);
    // A config that contradicts the graph is caught by the shape check.
    let wrong = EmbedConfig { embedding_dim: Some(16), ..cfg };
    let msg = err_text(OnnxEmbedder::open(&path, &wrong));
    assert!(msg.contains("expected [N,16]"), "{msg}");
}

#[test]
fn bad_model_files_are_named_errors() {
    let cfg = EmbedConfig::default();
    let msg = err_text(OnnxEmbedder::open(&models().join("does_not_exist.onnx"), &cfg));
    assert!(msg.contains("does_not_exist.onnx") && msg.contains("cannot be read"), "{msg}");
    let msg = err_text(OnnxEmbedder::open(&models().join("tiny_truncated.onnx"), &cfg));
    assert!(msg.contains("tiny_truncated.onnx") && msg.contains("not a loadable ONNX model"), "{msg}");
    let msg = err_text(OnnxEmbedder::open(&models().join("tiny_wrong_shape.onnx"), &cfg));
    assert!(msg.contains("tiny_wrong_shape.onnx") && msg.contains("expected [N,3,32,16]"), "{msg}");
    let msg = err_text(OnnxEmbedder::open(models(), &cfg));
    assert!(msg.contains("is not a file"), "{msg}");
}

#[test]
fn gpu_provider_failure_is_an_error_or_a_logged_fallback() {
    // This machine's ONNX Runtime is the CPU build: CUDA and TensorRT cannot register.
    for kind in [ExecutionProviderKind::Cuda, ExecutionProviderKind::Tensorrt] {
        let engines = tempfile::tempdir().unwrap();
        let strict = EmbedConfig {
            providers: vec![kind, ExecutionProviderKind::Cpu],
            on_provider_failure: ProviderFailure::Error,
            engine_cache_dir: engines.path().to_path_buf(),
            ..Default::default()
        };
        let msg = err_text(OnnxEmbedder::open(&models().join("tiny.onnx"), &strict));
        assert!(
            msg.contains(&format!("execution provider {kind} failed to register")) && msg.contains("fallback"),
            "{msg}"
        );
        let lenient = EmbedConfig { on_provider_failure: ProviderFailure::Fallback, ..strict };
        let mut e = OnnxEmbedder::open(&models().join("tiny.onnx"), &lenient).unwrap();
        assert_eq!(e.providers.failed.len(), 1);
        assert_eq!(e.providers.failed[0].0, kind);
        assert_eq!(e.providers.registered, vec![ExecutionProviderKind::Cpu]);
        assert_eq!(e.embed(&[solid([9, 9, 9], 16, 32, Modality::Rgb)]).unwrap().nrows(), 1);
    }
}
