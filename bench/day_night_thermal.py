"""Thermal day against night, on unseen people (issue 19).

How far the same person's thermal track moves between day and night, and
whether a threshold of its own can link them. Crops come from
`vireid synth scene --no-video --crops DIR` (named day_*/night_*); tracks are
runs of 4 neighbouring crops of one person in one light, averaged and
re-normalised as the embed worker does; the model runs in ONNX Runtime with the
preprocessing of src/embed/preprocess.rs. `bench/day_night_maps.py` imports
`Embedder`, `crops` and `tracks` from here.

    .venv/bin/python bench/day_night_thermal.py DIR [MODEL]
"""
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image


class Embedder:
    """A vireid model in ONNX Runtime, with the preprocessing its metadata names."""

    def __init__(self, model="engines/vireid_default.onnx"):
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 2
        self.sess = ort.InferenceSession(model, opts)
        meta = self.sess.get_modelmeta().custom_metadata_map
        self.size = (int(meta["vireid.input_width"]), int(meta["vireid.input_height"]))
        self.mean = np.array(meta["vireid.mean"].split(","), np.float32)
        self.std = np.array(meta["vireid.std"].split(","), np.float32)
        self.inputs = {i.name for i in self.sess.get_inputs()}

    def __call__(self, items, modality):
        """Unit features of (person, frame, path) items; modality 0 = RGB, 1 = thermal."""
        x = np.stack([
            ((np.asarray(Image.open(p).convert("RGB").resize(self.size, Image.BILINEAR), np.float32) / 255
              - self.mean) / self.std).transpose(2, 0, 1) for _, _, p in items
        ]).astype(np.float32)
        out = []
        for i in range(0, len(x), 64):
            feed = {"images": x[i:i + 64]}
            if "modality" in self.inputs:
                feed["modality"] = np.full(len(feed["images"]), modality, np.float32)
            out.append(self.sess.run(None, feed)[0])
        f = np.concatenate(out)
        return f / np.linalg.norm(f, axis=1, keepdims=True)


def crops(root, folder, light):
    """(person, frame, path) of one modality and light, in person and frame order."""
    if not os.path.isdir(f"{root}/{folder}"):
        sys.exit(f"{root}/{folder}: no such folder; give the --crops folder of `vireid synth scene`")
    out = []
    for person in sorted(os.listdir(f"{root}/{folder}"), key=int):
        for name in sorted(os.listdir(f"{root}/{folder}/{person}")):
            if name.startswith(light + "_"):
                out.append((int(person), int(name.split("_")[1].split(".")[0]), f"{root}/{folder}/{person}/{name}"))
    if not out:
        sys.exit(f"{root}/{folder}: no {light}_* crops; the scene needs both a day and a night segment")
    return out


def tracks(items, feats, k=4):
    """Runs of k neighbouring crops (≤ 10 frames apart) of one person → one unit feature each."""
    sets, labels, run = [], [], []
    for i, (person, frame, _) in enumerate(items):
        if run and items[run[-1]][0] == person and frame - items[run[-1]][1] <= 10 and len(run) < k:
            run.append(i)
            continue
        if len(run) == k:
            sets.append(feats[run].mean(0))
            labels.append(items[run[0]][0])
        run = [i]
    if len(run) == k:
        sets.append(feats[run].mean(0))
        labels.append(items[run[0]][0])
    s = np.array(sets)
    return s / np.linalg.norm(s, axis=1, keepdims=True), np.array(labels)


def thermal_tracks(embed, root, light):
    items = crops(root, "Thermal", light)
    return tracks(items, embed(items, 1.0))


def split(scores, same_person, exclude_self=False):
    keep = ~np.eye(*scores.shape, dtype=bool) if exclude_self else np.ones(scores.shape, bool)
    return scores[same_person & keep], scores[~same_person & keep]


def main(root, model):
    embed = Embedder(model)
    night, nl = thermal_tracks(embed, root, "night")
    day, dl = thermal_tracks(embed, root, "day")
    print(f"{root}: {len(nl)} night and {len(dl)} day thermal tracks of {len(set(nl) | set(dl))} people, model {model}")
    rows = [
        ("day against day", *split(day @ day.T, dl[:, None] == dl[None, :], True)),
        ("night against night", *split(night @ night.T, nl[:, None] == nl[None, :], True)),
        ("night against day", *split(night @ day.T, nl[:, None] == dl[None, :])),
    ]
    print("| thermal tracks | genuine median | impostor 99th pct | TMR at the day-against-day 99th pct |")
    print("| --- | ---: | ---: | ---: |")
    day99 = np.percentile(rows[0][2], 99)
    for name, genuine, impostor in rows:
        print(f"| {name} | {np.median(genuine):.3f} | {np.percentile(impostor, 99):.3f} | {(genuine >= day99).mean():.3f} |")
    # Rank: each night track against all day tracks.
    s = night @ day.T
    r1 = np.mean([dl[np.argmax(row)] == p for row, p in zip(s, nl) if p in dl])
    print(f"night→day thermal track R1 {100 * r1:.1f} % (open-set decisions need a threshold of their own: "
          f"TMR {100 * (rows[2][1] >= np.percentile(rows[2][2], 99)).mean():.1f} % at its own 99th impostor percentile)")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__.split("\n\n")[-1].strip())
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "engines/vireid_default.onnx")
