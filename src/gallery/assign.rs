//! Open-set assignment of one track feature to the gallery.

use std::collections::HashMap;

use super::index::FeatureIndex;
use crate::modality::Modality;

/// Cosine-similarity thresholds: same-modality pairs score higher than
/// cross-modality pairs of the same person, so each kind has its own.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    pub same_modality: f32,
    pub cross_modality: f32,
}

/// The decision for one track.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment {
    /// The identity joined; `None` = a new identity.
    pub identity_id: Option<i64>,
    /// Similarity of the deciding exemplar.
    pub similarity: Option<f32>,
    /// Modality of the deciding exemplar.
    pub matched_modality: Option<Modality>,
    /// The deciding exemplar is of the other modality.
    pub day_night_link: bool,
}

/// Picks the identity whose best exemplar clears its threshold by the widest
/// margin (margins, not raw scores, make same- and cross-modality matches
/// comparable); no identity above threshold → a new identity.
pub fn assign(index: &FeatureIndex, feature: &[f32], modality: Modality, t: Thresholds) -> Assignment {
    let new = Assignment { identity_id: None, similarity: None, matched_modality: None, day_night_link: false };
    if index.is_empty() {
        return new;
    }
    let scores = index.scores(feature);
    // Best score per (identity, same/cross).
    let mut best: HashMap<(i64, bool), f32> = HashMap::new();
    for (s, r) in scores.iter().zip(index.rows()) {
        let key = (r.identity_id, r.modality == modality);
        let e = best.entry(key).or_insert(f32::MIN);
        if *s > *e {
            *e = *s;
        }
    }
    let mut choice: Option<(f32, i64, bool, f32)> = None; // (margin, id, same, score)
    for ((id, same), s) in best {
        let margin = s - if same { t.same_modality } else { t.cross_modality };
        if margin >= 0.0 && choice.is_none_or(|(m, cid, _, _)| margin > m || (margin == m && id < cid)) {
            choice = Some((margin, id, same, s));
        }
    }
    match choice {
        None => new,
        Some((_, id, same, s)) => Assignment {
            identity_id: Some(id),
            similarity: Some(s),
            matched_modality: Some(if same { modality } else { modality.other() }),
            day_night_link: !same,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::index::RowInfo;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn same_and_cross_thresholds_and_new_identities() {
        let mut idx = FeatureIndex::new(3);
        idx.push(RowInfo { feature_id: 1, identity_id: 10, modality: Modality::Rgb }, &unit(&[1.0, 0.0, 0.0]));
        idx.push(RowInfo { feature_id: 2, identity_id: 20, modality: Modality::Thermal }, &unit(&[0.0, 1.0, 0.0]));
        let t = Thresholds { same_modality: 0.8, cross_modality: 0.5 };
        // cos 0.707 to identity 10 (rgb): below same threshold for an rgb query → new identity.
        let q = unit(&[1.0, 0.0, 1.0]);
        assert_eq!(assign(&idx, &q, Modality::Rgb, t).identity_id, None);
        // The same feature from thermal: cross-modality to 10 clears 0.5 → a day/night link.
        let a = assign(&idx, &q, Modality::Thermal, t);
        assert_eq!((a.identity_id, a.day_night_link, a.matched_modality), (Some(10), true, Some(Modality::Rgb)));
        // A thermal feature close to thermal identity 20: same-modality, no link.
        let a = assign(&idx, &unit(&[0.1, 1.0, 0.0]), Modality::Thermal, t);
        assert_eq!((a.identity_id, a.day_night_link), (Some(20), false));
        assert!(assign(&FeatureIndex::new(3), &q, Modality::Rgb, t).identity_id.is_none());
    }
}
