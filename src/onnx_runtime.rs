//! The one ONNX Runtime environment of the process (feature `infer`).
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) and allows one
//! environment per process. Every stage that runs an ONNX model — the
//! embedder, the ONNX detector — gets it from [`environment`], with the
//! library the config names (`[embed] ort_library`), so whichever loads first
//! loads the right library. The library is found by, in order: the configured
//! path, `ORT_DYLIB_PATH`, `.deps/onnxruntime/` (where `make setup` puts it)
//! under the working directory or the checkout around the executable, then
//! where the .deb installs it ([`INSTALLED_LIBRARY`]).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Why ONNX Runtime is not available.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OrtError {
    #[error(
        "ONNX Runtime library not found in {0}: set ORT_DYLIB_PATH (or [embed].ort_library) to libonnxruntime.so, or run `make setup`"
    )]
    NotFound(String),
    #[error(
        "ONNX Runtime library {} does not exist: fix ORT_DYLIB_PATH / [embed].ort_library or run `make setup`",
        .0.display()
    )]
    Missing(PathBuf),
    #[error("cannot load ONNX Runtime from {}: {message}", path.display())]
    Load { path: PathBuf, message: String },
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(String),
    #[error(
        "ONNX Runtime is already loaded from {} in this process, and {} was asked for: a process can load only one; \
         point [embed].ort_library and ORT_DYLIB_PATH at the same library",
        loaded.display(),
        wanted.display()
    )]
    Conflict { loaded: PathBuf, wanted: PathBuf },
}

struct Loaded {
    env: ort::environment::Environment,
    path: PathBuf,
}

static ENV: OnceLock<Result<Loaded, OrtError>> = OnceLock::new();

/// Where the .deb installs the library (the unit also sets `ORT_DYLIB_PATH` to it).
pub const INSTALLED_LIBRARY: &str = "/usr/lib/vireid/libonnxruntime.so";

/// Where the library is: `configured`, then `ORT_DYLIB_PATH`, then the newest
/// `libonnxruntime.so*` in the first `.deps/onnxruntime/` that has one
/// ([`crate::core::places::around_checkout`]), then
/// [`INSTALLED_LIBRARY`].
pub fn library_path(configured: Option<&Path>) -> Result<PathBuf, OrtError> {
    if let Some(p) = configured {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        return Ok(PathBuf::from(p));
    }
    let dirs = crate::core::places::around_checkout(Path::new(".deps/onnxruntime"));
    for dir in &dirs {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let mut libs: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("libonnxruntime.so")))
                .collect();
            libs.sort();
            if let Some(p) = libs.pop() {
                return Ok(p);
            }
        }
    }
    if Path::new(INSTALLED_LIBRARY).exists() {
        return Ok(PathBuf::from(INSTALLED_LIBRARY));
    }
    let looked: Vec<String> =
        dirs.iter().map(|d| format!("{}/", d.display())).chain([INSTALLED_LIBRARY.to_string()]).collect();
    Err(OrtError::NotFound(looked.join(", ")))
}

/// The process's environment, loading ONNX Runtime on first use from
/// `configured` (`[embed] ort_library`) or the defaults of [`library_path`].
/// A later call naming a different library is an error, not a silent mix.
pub fn environment(configured: Option<&Path>) -> Result<&'static ort::environment::Environment, OrtError> {
    let loaded = ENV.get_or_init(|| load(configured)).as_ref().map_err(Clone::clone)?;
    if let Some(wanted) = configured {
        if !same_file(wanted, &loaded.path) {
            return Err(OrtError::Conflict { loaded: loaded.path.clone(), wanted: wanted.to_path_buf() });
        }
    }
    Ok(&loaded.env)
}

fn load(configured: Option<&Path>) -> Result<Loaded, OrtError> {
    let path = library_path(configured)?;
    if !path.is_file() {
        return Err(OrtError::Missing(path));
    }
    let builder = ort::init_from(&path).map_err(|e| OrtError::Load { path: path.clone(), message: e.to_string() })?;
    let env = builder.with_name("vireid").build().map_err(|e| OrtError::Environment(e.to_string()))?;
    tracing::debug!(library = %path.display(), "ONNX Runtime loaded");
    Ok(Loaded { env, path })
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_library_comes_first() {
        assert_eq!(
            library_path(Some(Path::new("/opt/ort/libonnxruntime.so"))).unwrap(),
            Path::new("/opt/ort/libonnxruntime.so")
        );
        let e = OrtError::Missing("/no/libonnxruntime.so".into()).to_string();
        assert!(e.contains("/no/libonnxruntime.so") && e.contains("ort_library"), "{e}");
        assert!(same_file(Path::new("/a/b"), Path::new("/a/b")) && !same_file(Path::new("/a/b"), Path::new("/a/c")));
    }
}
