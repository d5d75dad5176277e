//! Test-set layouts of SYSU-MM01, RegDB and LLCM, and their trials.
//!
//! A loader turns a dataset folder into a list of images (with identity,
//! camera and modality) and the trials to run over them: which images are
//! queries and which the gallery. Every image is embedded once, however many
//! trials use it. Missing folders or files are errors naming the path.

use super::{invalid, Result, ResultExt};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::core::{list_images, Modality};

/// SYSU-MM01 infrared cameras (queries); cams 1, 2, 4, 5 are RGB.
pub const SYSU_IR_CAMS: [i64; 2] = [3, 6];
/// RegDB has one camera per modality; these numbers only label them.
const REGDB_VISIBLE_CAM: i64 = 1;
const REGDB_THERMAL_CAM: i64 = 2;
/// Trials of the protocols (SYSU and LLCM seeded samplings, RegDB splits).
pub const STANDARD_TRIALS: usize = 10;

/// SYSU-MM01 search mode: which RGB cameras form the gallery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SysuMode {
    /// Gallery from cams 1, 2, 4, 5.
    All,
    /// Gallery from the indoor cams 1, 2.
    Indoor,
}

impl SysuMode {
    pub fn gallery_cams(self) -> &'static [i64] {
        match self {
            SysuMode::All => &[1, 2, 4, 5],
            SysuMode::Indoor => &[1, 2],
        }
    }
}

/// Query modality → gallery modality.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Visible queries, thermal/infrared gallery.
    V2t,
    /// Thermal/infrared queries, visible gallery.
    T2v,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::V2t => "v2t",
            Direction::T2v => "t2v",
        }
    }
    fn query_modality(self) -> Modality {
        match self {
            Direction::V2t => Modality::Rgb,
            Direction::T2v => Modality::Thermal,
        }
    }
}

/// One test image, path relative to the dataset root.
#[derive(Debug, Clone, PartialEq)]
pub struct TestImage {
    pub rel_path: PathBuf,
    pub id: i64,
    pub cam: i64,
    pub modality: Modality,
}

/// One trial: indices into [`TestSet::images`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trial {
    /// `seed 3` or `split 4`: what the report calls it.
    pub name: String,
    /// The gallery-sampling seed (None for RegDB's fixed splits).
    pub seed: Option<u64>,
    #[serde(skip)]
    pub query: Vec<usize>,
    #[serde(skip)]
    pub gallery: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct TestSet {
    pub root: PathBuf,
    pub images: Vec<TestImage>,
    pub trials: Vec<Trial>,
}

impl TestSet {
    /// Checks every listed image exists, so a broken copy fails before
    /// minutes of embedding, naming the first missing file.
    pub fn check_files_exist(&self) -> Result<()> {
        for image in &self.images {
            let path = self.root.join(&image.rel_path);
            if !path.is_file() {
                invalid!(
                    "image {} is listed in the dataset but missing: the dataset copy is incomplete",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Adds an image once, returning its index.
    fn intern(&mut self, index: &mut HashMap<PathBuf, usize>, image: TestImage) -> usize {
        *index.entry(image.rel_path.clone()).or_insert_with(|| {
            self.images.push(image);
            self.images.len() - 1
        })
    }
}

fn require_dir(path: &Path, what: &str) -> Result<()> {
    if !path.is_dir() {
        invalid!("missing folder {}: {what}", path.display());
    }
    Ok(())
}

fn require_file(path: &Path, what: &str) -> Result<()> {
    if !path.is_file() {
        invalid!("missing file {}: {what}", path.display());
    }
    Ok(())
}

/// Picks `shots` images (all if fewer) from each group, in group order, with
/// one seeded generator per trial: the same seed always gives the same gallery.
fn sample_groups(groups: &BTreeMap<(i64, i64), Vec<usize>>, shots: usize, seed: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked = Vec::new();
    for members in groups.values() {
        let take = shots.min(members.len());
        let mut chosen: Vec<usize> = rand::seq::index::sample(&mut rng, members.len(), take).into_iter().collect();
        // Keep the folder order within a group (ties fall back to gallery order).
        chosen.sort_unstable();
        picked.extend(chosen.into_iter().map(|k| members[k]));
    }
    picked
}

fn seeded_trials(
    trials: usize,
    seed_base: u64,
    query: &[usize],
    groups: &BTreeMap<(i64, i64), Vec<usize>>,
    shots: usize,
) -> Vec<Trial> {
    (0..trials as u64)
        .map(|t| {
            let seed = seed_base + t;
            Trial {
                name: format!("seed {seed}"),
                seed: Some(seed),
                query: query.to_vec(),
                gallery: sample_groups(groups, shots, seed),
            }
        })
        .collect()
}

/// SYSU-MM01: `cam1..cam6/NNNN/*.jpg` and `exp/test_id.txt` (one comma-separated line).
/// Queries: every cam-3/cam-6 image of the test identities. Gallery: `shots`
/// images per identity per RGB camera of the mode, resampled per seeded trial.
pub fn load_sysu(root: &Path, mode: SysuMode, shots: usize, trials: usize, seed_base: u64) -> Result<TestSet> {
    require_dir(root, "the SYSU-MM01 root (holding cam1..cam6 and exp/)")?;
    let id_file = root.join("exp").join("test_id.txt");
    require_file(&id_file, "SYSU-MM01 lists its test identities there (one comma-separated line)")?;
    let text = std::fs::read_to_string(&id_file).file(|| format!("cannot read {}", id_file.display()))?;
    let ids: Vec<i64> = text
        .split([',', '\n', '\r', ' '])
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse::<i64>().invalid(|| format!("{}: `{s}` is not an identity number", id_file.display())))
        .collect::<Result<_>>()?;
    if ids.is_empty() {
        invalid!("{} lists no identities", id_file.display());
    }
    let cams: Vec<i64> = SYSU_IR_CAMS.iter().chain(mode.gallery_cams()).copied().collect();
    for cam in &cams {
        require_dir(&root.join(format!("cam{cam}")), "SYSU-MM01 layout is cam1..cam6/NNNN/NNNN.jpg")?;
    }
    let mut set = TestSet { root: root.to_path_buf(), images: Vec::new(), trials: Vec::new() };
    let mut query = Vec::new();
    let mut groups: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for &id in &ids {
        for &cam in &cams {
            let dir = root.join(format!("cam{cam}")).join(format!("{id:04}"));
            // Not every identity was seen by every camera: a missing folder is normal.
            if !dir.is_dir() {
                continue;
            }
            let ir = SYSU_IR_CAMS.contains(&cam);
            for file in list_images(&dir)? {
                let rel_path = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
                let modality = if ir { Modality::Thermal } else { Modality::Rgb };
                set.images.push(TestImage { rel_path, id, cam, modality });
                let index = set.images.len() - 1;
                if ir {
                    query.push(index);
                } else {
                    groups.entry((id, cam)).or_default().push(index);
                }
            }
        }
    }
    if query.is_empty() {
        invalid!(
            "no infrared query images under {}/cam3 or cam6 for the {} test identities in {}",
            root.display(),
            ids.len(),
            id_file.display()
        );
    }
    if groups.is_empty() {
        invalid!(
            "no RGB gallery images under {} cams {:?} for the test identities",
            root.display(),
            mode.gallery_cams()
        );
    }
    set.trials = seeded_trials(trials, seed_base, &query, &groups, shots);
    Ok(set)
}

/// Reads a `relpath label` list (RegDB and LLCM index files).
fn read_index(path: &Path) -> Result<Vec<(PathBuf, i64)>> {
    let text = std::fs::read_to_string(path).file(|| format!("cannot read {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(rel), Some(label), None) = (parts.next(), parts.next(), parts.next()) else {
            invalid!("{}:{}: expected `relative/path.jpg label`, got `{line}`", path.display(), n + 1)
        };
        let label = label
            .parse::<i64>()
            .invalid(|| format!("{}:{}: label `{label}` is not an integer", path.display(), n + 1))?;
        rows.push((PathBuf::from(rel), label));
    }
    if rows.is_empty() {
        invalid!("{} lists no images", path.display());
    }
    Ok(rows)
}

/// RegDB: `idx/test_visible_{k}.txt` and `idx/test_thermal_{k}.txt`, k = 1..=10,
/// `relpath label` lines. Split k is trial k; the whole other-modality test set is the gallery.
pub fn load_regdb(root: &Path, direction: Direction, trials: usize) -> Result<TestSet> {
    require_dir(root, "the RegDB root (holding idx/ and the image folders)")?;
    require_dir(&root.join("idx"), "RegDB lists its splits in idx/test_visible_{k}.txt and idx/test_thermal_{k}.txt")?;
    if trials > STANDARD_TRIALS {
        invalid!("RegDB has {STANDARD_TRIALS} splits; --trials {trials} asks for more");
    }
    let mut set = TestSet { root: root.to_path_buf(), images: Vec::new(), trials: Vec::new() };
    let mut index = HashMap::new();
    for k in 1..=trials {
        let mut sides = Vec::new();
        for (name, modality, cam) in
            [("visible", Modality::Rgb, REGDB_VISIBLE_CAM), ("thermal", Modality::Thermal, REGDB_THERMAL_CAM)]
        {
            let list = root.join("idx").join(format!("test_{name}_{k}.txt"));
            require_file(&list, "RegDB split list (`relpath label` lines)")?;
            let members: Vec<usize> = read_index(&list)?
                .into_iter()
                .map(|(rel_path, id)| set.intern(&mut index, TestImage { rel_path, id, cam, modality }))
                .collect();
            sides.push((modality, members));
        }
        let (query, gallery) = if sides[0].0 == direction.query_modality() {
            (sides[0].1.clone(), sides[1].1.clone())
        } else {
            (sides[1].1.clone(), sides[0].1.clone())
        };
        set.trials.push(Trial { name: format!("split {k}"), seed: None, query, gallery });
    }
    Ok(set)
}

/// The camera number in an LLCM file name such as `0001_c04_s185535_f7010_nir.jpg`.
fn llcm_camera(rel: &Path) -> Option<i64> {
    let name = rel.file_name()?.to_str()?;
    let after = &name[name.find("_c")? + 2..];
    let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// LLCM: `idx/test_vis.txt` and `idx/test_nir.txt` (`relpath label` lines; the
/// camera is the `_cNN_` part of the file name). Queries: the whole query
/// modality; gallery: `shots` images per identity per camera of the other
/// modality, resampled per seeded trial.
pub fn load_llcm(root: &Path, direction: Direction, shots: usize, trials: usize, seed_base: u64) -> Result<TestSet> {
    require_dir(root, "the LLCM root (holding idx/, test_vis/ and test_nir/)")?;
    let mut set = TestSet { root: root.to_path_buf(), images: Vec::new(), trials: Vec::new() };
    let mut query = Vec::new();
    let mut groups: BTreeMap<(i64, i64), Vec<usize>> = BTreeMap::new();
    for (file, modality) in [("test_vis.txt", Modality::Rgb), ("test_nir.txt", Modality::Thermal)] {
        let list = root.join("idx").join(file);
        require_file(
            &list,
            "LLCM lists its test images in idx/test_vis.txt and idx/test_nir.txt (`relpath label` lines)",
        )?;
        for (rel_path, id) in read_index(&list)? {
            let cam = llcm_camera(&rel_path).ok_or_else(|| {
                super::EvalError::Invalid(format!(
                    "{}: no camera in file name {} (expected NNNN_cNN_…)",
                    list.display(),
                    rel_path.display()
                ))
            })?;
            set.images.push(TestImage { rel_path, id, cam, modality });
            let i = set.images.len() - 1;
            if modality == direction.query_modality() {
                query.push(i);
            } else {
                groups.entry((id, cam)).or_default().push(i);
            }
        }
    }
    set.trials = seeded_trials(trials, seed_base, &query, &groups, shots);
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    /// 2 test identities; id 1 has 12 images in cams 1, 2 and 4, id 2 only in cam 5; both in cams 3 and 6.
    fn tiny_sysu(root: &Path) {
        std::fs::create_dir_all(root.join("exp")).unwrap();
        std::fs::write(root.join("exp/test_id.txt"), "1,2\n").unwrap();
        for cam in 1..=6 {
            std::fs::create_dir_all(root.join(format!("cam{cam}"))).unwrap();
        }
        for cam in [1, 2, 4] {
            for k in 1..=12 {
                touch(&root.join(format!("cam{cam}/0001/{k:04}.jpg")));
            }
        }
        for k in 1..=3 {
            touch(&root.join(format!("cam5/0002/{k:04}.jpg")));
        }
        for cam in [3, 6] {
            for id in [1, 2] {
                touch(&root.join(format!("cam{cam}/{id:04}/0001.jpg")));
            }
        }
        // An identity outside the test list must be ignored.
        touch(&root.join("cam1/0009/0001.jpg"));
    }

    #[test]
    fn sysu_single_and_multi_shot_sampling_is_seeded_and_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        tiny_sysu(dir.path());
        let single = load_sysu(dir.path(), SysuMode::All, 1, 10, 0).unwrap();
        assert_eq!(single.trials.len(), 10);
        for t in &single.trials {
            assert_eq!(t.query.len(), 4);
            assert!(t.query.iter().all(|&i| SYSU_IR_CAMS.contains(&single.images[i].cam)));
            // One per (identity, camera): (1,1), (1,2), (1,4), (2,5).
            let mut keys: Vec<(i64, i64)> =
                t.gallery.iter().map(|&i| (single.images[i].id, single.images[i].cam)).collect();
            keys.sort();
            assert_eq!(keys, vec![(1, 1), (1, 2), (1, 4), (2, 5)]);
        }
        let galleries: std::collections::HashSet<_> = single.trials.iter().map(|t| t.gallery.clone()).collect();
        assert!(galleries.len() > 1, "different seeds must sample differently");

        let multi_a = load_sysu(dir.path(), SysuMode::All, 10, 3, 7).unwrap();
        let multi_b = load_sysu(dir.path(), SysuMode::All, 10, 3, 7).unwrap();
        assert_eq!(multi_a.trials, multi_b.trials, "same seeds, same galleries");
        assert_eq!(multi_a.trials[0].seed, Some(7));
        // 10 of 12 from each of three cams for id 1, all 3 of id 2's cam-5 images.
        assert_eq!(multi_a.trials[0].gallery.len(), 33);
        let indoor = load_sysu(dir.path(), SysuMode::Indoor, 10, 1, 0).unwrap();
        assert!(indoor.trials[0].gallery.iter().all(|&i| [1, 2].contains(&indoor.images[i].cam)));
    }

    #[test]
    fn sysu_missing_pieces_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_sysu(dir.path(), SysuMode::All, 1, 1, 0).unwrap_err().to_string();
        assert!(err.contains("exp/test_id.txt"), "{err}");
        tiny_sysu(dir.path());
        std::fs::remove_dir_all(dir.path().join("cam4")).unwrap();
        let err = load_sysu(dir.path(), SysuMode::All, 1, 1, 0).unwrap_err().to_string();
        assert!(err.contains("cam4"), "{err}");
        // Indoor search does not need cam 4.
        load_sysu(dir.path(), SysuMode::Indoor, 1, 1, 0).unwrap();
    }

    #[test]
    fn regdb_splits_and_directions() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("idx")).unwrap();
        for k in 1..=2 {
            std::fs::write(
                root.join(format!("idx/test_visible_{k}.txt")),
                format!("Visible/a/{k}.bmp 0\nVisible/b/{k}.bmp 1\n"),
            )
            .unwrap();
            std::fs::write(root.join(format!("idx/test_thermal_{k}.txt")), format!("Thermal/a/{k}.bmp 0\n")).unwrap();
        }
        let v2t = load_regdb(root, Direction::V2t, 2).unwrap();
        assert_eq!(v2t.images.len(), 6);
        assert_eq!(v2t.trials[1].name, "split 2");
        assert_eq!(v2t.trials[0].query.len(), 2);
        assert!(v2t.trials[0].query.iter().all(|&i| v2t.images[i].modality == Modality::Rgb));
        let t2v = load_regdb(root, Direction::T2v, 2).unwrap();
        assert_eq!(t2v.trials[0].query.len(), 1);
        assert_eq!(t2v.trials[0].gallery.len(), 2);
        let err = load_regdb(root, Direction::V2t, 3).unwrap_err().to_string();
        assert!(err.contains("test_visible_3.txt"), "{err}");
        let err = v2t.check_files_exist().unwrap_err().to_string();
        assert!(err.contains("Visible/a/1.bmp"), "{err}");
    }

    #[test]
    fn llcm_cameras_from_file_names() {
        assert_eq!(llcm_camera(Path::new("test_nir/cam4/0001/0001_c04_s185535_f7010_nir.jpg")), Some(4));
        assert_eq!(llcm_camera(Path::new("x/0001.jpg")), None);
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("idx")).unwrap();
        std::fs::write(
            root.join("idx/test_vis.txt"),
            "v/0001_c01_s1_f1_vis.jpg 0\nv/0001_c01_s1_f2_vis.jpg 0\nv/0002_c02_s1_f1_vis.jpg 1\n",
        )
        .unwrap();
        std::fs::write(root.join("idx/test_nir.txt"), "n/0001_c01_s1_f1_nir.jpg 0\n").unwrap();
        let set = load_llcm(root, Direction::T2v, 1, 2, 0).unwrap();
        assert_eq!(set.trials[0].query.len(), 1);
        assert_eq!(set.trials[0].gallery.len(), 2, "one per (identity, camera)");
        std::fs::write(root.join("idx/test_nir.txt"), "n/nocam.jpg 0\n").unwrap();
        let err = load_llcm(root, Direction::T2v, 1, 2, 0).unwrap_err().to_string();
        assert!(err.contains("nocam.jpg"), "{err}");
    }
}
