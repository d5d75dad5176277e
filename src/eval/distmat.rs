//! `vireid eval distmat`: one trial on a given distance matrix (`.npy`) with
//! query/gallery label CSVs — how anyone cross-checks vireid against another
//! implementation.

use super::{invalid, Result, ResultExt, Within};
use ndarray::Array2;
use std::path::{Path, PathBuf};

use super::metrics::{evaluate, Labels, Metrics, Protocol};
use super::report::metrics_table;

#[derive(Debug, clap::Args)]
pub struct DistmatArgs {
    /// Which benchmark's rules apply.
    #[arg(long, value_enum)]
    pub protocol: Protocol,
    /// Query × gallery distance matrix, float32 or float64 `.npy` (rows = queries).
    #[arg(long)]
    pub distmat: PathBuf,
    /// Query labels: CSV with a header and columns `id,cam` (one row per matrix row).
    #[arg(long)]
    pub query_meta: PathBuf,
    /// Gallery labels: CSV with a header and columns `id,cam` (one row per matrix column).
    #[arg(long)]
    pub gallery_meta: PathBuf,
    /// Also write `{"cmc": [...], "mAP": x, "mINP": y, "num_valid_queries": n}` here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

pub fn run(args: &DistmatArgs) -> Result<()> {
    let query = read_meta_csv(&args.query_meta)?;
    let gallery = read_meta_csv(&args.gallery_meta)?;
    let metrics = match read_distmat(&args.distmat)? {
        DistMat::F32(d) => evaluate(d.view(), &query, &gallery, args.protocol),
        DistMat::F64(d) => evaluate(d.view(), &query, &gallery, args.protocol),
    }
    .within(|| {
        format!(
            "evaluating {} against {} and {}",
            args.distmat.display(),
            args.query_meta.display(),
            args.gallery_meta.display()
        )
    })?;
    println!(
        "protocol {} — {} queries ({} valid) × {} gallery",
        args.protocol.as_str(),
        query.len(),
        metrics.num_valid_queries,
        gallery.len()
    );
    println!("{}", metrics_table(&[("distmat", &metrics)]));
    if let Some(path) = &args.json {
        write_metrics_json(path, &metrics)?;
    }
    Ok(())
}

pub fn write_metrics_json(path: &Path, metrics: &Metrics) -> Result<()> {
    let text = serde_json::to_string_pretty(metrics).file(|| format!("cannot encode {}", path.display()))?;
    std::fs::write(path, text + "\n")
        .file(|| format!("cannot write {}: check the folder exists and is writable", path.display()))
}

/// A distance matrix as stored: float32 or float64.
pub enum DistMat {
    F32(Array2<f32>),
    F64(Array2<f64>),
}

pub fn read_distmat(path: &Path) -> Result<DistMat> {
    if !path.is_file() {
        invalid!("distance matrix {} does not exist: pass a 2-D float32/float64 .npy file", path.display());
    }
    match ndarray_npy::read_npy::<_, Array2<f32>>(path) {
        Ok(d) => Ok(DistMat::F32(d)),
        Err(e32) => match ndarray_npy::read_npy::<_, Array2<f64>>(path) {
            Ok(d) => Ok(DistMat::F64(d)),
            Err(e64) => invalid!(
                "cannot read distance matrix {}: it must be a 2-D float32 or float64 .npy (as float32: {e32}; as float64: {e64})",
                path.display()
            ),
        },
    }
}

/// Reads `id,cam` labels (header required; other columns ignored).
pub fn read_meta_csv(path: &Path) -> Result<Labels> {
    let text =
        std::fs::read_to_string(path).file(|| format!("cannot read label file {}: check the path", path.display()))?;
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        invalid!("label file {} is empty: it needs a header `id,cam` and one row per item", path.display())
    };
    let columns: Vec<String> = header.split(',').map(|c| c.trim().to_ascii_lowercase()).collect();
    let find = |name: &str| columns.iter().position(|c| c == name);
    let (Some(id_col), Some(cam_col)) = (find("id"), find("cam")) else {
        invalid!("label file {} has header `{header}` but needs columns `id` and `cam` (e.g. `id,cam`)", path.display())
    };
    let mut labels = Labels::default();
    for (line_no, line) in lines {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let parse = |col: usize, name: &str| -> Result<i64> {
            let raw = fields.get(col).ok_or_else(|| {
                super::EvalError::Invalid(format!(
                    "{}:{}: missing `{name}` column in `{line}`",
                    path.display(),
                    line_no + 1
                ))
            })?;
            raw.parse::<i64>()
                .invalid(|| format!("{}:{}: `{name}` must be an integer, got `{raw}`", path.display(), line_no + 1))
        };
        labels.ids.push(parse(id_col, "id")?);
        labels.cams.push(parse(cam_col, "cam")?);
    }
    if labels.is_empty() {
        invalid!("label file {} has a header but no rows", path.display());
    }
    Ok(labels)
}
