//! A person crop: what track keeps of a detection and embed turns into a
//! feature; also what `vireid embed`, `enrol`, `query` and `eval` read from
//! image files.

use std::path::{Path, PathBuf};

use super::modality::Modality;

/// One person crop. Thermal crops are grey replicated to three channels (as
/// SYSU-MM01 and RegDB store them).
#[derive(Debug, Clone)]
pub struct Crop {
    pub image: image::RgbImage,
    pub modality: Modality,
}

impl Crop {
    pub fn new(image: image::RgbImage, modality: Modality) -> Self {
        Crop { image, modality }
    }

    /// A crop from a single-channel image.
    pub fn from_gray(gray: &image::GrayImage, modality: Modality) -> Self {
        let rgb = image::DynamicImage::ImageLuma8(gray.clone()).to_rgb8();
        Crop { image: rgb, modality }
    }

    /// A crop of a decoded image: RGB as is, thermal reduced to grey (and
    /// replicated to three channels).
    pub fn from_image(image: &image::DynamicImage, modality: Modality) -> Self {
        match modality {
            Modality::Rgb => Crop::new(image.to_rgb8(), modality),
            Modality::Thermal => Crop::from_gray(&image.to_luma8(), modality),
        }
    }

    /// Loads an image file (JPEG, PNG, BMP) as a crop of `modality`.
    pub fn load(path: &Path, modality: Modality) -> Result<Crop, ImageFileError> {
        let img = image::ImageReader::open(path)
            .map_err(|source| ImageFileError::Open { path: path.to_path_buf(), source })?
            .with_guessed_format()
            .map_err(|source| ImageFileError::Open { path: path.to_path_buf(), source })?
            .decode()
            .map_err(|source| ImageFileError::Decode { path: path.to_path_buf(), source })?;
        Ok(Crop::from_image(&img, modality))
    }
}

/// An image file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ImageFileError {
    #[error("cannot open image {path}: check the path ({source})")]
    Open { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a readable image (JPEG or PNG expected): {source}")]
    Decode { path: PathBuf, source: image::ImageError },
    #[error("cannot list image folder {path}: {source}")]
    List { path: PathBuf, source: std::io::Error },
}

/// Image files (`.jpg`, `.jpeg`, `.png`, `.bmp`) directly in a folder, sorted by name.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>, ImageFileError> {
    let list_err = |source| ImageFileError::List { path: dir.to_path_buf(), source };
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).map_err(list_err)? {
        let p = entry.map_err(list_err)?.path();
        let ext = p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase());
        if p.is_file() && matches!(ext.as_deref(), Some("jpg" | "jpeg" | "png" | "bmp")) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}
