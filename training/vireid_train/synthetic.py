"""Small synthetic visible/thermal person crops written in the real datasets' layouts.

Used by the tests (tiny sets) and, when the Rust `vireid synth sysu` is not available, to
train the default model. Identity is carried by cues that survive the modality change
(body proportions, head, stripes, bag, clothing "warmth"); colour is RGB-only and thermal
intensity is unrelated to colour, which is exactly the gap the cross-modal methods close.
"""
from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from .data import SYSU_IR_CAMS, SYSU_RGB_CAMS


def _identity(pid: int, seed: int) -> dict:
    r = random.Random(seed * 7919 + pid)
    return {
        "height": r.uniform(0.72, 0.95), "width": r.uniform(0.30, 0.52), "head": r.uniform(0.09, 0.15),
        "top_rgb": tuple(r.randrange(256) for _ in range(3)), "bottom_rgb": tuple(r.randrange(256) for _ in range(3)),
        "top_heat": r.randrange(80, 200), "bottom_heat": r.randrange(60, 190),
        "stripes": r.choice([0, 0, 2, 3, 4]), "stripe_dir": r.choice(["h", "v"]),
        "bag": r.choice([None, "left", "right"]), "hat": r.random() < 0.3, "split": r.uniform(0.45, 0.6),
    }


# What both modalities show of an identity (shape, not colour): the columns of attributes.csv,
# in the format `vireid synth` writes (`id,<name>:<classes>,...`; -1 = not applicable).
ATTRIBUTES = (("hat", 2), ("bag", 3), ("stripes", 4), ("stripe_dir", 2), ("build", 3), ("stature", 3))


def attributes(pid: int, seed: int) -> list[int]:
    a = _identity(pid, seed)
    tertile = lambda v, lo, hi: int(v >= lo + (hi - lo) / 3) + int(v >= lo + 2 * (hi - lo) / 3)
    return [int(a["hat"]), [None, "left", "right"].index(a["bag"]), [0, 2, 3, 4].index(a["stripes"]),
            ["h", "v"].index(a["stripe_dir"]) if a["stripes"] else -1,
            tertile(a["width"], 0.30, 0.52), tertile(a["height"], 0.72, 0.95)]


def write_attributes(root: str | Path, ids, seed: int) -> Path:
    path = Path(root) / "attributes.csv"
    rows = ["id," + ",".join(f"{n}:{k}" for n, k in ATTRIBUTES)]
    rows += [f"{pid}," + ",".join(str(v) for v in attributes(pid, seed)) for pid in ids]
    path.write_text("\n".join(rows) + "\n")
    return path


def render_person(pid: int, thermal: bool, rng: random.Random, size=(64, 128), seed: int = 0) -> Image.Image:
    """One crop (width, height) of identity pid in RGB or thermal (grey, saved as L)."""
    a = _identity(pid, seed)
    w, h = size
    ss = 2  # supersample then downscale: smoother edges
    W, H = w * ss, h * ss
    if thermal:
        bg = rng.randrange(10, 70)
        img = Image.new("L", (W, H), bg)
    else:
        bg = tuple(rng.randrange(40, 220) for _ in range(3))
        img = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(img)
    # background clutter so the network has to find the person
    for _ in range(rng.randrange(2, 6)):
        x0, y0 = rng.randrange(W), rng.randrange(H)
        col = rng.randrange(0, 90) if thermal else tuple(rng.randrange(256) for _ in range(3))
        d.rectangle([x0, y0, x0 + rng.randrange(5, W // 2), y0 + rng.randrange(5, H // 3)], fill=col)

    scale = rng.uniform(0.9, 1.05)
    ph = a["height"] * H * scale
    pw = a["width"] * W * scale
    cx = W / 2 + rng.uniform(-0.08, 0.08) * W
    top = (H - ph) / 2 + rng.uniform(-0.05, 0.05) * H
    head_r = a["head"] * ph / 2 * 1.6
    light = rng.uniform(0.6, 1.2)

    def col(rgb, heat):
        if thermal:
            return max(0, min(255, int(heat + rng.uniform(-12, 12))))
        return tuple(max(0, min(255, int(c * light))) for c in rgb)

    skin = col((224, 172, 140), 235)
    d.ellipse([cx - head_r, top, cx + head_r, top + 2 * head_r], fill=skin)
    if a["hat"]:
        d.rectangle([cx - head_r * 1.1, top - head_r * 0.2, cx + head_r * 1.1, top + head_r * 0.6],
                    fill=col((30, 30, 30), 70))
    torso_top = top + 2 * head_r
    split_y = torso_top + (ph - 2 * head_r) * (a["split"] - 0.1)
    bottom = top + ph
    d.rectangle([cx - pw / 2, torso_top, cx + pw / 2, split_y], fill=col(a["top_rgb"], a["top_heat"]))
    if a["stripes"]:
        sc = col(tuple(255 - c for c in a["top_rgb"]), a["top_heat"] + 50)
        for s in range(a["stripes"]):
            if a["stripe_dir"] == "h":
                y = torso_top + (split_y - torso_top) * (s + 0.5) / a["stripes"]
                d.rectangle([cx - pw / 2, y - 2 * ss, cx + pw / 2, y + 2 * ss], fill=sc)
            else:
                x = cx - pw / 2 + pw * (s + 0.5) / a["stripes"]
                d.rectangle([x - 2 * ss, torso_top, x + 2 * ss, split_y], fill=sc)
    spread = rng.uniform(0.0, 0.15) * pw
    leg_w = pw * 0.42
    bcol = col(a["bottom_rgb"], a["bottom_heat"])
    d.polygon([(cx - pw / 2, split_y), (cx - 0.02 * pw, split_y), (cx - 0.02 * pw - spread + leg_w * 0.1, bottom),
               (cx - pw / 2 - spread, bottom)], fill=bcol)
    d.polygon([(cx + 0.02 * pw, split_y), (cx + pw / 2, split_y), (cx + pw / 2 + spread, bottom),
               (cx + 0.02 * pw + spread - leg_w * 0.1, bottom)], fill=bcol)
    if a["bag"]:
        sx = cx - pw / 2 - pw * 0.3 if a["bag"] == "left" else cx + pw / 2
        d.rectangle([sx, split_y - 0.1 * ph, sx + pw * 0.3, split_y + 0.08 * ph], fill=col((90, 60, 30), 45))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2) * ss))
    if rng.random() < 0.5:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return img.resize((w, h), Image.Resampling.BILINEAR)


def write_sysu(root: str | Path, n_train: int, n_test: int, per_cam: int, size=(64, 128), seed: int = 0,
               n_val: int = 0) -> Path:
    """SYSU-MM01 layout: ROOT/cam{1..6}/NNNN/MMMM.jpg and ROOT/exp/{train,val,test}_id.txt."""
    root = Path(root)
    rng = random.Random(seed)
    ids = list(range(1, n_train + n_val + n_test + 1))
    splits = {"train": ids[:n_train], "val": ids[n_train:n_train + n_val], "test": ids[n_train + n_val:]}
    (root / "exp").mkdir(parents=True, exist_ok=True)
    for name, lst in splits.items():
        (root / "exp" / f"{name}_id.txt").write_text(",".join(str(i) for i in lst) + "\n")
    for cam in SYSU_RGB_CAMS + SYSU_IR_CAMS:
        for pid in ids:
            d = root / f"cam{cam}" / f"{pid:04d}"
            d.mkdir(parents=True, exist_ok=True)
            for m in range(per_cam):
                render_person(pid, cam in SYSU_IR_CAMS, rng, size, seed).save(d / f"{m + 1:04d}.jpg", quality=92)
    write_attributes(root, ids, seed)
    return root


def write_regdb(root: str | Path, n_train: int, n_test: int, per_id: int, size=(64, 128), seed: int = 0,
                trial: int = 1) -> Path:
    """RegDB layout: ROOT/{Visible,Thermal}/<id>/*.bmp and ROOT/idx/{train,test}_{visible,thermal}_{k}.txt."""
    root = Path(root)
    rng = random.Random(seed)
    (root / "idx").mkdir(parents=True, exist_ok=True)
    lists = {k: [] for k in ("train_visible", "train_thermal", "test_visible", "test_thermal")}
    for pid in range(n_train + n_test):
        split = "train" if pid < n_train else "test"
        label = pid if split == "train" else pid - n_train
        for folder, mod, thermal in (("Visible", "visible", False), ("Thermal", "thermal", True)):
            d = root / folder / str(pid)
            d.mkdir(parents=True, exist_ok=True)
            for m in range(per_id):
                rel = f"{folder}/{pid}/img_{m}.bmp"
                render_person(pid, thermal, rng, size, seed).save(root / rel)
                lists[f"{split}_{mod}"].append(f"{rel} {label}")
    for k, v in lists.items():
        (root / "idx" / f"{k}_{trial}.txt").write_text("\n".join(v) + "\n")
    write_attributes(root, range(n_train + n_test), seed)
    return root
