"""Dataset layouts (SYSU-MM01, RegDB, LLCM), the cross-modal identity-balanced sampler and
the augmentations.

Layouts read (the synthetic generators write the same ones):
  SYSU-MM01  ROOT/cam{1..6}/NNNN/*.jpg, cams 3 and 6 thermal; ROOT/exp/{train,val,test}_id.txt
             (comma-separated ids). Training merges train+val ids, as the field does.
  RegDB      ROOT/idx/{train,test}_{visible,thermal}_{k}.txt, lines "relpath label".
  LLCM       ROOT/idx/{train,test}_{vis,nir}.txt, lines "relpath label"; camera from the
             file name's "c0N" tag when present.
"""
from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from torchvision import transforms as T

RGB, THERMAL = 0, 1
SYSU_RGB_CAMS = (1, 2, 4, 5)
SYSU_IR_CAMS = (3, 6)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True)
class Sample:
    path: str
    label: int      # identity (relabelled 0..C-1 for training sets, raw id for test sets)
    modality: int   # 0 RGB, 1 thermal
    camera: int


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what}: {path} does not exist; check data.root and data.dataset")
    return path


def _read_sysu_ids(root: Path, split: str) -> list[int]:
    text = _require(root / "exp" / f"{split}_id.txt", f"SYSU-MM01 {split} id list").read_text()
    return [int(t) for t in re.split(r"[,\s]+", text.strip()) if t]


def _sysu_images(root: Path, ids: list[int], cams) -> list[Sample]:
    out = []
    for cam in cams:
        for pid in ids:
            d = root / f"cam{cam}" / f"{pid:04d}"
            if not d.is_dir():
                continue
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in IMAGE_EXTS:
                    out.append(Sample(str(f), pid, THERMAL if cam in SYSU_IR_CAMS else RGB, cam))
    return out


def _relabel(samples: list[Sample]) -> tuple[list[Sample], int]:
    ids = sorted({s.label for s in samples})
    m = {pid: i for i, pid in enumerate(ids)}
    return [Sample(s.path, m[s.label], s.modality, s.camera) for s in samples], len(ids)


def _read_list(root: Path, rel: str, modality: int, default_cam: int) -> list[Sample]:
    f = _require(root / rel, "image list")
    out = []
    for n, line in enumerate(f.read_text().splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) < 2:
            raise ValueError(f"{f}:{n}: expected 'relpath label', got {line!r}")
        cam_m = re.search(r"c0?(\d+)", Path(parts[0]).name)
        cam = int(cam_m.group(1)) if cam_m and default_cam < 0 else abs(default_cam)
        out.append(Sample(str(root / parts[0]), int(parts[1]), modality, cam))
    return out


def load_train(dataset: str, root: str | Path, trial: int = 1) -> tuple[list[Sample], int]:
    """Training samples of both modalities, labels relabelled to 0..C-1, and C."""
    root = _require(Path(root), f"{dataset} root")
    if dataset == "sysu":
        ids = sorted(set(_read_sysu_ids(root, "train")) | set(_read_sysu_ids(root, "val")))
        samples = _sysu_images(root, ids, SYSU_RGB_CAMS + SYSU_IR_CAMS)
    elif dataset == "regdb":
        samples = (_read_list(root, f"idx/train_visible_{trial}.txt", RGB, 1)
                   + _read_list(root, f"idx/train_thermal_{trial}.txt", THERMAL, 2))
    elif dataset == "llcm":
        samples = (_read_list(root, "idx/train_vis.txt", RGB, -1)
                   + _read_list(root, "idx/train_nir.txt", THERMAL, -2))
    else:
        raise ValueError(f"unknown data.dataset {dataset!r}; choose sysu, regdb or llcm")
    if not samples:
        raise ValueError(f"no training images found under {root} for {dataset}")
    samples, n = _relabel(samples)
    mods = {s.modality for s in samples}
    if mods != {RGB, THERMAL}:
        raise ValueError(f"{root}: training set needs both RGB and thermal images, found {mods}")
    return samples, n


def load_test(dataset: str, root: str | Path, trial: int = 1) -> tuple[list[Sample], list[Sample]]:
    """(thermal samples, RGB samples) of the test identities; the protocol picks query/gallery."""
    root = _require(Path(root), f"{dataset} root")
    if dataset == "sysu":
        ids = _read_sysu_ids(root, "test")
        return _sysu_images(root, ids, SYSU_IR_CAMS), _sysu_images(root, ids, SYSU_RGB_CAMS)
    if dataset == "regdb":
        return (_read_list(root, f"idx/test_thermal_{trial}.txt", THERMAL, 2),
                _read_list(root, f"idx/test_visible_{trial}.txt", RGB, 1))
    if dataset == "llcm":
        return (_read_list(root, "idx/test_nir.txt", THERMAL, -2),
                _read_list(root, "idx/test_vis.txt", RGB, -1))
    raise ValueError(f"unknown data.dataset {dataset!r}; choose sysu, regdb or llcm")


# ---------------------------------------------------------------- images and augmentation

def load_image(path: str, modality: int) -> Image.Image:
    img = Image.open(path)
    # Thermal is grey replicated to 3 channels (as SYSU-MM01/RegDB ship it, and as vireid's
    # runtime feeds it), whatever the file's own channel count.
    return img.convert("L").convert("RGB") if modality == THERMAL else img.convert("RGB")


class ChannelAugment:
    """Channel augmentation (Ye et al., CAJ): with probability p, an RGB image becomes one of
    its channels replicated to 3, which pushes the network towards colour-free cues."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return x
        c = random.randrange(3)
        return x[c:c + 1].expand(3, -1, -1).clone()


class GreyIntensityJitter:
    """For grey images only (thermal, and RGB after channel augmentation): random gamma and
    contrast, and with probability p_invert the intensities inverted. A thermal image's grey
    levels follow temperature and the ambient (a person is brighter or darker than the scene
    depending on the weather), an RGB channel's follow dye colour: neither is shared between
    modalities, so the jitter leaves outlines, garment boundaries and accessories as the cues."""

    def __init__(self, p: float = 0.8, p_invert: float = 0.3):
        self.p, self.p_invert = p, p_invert

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        grey = torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
        if not grey or random.random() >= self.p:
            return x
        y = x.clamp(0, 1) ** math.exp(random.uniform(-0.5, 0.5))
        mean = y.mean()
        y = ((y - mean) * random.uniform(0.6, 1.5) + mean).clamp(0, 1)
        if random.random() < self.p_invert:
            y = 1.0 - y
        return y


class LowLight:
    """For RGB images only: with probability p, the look of the same camera at night under
    warm street lighting, as `vireid synth scene` renders it and as a real colour camera
    gives it: a fraction of the light, a sodium/LED cast, most of the colour gone (the
    sensor's chroma denoise) and sensor noise. The night RGB camera still sees people,
    and a box pairs its night sightings with the day's."""

    def __init__(self, p: float):
        self.p = p

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or random.random() >= self.p:
            return x
        gain = random.uniform(0.3, 0.6)
        cast = torch.tensor([1.0, 0.85, 0.6]).view(3, 1, 1)
        y = x * cast * gain
        lum = 0.3 * y[0] + 0.59 * y[1] + 0.11 * y[2]
        y = lum + (y - lum) * random.uniform(0.15, 0.4)
        y = y + torch.randn_like(y[:1]) * random.uniform(0.02, 0.06)
        return y.clamp(0, 1)


def eval_transform(height: int, width: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return T.Compose([T.Resize((height, width)), T.ToTensor(), T.Normalize(mean, std)])


def train_transforms(height: int, width: int, channel_aug: bool, erasing_p: float = 0.5,
                     grey_jitter: bool = False, low_light: float = 0.0):
    """(rgb transform, thermal transform)."""
    def build(is_rgb: bool):
        steps = [T.Resize((height, width)), T.Pad(max(1, height // 28)),
                 T.RandomCrop((height, width)), T.RandomHorizontalFlip(), T.ToTensor()]
        if is_rgb and low_light > 0:
            steps.append(LowLight(low_light))
        if is_rgb and channel_aug:
            steps.append(ChannelAugment(0.5))
        if grey_jitter:
            steps.append(GreyIntensityJitter())
        steps += [T.Normalize(IMAGENET_MEAN, IMAGENET_STD), T.RandomErasing(p=erasing_p, value=0)]
        return T.Compose(steps)
    return build(True), build(False)


class ReIDDataset(Dataset):
    def __init__(self, samples: list[Sample], rgb_transform, thermal_transform=None):
        self.samples = samples
        self.tf = (rgb_transform, thermal_transform or rgb_transform)

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        s = self.samples[i]
        img = self.tf[s.modality](load_image(s.path, s.modality))
        return img, s.label, s.modality


class CrossModalIdentitySampler(Sampler):
    """Yields batches of 2·P·K indices: P identities, K RGB then K thermal images each.

    Layout of a batch: [RGB id1×K, …, RGB idP×K, IR id1×K, …, IR idP×K], so RGB slot i and
    thermal slot i share an identity (LbA pairs on that). Images are drawn without replacement
    within an identity while it has enough, with replacement otherwise. One epoch = enough
    batches to show every training image about once.
    """

    def __init__(self, samples: list[Sample], p: int, k: int, seed: int = 0, batches: int | None = None):
        by = {RGB: {}, THERMAL: {}}
        for i, s in enumerate(samples):
            by[s.modality].setdefault(s.label, []).append(i)
        self.ids = sorted(set(by[RGB]) & set(by[THERMAL]))
        if len(self.ids) < p:
            raise ValueError(f"sampler needs {p} identities with both modalities, found {len(self.ids)};"
                             " lower data.p or check the dataset")
        self.by, self.p, self.k, self.seed, self.epoch = by, p, k, seed, 0
        self.batches = batches or max(1, len(samples) // (2 * p * k))

    def set_epoch(self, epoch: int):
        self.epoch = epoch

    def __len__(self):
        return self.batches

    def _pick(self, rng: random.Random, pool: list[int]) -> list[int]:
        return rng.sample(pool, self.k) if len(pool) >= self.k else [rng.choice(pool) for _ in range(self.k)]

    def __iter__(self):
        rng = random.Random(self.seed * 100003 + self.epoch)
        order: list[int] = []
        for _ in range(self.batches):
            if len(order) < self.p:
                # top up with the identities not already waiting: a batch never repeats an
                # identity, and every identity is drawn once per cycle through the ids
                fresh = [i for i in self.ids if i not in order]
                rng.shuffle(fresh)
                order += fresh
            chosen, order = order[:self.p], order[self.p:]
            rgb = [i for pid in chosen for i in self._pick(rng, self.by[RGB][pid])]
            ir = [i for pid in chosen for i in self._pick(rng, self.by[THERMAL][pid])]
            yield rgb + ir


def load_tensor_batch(samples: list[Sample], height: int, width: int) -> torch.Tensor:
    tf = eval_transform(height, width)
    return torch.stack([tf(load_image(s.path, s.modality)) for s in samples])


def as_numpy_labels(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([s.label for s in samples]), np.array([s.camera for s in samples])
