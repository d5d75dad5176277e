//! `vireid score`: sightings against a synthetic scene's ground truth ([`crate::score`]).

use anyhow::Result;
use std::path::PathBuf;

use crate::events::read_sightings;
use crate::score::{read_ground_truth, score};

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
}

pub fn run(args: &ScoreArgs) -> Result<()> {
    let gt = read_ground_truth(&args.gt)?;
    let sightings = read_sightings(&args.sightings)?;
    let s = score(&gt, &sightings, args.min_iou, args.min_visible);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
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
    Ok(())
}
