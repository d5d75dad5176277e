#!/usr/bin/env python3
"""Frames in which one person is on screen twice at once, per `vireid synth scene`
ground truth (RGB camera, visible >= 0.3). A camera cannot see one person twice;
the gallery (`seen_meanwhile`) and the harvest's impostor pairs rely on that.

    bench/scene_doubles.py SCENE/ground_truth.jsonl...
"""
import collections
import json
import sys


def doubled_frames(path):
    boxes = collections.Counter()
    frames = set()
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    g = json.loads(line)
                    camera, frame, person, visible = g["camera"], g["frame"], g["person_id"], g["visible"]
                except (json.JSONDecodeError, KeyError, TypeError) as e:
                    sys.exit(f"{path}:{n}: not a ground-truth line ({e!r}): give a finished scene's ground_truth.jsonl")
                if camera != "rgb":
                    continue
                frames.add(frame)
                if visible >= 0.3:
                    boxes[(frame, person)] += 1
    except OSError as e:
        sys.exit(f"{path}: cannot read it ({e.strerror}): give a scene's ground_truth.jsonl (vireid synth scene --out DIR)")
    doubled = {frame for (frame, _), count in boxes.items() if count > 1}
    return len(doubled), len(frames)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    for path in sys.argv[1:]:
        doubled, frames = doubled_frames(path)
        print(f"{path}: {doubled} of {frames} RGB frames show a person twice")
