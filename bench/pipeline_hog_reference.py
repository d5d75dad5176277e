"""The peer for the pipeline benchmark: a straightforward Python OpenCV script
doing the same HOG people detection as `vireid run` (same processing width,
pyramid scale, stride, padding, thresholds and box shrink) on the same files,
one frame after another.

Usage: pipeline_hog_reference.py --out RESULT.json VIDEO:MODALITY [VIDEO:MODALITY ...]
"""
import argparse
import json
import time

import cv2


def iou(a, b):
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def nms(cand, thr):
    kept = []
    for s, box in sorted(cand, key=lambda c: -c[0]):
        if all(iou(box, k) <= thr for k in kept):
            kept.append(box)
    return kept


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("videos", nargs="+", help="FILE:rgb or FILE:thermal")
    ap.add_argument("--out", required=True)
    ap.add_argument("--process-width", type=int, default=640)
    ap.add_argument("--scale", type=float, default=1.05)
    ap.add_argument("--win-stride", type=int, default=8)
    ap.add_argument("--padding", type=int, default=8)
    ap.add_argument("--hit-threshold", type=float, default=-0.3)
    ap.add_argument("--group-threshold", type=int, default=1)
    ap.add_argument("--nms-iou", type=float, default=0.4)
    a = ap.parse_args()
    if not hasattr(cv2, "HOGDescriptor"):
        raise SystemExit(f"cv2 {cv2.__version__} has no HOGDescriptor: install opencv-python-headless 4.x (requirements/bench.txt)")
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    result = {"cv2": cv2.__version__, "threads": cv2.getNumThreads(), "videos": []}
    t_all, cpu_all = time.perf_counter(), time.process_time()
    for spec in a.videos:
        path, modality = spec.rsplit(":", 1)
        cap = cv2.VideoCapture(path)
        if not cap.isOpened():
            raise SystemExit(f"cannot open {path}")
        frames, boxes, t_read, t_det = 0, 0, 0.0, 0.0
        while True:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            if not ok:
                break
            if modality == "thermal":
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            t1 = time.perf_counter()
            fac = a.process_width / frame.shape[1]
            if fac < 1:
                frame = cv2.resize(frame, (a.process_width, round(frame.shape[0] * fac)), interpolation=cv2.INTER_AREA)
            else:
                fac = 1.0
            rects, weights = hog.detectMultiScale(
                frame,
                hitThreshold=a.hit_threshold,
                winStride=(a.win_stride, a.win_stride),
                padding=(a.padding, a.padding),
                scale=a.scale,
                groupThreshold=a.group_threshold,
            )
            cand = []
            for (x, y, w, h), s in zip(rects, weights):
                x, w, y, h = x + 0.25 * w, 0.5 * w, y + 0.125 * h, 0.75 * h
                cand.append((float(getattr(s, "flat", [s])[0]), (x / fac, y / fac, w / fac, h / fac)))
            out = nms(cand, a.nms_iou)
            t2 = time.perf_counter()
            t_read += t1 - t0
            t_det += t2 - t1
            frames += 1
            boxes += len(out)
        result["videos"].append({
            "path": path, "modality": modality, "frames": frames, "boxes": boxes,
            "read_ms_per_frame": 1e3 * t_read / max(frames, 1),
            "detect_ms_per_frame": 1e3 * t_det / max(frames, 1),
        })
    result["wall_s"] = time.perf_counter() - t_all
    result["cpu_s"] = time.process_time() - cpu_all
    json.dump(result, open(a.out, "w"), indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
