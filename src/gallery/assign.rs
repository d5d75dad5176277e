//! Open-set assignment of one track feature to the gallery.

use std::collections::HashMap;

use super::index::FeatureIndex;
use crate::core::{Light, Modality};

/// Cosine-similarity thresholds: same-modality pairs score higher than
/// cross-modality pairs of the same person, so each kind has its own.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholds {
    /// RGB↔RGB (and thermal↔thermal unless `same_thermal` differs).
    pub same_modality: f32,
    /// Thermal↔thermal: grey silhouettes tell people apart less well than
    /// colour, so their impostor scores run higher.
    #[serde(default)]
    pub same_thermal: Option<f32>,
    pub cross_modality: f32,
    /// Thermal↔thermal, one seen by day and the other at night (`core::light`);
    /// `None`: the thermal threshold. Ambient temperature moves a thermal
    /// picture more than the person does, so these score far lower. (RGB at
    /// night is too dark to compare with RGB by day at all: `same_in`.)
    #[serde(default)]
    pub cross_light: Option<f32>,
    /// The chosen identity must clear the runner-up by at least this much
    /// (margin, or a pair's support); closer is ambiguous → a new identity.
    #[serde(default)]
    pub min_gap: f32,
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
    /// How far the deciding exemplar cleared its threshold (`None`: a new
    /// identity, or joined a partner). A late co-observed partner weighs its
    /// own view against it ([`margin_to`]).
    pub margin: Option<f32>,
}

impl Assignment {
    pub fn new_identity() -> Assignment {
        Assignment { identity_id: None, similarity: None, matched_modality: None, day_night_link: false, margin: None }
    }

    /// Joining the identity of a co-observed partner track (no appearance match decided it).
    pub fn joining(identity_id: i64, partner: Modality, own: Modality) -> Assignment {
        Assignment {
            identity_id: Some(identity_id),
            similarity: None,
            matched_modality: Some(partner),
            day_night_link: partner != own,
            margin: None,
        }
    }
}

impl Thresholds {
    /// The threshold for a pair of crops of one modality.
    pub fn same(&self, m: Modality) -> f32 {
        match m {
            Modality::Thermal => self.same_thermal.unwrap_or(self.same_modality),
            Modality::Rgb => self.same_modality,
        }
    }

    /// The threshold for a same-modality exemplar, where both lights are known
    /// and differ: for thermal, the day/night threshold; RGB is not comparable
    /// (`None`). A dim night colour crop scores low against everyone by day, so
    /// as evidence it would only veto what its thermal partner sees.
    fn same_in(&self, m: Modality, query: Option<Light>, exemplar: Option<Light>) -> Option<f32> {
        let across = query.zip(exemplar).is_some_and(|(q, e)| q != e);
        match (m, across, self.cross_light) {
            (Modality::Rgb, true, _) => None,
            (Modality::Thermal, true, Some(t)) => Some(t),
            _ => Some(self.same(m)),
        }
    }

    /// A cross-modality threshold of 1 or more turns cross-modality matching
    /// off (`vireid thresholds` writes 1.0 for an embedder that cannot do it).
    pub fn cross_enabled(&self) -> bool {
        self.cross_modality < 1.0
    }
}

/// One identity's best exemplar for a query, and how far it clears its threshold.
#[derive(Debug, Clone, Copy)]
struct Evidence {
    margin: f32,
    score: f32,
    same: bool,
}

/// One track's feature, and what it was seen as and in.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub feature: &'a [f32],
    pub modality: Modality,
    pub light: Option<Light>,
    /// Identities the track cannot be, however alike: its own camera saw them
    /// elsewhere in the frame while it was seen (`Gallery::seen_meanwhile`).
    pub cannot_be: &'a [i64],
}

/// Per identity, the comparable exemplar that clears its threshold by the
/// most (or misses it by the least). Margins, not raw scores, make same- and
/// cross-modality matches comparable. Cross-modality exemplars count only
/// while cross-modality matching is on; RGB exemplars only in the query's light.
fn evidence(index: &FeatureIndex, q: Query<'_>, t: Thresholds) -> HashMap<i64, Evidence> {
    let Query { feature, modality, light, cannot_be } = q;
    let mut best: HashMap<i64, Evidence> = HashMap::new();
    for (s, r) in index.cosines(feature).into_iter().zip(index.rows()) {
        if cannot_be.contains(&r.identity_id) {
            continue;
        }
        let same = r.modality == modality;
        let threshold = match same {
            true => t.same_in(modality, light, r.light),
            false => t.cross_enabled().then_some(t.cross_modality),
        };
        let Some(threshold) = threshold else { continue };
        let e = Evidence { margin: s - threshold, score: s, same };
        best.entry(r.identity_id)
            .and_modify(|b| {
                if e.margin > b.margin {
                    *b = e
                }
            })
            .or_insert(e);
    }
    best
}

fn assignment(id: i64, e: Evidence, modality: Modality) -> Assignment {
    Assignment {
        identity_id: Some(id),
        similarity: Some(e.score),
        matched_modality: Some(if e.same { modality } else { modality.other() }),
        day_night_link: !e.same,
        margin: Some(e.margin),
    }
}

/// How far a track's best comparable exemplar of `identity_id` clears its
/// threshold (negative: misses it); `None` when the identity has no exemplar
/// the track can be compared with.
pub fn margin_to(index: &FeatureIndex, q: Query<'_>, t: Thresholds, identity_id: i64) -> Option<f32> {
    evidence(index, q, t).get(&identity_id).map(|e| e.margin)
}

/// Picks the identity whose best exemplar clears its threshold by the widest
/// margin; no identity above threshold, or a runner-up within `min_gap` of
/// it → a new identity.
pub fn assign(index: &FeatureIndex, q: Query<'_>, t: Thresholds) -> Assignment {
    let mut ranked: Vec<(f32, i64, Evidence)> =
        evidence(index, q, t).into_iter().map(|(id, e)| (e.margin, id, e)).collect();
    match clear_winner(&mut ranked, t.min_gap) {
        None => Assignment::new_identity(),
        Some((_, id, e)) => assignment(id, e, q.modality),
    }
}

/// The best-scored candidate (ties to the lower identity id) if it scores at
/// least 0 and clears the runner-up by `min_gap`. Splitting one person into
/// two identities costs a link; merging two people costs every sighting of
/// both, so an ambiguous choice starts a new identity.
fn clear_winner<T: Copy>(ranked: &mut [(f32, i64, T)], min_gap: f32) -> Option<(f32, i64, T)> {
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let best = *ranked.first()?;
    let clear = ranked.get(1).is_none_or(|second| best.0 - second.0 >= min_gap);
    (best.0 >= 0.0 && clear).then_some(best)
}

/// Which of a co-observed pair's two tracks decides its identity, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct PairAssignment {
    /// The first track of the pair decides (else the second).
    pub first_leads: bool,
    /// The deciding track's assignment; the other track joins its identity.
    pub lead: Assignment,
}

/// One identity for two tracks of one person (a box's RGB and thermal views at
/// the same time). Both observations vote: an identity's support is the sum of
/// both tracks' margins to it, counting a track only where it has a comparable
/// exemplar. So a confident match of one view is vetoed when the other view of
/// the same person clearly disagrees, which is what a single track cannot
/// notice (a dim night RGB crop can look like anyone). The identity needs a
/// track above threshold and non-negative support; the track with the larger
/// margin leads. None qualifies → a new identity, led by the first track.
pub fn assign_pair(index: &FeatureIndex, first: Query<'_>, second: Query<'_>, t: Thresholds) -> PairAssignment {
    let (ea, eb) = (evidence(index, first, t), evidence(index, second, t));
    // (support, identity, (first leads, the leading track's evidence))
    let mut ranked: Vec<(f32, i64, (bool, Evidence))> = vec![];
    for id in ea.keys().chain(eb.keys().filter(|id| !ea.contains_key(id))) {
        let (a, b) = (ea.get(id).copied(), eb.get(id).copied());
        let (first_leads, lead) = match (a, b) {
            (Some(a), Some(b)) if b.margin > a.margin => (false, b),
            (Some(a), _) => (true, a),
            (None, Some(b)) => (false, b),
            (None, None) => continue,
        };
        // Support ≥ 0 (what a winner needs) implies a track clears its threshold;
        // an identity neither clears has negative support but still counts as a runner-up.
        let support = a.map_or(0.0, |e| e.margin) + b.map_or(0.0, |e| e.margin);
        ranked.push((support, *id, (first_leads, lead)));
    }
    match clear_winner(&mut ranked, t.min_gap) {
        None => PairAssignment { first_leads: true, lead: Assignment::new_identity() },
        Some((_, id, (first_leads, e))) => PairAssignment {
            first_leads,
            lead: assignment(id, e, if first_leads { first.modality } else { second.modality }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::index::RowInfo;

    fn seen(feature: &[f32], modality: Modality) -> Query<'_> {
        Query { feature, modality, light: None, cannot_be: &[] }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn same_and_cross_thresholds_and_new_identities() {
        let mut idx = FeatureIndex::new(3);
        idx.push(
            RowInfo { feature_id: 1, identity_id: 10, modality: Modality::Rgb, light: None },
            &unit(&[1.0, 0.0, 0.0]),
        );
        idx.push(
            RowInfo { feature_id: 2, identity_id: 20, modality: Modality::Thermal, light: None },
            &unit(&[0.0, 1.0, 0.0]),
        );
        let t =
            Thresholds { same_modality: 0.8, same_thermal: None, cross_modality: 0.5, cross_light: None, min_gap: 0.0 };
        // cos 0.707 to identity 10 (rgb): below same threshold for an rgb query → new identity.
        let q = unit(&[1.0, 0.0, 1.0]);
        assert_eq!(assign(&idx, seen(&q, Modality::Rgb), t).identity_id, None);
        // The same feature from thermal: cross-modality to 10 clears 0.5 → a day/night link.
        let a = assign(&idx, seen(&q, Modality::Thermal), t);
        assert_eq!((a.identity_id, a.day_night_link, a.matched_modality), (Some(10), true, Some(Modality::Rgb)));
        // A thermal feature close to thermal identity 20: same-modality, no link.
        let a = assign(&idx, seen(&unit(&[0.1, 1.0, 0.0]), Modality::Thermal), t);
        assert_eq!((a.identity_id, a.day_night_link), (Some(20), false));
        // Thermal's own threshold: cos 0.995 clears 0.99, cos 0.98 does not; RGB keeps 0.8.
        let strict = Thresholds { same_thermal: Some(0.99), ..t };
        assert_eq!(assign(&idx, seen(&unit(&[0.1, 1.0, 0.0]), Modality::Thermal), strict).identity_id, Some(20));
        assert_eq!(assign(&idx, seen(&unit(&[0.2, 1.0, 0.0]), Modality::Thermal), strict).identity_id, None);
        assert_eq!(assign(&idx, seen(&unit(&[1.0, 0.3, 0.0]), Modality::Rgb), strict).identity_id, Some(10));
        assert!(assign(&FeatureIndex::new(3), seen(&q, Modality::Rgb), t).identity_id.is_none());
    }

    #[test]
    fn a_pair_needs_both_views_to_agree() {
        let mut idx = FeatureIndex::new(3);
        // Identity 10: day RGB and day thermal exemplars. Identity 20: an RGB exemplar only.
        idx.push(
            RowInfo { feature_id: 1, identity_id: 10, modality: Modality::Rgb, light: None },
            &unit(&[1.0, 0.0, 0.0]),
        );
        idx.push(
            RowInfo { feature_id: 2, identity_id: 10, modality: Modality::Thermal, light: None },
            &unit(&[0.0, 1.0, 0.0]),
        );
        idx.push(
            RowInfo { feature_id: 3, identity_id: 20, modality: Modality::Rgb, light: None },
            &unit(&[0.0, 0.0, 1.0]),
        );
        idx.push(
            RowInfo { feature_id: 4, identity_id: 20, modality: Modality::Thermal, light: None },
            &unit(&[1.0, 0.0, 1.0]),
        );
        let t =
            Thresholds { same_modality: 0.6, same_thermal: None, cross_modality: 1.0, cross_light: None, min_gap: 0.0 }; // cross-modality matching off
                                                                                                                         // A dim night RGB track looks like 20 (cos 0.86 to 20, 0.51 to 10) but its thermal
                                                                                                                         // partner is clearly 10 (cos 0.99) and clearly not 20 (cos 0.07).
        let rgb = unit(&[0.6, 0.0, 1.0]);
        let thermal = unit(&[0.1, 1.0, 0.0]);
        assert_eq!(
            assign(&idx, seen(&rgb, Modality::Rgb), t).identity_id,
            Some(20),
            "alone, the RGB track would pick 20"
        );
        let p = assign_pair(&idx, seen(&rgb, Modality::Rgb), seen(&thermal, Modality::Thermal), t);
        assert_eq!(
            (p.first_leads, p.lead.identity_id, p.lead.matched_modality),
            (false, Some(10), Some(Modality::Thermal))
        );
        assert!(!p.lead.day_night_link && p.lead.similarity.is_some_and(|s| s > 0.99));
        // Both views agree on 20: 20, led by the RGB track with the larger margin.
        let p = assign_pair(
            &idx,
            seen(&unit(&[0.05, 0.0, 1.0]), Modality::Rgb),
            seen(&unit(&[1.0, 0.3, 1.0]), Modality::Thermal),
            t,
        );
        assert_eq!((p.lead.identity_id, p.first_leads), (Some(20), true));
        // The RGB view clears the threshold for both (cos 0.74 to 10, 0.67 to 20), the thermal
        // view contradicts both → a new identity.
        let p = assign_pair(
            &idx,
            seen(&unit(&[1.0, 0.0, 0.9]), Modality::Rgb),
            seen(&unit(&[0.0, 0.2, -1.0]), Modality::Thermal),
            t,
        );
        assert_eq!(p.lead.identity_id, None, "{p:?}");
        assert_eq!(
            assign_pair(&FeatureIndex::new(3), seen(&rgb, Modality::Rgb), seen(&thermal, Modality::Thermal), t).lead,
            Assignment::new_identity()
        );
    }

    #[test]
    fn an_ambiguous_best_match_starts_a_new_identity() {
        let mut idx = FeatureIndex::new(3);
        idx.push(
            RowInfo { feature_id: 1, identity_id: 10, modality: Modality::Rgb, light: None },
            &unit(&[1.0, 0.0, 0.0]),
        );
        idx.push(
            RowInfo { feature_id: 2, identity_id: 20, modality: Modality::Rgb, light: None },
            &unit(&[0.0, 1.0, 0.0]),
        );
        // cos 0.80 to 10 and 0.60 to 20, both above 0.5.
        let clear = unit(&[0.8, 0.6, 0.0]);
        // cos 0.74 to 10 and 0.67 to 20: 0.07 apart.
        let close = unit(&[0.74, 0.67, 0.0]);
        let t = |min_gap| Thresholds {
            same_modality: 0.5,
            same_thermal: None,
            cross_modality: 1.0,
            cross_light: None,
            min_gap,
        };
        assert_eq!(assign(&idx, seen(&close, Modality::Rgb), t(0.0)).identity_id, Some(10), "no gap asked: the best");
        assert_eq!(
            assign(&idx, seen(&close, Modality::Rgb), t(0.1)).identity_id,
            None,
            "0.07 apart is ambiguous at 0.1"
        );
        assert_eq!(assign(&idx, seen(&clear, Modality::Rgb), t(0.1)).identity_id, Some(10), "0.2 apart is clear");
        // The runner-up counts even below threshold: 0.74 vs 0.67 at threshold 0.7.
        let t7 =
            Thresholds { same_modality: 0.7, same_thermal: None, cross_modality: 1.0, cross_light: None, min_gap: 0.1 };
        assert_eq!(assign(&idx, seen(&close, Modality::Rgb), t7).identity_id, None);
        // A pair: both views close between 10 and 20 → new; the thermal view has no
        // thermal exemplars, so the RGB view decides alone.
        let p =
            assign_pair(&idx, seen(&close, Modality::Rgb), seen(&unit(&[0.0, 0.0, 1.0]), Modality::Thermal), t(0.1));
        assert_eq!(p.lead.identity_id, None);
        let p =
            assign_pair(&idx, seen(&clear, Modality::Rgb), seen(&unit(&[0.0, 0.0, 1.0]), Modality::Thermal), t(0.1));
        assert_eq!((p.lead.identity_id, p.first_leads), (Some(10), true));
    }

    /// Day against night gets its own threshold, and only where both lights are known.
    #[test]
    fn across_light_has_its_own_threshold() {
        let mut idx = FeatureIndex::new(3);
        let day = RowInfo { feature_id: 1, identity_id: 10, modality: Modality::Thermal, light: Some(Light::Day) };
        idx.push(day, &unit(&[1.0, 0.0, 0.0]));
        // cos 0.55 to the day exemplar: far below the same-light 0.7, above the day/night 0.45.
        let night_view = unit(&[1.0, 1.52, 0.0]);
        let t = Thresholds {
            same_modality: 0.7,
            same_thermal: None,
            cross_modality: 1.0,
            cross_light: Some(0.45),
            min_gap: 0.0,
        };
        let at =
            |light| assign(&idx, Query { feature: &night_view, modality: Modality::Thermal, light, cannot_be: &[] }, t);
        assert_eq!(at(Some(Light::Night)).identity_id, Some(10), "night against a day exemplar");
        let a = at(Some(Light::Night));
        assert!(!a.day_night_link && a.matched_modality == Some(Modality::Thermal), "{a:?}");
        assert_eq!(at(Some(Light::Day)).identity_id, None, "same light: the same-modality threshold");
        assert_eq!(at(None).identity_id, None, "unknown light: the same-modality threshold");
        assert_eq!(
            assign(&idx, seen(&night_view, Modality::Thermal), Thresholds { cross_light: None, ..t }).identity_id,
            None
        );
        // A pair at night: its thermal view joins the day identity the same way.
        let rgb = unit(&[0.0, 0.0, 1.0]);
        let p = assign_pair(
            &idx,
            Query { feature: &rgb, modality: Modality::Rgb, light: Some(Light::Night), cannot_be: &[] },
            Query { feature: &night_view, modality: Modality::Thermal, light: Some(Light::Night), cannot_be: &[] },
            t,
        );
        assert_eq!((p.first_leads, p.lead.identity_id), (false, Some(10)));
    }

    /// A dim night colour view neither joins nor vetoes a day RGB identity: only
    /// RGB exemplars of its own light are evidence.
    #[test]
    fn night_rgb_is_not_compared_with_day_rgb() {
        let mut idx = FeatureIndex::new(3);
        let row = |feature_id, modality| RowInfo { feature_id, identity_id: 10, modality, light: Some(Light::Day) };
        idx.push(row(1, Modality::Rgb), &unit(&[1.0, 0.0, 0.0]));
        idx.push(row(2, Modality::Thermal), &unit(&[0.0, 1.0, 0.0]));
        let t = Thresholds {
            same_modality: 0.7,
            same_thermal: None,
            cross_modality: 1.0,
            cross_light: Some(0.45),
            min_gap: 0.05,
        };
        let at = |feature, modality, light| Query { feature, modality, light: Some(light), cannot_be: &[] };
        // The night thermal view clears the day/night threshold (cos 0.55); its
        // colour partner, near black, is nothing like the day colour exemplar (cos 0).
        let (dim, night_view) = (unit(&[0.0, 0.0, 1.0]), unit(&[0.0, 1.0, 1.52]));
        let p = assign_pair(
            &idx,
            at(&dim, Modality::Rgb, Light::Night),
            at(&night_view, Modality::Thermal, Light::Night),
            t,
        );
        assert_eq!((p.lead.identity_id, p.first_leads), (Some(10), false), "the dim view does not veto: {p:?}");
        // By day the same colour view is evidence, and it vetoes (support 0.10 − 0.70 < 0).
        let p =
            assign_pair(&idx, at(&dim, Modality::Rgb, Light::Day), at(&night_view, Modality::Thermal, Light::Night), t);
        assert_eq!(p.lead.identity_id, None, "{p:?}");
        // A night colour track alone does not join a day identity, however close (cos 0.99).
        let close = unit(&[1.0, 0.1, 0.0]);
        assert_eq!(assign(&idx, at(&close, Modality::Rgb, Light::Night), t).identity_id, None);
        assert_eq!(assign(&idx, at(&close, Modality::Rgb, Light::Day), t).identity_id, Some(10));
        // Unknown light (a box without a colour camera): compared as before.
        assert_eq!(assign(&idx, seen(&close, Modality::Rgb), t).identity_id, Some(10));
    }

    /// An identity the track's own camera saw elsewhere at the same time is no
    /// candidate, as winner or runner-up, alone or as a pair.
    #[test]
    fn an_identity_seen_meanwhile_is_no_candidate() {
        let mut idx = FeatureIndex::new(3);
        let row = |feature_id, identity_id, modality| RowInfo { feature_id, identity_id, modality, light: None };
        idx.push(row(1, 10, Modality::Rgb), &unit(&[1.0, 0.0, 0.0]));
        idx.push(row(2, 11, Modality::Rgb), &unit(&[1.0, 0.3, 0.0]));
        idx.push(row(3, 12, Modality::Thermal), &unit(&[0.0, 0.0, 1.0]));
        let t = Thresholds {
            same_modality: 0.8,
            same_thermal: None,
            cross_modality: 1.0,
            cross_light: None,
            min_gap: 0.05,
        };
        let q = unit(&[1.0, 0.05, 0.0]);
        let query = |cannot_be| Query { feature: &q, modality: Modality::Rgb, light: None, cannot_be };
        assert_eq!(assign(&idx, query(&[]), t).identity_id, None, "10 and 11 are too close to choose");
        assert_eq!(assign(&idx, query(&[11]), t).identity_id, Some(10), "11 is someone else: 10 is clear");
        assert_eq!(assign(&idx, query(&[10, 11]), t).identity_id, None);
        // A pair whose thermal view matches 12 cannot join it when 12 was seen meanwhile.
        let th = unit(&[0.0, 0.1, 1.0]);
        let dim = unit(&[0.0, 1.0, 0.0]);
        let pair = |cannot_be| {
            assign_pair(
                &idx,
                Query { feature: &dim, modality: Modality::Rgb, light: None, cannot_be },
                Query { feature: &th, modality: Modality::Thermal, light: None, cannot_be },
                t,
            )
        };
        assert_eq!(pair(&[]).lead.identity_id, Some(12));
        assert_eq!(pair(&[12]).lead.identity_id, None);
    }
}
