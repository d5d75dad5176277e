//! Gallery exact top-10 speed. Run by `bench/gallery_vs_faiss.py`, which writes
//! the features and queries (`VIREID_GALLERY_BENCH_DIR`), times FAISS
//! `IndexFlatIP` on the same data in the same run and checks the results are
//! identical. Alone (`cargo bench --bench gallery_topk`) it makes its own
//! random 100,000 × 2,048 gallery and prints timings only.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use vireid::core::Modality;
use vireid::gallery::index::{FeatureIndex, RowInfo};

fn random_unit(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut a = Array2::from_shape_fn((n, d), |_| rng.random_range(-1.0f32..1.0));
    vireid::embed::l2_normalize_rows(&mut a);
    a
}

fn main() {
    let dir = std::env::var_os("VIREID_GALLERY_BENCH_DIR").map(PathBuf::from);
    let (feats, queries): (Array2<f32>, Array2<f32>) = match &dir {
        Some(d) => (
            ndarray_npy::read_npy(d.join("features.npy")).expect("features.npy"),
            ndarray_npy::read_npy(d.join("queries.npy")).expect("queries.npy"),
        ),
        None => (random_unit(100_000, 2048, 1), random_unit(20, 2048, 2)),
    };
    let k = 10;
    let mut index = FeatureIndex::new(feats.ncols());
    for (i, row) in feats.axis_iter(Axis(0)).enumerate() {
        let m = if i % 2 == 0 { Modality::Rgb } else { Modality::Thermal };
        index.push(
            RowInfo { feature_id: i as i64, identity_id: i as i64, modality: m, light: None },
            row.as_slice().unwrap(),
        );
    }
    drop(feats);
    // Warm-up (page in the matrix, spin up rayon).
    index.top_k(queries.row(0).as_slice().unwrap(), k);
    let t = Instant::now();
    let single: Vec<Vec<i64>> = queries
        .axis_iter(Axis(0))
        .map(|q| index.top_k(q.as_slice().unwrap(), k).into_iter().map(|h| h.row as i64).collect())
        .collect();
    let single_ms = t.elapsed().as_secs_f64() * 1e3 / queries.nrows() as f64;
    let t = Instant::now();
    let batch = index.top_k_batch(queries.view(), k);
    let batch_ms = t.elapsed().as_secs_f64() * 1e3;
    let batch_ids: Vec<Vec<i64>> = batch.iter().map(|hs| hs.iter().map(|h| h.row as i64).collect()).collect();
    let agree = single.iter().zip(&batch_ids).filter(|(a, b)| a == b).count();
    println!(
        "{}",
        serde_json::json!({
            "rows": index.len(), "dim": index.dim(), "queries": queries.nrows(), "k": k,
            "single_query_ms": single_ms, "batch_all_queries_ms": batch_ms,
            "single_vs_batch_identical": agree,
        })
    );
    if let Some(d) = dir {
        let ids = Array2::from_shape_vec((single.len(), k), single.concat()).unwrap();
        ndarray_npy::write_npy(d.join("vireid_ids.npy"), &ids).expect("write vireid_ids.npy");
    }
}
