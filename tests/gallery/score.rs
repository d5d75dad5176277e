//! `vireid score` metrics on a hand-made ground truth where every figure is known.

use vireid::core::Modality;
use vireid::events::SightingEvent;
use vireid::score::{explain, score, GroundTruthLine, JoinedBy, MissedLink, NightSighting, WrongJoin};

fn gt(camera: &str, pts: u64, person: u64, segment: &str, x: f32) -> GroundTruthLine {
    GroundTruthLine {
        camera: camera.into(),
        frame: pts / 100,
        pts_ns: pts,
        person_id: person,
        segment: segment.into(),
        bbox: [x, 10.0, 40.0, 100.0],
        visible: 1.0,
    }
}

fn sighting(id: i64, identity: i64, m: Modality, pts: i64, x: f32, link: bool) -> SightingEvent {
    SightingEvent {
        event: "sighting".into(),
        sighting_id: id,
        identity_id: identity,
        label: None,
        new_identity: false,
        camera: m.as_str().into(),
        modality: m,
        track_id: id as u64,
        start_ns: 0,
        end_ns: 0,
        start_pts_ns: Some(pts),
        end_pts_ns: Some(pts),
        best_pts_ns: Some(pts),
        best_box: [x + 2.0, 12.0, 40.0, 96.0],
        score: Some(0.5),
        matched_modality: None,
        day_night_link: link,
        paired_sighting_id: None,
    }
}

/// Three people. A (x=0) and B (x=200) in both modalities by day and night; C (x=400) only in RGB by day.
fn known_scene() -> (Vec<GroundTruthLine>, Vec<SightingEvent>) {
    let mut lines = vec![];
    for (pts, seg) in [(100u64, "day"), (900, "night")] {
        for cam in ["rgb", "thermal"] {
            lines.push(gt(cam, pts, 1, seg, 0.0));
            lines.push(gt(cam, pts, 2, seg, 200.0));
        }
    }
    lines.push(gt("rgb", 100, 3, "day", 400.0));
    let s = vec![
        sighting(1, 10, Modality::Rgb, 100, 0.0, false), // A day rgb → identity 10
        sighting(2, 10, Modality::Thermal, 900, 0.0, true), // A night thermal linked to 10: correct link
        sighting(3, 20, Modality::Rgb, 100, 200.0, false), // B day rgb → 20
        sighting(4, 10, Modality::Thermal, 905, 200.0, true), // B night thermal wrongly linked to A's identity
        sighting(5, 30, Modality::Rgb, 100, 400.0, false), // C
        sighting(6, 40, Modality::Rgb, 100, 700.0, false), // nobody there: not attributed
        sighting(7, 20, Modality::Thermal, 100, 200.0, true), // B day thermal, paired with B's day rgb
    ];
    let mut s = s;
    // B's day rgb and day thermal sightings were paired by co-observation (correctly); A's day rgb
    // was paired with B's night thermal (wrongly, and at another time: the score only checks persons).
    s[2].paired_sighting_id = Some(7);
    s[6].paired_sighting_id = Some(3);
    s[0].paired_sighting_id = Some(4);
    s[3].paired_sighting_id = Some(1);
    (lines, s)
}

#[test]
fn known_scene_gives_known_figures() {
    let (lines, s) = known_scene();
    let r = score(&lines, &s, 0.3, 0.3);
    assert_eq!(r.sightings, 7);
    assert_eq!(r.attributed_sightings, 6);
    // Appearances: A,B × {rgb,thermal} × {day,night} = 8, + C rgb day = 9;
    // detected: A rgb day, A th night, B rgb day, B th day, B th night, C = 6.
    assert_eq!((r.gt_appearances, r.detected_appearances), (9, 6));
    assert!((r.detection_recall - 6.0 / 9.0).abs() < 1e-9);
    // Identity 10 holds A, A, B → majority 2; 20: B, B; 30: C → purity 5/6.
    assert!((r.identity_purity - 5.0 / 6.0).abs() < 1e-9, "{r:?}");
    // People in both modalities: A and B, and both have rgb and thermal sightings sharing an
    // identity (B only through the day pairing)...
    assert_eq!((r.people_in_both_modalities, r.people_linked), (2, 2));
    // ...but only A's night thermal sighting is linked to its day rgb identity.
    assert_eq!((r.people_day_rgb_night_thermal, r.people_linked_night_to_day), (2, 1));
    assert!((r.night_to_day_link_rate - 0.5).abs() < 1e-9);
    // Identity 10: rgb {A:1} × thermal {A:1, B:1} → 2 pairs, 1 false; 20: {B} × {B} → 1 pair.
    assert_eq!((r.cross_modality_pairs, r.false_cross_modality_pairs), (3, 1));
    assert!((r.false_link_rate - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(r.link_events, 3);
    assert_eq!((r.co_observation_pairs, r.co_observation_pairs_correct), (2, 1));
    assert!((r.pair_precision - 0.5).abs() < 1e-9);
}

/// `vireid score --explain` names the one wrong decision of the known scene (B's
/// night thermal sighting joined A's identity) and where B's night went.
#[test]
fn explain_names_the_wrong_join_and_the_missed_link() {
    let (lines, s) = known_scene();
    let why = explain(&lines, &s, 0.3, 0.3);
    let by_appearance = JoinedBy::Appearance { score: 0.5, matched: None };
    assert_eq!(
        why.wrong_joins,
        vec![WrongJoin {
            sighting_id: 4,
            camera: "thermal".into(),
            modality: Modality::Thermal,
            segment: "night".into(),
            person: 2,
            identity_id: 10,
            identity_person: 1,
            joined_by: by_appearance.clone(),
        }]
    );
    // A's night is linked; B's night thermal sighting went to A's identity.
    let night = NightSighting {
        sighting_id: 4,
        identity_id: 10,
        identity_person: 1,
        new_identity: false,
        joined_by: Some(by_appearance),
    };
    assert_eq!(
        why.missed_links,
        vec![MissedLink { person: 2, day_rgb_identities: vec![20], night_thermal: vec![night] }]
    );
    // B's day thermal sighting followed its RGB partner into B's identity: right, so not listed.
    assert!(why.wrong_joins.iter().all(|w| w.sighting_id != 7));
    // Had B's night thermal sighting followed its partner (A's day RGB sighting)
    // instead, the wrong join would be a pairing error: the partner is person 1.
    let mut s = s;
    s[3].score = None;
    let why = explain(&lines, &s, 0.3, 0.3);
    assert_eq!(why.wrong_joins[0].joined_by, JoinedBy::CoObservation { partner: Some(1), partner_person: Some(1) });
}

/// The same through the command line, as text and as JSON.
#[test]
fn score_explain_on_the_command_line() {
    let (lines, s) = known_scene();
    let dir = tempfile::tempdir().unwrap();
    let (gt_path, sightings_path) = (dir.path().join("ground_truth.jsonl"), dir.path().join("sightings.jsonl"));
    let gt_text: Vec<String> = lines
        .iter()
        .map(|g| {
            serde_json::json!({"camera": g.camera, "frame": g.frame, "pts_ns": g.pts_ns, "person_id": g.person_id,
                "segment": g.segment, "bbox": g.bbox, "visible": g.visible})
            .to_string()
        })
        .collect();
    std::fs::write(&gt_path, gt_text.join("\n")).unwrap();
    let events: Vec<String> = s.iter().map(|e| serde_json::to_string(e).unwrap()).collect();
    std::fs::write(&sightings_path, events.join("\n")).unwrap();
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_vireid"))
            .args(["--log", "warn", "score", "--explain", "--gt"])
            .arg(&gt_path)
            .arg("--sightings")
            .arg(&sightings_path)
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = run(&[]);
    assert!(text.contains("wrong joins         1 "), "{text}");
    assert!(text.contains("person   2 → identity 10 (person 1) by appearance 0.500"), "{text}");
    assert!(text.contains("missed night→day    1 ") && text.contains("person   2: day RGB in identity 20"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    assert_eq!(json["explain"]["wrong_joins"][0]["joined_by"]["by"], "appearance", "{json}");
    assert_eq!(json["false_cross_modality_pairs"], 1, "the score's own fields stay at the top: {json}");
}
