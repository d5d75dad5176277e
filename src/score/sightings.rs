//! `vireid score`: sightings (the JSON-lines event stream) against a synthetic
//! scene's ground truth (`ground_truth.jsonl` from `vireid synth scene`: one line
//! per person per frame per camera, `{"camera":"rgb"|"thermal","frame","pts_ns",
//! "person_id","segment","bbox":[x,y,w,h],"visible"}`).
//!
//! Each sighting is attributed to the ground-truth person whose box at the
//! sighting's best frame (`best_pts_ns`, nearest ground-truth frame of that
//! modality) overlaps its best box most (IoU ≥ `min_iou`). Then:
//! * detection recall — share of ground-truth appearances (person × modality ×
//!   segment) with at least one attributed sighting;
//! * identity purity — share of attributed sightings whose gallery identity's
//!   majority person is their own person;
//! * day/night link rate — share of people present in both modalities whose RGB
//!   and thermal sightings share at least one gallery identity;
//! * night→day link rate — the product's point, and stricter: share of people
//!   seen in RGB by day and in thermal at night whose night thermal sightings
//!   share a gallery identity with their day RGB sightings (a link made only
//!   while both cameras saw them by day does not count here);
//! * pair precision — among co-observation pairs (`paired_sighting_id`) whose
//!   two sightings are both attributed, the share that are one person;
//! * false-link rate — among pairs (RGB sighting, thermal sighting) put in the
//!   same gallery identity, the share that are two different people.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::core::BBox;
use crate::core::Modality;
use crate::events::SightingEvent;

use crate::synth::ground_truth::GroundTruthLine;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Score {
    pub sightings: usize,
    pub attributed_sightings: usize,
    pub gt_appearances: usize,
    pub detected_appearances: usize,
    pub detection_recall: f64,
    pub identities: usize,
    pub identity_purity: f64,
    pub people_in_both_modalities: usize,
    pub people_linked: usize,
    pub day_night_link_rate: f64,
    pub people_day_rgb_night_thermal: usize,
    pub people_linked_night_to_day: usize,
    pub night_to_day_link_rate: f64,
    pub co_observation_pairs: usize,
    pub co_observation_pairs_correct: usize,
    pub pair_precision: f64,
    pub cross_modality_pairs: usize,
    pub false_cross_modality_pairs: usize,
    pub false_link_rate: f64,
    /// Sightings flagged `day_night_link` by the gallery.
    pub link_events: usize,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Each attributed sighting with its ground-truth person and segment, and what
/// the ground truth holds: the person × modality × segment appearances, and
/// the modalities each person was visible in.
struct Attribution<'a> {
    attributed: Vec<(&'a SightingEvent, u64, &'a str)>,
    appearances: HashSet<(u64, Modality, &'a str)>,
    present: HashMap<u64, HashSet<Modality>>,
}

fn attribute<'a>(
    gt: &'a [GroundTruthLine],
    sightings: &'a [SightingEvent],
    min_iou: f32,
    min_visible: f32,
) -> Attribution<'a> {
    // Ground truth per modality, by timestamp.
    let mut by_time: HashMap<Modality, BTreeMap<u64, Vec<&GroundTruthLine>>> = HashMap::new();
    let mut appearances: HashSet<(u64, Modality, &str)> = HashSet::new();
    let mut present: HashMap<u64, HashSet<Modality>> = HashMap::new();
    for g in gt {
        let m: Modality = g.camera.parse().unwrap_or(Modality::Rgb);
        by_time.entry(m).or_default().entry(g.pts_ns).or_default().push(g);
        if g.visible >= min_visible {
            appearances.insert((g.person_id, m, g.segment.as_str()));
            present.entry(g.person_id).or_default().insert(m);
        }
    }
    // Attribute each sighting to a person.
    let mut attributed: Vec<(&SightingEvent, u64, &str)> = vec![];
    for s in sightings {
        let Some(frames) = by_time.get(&s.modality) else { continue };
        let t = s.best_pts_ns.or(s.start_pts_ns.zip(s.end_pts_ns).map(|(a, b)| (a + b) / 2)).unwrap_or(0).max(0) as u64;
        let before = frames.range(..=t).next_back();
        let after = frames.range(t..).next();
        let nearest = match (before, after) {
            (Some(b), Some(a)) => {
                if t - b.0 <= a.0 - t {
                    b
                } else {
                    a
                }
            }
            (Some(b), None) => b,
            (None, Some(a)) => a,
            (None, None) => continue,
        };
        let sb = s.bbox();
        let best = nearest
            .1
            .iter()
            .map(|g| (g, sb.iou(&BBox::new(g.bbox[0], g.bbox[1], g.bbox[2], g.bbox[3]))))
            .filter(|(_, iou)| *iou >= min_iou)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((g, _)) = best {
            attributed.push((s, g.person_id, g.segment.as_str()));
        }
    }
    Attribution { attributed, appearances, present }
}

pub fn score(gt: &[GroundTruthLine], sightings: &[SightingEvent], min_iou: f32, min_visible: f32) -> Score {
    let Attribution { attributed, appearances, present } = attribute(gt, sightings, min_iou, min_visible);
    let detected: HashSet<(u64, Modality, &str)> =
        attributed.iter().map(|(s, p, seg)| (*p, s.modality, *seg)).filter(|k| appearances.contains(k)).collect();
    // Purity.
    let mut per_identity: HashMap<i64, HashMap<u64, usize>> = HashMap::new();
    for (s, p, _) in &attributed {
        *per_identity.entry(s.identity_id).or_default().entry(*p).or_default() += 1;
    }
    let majority_sum: usize = per_identity.values().map(|m| m.values().copied().max().unwrap_or(0)).sum();
    // Links: people in both modalities whose sightings share an identity.
    let mut ids_of: HashMap<(u64, Modality), HashSet<i64>> = HashMap::new();
    for (s, p, _) in &attributed {
        ids_of.entry((*p, s.modality)).or_default().insert(s.identity_id);
    }
    let both: Vec<u64> = present.iter().filter(|(_, m)| m.len() == 2).map(|(p, _)| *p).collect();
    let linked = both
        .iter()
        .filter(|p| {
            let (Some(a), Some(b)) = (ids_of.get(&(**p, Modality::Rgb)), ids_of.get(&(**p, Modality::Thermal))) else {
                return false;
            };
            !a.is_disjoint(b)
        })
        .count();
    // Night→day: thermal sightings at night against RGB sightings by day.
    let mut ids_seg: HashMap<(u64, Modality, &str), HashSet<i64>> = HashMap::new();
    for (s, p, seg) in &attributed {
        ids_seg.entry((*p, s.modality, *seg)).or_default().insert(s.identity_id);
    }
    let (mut night_day, mut night_day_linked) = (0usize, 0usize);
    for p in present.keys() {
        if let (Some(day), Some(night)) =
            (ids_seg.get(&(*p, Modality::Rgb, "day")), ids_seg.get(&(*p, Modality::Thermal, "night")))
        {
            night_day += 1;
            night_day_linked += !day.is_disjoint(night) as usize;
        }
    }
    // Co-observation pairs, each once whichever side names the other (a late
    // partner's event names the earlier sighting, whose own event named another).
    let person_of: HashMap<i64, u64> = attributed.iter().map(|(s, p, _)| (s.sighting_id, *p)).collect();
    let co: HashSet<(i64, i64)> = attributed
        .iter()
        .filter_map(|(s, _, _)| s.paired_sighting_id.map(|q| (s.sighting_id.min(q), s.sighting_id.max(q))))
        .collect();
    let (mut co_pairs, mut co_correct) = (0usize, 0usize);
    for (a, b) in &co {
        if let (Some(pa), Some(pb)) = (person_of.get(a), person_of.get(b)) {
            co_pairs += 1;
            co_correct += (pa == pb) as usize;
        }
    }
    // False links: cross-modality pairs inside one identity that are two people.
    let mut counts: HashMap<(i64, Modality), HashMap<u64, usize>> = HashMap::new();
    for (s, p, _) in &attributed {
        *counts.entry((s.identity_id, s.modality)).or_default().entry(*p).or_default() += 1;
    }
    let (mut pairs, mut false_pairs) = (0usize, 0usize);
    for (&(id, m), rgb) in &counts {
        if m != Modality::Rgb {
            continue;
        }
        let Some(th) = counts.get(&(id, Modality::Thermal)) else { continue };
        for (pr, nr) in rgb {
            for (pt, nt) in th {
                pairs += nr * nt;
                if pr != pt {
                    false_pairs += nr * nt;
                }
            }
        }
    }
    Score {
        sightings: sightings.len(),
        attributed_sightings: attributed.len(),
        gt_appearances: appearances.len(),
        detected_appearances: detected.len(),
        detection_recall: ratio(detected.len(), appearances.len()),
        identities: sightings.iter().map(|s| s.identity_id).collect::<HashSet<_>>().len(),
        identity_purity: ratio(majority_sum, attributed.len()),
        people_in_both_modalities: both.len(),
        people_linked: linked,
        day_night_link_rate: ratio(linked, both.len()),
        people_day_rgb_night_thermal: night_day,
        people_linked_night_to_day: night_day_linked,
        night_to_day_link_rate: ratio(night_day_linked, night_day),
        co_observation_pairs: co_pairs,
        co_observation_pairs_correct: co_correct,
        pair_precision: ratio(co_correct, co_pairs),
        cross_modality_pairs: pairs,
        false_cross_modality_pairs: false_pairs,
        false_link_rate: ratio(false_pairs, pairs),
        link_events: sightings.iter().filter(|s| s.day_night_link).count(),
    }
}

/// How a sighting came to the identity it joined.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum JoinedBy {
    /// Its appearance matched an exemplar of the identity (of `matched` modality).
    Appearance { score: f32, matched: Option<Modality> },
    /// It followed its co-observed partner (`crate::pair`) into the partner's
    /// identity. The partner's person tells a pairing error (another person)
    /// from a wrong join inherited from the partner (the same person).
    CoObservation { partner: Option<i64>, partner_person: Option<u64> },
}

impl JoinedBy {
    fn of(s: &SightingEvent, person_of: &HashMap<i64, u64>) -> JoinedBy {
        match s.score {
            Some(score) => JoinedBy::Appearance { score, matched: s.matched_modality },
            None => JoinedBy::CoObservation {
                partner: s.paired_sighting_id,
                partner_person: s.paired_sighting_id.and_then(|p| person_of.get(&p).copied()),
            },
        }
    }
}

/// A sighting that joined an identity whose sightings so far were mostly
/// another person: one wrong decision, which every later sighting of either
/// person in that identity turns into false links.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WrongJoin {
    pub sighting_id: i64,
    pub camera: String,
    pub modality: Modality,
    /// The ground truth's segment at the sighting (`day`, `night`).
    pub segment: String,
    pub person: u64,
    pub identity_id: i64,
    /// The identity's most frequent person among the sightings before this one.
    pub identity_person: u64,
    pub joined_by: JoinedBy,
}

/// One night thermal sighting of a person whose night→day link was missed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NightSighting {
    pub sighting_id: i64,
    pub identity_id: i64,
    /// The identity's most frequent person over the whole run.
    pub identity_person: u64,
    pub new_identity: bool,
    /// `None` exactly when it started its identity (`new_identity`).
    pub joined_by: Option<JoinedBy>,
}

/// A person seen in RGB by day and in thermal at night whose night thermal
/// sightings share no identity with their day RGB ones.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MissedLink {
    pub person: u64,
    pub day_rgb_identities: Vec<i64>,
    pub night_thermal: Vec<NightSighting>,
}

/// Where a run's errors come from (`vireid score --explain`): the decisions
/// behind its false links, and where each unlinked person's night went.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Explanation {
    pub wrong_joins: Vec<WrongJoin>,
    pub missed_links: Vec<MissedLink>,
}

/// The most frequent person of `counts`, ties to the lower person id.
fn majority(counts: &HashMap<u64, usize>) -> Option<u64> {
    counts.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(p, _)| *p)
}

/// Replays the run's decisions in the order the gallery made them (sighting
/// ids ascend with time) against the ground truth.
pub fn explain(gt: &[GroundTruthLine], sightings: &[SightingEvent], min_iou: f32, min_visible: f32) -> Explanation {
    let Attribution { mut attributed, .. } = attribute(gt, sightings, min_iou, min_visible);
    attributed.sort_by_key(|(s, _, _)| s.sighting_id);
    let person_of: HashMap<i64, u64> = attributed.iter().map(|(s, p, _)| (s.sighting_id, *p)).collect();
    let mut so_far: HashMap<i64, HashMap<u64, usize>> = HashMap::new();
    let mut wrong_joins = vec![];
    for (s, person, segment) in &attributed {
        let counts = so_far.entry(s.identity_id).or_default();
        let top = counts.values().copied().max().unwrap_or(0);
        // Wrong only when the identity was someone else's before: a tie with
        // this person's own count is not a decision against them.
        if !s.new_identity && top > 0 && counts.get(person).copied().unwrap_or(0) < top {
            wrong_joins.push(WrongJoin {
                sighting_id: s.sighting_id,
                camera: s.camera.clone(),
                modality: s.modality,
                segment: segment.to_string(),
                person: *person,
                identity_id: s.identity_id,
                identity_person: majority(counts).unwrap_or(*person),
                joined_by: JoinedBy::of(s, &person_of),
            });
        }
        *counts.entry(*person).or_default() += 1;
    }
    let mut day_rgb: BTreeMap<u64, std::collections::BTreeSet<i64>> = BTreeMap::new();
    let mut night_thermal: BTreeMap<u64, Vec<&SightingEvent>> = BTreeMap::new();
    for (s, person, segment) in &attributed {
        match (s.modality, *segment) {
            (Modality::Rgb, "day") => {
                day_rgb.entry(*person).or_default().insert(s.identity_id);
            }
            (Modality::Thermal, "night") => night_thermal.entry(*person).or_default().push(s),
            _ => {}
        }
    }
    let missed_links = day_rgb
        .iter()
        .filter_map(|(person, ids)| {
            let night = night_thermal.get(person)?;
            if night.iter().any(|s| ids.contains(&s.identity_id)) {
                return None;
            }
            let night_thermal = night
                .iter()
                .map(|s| NightSighting {
                    sighting_id: s.sighting_id,
                    identity_id: s.identity_id,
                    identity_person: so_far.get(&s.identity_id).and_then(majority).unwrap_or(*person),
                    new_identity: s.new_identity,
                    joined_by: (!s.new_identity).then(|| JoinedBy::of(s, &person_of)),
                })
                .collect();
            Some(MissedLink { person: *person, day_rgb_identities: ids.iter().copied().collect(), night_thermal })
        })
        .collect();
    Explanation { wrong_joins, missed_links }
}
