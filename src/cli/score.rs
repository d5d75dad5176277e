//! `vireid score`: sightings against a synthetic scene's ground truth ([`crate::score`]).

use anyhow::Result;
use std::path::PathBuf;

use crate::core::Modality;
use crate::events::read_sightings;
use crate::score::{explain, read_ground_truth, score, Explanation, JoinedBy};

#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    /// `ground_truth.jsonl` of a synthetic scene.
    #[arg(long)]
    pub gt: PathBuf,
    /// Sightings (the JSON-lines event stream of `vireid run`).
    #[arg(long)]
    pub sightings: PathBuf,
    /// Minimum IoU between a sighting's best box and a ground-truth box.
    #[arg(long, default_value_t = 0.3)]
    pub min_iou: f32,
    /// Ground-truth boxes less visible than this don't count as appearances.
    #[arg(long, default_value_t = 0.3)]
    pub min_visible: f32,
    /// Print JSON only.
    #[arg(long)]
    pub json: bool,
    /// Also list where the errors come from: each decision that joined a
    /// sighting to someone else's identity, and where the night thermal
    /// sightings of each person without a night→day link went.
    #[arg(long)]
    pub explain: bool,
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let gt = read_ground_truth(&args.gt)?;
    let sightings = read_sightings(&args.sightings)?;
    let s = score(&gt, &sightings, args.min_iou, args.min_visible);
    let why = args.explain.then(|| explain(&gt, &sightings, args.min_iou, args.min_visible));
    if args.json {
        let mut out = serde_json::to_value(&s)?;
        if let (Some(why), Some(map)) = (&why, out.as_object_mut()) {
            map.insert("explain".into(), serde_json::to_value(why)?);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("sightings           {} ({} attributed to a ground-truth person)", s.sightings, s.attributed_sightings);
    println!(
        "detection recall    {:.1}% ({}/{} person×modality×segment appearances)",
        100.0 * s.detection_recall,
        s.detected_appearances,
        s.gt_appearances
    );
    println!("identities          {} (purity {:.1}%)", s.identities, 100.0 * s.identity_purity);
    println!(
        "day/night link rate {:.1}% ({}/{} people seen in both modalities)",
        100.0 * s.day_night_link_rate,
        s.people_linked,
        s.people_in_both_modalities
    );
    println!(
        "night→day link rate {:.1}% ({}/{} people seen in RGB by day and thermal at night)",
        100.0 * s.night_to_day_link_rate,
        s.people_linked_night_to_day,
        s.people_day_rgb_night_thermal
    );
    println!(
        "pair precision      {:.1}% ({}/{} co-observation pairs are one person)",
        100.0 * s.pair_precision,
        s.co_observation_pairs_correct,
        s.co_observation_pairs
    );
    println!(
        "false-link rate     {:.1}% ({}/{} cross-modality sighting pairs)",
        100.0 * s.false_link_rate,
        s.false_cross_modality_pairs,
        s.cross_modality_pairs
    );
    println!("link events         {}", s.link_events);
    if let Some(why) = why {
        print_explanation(&why);
    }
    Ok(())
}

fn by(j: &JoinedBy) -> String {
    match j {
        JoinedBy::Appearance { score, matched } => {
            format!("appearance {score:.3} against {}", matched.map(Modality::as_str).unwrap_or("?"))
        }
        JoinedBy::CoObservation { partner: Some(p), partner_person: Some(pp) } => {
            format!("co-observation with sighting {p} (person {pp})")
        }
        JoinedBy::CoObservation { partner: Some(p), partner_person: None } => {
            format!("co-observation with sighting {p} (nobody in the ground truth)")
        }
        JoinedBy::CoObservation { partner: None, .. } => "co-observation".into(),
    }
}

fn print_explanation(why: &Explanation) {
    println!();
    println!(
        "wrong joins         {} (a sighting joined an identity that was mostly another person)",
        why.wrong_joins.len()
    );
    for w in &why.wrong_joins {
        println!(
            "  sighting {:>5}  {:<8} {:<7} {:<5}  person {:>3} → identity {} (person {}) by {}",
            w.sighting_id,
            w.camera,
            w.modality.as_str(),
            w.segment,
            w.person,
            w.identity_id,
            w.identity_person,
            by(&w.joined_by)
        );
    }
    println!(
        "missed night→day    {} (people whose night thermal sightings share no identity with their day RGB ones)",
        why.missed_links.len()
    );
    for m in &why.missed_links {
        let days: Vec<String> = m.day_rgb_identities.iter().map(i64::to_string).collect();
        println!("  person {:>3}: day RGB in identity {}; night thermal:", m.person, days.join(", "));
        for n in &m.night_thermal {
            let how = n.joined_by.as_ref().map_or_else(|| "started it".to_string(), by);
            println!(
                "    sighting {:>5} → identity {} (person {}) {how}",
                n.sighting_id, n.identity_id, n.identity_person
            );
        }
    }
}
