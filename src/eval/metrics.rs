//! One trial's metrics (CMC, mAP, mINP) on a query × gallery distance matrix,
//! under the rules of SYSU-MM01, RegDB and LLCM as the field computes them.
//!
//! Rules (shared by `bench/eval_reference.py`, an independent numpy version):
//! - Each query ranks the gallery by ascending distance. Ties are broken by
//!   gallery order (a stable sort), so results never depend on sort internals.
//! - SYSU-MM01: a cam-3 query ignores every cam-2 gallery item (cams 2 and 3
//!   share a location). LLCM: gallery items with the query's identity AND camera
//!   are ignored. RegDB: nothing is ignored.
//! - SYSU-MM01 and LLCM compute CMC on the ranking with repeated identities
//!   removed (first occurrence kept); RegDB uses the plain ranking.
//! - CMC has `min(20, gallery columns)` entries and is divided by the number
//!   of valid queries (those with at least one true match left after removal).
//! - AP runs over the whole (non-deduplicated) ranking after removal;
//!   INP = true matches / 1-based position of the last true match.
//! - Queries with no true match are skipped; if no query is valid, that is an
//!   error, never a NaN.

use super::{invalid, Result};
use ndarray::ArrayView2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// CMC ranks reported (Rank-1 … Rank-20), as in the field's tables.
pub const MAX_RANK: usize = 20;

/// Which benchmark's rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// SYSU-MM01: IR queries (cams 3, 6) against RGB gallery; cam-3 queries skip cam-2 gallery items.
    Sysu,
    /// RegDB: visible↔thermal, nothing discarded, plain CMC.
    Regdb,
    /// LLCM: gallery items with the query's identity and camera are discarded.
    Llcm,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Sysu => "sysu",
            Protocol::Regdb => "regdb",
            Protocol::Llcm => "llcm",
        }
    }

    /// Whether this gallery item is left out of this query's ranking.
    #[inline]
    fn discards(self, q_id: i64, q_cam: i64, g_id: i64, g_cam: i64) -> bool {
        match self {
            Protocol::Sysu => q_cam == 3 && g_cam == 2,
            Protocol::Regdb => false,
            Protocol::Llcm => q_id == g_id && q_cam == g_cam,
        }
    }

    /// Whether CMC counts each identity once (first occurrence kept).
    fn dedup_cmc(self) -> bool {
        !matches!(self, Protocol::Regdb)
    }
}

/// Identity and camera of each row (query) or column (gallery item).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Labels {
    pub ids: Vec<i64>,
    pub cams: Vec<i64>,
}

impl Labels {
    pub fn new(ids: Vec<i64>, cams: Vec<i64>) -> Self {
        assert_eq!(ids.len(), cams.len(), "one camera per identity");
        Labels { ids, cams }
    }
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
    /// The subset at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Labels {
        Labels {
            ids: indices.iter().map(|&i| self.ids[i]).collect(),
            cams: indices.iter().map(|&i| self.cams[i]).collect(),
        }
    }
}

/// One trial's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Fraction of valid queries whose first true match is within rank k+1.
    pub cmc: Vec<f64>,
    #[serde(rename = "mAP")]
    pub map: f64,
    #[serde(rename = "mINP")]
    pub minp: f64,
    pub num_valid_queries: usize,
}

impl Metrics {
    /// Rank-k (1-based); the last entry if the CMC is shorter (gallery < k).
    pub fn rank(&self, k: usize) -> f64 {
        self.cmc[(k.min(self.cmc.len())).max(1) - 1]
    }

    /// Element-wise mean of several trials (CMC lengths must agree).
    pub fn mean(trials: &[Metrics]) -> Result<Metrics> {
        let Some(first) = trials.first() else { invalid!("no trials to average") };
        if trials.iter().any(|t| t.cmc.len() != first.cmc.len()) {
            invalid!(
                "trials have CMC curves of different lengths (gallery sizes below {MAX_RANK} differ); cannot average"
            );
        }
        let n = trials.len() as f64;
        let mut cmc = vec![0.0; first.cmc.len()];
        for t in trials {
            for (c, v) in cmc.iter_mut().zip(&t.cmc) {
                *c += v / n;
            }
        }
        Ok(Metrics {
            cmc,
            map: trials.iter().map(|t| t.map).sum::<f64>() / n,
            minp: trials.iter().map(|t| t.minp).sum::<f64>() / n,
            num_valid_queries: (trials.iter().map(|t| t.num_valid_queries).sum::<usize>() as f64 / n).round() as usize,
        })
    }
}

/// A distance value: `f32` or `f64` (the two `.npy` types accepted).
pub trait Distance: Copy + PartialOrd + Send + Sync + std::fmt::Display {
    fn is_nan(self) -> bool;
    /// An integer with the same order as the (non-NaN) value, so rankings sort
    /// as plain integers — several times faster than float comparisons.
    fn order_key(self) -> u64;
}
impl Distance for f32 {
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    fn order_key(self) -> u64 {
        (self as f64).order_key()
    }
}
impl Distance for f64 {
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    fn order_key(self) -> u64 {
        // −0.0 and +0.0 compare equal, so they must share a key.
        let bits = if self == 0.0 { 0 } else { self.to_bits() };
        // Negative floats: flip all bits (larger magnitude sorts first);
        // positive floats: set the sign bit so they sort above all negatives.
        if bits >> 63 == 1 {
            !bits
        } else {
            bits | (1 << 63)
        }
    }
}

/// What one valid query contributes.
#[derive(Debug, Clone, Copy)]
struct QueryOutcome {
    /// 0-based rank of the first true match (in the deduplicated ranking where the protocol says so).
    first_rank: usize,
    ap: f64,
    inp: f64,
}

/// Per-thread scratch space, reused across queries.
struct Scratch {
    /// Kept gallery items of the query's identity, as (distance key, gallery index).
    matches: Vec<(u64, u32)>,
    /// Kept gallery items of other identities.
    others: Vec<(u64, u32)>,
    /// `ahead[i]`: other-identity items ranked between true match i−1 and true match i.
    ahead: Vec<usize>,
    /// `seen[identity] == stamp` marks an identity already met in this query's ranking.
    seen: Vec<u32>,
    stamp: u32,
}

/// Computes CMC, mAP and mINP for one trial. Rows of `dist` are queries,
/// columns gallery items.
pub fn evaluate<T: Distance>(
    dist: ArrayView2<T>,
    query: &Labels,
    gallery: &Labels,
    protocol: Protocol,
) -> Result<Metrics> {
    let (nq, ng) = dist.dim();
    if nq != query.len() || ng != gallery.len() {
        invalid!(
            "distance matrix is {nq}×{ng} but there are {} query and {} gallery labels: rows must be queries and columns gallery items, in label order",
            query.len(),
            gallery.len()
        );
    }
    if nq == 0 || ng == 0 {
        invalid!("empty distance matrix ({nq}×{ng}): need at least one query and one gallery item");
    }
    if let Some(((r, c), _)) = dist.indexed_iter().find(|(_, v)| v.is_nan()) {
        invalid!("distance matrix has NaN at row {r}, column {c}: fix the features that produced it (e.g. an all-zero or non-finite embedding)");
    }

    // Dense identity indices so "seen" is a flat array, not a hash set per query.
    let mut dense: HashMap<i64, u32> = HashMap::new();
    let g_dense: Vec<u32> = gallery
        .ids
        .iter()
        .map(|id| {
            let next = dense.len() as u32;
            *dense.entry(*id).or_insert(next)
        })
        .collect();
    let n_ids = dense.len();
    let max_rank = MAX_RANK.min(ng);

    let outcomes: Vec<Option<QueryOutcome>> = (0..nq)
        .into_par_iter()
        .map_init(
            || Scratch {
                matches: Vec::new(),
                others: Vec::with_capacity(ng),
                ahead: Vec::new(),
                seen: vec![0; n_ids],
                stamp: 0,
            },
            |scratch, qi| {
                let q_dense = dense.get(&query.ids[qi]).copied();
                rank_one_query(
                    dist.row(qi),
                    query.ids[qi],
                    query.cams[qi],
                    q_dense,
                    gallery,
                    &g_dense,
                    protocol,
                    scratch,
                )
            },
        )
        .collect();

    let mut cmc_hits = vec![0usize; max_rank];
    let (mut sum_ap, mut sum_inp, mut valid) = (0.0f64, 0.0f64, 0usize);
    for o in outcomes.iter().flatten() {
        valid += 1;
        sum_ap += o.ap;
        sum_inp += o.inp;
        if o.first_rank < max_rank {
            cmc_hits[o.first_rank] += 1;
        }
    }
    if valid == 0 {
        invalid!(
            "no valid query: none of the {nq} queries has a true match left in the gallery under the {} rules; check that query and gallery identities overlap and that the camera labels are right",
            protocol.as_str()
        );
    }
    let mut cmc = Vec::with_capacity(max_rank);
    let mut cumulative = 0usize;
    for hits in cmc_hits {
        cumulative += hits;
        cmc.push(cumulative as f64 / valid as f64);
    }
    Ok(Metrics { cmc, map: sum_ap / valid as f64, minp: sum_inp / valid as f64, num_valid_queries: valid })
}

/// Ranks one query's gallery. Instead of sorting the whole row, it places
/// each other-identity item among the (few) sorted true matches: positions of
/// the matches and the identities ahead of the first one are all the metrics
/// need. Ordering is by (distance, gallery index), i.e. a stable sort.
#[allow(clippy::too_many_arguments)]
fn rank_one_query<T: Distance>(
    row: ndarray::ArrayView1<T>,
    q_id: i64,
    q_cam: i64,
    q_dense: Option<u32>,
    gallery: &Labels,
    g_dense: &[u32],
    protocol: Protocol,
    scratch: &mut Scratch,
) -> Option<QueryOutcome> {
    // A query whose identity is absent from the gallery can never match.
    let q_dense = q_dense?;
    scratch.matches.clear();
    scratch.others.clear();
    for (g, &d) in row.iter().enumerate() {
        if protocol.discards(q_id, q_cam, gallery.ids[g], gallery.cams[g]) {
            continue;
        }
        let item = (d.order_key(), g as u32);
        if g_dense[g] == q_dense {
            scratch.matches.push(item);
        } else {
            scratch.others.push(item);
        }
    }
    if scratch.matches.is_empty() {
        return None;
    }
    scratch.matches.sort_unstable();
    let m = scratch.matches.len();
    scratch.ahead.clear();
    scratch.ahead.resize(m + 1, 0);
    scratch.stamp = scratch.stamp.wrapping_add(1);
    if scratch.stamp == 0 {
        scratch.seen.iter_mut().for_each(|s| *s = 0);
        scratch.stamp = 1;
    }
    let dedup = protocol.dedup_cmc();
    let mut distinct_before_first = 0usize;
    for &item in &scratch.others {
        // How many true matches rank ahead of this item (gallery indices are
        // unique, so there is never equality).
        let r = scratch.matches.partition_point(|mm| *mm < item);
        scratch.ahead[r] += 1;
        if r == 0 && dedup {
            let gid = g_dense[item.1 as usize] as usize;
            if scratch.seen[gid] != scratch.stamp {
                scratch.seen[gid] = scratch.stamp;
                distinct_before_first += 1;
            }
        }
    }
    let (mut others_ahead, mut precision_sum, mut last_match_pos) = (0usize, 0.0f64, 0usize);
    for i in 0..m {
        others_ahead += scratch.ahead[i];
        let pos = i + others_ahead + 1; // 1-based position of true match i
        precision_sum += (i + 1) as f64 / pos as f64;
        last_match_pos = pos;
    }
    let first_rank = if dedup { distinct_before_first } else { scratch.ahead[0] };
    Some(QueryOutcome { first_rank, ap: precision_sum / m as f64, inp: m as f64 / last_match_pos as f64 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn labels(ids: &[i64], cams: &[i64]) -> Labels {
        Labels::new(ids.to_vec(), cams.to_vec())
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ties_are_broken_by_gallery_order() {
        // All distances equal: the ranking is the gallery order [B, A, A].
        let d = array![[0.5f32, 0.5, 0.5]];
        let q = labels(&[1], &[1]);
        let g = labels(&[2, 1, 1], &[2, 2, 2]);
        let m = evaluate(d.view(), &q, &g, Protocol::Regdb).unwrap();
        // First match at position 2; AP = (1/2 + 2/3)/2; INP = 2/3.
        assert_eq!(m.cmc, vec![0.0, 1.0, 1.0]);
        assert!(close(m.map, (0.5 + 2.0 / 3.0) / 2.0), "{}", m.map);
        assert!(close(m.minp, 2.0 / 3.0));
        // Reversing gallery order puts the matches first.
        let g2 = labels(&[1, 1, 2], &[2, 2, 2]);
        let m2 = evaluate(d.view(), &q, &g2, Protocol::Regdb).unwrap();
        assert_eq!(m2.cmc, vec![1.0, 1.0, 1.0]);
        assert!(close(m2.map, 1.0) && close(m2.minp, 1.0));
    }

    #[test]
    fn query_with_absent_identity_is_skipped_not_counted() {
        let d = array![[0.1f64, 0.2], [0.3, 0.1]];
        let q = labels(&[7, 9], &[3, 6]);
        let g = labels(&[7, 8], &[1, 1]);
        let m = evaluate(d.view(), &q, &g, Protocol::Sysu).unwrap();
        assert_eq!(m.num_valid_queries, 1);
        assert_eq!(m.cmc, vec![1.0, 1.0]);
        assert!(close(m.map, 1.0) && close(m.minp, 1.0));
    }

    #[test]
    fn no_valid_query_is_an_error() {
        let d = array![[0.1f32, 0.2]];
        let err = evaluate(d.view(), &labels(&[5], &[3]), &labels(&[1, 2], &[1, 2]), Protocol::Sysu).unwrap_err();
        assert!(err.to_string().contains("no valid query"), "{err}");
    }

    #[test]
    fn sysu_cam3_query_ignores_all_cam2_gallery_items() {
        // Gallery: id1@cam2 (closest), id2@cam2, id1@cam1, id2@cam4.
        let d = array![[0.1f32, 0.2, 0.4, 0.3], [0.1, 0.2, 0.4, 0.3]];
        let q = labels(&[1, 1], &[3, 6]);
        let g = labels(&[1, 2, 1, 2], &[2, 2, 1, 4]);
        let m3 = evaluate(d.slice(ndarray::s![0..1, ..]), &labels(&[1], &[3]), &g, Protocol::Sysu).unwrap();
        // cam-3 query keeps [id2@cam4 (0.3), id1@cam1 (0.4)]: rank 2, AP 1/2, INP 1/2.
        assert_eq!(m3.cmc, vec![0.0, 1.0, 1.0, 1.0]);
        assert!(close(m3.map, 0.5) && close(m3.minp, 0.5));
        // cam-6 query keeps everything: ranking id1, id2, id2, id1 → dedup rank 1.
        let m6 = evaluate(d.slice(ndarray::s![1..2, ..]), &labels(&[1], &[6]), &g, Protocol::Sysu).unwrap();
        assert_eq!(m6.cmc, vec![1.0; 4]);
        assert!(close(m6.map, (1.0 + 2.0 / 4.0) / 2.0) && close(m6.minp, 0.5));
        // Both together: averages.
        let both = evaluate(d.view(), &q, &g, Protocol::Sysu).unwrap();
        assert_eq!(both.cmc, vec![0.5, 1.0, 1.0, 1.0]);
        assert!(close(both.map, (0.5 + 0.75) / 2.0));
    }

    #[test]
    fn dedup_cmc_counts_each_wrong_identity_once() {
        // Ranking: id2, id2, id2, id1 → plain rank 4, deduplicated rank 2.
        let d = array![[0.1f32, 0.2, 0.3, 0.4]];
        let q = labels(&[1], &[6]);
        let g = labels(&[2, 2, 2, 1], &[1, 1, 1, 1]);
        let sysu = evaluate(d.view(), &q, &g, Protocol::Sysu).unwrap();
        assert_eq!(sysu.cmc, vec![0.0, 1.0, 1.0, 1.0]);
        let regdb = evaluate(d.view(), &q, &g, Protocol::Regdb).unwrap();
        assert_eq!(regdb.cmc, vec![0.0, 0.0, 0.0, 1.0]);
        // AP and INP are on the full ranking in both.
        assert!(close(sysu.map, 0.25) && close(regdb.map, 0.25) && close(sysu.minp, 0.25));
    }

    #[test]
    fn gallery_smaller_than_20_gives_short_cmc_and_larger_gives_20() {
        let d = ndarray::Array2::<f32>::from_shape_fn((1, 5), |(_, j)| j as f32);
        let m = evaluate(d.view(), &labels(&[4], &[1]), &labels(&[0, 1, 2, 3, 4], &[2; 5]), Protocol::Regdb).unwrap();
        assert_eq!(m.cmc, vec![0.0, 0.0, 0.0, 0.0, 1.0]);
        assert_eq!(m.rank(1), 0.0);
        assert_eq!(m.rank(10), 1.0, "rank beyond gallery size is the last entry");
        let d = ndarray::Array2::<f32>::from_shape_fn((1, 30), |(_, j)| j as f32);
        let ids: Vec<i64> = (0..30).collect();
        let m = evaluate(d.view(), &labels(&[25], &[1]), &labels(&ids, &[2; 30]), Protocol::Regdb).unwrap();
        assert_eq!(m.cmc, vec![0.0; 20], "true match at rank 26 is outside Rank-20");
        assert!(close(m.map, 1.0 / 26.0));
    }

    #[test]
    fn llcm_discards_same_identity_same_camera() {
        // id1@cam2 is closest but shares the query's camera; next id1 is at cam 5.
        let d = array![[0.1f32, 0.2, 0.3]];
        let q = labels(&[1], &[2]);
        let g = labels(&[1, 3, 1], &[2, 2, 5]);
        let m = evaluate(d.view(), &q, &g, Protocol::Llcm).unwrap();
        assert_eq!(m.cmc, vec![0.0, 1.0, 1.0]);
        assert!(close(m.map, 0.5) && close(m.minp, 0.5));
        // Under RegDB nothing is discarded.
        let r = evaluate(d.view(), &q, &g, Protocol::Regdb).unwrap();
        assert_eq!(r.cmc, vec![1.0; 3]);
        assert!(close(r.map, (1.0 + 2.0 / 3.0) / 2.0) && close(r.minp, 2.0 / 3.0));
    }

    #[test]
    fn regdb_both_directions_on_transposed_matrix() {
        // Visible v0 (id 1), v1 (id 2); thermal t0 (id 2), t1 (id 1).
        let v2t = array![[0.9f32, 0.2], [0.1, 0.8]];
        let vis = labels(&[1, 2], &[1, 1]);
        let thr = labels(&[2, 1], &[2, 2]);
        let a = evaluate(v2t.view(), &vis, &thr, Protocol::Regdb).unwrap();
        assert_eq!(a.cmc, vec![1.0, 1.0]);
        let t2v = v2t.t();
        let b = evaluate(t2v, &thr, &vis, Protocol::Regdb).unwrap();
        assert_eq!(b.cmc, vec![1.0, 1.0]);
        // Break one direction only: t1 now closer to v1 (wrong) than to v0,
        // while each visible query still finds its match first.
        let v2t = array![[0.9f32, 0.5], [0.1, 0.4]];
        let a = evaluate(v2t.view(), &vis, &thr, Protocol::Regdb).unwrap();
        assert_eq!(a.cmc, vec![1.0, 1.0]);
        assert!(close(a.map, 1.0));
        let b = evaluate(v2t.t(), &thr, &vis, Protocol::Regdb).unwrap();
        // t0 (id2): v1 0.1 first → hit; t1 (id1): v1 0.4 < v0 0.5 → rank 2.
        assert_eq!(b.cmc, vec![0.5, 1.0]);
        assert!(close(b.map, 0.75));
    }

    #[test]
    fn nan_and_shape_mismatch_are_errors() {
        let d = array![[0.1f32, f32::NAN]];
        let err = evaluate(d.view(), &labels(&[1], &[1]), &labels(&[1, 2], &[1, 1]), Protocol::Regdb).unwrap_err();
        assert!(err.to_string().contains("NaN at row 0, column 1"), "{err}");
        let d = array![[0.1f32, 0.2]];
        let err = evaluate(d.view(), &labels(&[1], &[1]), &labels(&[1], &[1]), Protocol::Regdb).unwrap_err();
        assert!(err.to_string().contains("1×2") && err.to_string().contains("1 gallery"), "{err}");
    }

    #[test]
    fn order_keys_follow_float_order() {
        let values = [f64::NEG_INFINITY, -3.5, -1e-300, -0.0, 0.0, 1e-300, 0.25, 2.0, f64::INFINITY];
        for w in values.windows(2) {
            assert!(w[0].order_key() <= w[1].order_key(), "{} vs {}", w[0], w[1]);
            assert_eq!(w[0] == w[1], w[0].order_key() == w[1].order_key(), "{} vs {}", w[0], w[1]);
        }
        assert!((0.1f32).order_key() < (0.10000001f32).order_key());
    }

    #[test]
    fn mean_averages_trials() {
        let a = Metrics { cmc: vec![0.5, 1.0], map: 0.4, minp: 0.2, num_valid_queries: 4 };
        let b = Metrics { cmc: vec![1.0, 1.0], map: 0.6, minp: 0.4, num_valid_queries: 4 };
        let m = Metrics::mean(&[a, b]).unwrap();
        assert_eq!(m.cmc, vec![0.75, 1.0]);
        assert!(close(m.map, 0.5) && close(m.minp, 0.3));
    }
}
