//! Query × gallery distances from features, and optional k-reciprocal re-ranking.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::Serialize;

/// How features are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum DistanceKind {
    /// 1 − cosine similarity of L2-normalised features (the default).
    Cosine,
    /// Euclidean distance on the features as given.
    Euclidean,
}

fn normalized(x: ArrayView2<f32>) -> Array2<f32> {
    let mut x = x.to_owned();
    crate::embed::l2_normalize_rows(&mut x);
    x
}

/// Distances between every row of `a` and every row of `b`.
pub fn pairwise(a: ArrayView2<f32>, b: ArrayView2<f32>, kind: DistanceKind) -> Array2<f32> {
    match kind {
        DistanceKind::Cosine => {
            let (a, b) = (normalized(a), normalized(b));
            let mut d = a.dot(&b.t());
            d.mapv_inplace(|s| 1.0 - s);
            d
        }
        DistanceKind::Euclidean => {
            let aa: Array1<f32> = a.map_axis(Axis(1), |r| r.dot(&r));
            let bb: Array1<f32> = b.map_axis(Axis(1), |r| r.dot(&r));
            let mut d = a.dot(&b.t());
            for ((i, j), v) in d.indexed_iter_mut() {
                // Rounding can push tiny squared distances below zero.
                *v = (aa[i] + bb[j] - 2.0 * *v).max(0.0).sqrt();
            }
            d
        }
    }
}

/// k-reciprocal re-ranking parameters (Zhong et al., CVPR 2017).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RerankParams {
    pub k1: usize,
    pub k2: usize,
    pub lambda: f32,
}

impl Default for RerankParams {
    fn default() -> Self {
        RerankParams { k1: 20, k2: 6, lambda: 0.3 }
    }
}

/// Re-ranked query × gallery distances: (1 − λ)·Jaccard distance of the
/// k-reciprocal neighbour encodings + λ·original distance. Built from the
/// paper's description: neighbours over queries and gallery together,
/// reciprocal sets expanded by half-size reciprocal sets overlapping ≥ 2/3,
/// Gaussian-kernel weights, local query expansion over k2 neighbours.
pub fn rerank(
    query: ArrayView2<f32>,
    gallery: ArrayView2<f32>,
    kind: DistanceKind,
    params: RerankParams,
) -> Array2<f32> {
    let query_query = pairwise(query, query, kind);
    rerank_with_query_block(query_query.view(), query, gallery, kind, params)
}

/// [`rerank`] with the query × query distances given: trials that share
/// their queries (SYSU-MM01, LLCM) compute that, the largest block, once.
pub fn rerank_with_query_block(
    query_query: ArrayView2<f32>,
    query: ArrayView2<f32>,
    gallery: ArrayView2<f32>,
    kind: DistanceKind,
    params: RerankParams,
) -> Array2<f32> {
    let nq = query.nrows();
    let n = nq + gallery.nrows();
    assert_eq!(query_query.dim(), (nq, nq), "query block matches the queries");
    let query_gallery = pairwise(query, gallery, kind);
    let mut dist = Array2::<f32>::zeros((n, n));
    dist.slice_mut(s![..nq, ..nq]).assign(&query_query);
    dist.slice_mut(s![..nq, nq..]).assign(&query_gallery);
    dist.slice_mut(s![nq.., ..nq]).assign(&query_gallery.t());
    dist.slice_mut(s![nq.., nq..]).assign(&pairwise(gallery, gallery, kind));
    // Scale each row to [0, 1] so the kernel weights are comparable across items.
    for mut row in dist.rows_mut() {
        let max = row.iter().cloned().fold(0.0f32, f32::max);
        if max > 0.0 {
            row.mapv_inplace(|v| v / max);
        }
    }
    let k1 = params.k1.min(n - 1).max(1);
    let half = (k1 as f32 / 2.0).round().max(1.0) as usize;
    // Sorted neighbour lists (self first), long enough for k1 + 1.
    let ranked: Vec<Vec<u32>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let row = dist.row(i);
            let mut idx: Vec<u32> = (0..n as u32).collect();
            let take = (k1 + 1).min(n);
            idx.select_nth_unstable_by(take - 1, |&a, &b| row[a as usize].total_cmp(&row[b as usize]).then(a.cmp(&b)));
            idx.truncate(take);
            idx.sort_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]).then(a.cmp(&b)));
            idx
        })
        .collect();
    let reciprocal = |i: usize, k: usize| -> Vec<u32> {
        let k = (k + 1).min(ranked[i].len());
        ranked[i][..k]
            .iter()
            .copied()
            .filter(|&j| ranked[j as usize][..k.min(ranked[j as usize].len())].contains(&(i as u32)))
            .collect()
    };
    // Sparse encodings V: (neighbour, weight) with weights summing to 1.
    let encodings: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut set = reciprocal(i, k1);
            for &j in set.clone().iter() {
                let candidate = reciprocal(j as usize, half);
                let overlap = candidate.iter().filter(|c| set.contains(c)).count();
                if overlap as f32 > 2.0 / 3.0 * candidate.len() as f32 {
                    set.extend(candidate);
                }
            }
            set.sort_unstable();
            set.dedup();
            let weights: Vec<f32> = set.iter().map(|&j| (-dist[[i, j as usize]]).exp()).collect();
            let total: f32 = weights.iter().sum();
            set.into_iter().zip(weights).map(|(j, w)| (j, w / total)).collect()
        })
        .collect();
    // Local query expansion: average the encodings of the k2 nearest items.
    let k2 = params.k2.max(1);
    let expanded: Vec<Vec<(u32, f32)>> = (0..n)
        .into_par_iter()
        .map(|i| {
            let neighbours = &ranked[i][..k2.min(ranked[i].len())];
            let mut dense: std::collections::BTreeMap<u32, f32> = std::collections::BTreeMap::new();
            for &j in neighbours {
                for &(col, w) in &encodings[j as usize] {
                    *dense.entry(col).or_insert(0.0) += w / neighbours.len() as f32;
                }
            }
            dense.into_iter().collect()
        })
        .collect();
    // Inverted index over gallery encodings: column → (gallery row, weight).
    let mut inverted: Vec<Vec<(u32, f32)>> = vec![Vec::new(); n];
    for g in 0..n - nq {
        for &(col, w) in &expanded[nq + g] {
            inverted[col as usize].push((g as u32, w));
        }
    }
    let ng = n - nq;
    let mut out = Array2::<f32>::zeros((nq, ng));
    out.axis_iter_mut(Axis(0)).into_par_iter().enumerate().for_each(|(q, mut row)| {
        let mut shared = vec![0.0f32; ng];
        for &(col, wq) in &expanded[q] {
            for &(g, wg) in &inverted[col as usize] {
                shared[g as usize] += wq.min(wg);
            }
        }
        for (g, v) in row.iter_mut().enumerate() {
            // Both encodings sum to 1, so Σmax = 2 − Σmin.
            let jaccard = 1.0 - shared[g] / (2.0 - shared[g]);
            *v = (1.0 - params.lambda) * jaccard + params.lambda * dist[[q, nq + g]];
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn cosine_and_euclidean_hand_computed() {
        let a = array![[1.0f32, 0.0], [0.0, 2.0]];
        let b = array![[3.0f32, 4.0]];
        let c = pairwise(a.view(), b.view(), DistanceKind::Cosine);
        assert!((c[[0, 0]] - 0.4).abs() < 1e-6 && (c[[1, 0]] - 0.2).abs() < 1e-6, "{c}");
        let e = pairwise(a.view(), b.view(), DistanceKind::Euclidean);
        assert!((e[[0, 0]] - 20f32.sqrt()).abs() < 1e-5 && (e[[1, 0]] - 13f32.sqrt()).abs() < 1e-5, "{e}");
    }

    #[test]
    fn rerank_keeps_clear_clusters_apart() {
        // Two tight clusters; each query must stay closest to its own cluster.
        let mut rng = 1u64;
        let mut noise = || {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((rng >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.05
        };
        let mut feats = Array2::<f32>::zeros((12, 4));
        for i in 0..12 {
            let c = i % 2;
            feats[[i, c]] = 1.0;
            for d in 0..4 {
                feats[[i, d]] += noise();
            }
        }
        let (q, g) = feats.view().split_at(Axis(0), 2);
        let d = rerank(q, g, DistanceKind::Cosine, RerankParams { k1: 4, k2: 2, lambda: 0.3 });
        assert_eq!(d.dim(), (2, 10));
        for qi in 0..2 {
            let own: f32 = (0..10).filter(|g| (g + 2) % 2 == qi).map(|g| d[[qi, g]]).fold(f32::MIN, f32::max);
            let other: f32 = (0..10).filter(|g| (g + 2) % 2 != qi).map(|g| d[[qi, g]]).fold(f32::MAX, f32::min);
            assert!(own < other, "query {qi}: own cluster max {own} vs other min {other}");
        }
        assert!(d.iter().all(|v| v.is_finite() && *v >= 0.0));
        // The given-query-block path is the same computation.
        let qq = pairwise(q, q, DistanceKind::Cosine);
        let d2 =
            rerank_with_query_block(qq.view(), q, g, DistanceKind::Cosine, RerankParams { k1: 4, k2: 2, lambda: 0.3 });
        assert_eq!(d, d2);
    }
}
