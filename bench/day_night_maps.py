"""Can a fixed correction make thermal day↔night scores usable? (issue 19)

Night thermal tracks against day thermal tracks of unseen people rank well but
score on another scale (bench/day_night_thermal.py). Two families of fixes that
need no retraining, each fitted on scenes other than the test scenes:

- cohort score normalisation (speaker verification's Z-, T- and S-norm): a
  score is standardised by how the night query (Z), the day exemplar (T) or
  both (S) score against a cohort of other people in the other light;
- a linear map on the features, fitted on labelled crops of other people:
  NAP (remove the top n directions of each person's day−night difference) or
  WCCN (PCA to d, then whiten each person's spread, shrunk by s).

Each method's day↔night threshold is set at 1 % FAR on the calibration
scene's tracks (as `vireid thresholds` does) and applied to the test scenes:
their TMR and FMR there, TMR at the test scenes' own 1 % FAR (the fair
comparison: every method at one FMR), R1, and the open-set outcome of each night track
(its best day track accepted if at or above the threshold: right or wrong).

    .venv/bin/python bench/day_night_maps.py --calib DIR --test DIR... --fit DIR... [--model M]

Each DIR is a `vireid synth scene --no-video --crops DIR` folder; the first
--fit scene is also the cohort.
"""
import argparse
import functools
import os

import numpy as np

from day_night_thermal import Embedder, crops, tracks

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--calib", required=True)
ap.add_argument("--test", nargs="+", required=True)
ap.add_argument("--fit", nargs="+", required=True)
ap.add_argument("--model", default="engines/vireid_default.onnx")
args = ap.parse_args()
for scene in [args.calib, *args.test, *args.fit]:
    if not os.path.isdir(f"{scene}/Thermal"):
        ap.error(f"{scene}: no Thermal folder; give --crops folders of `vireid synth scene`")
embed = Embedder(args.model)


@functools.lru_cache(None)
def crop_features(root, light):
    """(items, unit features) of a scene's thermal crops in one light."""
    items = crops(root, "Thermal", light)
    return items, embed(items, 1.0)


def scene_tracks(root, light, feature_map=None):
    """Track features and labels of one light, the crops mapped first (as a graph would)."""
    items, f = crop_features(root, light)
    if feature_map is not None:
        f = f @ feature_map
        f = f / np.linalg.norm(f, axis=1, keepdims=True)
    return tracks(items, f)


def nap(fit, n):
    """Projection removing the top n directions of persons' day−night mean difference."""
    diffs = []
    for root in fit:
        (dn, fd), (nn, fn) = crop_features(root, "day"), crop_features(root, "night")
        dl, nl = np.array([p for p, _, _ in dn]), np.array([p for p, _, _ in nn])
        diffs += [fd[dl == p].mean(0) - fn[nl == p].mean(0) for p in set(dl) & set(nl)]
    v = np.linalg.svd(np.array(diffs), full_matrices=False)[2][:n].T
    return np.eye(v.shape[0]) - v @ v.T


def wccn(fit, d, shrink):
    """PCA to d, then whitening of the within-person spread (both lights pooled)."""
    x, y = [], []
    for i, root in enumerate(fit):
        for light in ("day", "night"):
            items, f = crop_features(root, light)
            x.append(f)
            y += [i * 100_000 + p for p, _, _ in items]
    x, y = np.concatenate(x), np.array(y)
    x = x - x.mean(0)
    pca = np.linalg.svd(x, full_matrices=False)[2][:d].T
    z = x @ pca
    people, at = np.unique(y, return_inverse=True)
    within = z - np.stack([z[y == p].mean(0) for p in people])[at]
    sw = within.T @ within / len(within)
    sw = (1 - shrink) * sw + shrink * np.trace(sw) / d * np.eye(d)
    e, v = np.linalg.eigh(sw)
    return pca @ v @ np.diag(e ** -0.5) @ v.T


def cohort_scores(kind, night, day, cohort):
    """Night×day scores, raw or standardised against the cohort scene's tracks of the other light."""
    s = night @ day.T
    if kind == "raw":
        return s
    c_night, _, c_day, _ = cohort
    q = night @ c_day.T  # each night query against day people
    g = day @ c_night.T  # each day exemplar against night people
    zq = (s - q.mean(1)[:, None]) / q.std(1)[:, None]
    zg = (s - g.mean(1)[None, :]) / g.std(1)[None, :]
    return {"z": zq, "t": zg, "s": (zq + zg) / 2}[kind]


def both(root, feature_map=None):
    return (*scene_tracks(root, "night", feature_map), *scene_tracks(root, "day", feature_map))


def evaluate(name, kind="raw", feature_map=None):
    cohort = both(args.fit[0], feature_map)
    n, nl, d, dl = both(args.calib, feature_map)
    calib = cohort_scores(kind, n, d, cohort)
    threshold = np.percentile(calib[nl[:, None] != dl[None, :]], 99)
    genuine, impostor, right, wrong, queries, firsts = [], [], 0, 0, 0, 0
    for root in args.test:
        n, nl, d, dl = both(root, feature_map)
        s = cohort_scores(kind, n, d, cohort)
        same = nl[:, None] == dl[None, :]
        genuine.append(s[same])
        impostor.append(s[~same])
        known = same.any(1)  # night tracks whose person was seen by day
        best = s.argmax(1)
        accepted = s.max(1) >= threshold
        right += np.sum(accepted & (dl[best] == nl))
        wrong += np.sum(accepted & (dl[best] != nl))
        queries += known.sum()
        firsts += np.sum(known & (dl[best] == nl))
    genuine, impostor = np.concatenate(genuine), np.concatenate(impostor)
    own = np.percentile(impostor, 99)  # the test scenes' own 1 % FAR: methods compared at equal FMR
    print(f"| {name} | {threshold:.3f} | {100 * (genuine >= threshold).mean():.1f} | "
          f"{100 * (impostor >= threshold).mean():.2f} | {100 * (genuine >= own).mean():.1f} | "
          f"{100 * firsts / queries:.1f} | {right}/{queries} | {wrong} |")


print(f"{args.model}; calibration {args.calib}; test {' '.join(args.test)}; fitted on {' '.join(args.fit)}")
print("| method | threshold (1 % FAR, calibration) | TMR % | FMR % | TMR % at the test's own 1 % FAR | R1 % "
      "| night tracks accepted right | wrong |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
evaluate("raw cosine")
for kind in ("z", "t", "s"):
    evaluate(f"{kind.upper()}-norm", kind)
for n in (1, 2, 4, 8, 16):
    evaluate(f"NAP n={n}", feature_map=nap(args.fit, n))
for d in (64, 128, 256):
    for shrink in (0.1, 0.3):
        evaluate(f"WCCN d={d} s={shrink}", feature_map=wccn(args.fit, d, shrink))
