//! In-memory exemplar matrix for exact cosine top-k.
//!
//! Features are unit length, so cosine similarity is a dot product. Rows live
//! in one contiguous row-major buffer; a query is a matrix–vector product split
//! into row blocks across rayon threads (each block an auto-vectorised dot
//! loop over contiguous memory — the search is memory-bound, so this is what
//! BLAS would do too). Many queries at once go through `ndarray`'s GEMM.

use ndarray::{Array2, ArrayView1, ArrayView2};
use rayon::prelude::*;

use crate::core::{Light, Modality};

/// What a row of the matrix belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowInfo {
    pub feature_id: i64,
    pub identity_id: i64,
    pub modality: Modality,
    /// The light it was seen in (`None`: unknown, e.g. enrolled from a photo).
    pub light: Option<Light>,
}

/// One search result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub row: usize,
    pub info: RowInfo,
    pub score: f32,
}

pub struct FeatureIndex {
    dim: usize,
    data: Vec<f32>,
    rows: Vec<RowInfo>,
}

/// Rows per parallel block: big enough to amortise rayon, small enough to balance.
const BLOCK_ROWS: usize = 2048;

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let LLVM vectorise without reassociation.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for i in 0..chunks {
        let (x, y) = (&a[i * 8..i * 8 + 8], &b[i * 8..i * 8 + 8]);
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        s += a[i] * b[i];
    }
    s
}

impl FeatureIndex {
    pub fn new(dim: usize) -> Self {
        FeatureIndex { dim, data: Vec::new(), rows: Vec::new() }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[RowInfo] {
        &self.rows
    }

    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    pub fn matrix(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.rows.len(), self.dim), &self.data).expect("rows × dim")
    }

    pub fn push(&mut self, info: RowInfo, v: &[f32]) {
        assert_eq!(v.len(), self.dim, "feature dimension");
        self.data.extend_from_slice(v);
        self.rows.push(info);
    }

    /// Removes every row of a feature id (swap-remove: O(dim)).
    pub fn remove_feature(&mut self, feature_id: i64) {
        while let Some(i) = self.rows.iter().position(|r| r.feature_id == feature_id) {
            self.swap_remove(i);
        }
    }

    pub fn remove_identity(&mut self, identity_id: i64) {
        let mut i = 0;
        while i < self.rows.len() {
            if self.rows[i].identity_id == identity_id {
                self.swap_remove(i);
            } else {
                i += 1;
            }
        }
    }

    fn swap_remove(&mut self, i: usize) {
        let last = self.rows.len() - 1;
        if i != last {
            let (head, tail) = self.data.split_at_mut(last * self.dim);
            head[i * self.dim..(i + 1) * self.dim].copy_from_slice(&tail[..self.dim]);
        }
        self.data.truncate(last * self.dim);
        self.rows.swap_remove(i);
    }

    /// Similarity of `q` to every row.
    pub fn scores(&self, q: &[f32]) -> Vec<f32> {
        assert_eq!(q.len(), self.dim, "query dimension");
        let mut out = vec![0f32; self.rows.len()];
        out.par_chunks_mut(BLOCK_ROWS).enumerate().for_each(|(b, chunk)| {
            let base = b * BLOCK_ROWS;
            for (j, o) in chunk.iter_mut().enumerate() {
                *o = dot(self.row(base + j), q);
            }
        });
        out
    }

    /// Cosine similarity of the unit vector `q` to every (unit) row: the
    /// [`scores`](Self::scores) kept within [-1, 1], which float rounding can
    /// leave (1.0000004 was once shown as a sighting's score).
    pub fn cosines(&self, q: &[f32]) -> Vec<f32> {
        self.scores(q).into_iter().map(|s| s.clamp(-1.0, 1.0)).collect()
    }

    /// Exact top-k by cosine similarity, best first (ties by lower row).
    pub fn top_k(&self, q: &[f32], k: usize) -> Vec<Hit> {
        let scores = self.scores(q);
        select_top_k(&scores, k).into_iter().map(|(row, score)| Hit { row, info: self.rows[row], score }).collect()
    }

    /// Top-k for many queries at once (GEMM), one list per query row.
    pub fn top_k_batch(&self, queries: ArrayView2<f32>, k: usize) -> Vec<Vec<Hit>> {
        let scores: Array2<f32> = queries.dot(&self.matrix().t());
        scores
            .outer_iter()
            .into_par_iter()
            .map(|row: ArrayView1<f32>| {
                let s = row.to_vec();
                select_top_k(&s, k).into_iter().map(|(r, score)| Hit { row: r, info: self.rows[r], score }).collect()
            })
            .collect()
    }
}

/// Indices of the k largest scores, best first. Partial selection, then a sort of k.
pub fn select_top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let k = k.min(scores.len());
    if k == 0 {
        return vec![];
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    let cmp = |a: &usize, b: &usize| scores[*b].total_cmp(&scores[*a]).then(a.cmp(b));
    if k < idx.len() {
        idx.select_nth_unstable_by(k - 1, cmp);
        idx.truncate(k);
    }
    idx.sort_by(cmp);
    idx.into_iter().map(|i| (i, scores[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosines_stay_within_one() {
        let mut idx = FeatureIndex::new(4);
        let long = [0.5f32, 0.5, 0.5, 0.5000004];
        idx.push(info(1, 1), &long);
        assert!(idx.scores(&long)[0] > 1.0, "a row long enough to round past 1");
        assert_eq!(idx.cosines(&long), vec![1.0]);
    }

    fn info(f: i64, id: i64) -> RowInfo {
        RowInfo { feature_id: f, identity_id: id, modality: Modality::Rgb, light: None }
    }

    #[test]
    fn top_k_matches_brute_force_and_survives_removal() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let dim = 37;
        let mut idx = FeatureIndex::new(dim);
        let mut all = vec![];
        for f in 0..5000 {
            let v: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
            idx.push(info(f, f % 50), &v);
            all.push(v);
        }
        let q: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..1.0)).collect();
        let mut brute: Vec<(usize, f32)> =
            all.iter().enumerate().map(|(i, v)| (i, v.iter().zip(&q).map(|(a, b)| a * b).sum())).collect();
        brute.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hits = idx.top_k(&q, 10);
        for (h, b) in hits.iter().zip(&brute) {
            assert_eq!(h.row, b.0);
            assert!((h.score - b.1).abs() < 1e-4);
        }
        let batch = idx.top_k_batch(ndarray::Array2::from_shape_vec((1, dim), q.clone()).unwrap().view(), 10);
        assert_eq!(batch[0].iter().map(|h| h.row).collect::<Vec<_>>(), hits.iter().map(|h| h.row).collect::<Vec<_>>());
        idx.remove_identity(brute[0].0 as i64 % 50);
        assert_eq!(idx.len(), 4900);
        assert!(idx.top_k(&q, 3).iter().all(|h| h.info.identity_id != brute[0].0 as i64 % 50));
        let f = idx.rows()[7].feature_id;
        idx.remove_feature(f);
        assert!(idx.rows().iter().all(|r| r.feature_id != f));
        // Each remaining row still holds its own vector after swap-removes.
        for (i, r) in idx.rows().iter().enumerate() {
            assert_eq!(idx.row(i), all[r.feature_id as usize].as_slice());
        }
    }
}
