//! Where a file that comes with vireid (the default model, ONNX Runtime from
//! `make setup`) is looked for, so a command works from any directory.

use std::path::{Path, PathBuf};

/// `relative` under the working directory (a checkout's root), under the
/// checkout around the executable (`<repo>/target/[<triple>/]release/vireid`:
/// its folder and up to three above), and under the checkout this binary was
/// built from; in that order, without repeats.
pub fn around_checkout(relative: &Path) -> Vec<PathBuf> {
    let mut places = vec![relative.to_path_buf()];
    if let Some(exe) = std::env::current_exe().ok().and_then(|e| e.canonicalize().ok()) {
        places.extend(exe.ancestors().skip(1).take(4).map(|d| d.join(relative)));
    }
    places.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(relative));
    let mut seen = std::collections::HashSet::new();
    places.retain(|p| seen.insert(p.clone()));
    places
}
