"""Dataset layouts (SYSU-MM01, RegDB, LLCM), the cross-modal identity-balanced sampler and
the augmentations.

Layouts read (the synthetic generators write the same ones):
  SYSU-MM01  ROOT/cam{1..6}/NNNN/*.jpg, cams 3 and 6 thermal; ROOT/exp/{train,val,test}_id.txt
             (comma-separated ids). Training merges train+val ids, as the field does.
  RegDB      ROOT/idx/{train,test}_{visible,thermal}_{k}.txt, lines "relpath label".
  LLCM       ROOT/idx/{train,test}_{vis,nir}.txt, lines "relpath label"; camera from the
             file name's "c0N" tag when present.
  attributes ROOT/attributes.csv (optional; `model.attr_heads`): header `id,<name>:<classes>,...`,
             one row of class indices per identity (-1 = not applicable); `id` is the identity
             folder's number (SYSU camN/NNNN/, RegDB Visible/<id>/, LLCM vis/<id>/).

Augmentation runs in one of two ways with the same steps, order and parameters:
  - per image on PIL/CPU tensors in DataLoader workers (`pil_transforms`), or
  - `data.resident = true`: the training set decoded once into a uint8 tensor [N,3,H,W] on the
    training device and every batch augmented there, vectorised (`BatchAugmenter`).
Each augmentation class below has a vectorised `apply` that both use; only the way its random
parameters are drawn differs (Python `random` per image, a torch generator per batch).
"""
from __future__ import annotations

import math
import os
import random
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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
    """Labels 0..C-1 in the order of the sorted original labels."""
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



# ---------------------------------------------------------------- attributes (model.attr_heads)

def raw_identity(path: str) -> int:
    """The identity number of an image: its folder's name (SYSU camN/NNNN/, RegDB Visible/<id>/)."""
    name = Path(path).parent.name
    try:
        return int(name)
    except ValueError:
        raise ValueError(f"{path}: its folder name {name!r} is not an identity number; attributes.csv rows "
                         "are matched by the identity folder (SYSU camN/NNNN/, RegDB Visible/<id>/)") from None


def read_attributes_csv(path: str | Path) -> tuple[list[str], list[int], dict[int, list[int]]]:
    """(names, class counts, {identity: class indices}) of an attributes.csv; -1 = not applicable."""
    path = Path(path)
    lines = [(n, l.strip()) for n, l in enumerate(path.read_text().splitlines(), 1) if l.strip()]
    if not lines:
        raise ValueError(f"{path} is empty: expected a header `id,<name>:<classes>,...` and one row per identity")
    cols = [c.strip() for c in lines[0][1].split(",")]
    if cols[0] != "id" or len(cols) < 2:
        raise ValueError(f"{path}:1: header must be `id,<name>:<classes>,...` (e.g. id,female:2,build:3), "
                         f"got {lines[0][1]!r}")
    names, classes = [], []
    for c in cols[1:]:
        name, _, k = c.partition(":")
        if not name or not k.isdigit() or int(k) < 2:
            raise ValueError(f"{path}:1: column {c!r} must be <name>:<number of classes >= 2>, e.g. build:3")
        names.append(name)
        classes.append(int(k))
    rows: dict[int, list[int]] = {}
    for n, line in lines[1:]:
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(cols):
            raise ValueError(f"{path}:{n}: {len(fields)} fields, the header has {len(cols)}")
        try:
            values = [int(f) for f in fields]
        except ValueError:
            raise ValueError(f"{path}:{n}: every field must be an integer, got {line!r}") from None
        pid, attrs = values[0], values[1:]
        for name, k, v in zip(names, classes, attrs):
            if not -1 <= v < k:
                raise ValueError(f"{path}:{n}: {name} = {v} is outside 0..{k - 1} (-1 = not applicable)")
        if pid in rows:
            raise ValueError(f"{path}:{n}: identity {pid} appears twice")
        rows[pid] = attrs
    if not rows:
        raise ValueError(f"{path} has a header but no identity rows")
    return names, classes, rows


@dataclass(frozen=True)
class Attributes:
    names: list[str]
    classes: list[int]
    table: torch.Tensor   # [num training classes, attributes] long, -1 = not applicable


def load_attributes(root: str | Path, samples: list[Sample], num_classes: int) -> Attributes:
    """Per training class (relabelled label), the class index of every attribute of ROOT/attributes.csv."""
    path = Path(root) / "attributes.csv"
    if not path.is_file():
        raise FileNotFoundError(f"model.attr_heads = true needs {path}: `vireid synth sysu|regdb` and "
                                "`python -m vireid_train synth` write it; for a dataset without attributes "
                                "set model.attr_heads = false")
    names, classes, rows = read_attributes_csv(path)
    folder_of: dict[int, tuple[int, str]] = {}
    for s in samples:
        rid = raw_identity(s.path)
        prev = folder_of.setdefault(s.label, (rid, s.path))
        if prev[0] != rid:
            raise ValueError(f"training label {s.label} spans identity folders {prev[0]} ({prev[1]}) and {rid} "
                             f"({s.path}): attributes need one identity per folder")
    table = torch.full((num_classes, len(names)), -1, dtype=torch.long)
    for label, (rid, example) in folder_of.items():
        if rid not in rows:
            raise ValueError(f"{path} has no row for identity {rid} (e.g. {example}); regenerate the dataset "
                             "with its attributes.csv or set model.attr_heads = false")
        table[label] = torch.tensor(rows[rid])
    return Attributes(names, classes, table)


# ---------------------------------------------------------------- images

def load_image(path: str, modality: int) -> Image.Image:
    img = Image.open(path)
    # Thermal is grey replicated to 3 channels (as SYSU-MM01/RegDB ship it, and as vireid's
    # runtime feeds it), whatever the file's own channel count.
    return img.convert("L").convert("RGB") if modality == THERMAL else img.convert("RGB")


def decode_images(samples: list[Sample], height: int, width: int, workers: int = 0) -> torch.Tensor:
    """All images, resized to height x width exactly as the PIL path resizes them, as one uint8
    tensor [N,3,H,W] (CPU). Decoded by a thread pool (PIL releases the GIL while decoding)."""
    resize = T.Resize((height, width))
    out = np.empty((len(samples), height, width, 3), np.uint8)

    def one(i: int) -> None:
        s = samples[i]
        try:
            out[i] = np.asarray(resize(load_image(s.path, s.modality)))
        except (OSError, ValueError) as err:
            raise ValueError(f"cannot decode {s.path}: {err}") from err

    with ThreadPoolExecutor(max(1, workers or os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(samples))))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


# ---------------------------------------------------------------- augmentation

def _v(t: torch.Tensor) -> torch.Tensor:
    return t.view(-1, 1, 1, 1)


def _rand(b: int, gen: torch.Generator, device) -> torch.Tensor:
    return torch.rand(b, generator=gen, device=device)


def replicate_channel(x: torch.Tensor, channel: torch.Tensor) -> torch.Tensor:
    """x [B,3,H,W]; channel [B] in {-1, 0, 1, 2}: row b becomes its channel c copied to all three
    (-1 keeps the row)."""
    b, _, h, w = x.shape
    idx = channel.clamp(min=0).view(b, 1, 1, 1).expand(b, 1, h, w)
    return torch.where(_v(channel >= 0), x.gather(1, idx).expand(b, 3, h, w), x)


class ChannelAugment:
    """Channel augmentation, replace mode (`data.channel_aug_mode = "replace"`): with probability
    p, an RGB image (in [0,1], before normalisation) becomes one of its channels replicated to 3,
    which pushes the network towards colour-free cues."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def sample(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        on = rows & (_rand(rows.shape[0], gen, rows.device) < self.p)
        c = torch.randint(0, 3, rows.shape, generator=gen, device=rows.device)
        return torch.where(on, c, torch.full_like(c, -1))

    apply = staticmethod(replicate_channel)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if random.random() >= self.p:
            return x
        return replicate_channel(x[None], torch.tensor([random.randrange(3)]))[0]


class ChannelExchange:
    """CAJ (Ye et al. 2021) channel exchange with gray = 2: one of the three channels of the
    *normalised* image, drawn uniformly, copied to all three, always. Makes the added view of
    each RGB image in `data.channel_aug_mode = "add"` (after normalisation and erasing, as CAJ)."""

    def sample(self, rows: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = torch.randint(0, 3, rows.shape, generator=gen, device=rows.device)
        return torch.where(rows, c, torch.full_like(c, -1))

    apply = staticmethod(replicate_channel)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return replicate_channel(x[None], torch.tensor([random.randint(0, 2)]))[0]


class ChannelAdapGray:
    """CAJ's thermal-image augmentation (its ChannelAdapGray), on the normalised image: k drawn
    from {0,1,2,3}; k < 3 copies channel k to all three; k = 3 with probability p replaces the
    image by its luminance 0.2989 R + 0.5870 G + 0.1140 B, else keeps it."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def sample(self, rows: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        k = torch.randint(0, 4, rows.shape, generator=gen, device=rows.device)
        grey = rows & (k == 3) & (_rand(rows.shape[0], gen, rows.device) <= self.p)
        return torch.where(rows & (k < 3), k, torch.full_like(k, -1)), grey

    @staticmethod
    def apply(x: torch.Tensor, channel: torch.Tensor, grey: torch.Tensor) -> torch.Tensor:
        lum = (0.2989 * x[:, 0:1] + 0.5870 * x[:, 1:2] + 0.1140 * x[:, 2:3]).expand_as(x)
        return torch.where(_v(grey), lum, replicate_channel(x, channel))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        k = random.randint(0, 3)
        grey = k == 3 and random.uniform(0, 1) <= self.p
        return self.apply(x[None], torch.tensor([k if k < 3 else -1]), torch.tensor([grey]))[0]


class GreyIntensityJitter:
    """For grey images only (thermal, and RGB after channel augmentation): random gamma and
    contrast, and with probability p_invert the intensities inverted. A thermal image's grey
    levels follow temperature and the ambient (a person is brighter or darker than the scene
    depending on the weather), an RGB channel's follow dye colour: neither is shared between
    modalities, so the jitter leaves outlines, garment boundaries and accessories as the cues."""

    def __init__(self, p: float = 0.8, p_invert: float = 0.3):
        self.p, self.p_invert = p, p_invert

    @staticmethod
    def is_grey(x: torch.Tensor) -> torch.Tensor:
        return ((x[:, 0] == x[:, 1]) & (x[:, 1] == x[:, 2])).flatten(1).all(1)

    def sample(self, x: torch.Tensor, gen: torch.Generator):
        b, dev = x.shape[0], x.device
        on = self.is_grey(x) & (_rand(b, gen, dev) < self.p)
        gamma = torch.exp(_rand(b, gen, dev) - 0.5)
        contrast = 0.6 + 0.9 * _rand(b, gen, dev)
        invert = _rand(b, gen, dev) < self.p_invert
        return on, gamma, contrast, invert

    @staticmethod
    def apply(x, on, gamma, contrast, invert) -> torch.Tensor:
        y = x.clamp(0, 1) ** _v(gamma)
        mean = y.mean(dim=(1, 2, 3), keepdim=True)
        y = ((y - mean) * _v(contrast) + mean).clamp(0, 1)
        y = torch.where(_v(invert), 1.0 - y, y)
        return torch.where(_v(on), y, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        grey = torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
        if not grey or random.random() >= self.p:
            return x
        gamma = math.exp(random.uniform(-0.5, 0.5))
        contrast = random.uniform(0.6, 1.5)
        invert = random.random() < self.p_invert
        return self.apply(x[None], torch.tensor([True]), torch.tensor([gamma]), torch.tensor([contrast]),
                          torch.tensor([invert]))[0]


class LowLight:
    """For RGB images only: with probability p, the look of the same camera at night under
    warm street lighting, as `vireid synth scene` renders it and as a real colour camera
    gives it: a fraction of the light, a sodium/LED cast, most of the colour gone (the
    sensor's chroma denoise) and sensor noise. The night RGB camera still sees people,
    and a box pairs its night sightings with the day's."""

    CAST = (1.0, 0.85, 0.6)

    def __init__(self, p: float):
        self.p = p

    def sample(self, rows: torch.Tensor, x: torch.Tensor, gen: torch.Generator):
        b, _, h, w = x.shape
        dev = x.device
        on = rows & (_rand(b, gen, dev) < self.p)
        gain = 0.3 + 0.3 * _rand(b, gen, dev)
        sat = 0.15 + 0.25 * _rand(b, gen, dev)
        noise = torch.randn(b, 1, h, w, generator=gen, device=dev) * _v(0.02 + 0.04 * _rand(b, gen, dev))
        return on, gain, sat, noise

    @classmethod
    def apply(cls, x, on, gain, sat, noise) -> torch.Tensor:
        cast = torch.tensor(cls.CAST, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        y = x * cast * _v(gain)
        lum = 0.3 * y[:, 0:1] + 0.59 * y[:, 1:2] + 0.11 * y[:, 2:3]
        y = lum + (y - lum) * _v(sat)
        y = (y + noise).clamp(0, 1)
        return torch.where(_v(on), y, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.p <= 0 or random.random() >= self.p:
            return x
        gain = random.uniform(0.3, 0.6)
        sat = random.uniform(0.15, 0.4)
        noise = torch.randn_like(x[:1]) * random.uniform(0.02, 0.06)
        return self.apply(x[None], torch.tensor([True]), torch.tensor([gain]), torch.tensor([sat]), noise[None])[0]


class RandomErase:
    """Random erasing, batched, in two flavours:
    - "torchvision": torchvision's RandomErasing with its defaults (area 2-33 %, aspect 0.3-3.3
      log-uniform, 10 tries, value 0 on the normalised image), as the PIL path runs it;
    - "caj": CAJ's ChannelRandomErasing (area 2-40 %, aspect 0.3-3.33 uniform, 100 tries, the
      erased box filled with 0.4914, 0.4822, 0.4465 per channel of the normalised image)."""

    CAJ_FILL = (0.4914, 0.4822, 0.4465)

    def __init__(self, p: float, mode: str = "torchvision"):
        if mode not in ("torchvision", "caj"):
            raise ValueError(f"data.erasing = {mode!r}: choose torchvision or caj")
        self.p, self.mode = p, mode
        self.fill = self.CAJ_FILL if mode == "caj" else (0.0, 0.0, 0.0)

    def sample(self, b: int, h: int, w: int, gen: torch.Generator, device):
        if self.mode == "torchvision":
            tries = 10
            area = h * w * (0.02 + 0.31 * torch.rand(b, tries, generator=gen, device=device))
            lo, hi = math.log(0.3), math.log(3.3)
            ratio = torch.exp(lo + (hi - lo) * torch.rand(b, tries, generator=gen, device=device))
        else:
            tries = 100
            area = h * w * (0.02 + 0.38 * torch.rand(b, tries, generator=gen, device=device))
            ratio = 0.3 + (1 / 0.3 - 0.3) * torch.rand(b, tries, generator=gen, device=device)
        eh = torch.round(torch.sqrt(area * ratio)).long()
        ew = torch.round(torch.sqrt(area / ratio)).long()
        ok = (eh < h) & (ew < w)
        first = ok.int().argmax(dim=1, keepdim=True)          # the first try that fits
        eh, ew = eh.gather(1, first)[:, 0], ew.gather(1, first)[:, 0]
        top = (torch.rand(b, generator=gen, device=device) * (h - eh + 1)).floor().long()
        left = (torch.rand(b, generator=gen, device=device) * (w - ew + 1)).floor().long()
        on = (torch.rand(b, generator=gen, device=device) < self.p) & ok.any(dim=1)
        return on, top, left, eh, ew

    def apply(self, x: torch.Tensor, on, top, left, eh, ew, vectorised: bool | None = None) -> torch.Tensor:
        """Erase the boxes. vectorised (default: off the CPU): one masked `where` over the batch;
        otherwise box slices written in place (x must be a tensor the caller owns)."""
        b, _, h, w = x.shape
        if not (x.device.type != "cpu" if vectorised is None else vectorised):
            fill = torch.tensor(self.fill, dtype=x.dtype).view(3, 1, 1)
            for i in on.nonzero(as_tuple=True)[0].tolist():
                t, l = int(top[i]), int(left[i])
                x[i, :, t:t + int(eh[i]), l:l + int(ew[i])] = fill
            return x
        r = torch.arange(h, device=x.device).view(1, h, 1)
        c = torch.arange(w, device=x.device).view(1, 1, w)
        v = lambda t: t.view(b, 1, 1)
        box = (r >= v(top)) & (r < v(top + eh)) & (c >= v(left)) & (c < v(left + ew)) & v(on)
        fill = torch.tensor(self.fill, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return torch.where(box[:, None], fill, x)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """One image (CAJ flavour on the PIL path; the torchvision flavour uses T.RandomErasing)."""
        h, w = x.shape[1:]
        if random.uniform(0, 1) > self.p:
            return x
        for _ in range(100):
            area = random.uniform(0.02, 0.4) * h * w
            ratio = random.uniform(0.3, 1 / 0.3)
            eh, ew = int(round(math.sqrt(area * ratio))), int(round(math.sqrt(area / ratio)))
            if ew < w and eh < h:
                t = lambda v: torch.tensor([v])
                return self.apply(x[None], t(True), t(random.randint(0, h - eh)), t(random.randint(0, w - ew)),
                                  t(eh), t(ew))[0]
        return x


def resolve_pad(pad: int, height: int) -> int:
    """data.pad: -1 = height // 28 (at least 1; 10 px at 288 as in AGW/CAJ), else pixels."""
    return max(1, height // 28) if pad < 0 else int(pad)


def pad_crop_flip(x: torch.Tensor, pad: int, fill: int, flip: bool, gen: torch.Generator,
                  vectorised: bool | None = None) -> torch.Tensor:
    """Batched T.Pad(pad, fill) → T.RandomCrop(H, W) → T.RandomHorizontalFlip() on [B,C,H,W]
    (any dtype). vectorised (default: off the CPU): one gather, no per-image loop and no device
    sync; otherwise per-image slices (faster on the CPU). Both give the same pixels."""
    b, _, h, w = x.shape
    dev = x.device
    if pad > 0:
        x = F.pad(x, (pad, pad, pad, pad), value=fill)
        top = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=dev)
        left = torch.randint(0, 2 * pad + 1, (b,), generator=gen, device=dev)
    else:
        top = left = torch.zeros(b, dtype=torch.long, device=dev)
    cols = torch.arange(w, device=dev).expand(b, w)
    if flip:
        flipped = (_rand(b, gen, dev) < 0.5).view(b, 1)
        cols = torch.where(flipped, w - 1 - cols, cols)
    rows = top.view(b, 1, 1) + torch.arange(h, device=dev).view(1, h, 1)
    cols = (left.view(b, 1) + cols).view(b, 1, w)
    if not (dev.type != "cpu" if vectorised is None else vectorised):
        # on the CPU, B slices beat one strided gather (same pixels)
        out = torch.empty((b, x.shape[1], h, w), dtype=x.dtype)
        tl, ll = top.tolist(), left.tolist()
        fl = (cols[:, 0, 0] != left).tolist() if flip else [False] * b
        for i in range(b):
            crop = x[i, :, tl[i]:tl[i] + h, ll[i]:ll[i] + w]
            out[i] = crop.flip(-1) if fl[i] else crop
        return out
    out = x.permute(0, 2, 3, 1)[torch.arange(b, device=dev).view(b, 1, 1), rows, cols]
    return out.permute(0, 3, 1, 2).contiguous()


@dataclass(frozen=True)
class AugConfig:
    """The training augmentation of one run (the `[data]` keys of the same names)."""
    height: int
    width: int
    pad: int = -1
    pad_fill: int = 0
    flip: bool = True
    erasing_p: float = 0.5
    erasing: str = "torchvision"
    channel_aug: bool = False
    channel_aug_mode: str = "replace"
    grey_jitter: bool = False
    low_light: float = 0.0

    def __post_init__(self):
        if self.channel_aug_mode not in ("replace", "add"):
            raise ValueError(f"data.channel_aug_mode = {self.channel_aug_mode!r}: choose replace (an RGB image "
                             "becomes one of its channels with p = 0.5) or add (CAJ: a channel-exchanged view "
                             "of every RGB image is added to the batch)")
        if self.erasing not in ("torchvision", "caj"):
            raise ValueError(f"data.erasing = {self.erasing!r}: choose torchvision or caj")
        if not 0 <= self.pad_fill <= 255:
            raise ValueError(f"data.pad_fill = {self.pad_fill}: a grey level 0..255")

    @property
    def add_view(self) -> bool:
        return self.channel_aug and self.channel_aug_mode == "add"

    @classmethod
    def from_config(cls, d: dict) -> "AugConfig":
        return cls(int(d["height"]), int(d["width"]), int(d["pad"]), int(d["pad_fill"]), bool(d["flip"]),
                   float(d["erasing_p"]), str(d["erasing"]), bool(d["channel_aug"]), str(d["channel_aug_mode"]),
                   bool(d["grey_jitter"]), float(d["low_light"]))


def eval_transform(height: int, width: int, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return T.Compose([T.Resize((height, width)), T.ToTensor(), T.Normalize(mean, std)])


def pil_transforms(aug: AugConfig):
    """(rgb, thermal, added RGB view or None) per-image transforms of the DataLoader path."""
    def build(is_rgb: bool, extra: bool):
        steps = [T.Resize((aug.height, aug.width))]
        pad = resolve_pad(aug.pad, aug.height)
        if pad > 0:
            steps += [T.Pad(pad, fill=aug.pad_fill), T.RandomCrop((aug.height, aug.width))]
        if aug.flip:
            steps.append(T.RandomHorizontalFlip())
        steps.append(T.ToTensor())
        if is_rgb and aug.low_light > 0:
            steps.append(LowLight(aug.low_light))
        if is_rgb and aug.channel_aug and aug.channel_aug_mode == "replace":
            steps.append(ChannelAugment(0.5))
        if aug.grey_jitter:
            steps.append(GreyIntensityJitter())
        steps.append(T.Normalize(IMAGENET_MEAN, IMAGENET_STD))
        steps.append(T.RandomErasing(p=aug.erasing_p, value=0) if aug.erasing == "torchvision"
                     else RandomErase(aug.erasing_p, "caj"))
        if extra:
            steps.append(ChannelExchange())
        if not is_rgb and aug.add_view:
            steps.append(ChannelAdapGray(0.5))
        return T.Compose(steps)
    return build(True, False), build(False, False), (build(True, True) if aug.add_view else None)


def train_transforms(height: int, width: int, channel_aug: bool, erasing_p: float = 0.5,
                     grey_jitter: bool = False, low_light: float = 0.0):
    """(rgb transform, thermal transform) with the default geometry (replace-mode channel aug)."""
    rgb, thermal, _ = pil_transforms(AugConfig(height, width, erasing_p=erasing_p, channel_aug=channel_aug,
                                               grey_jitter=grey_jitter, low_light=low_light))
    return rgb, thermal


class BatchAugmenter:
    """`pil_transforms` on a batch of resized uint8 images on any device, vectorised: the same
    steps in the same order with the same parameters, random draws from one torch generator."""

    def __init__(self, aug: AugConfig, device, seed: int = 0, vectorised: bool | None = None):
        """vectorised (default: off the CPU): every step over the whole batch without a device
        sync; False: only the rows a step changes (less work on the CPU). Same results."""
        self.aug = aug
        self.vectorised = (torch.device(device).type != "cpu") if vectorised is None else vectorised
        self.pad = resolve_pad(aug.pad, aug.height)
        self.device = torch.device(device)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(seed)
        self.low_light = LowLight(aug.low_light) if aug.low_light > 0 else None
        self.channel = ChannelAugment(0.5) if aug.channel_aug and aug.channel_aug_mode == "replace" else None
        self.grey = GreyIntensityJitter() if aug.grey_jitter else None
        self.erase = RandomErase(aug.erasing_p, aug.erasing)
        self.exchange = ChannelExchange() if aug.add_view else None
        self.adapt = ChannelAdapGray(0.5) if aug.add_view else None
        self.mean = torch.tensor(IMAGENET_MEAN, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD, device=self.device).view(1, 3, 1, 1)

    def reseed(self, seed: int) -> None:
        self.gen.manual_seed(seed)

    def __call__(self, images: torch.Tensor, modality: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """images uint8 [B,3,H,W]; modality [B] (0 RGB, 1 thermal); extra [B] bool: the rows that
        are CAJ's added channel-exchanged view. Returns normalised float32 [B,3,H,W]."""
        g = self.gen
        x = pad_crop_flip(images, self.pad, self.aug.pad_fill, self.aug.flip, g, self.vectorised).float().div_(255.0)
        rgb = modality == RGB
        if self.low_light is not None:
            x = self._rows(x, LowLight.apply, *self.low_light.sample(rgb, x, g))
        if self.channel is not None:
            ch = self.channel.sample(rgb, g)
            x = self._rows(x, lambda v, on, c: replicate_channel(v, c), ch >= 0, ch)
        if self.grey is not None:
            x = self._rows(x, GreyIntensityJitter.apply, *self.grey.sample(x, g))
        x = x.sub_(self.mean).div_(self.std)
        b, _, h, w = x.shape
        x = self.erase.apply(x, *self.erase.sample(b, h, w, g, x.device), vectorised=self.vectorised)
        if self.exchange is not None:
            ch = self.exchange.sample(extra, g)
            x = self._rows(x, lambda v, on, c: replicate_channel(v, c), ch >= 0, ch)
        if self.adapt is not None:
            ch, grey = self.adapt.sample(~rgb, g)
            x = self._rows(x, lambda v, on, c, gr: ChannelAdapGray.apply(v, c, gr), (ch >= 0) | grey, ch, grey)
        return x

    def _rows(self, x: torch.Tensor, apply, on: torch.Tensor, *params) -> torch.Tensor:
        """apply(x, on, *params): vectorised over every row with torch.where (no device sync),
        or only on the rows it changes (the same result, less work on the CPU)."""
        if self.vectorised:
            return apply(x, on, *params)
        idx = on.nonzero(as_tuple=True)[0]
        if idx.numel():
            x[idx] = apply(x[idx], on[idx], *(p[idx] for p in params))
        return x


# ---------------------------------------------------------------- datasets

class ReIDDataset(Dataset):
    """Per-image path. An index is an int, or (index, True) for CAJ's added channel-exchanged
    view of an RGB image (`AddedViewBatches`)."""

    def __init__(self, samples: list[Sample], rgb_transform, thermal_transform=None, extra_transform=None):
        self.samples = samples
        self.tf = (rgb_transform, thermal_transform or rgb_transform)
        self.extra = extra_transform

    def __len__(self):
        return len(self.samples)

    def __getitem__(self, i):
        extra = False
        if isinstance(i, tuple):
            i, extra = i
        s = self.samples[i]
        if extra and (self.extra is None or s.modality != RGB):
            raise ValueError(f"an added channel-exchanged view was asked for {s.path}, which is "
                             f"{'not RGB' if s.modality != RGB else 'not set up (data.channel_aug_mode != add)'}")
        img = (self.extra if extra else self.tf[s.modality])(load_image(s.path, s.modality))
        return img, s.label, s.modality


class ResidentTrainSet:
    """`data.resident = true`: the training set decoded once into one uint8 tensor [N,3,H,W] on
    the training device; a batch is gathered by index and augmented there (`BatchAugmenter`),
    so JPEG decoding never limits throughput."""

    def __init__(self, samples: list[Sample], aug: AugConfig, device, seed: int = 0, workers: int = 0):
        t0 = time.time()
        self.device = torch.device(device)
        self.images = decode_images(samples, aug.height, aug.width, workers).to(self.device)
        self.labels = torch.tensor([s.label for s in samples], device=self.device)
        self.modality = torch.tensor([s.modality for s in samples])
        self.augment = BatchAugmenter(aug, self.device, seed)
        self.decode_s = time.time() - t0

    @property
    def nbytes(self) -> int:
        return self.images.numel()

    def batch(self, views: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """views: indices, or (index, extra) pairs as AddedViewBatches yields them.
        Returns (images on the device, labels on the device, modality on the CPU)."""
        idx = [v[0] if isinstance(v, tuple) else v for v in views]
        extra = torch.tensor([bool(v[1]) if isinstance(v, tuple) else False for v in views])
        cpu_idx = torch.tensor(idx)
        mod = self.modality[cpu_idx]
        dev_idx = cpu_idx.to(self.device, non_blocking=True)
        x = self.augment(self.images[dev_idx], mod.to(self.device, non_blocking=True),
                         extra.to(self.device, non_blocking=True))
        return x, self.labels[dev_idx], mod


class CrossModalIdentitySampler(Sampler):
    """Yields batches of 2·P·K indices: P identities, K RGB then K thermal images each.

    Layout of a batch: [RGB id1×K, …, RGB idP×K, IR id1×K, …, IR idP×K], so RGB slot i and
    thermal slot i share an identity (LbA pairs on that). Images are drawn without replacement
    within an identity while it has enough, with replacement otherwise. One epoch = enough
    batches to show every training image about once.

    With co-observed pairs (`partners`: RGB sample index -> thermal sample indices of the same
    person at the same instant, `data.pairs`), the first `pair_slots` slots of each identity take
    an RGB image that has a partner (while the identity has such images) and, in the thermal
    half, one of its partners; `paired_mask` says which slots of a batch are such pairs.
    """

    def __init__(self, samples: list[Sample], p: int, k: int, seed: int = 0, batches: int | None = None,
                 partners: dict[int, list[int]] | None = None, pair_slots: int = 0):
        by = {RGB: {}, THERMAL: {}}
        for i, s in enumerate(samples):
            by[s.modality].setdefault(s.label, []).append(i)
        self.ids = sorted(set(by[RGB]) & set(by[THERMAL]))
        if len(self.ids) < p:
            raise ValueError(f"sampler needs {p} identities with both modalities, found {len(self.ids)};"
                             " lower data.p or check the dataset")
        self.by, self.p, self.k, self.seed, self.epoch = by, p, k, seed, 0
        self.batches = batches or max(1, len(samples) // (2 * p * k))
        if partners is not None and not 0 <= pair_slots <= k:
            raise ValueError(f"data.pair_slots = {pair_slots}: between 0 and data.k = {k} (-1 = k // 2)")
        self.partners = {v: set(ts) for v, ts in partners.items()} if partners is not None else None
        self.pair_slots = pair_slots if partners is not None else 0
        self.paired_rgb = {pid: [i for i in pool if i in self.partners] for pid, pool in by[RGB].items()} \
            if partners is not None else {}

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
            if not self.pair_slots:
                rgb = [i for pid in chosen for i in self._pick(rng, self.by[RGB][pid])]
                ir = [i for pid in chosen for i in self._pick(rng, self.by[THERMAL][pid])]
            else:
                blocks = [self._pick_paired(rng, pid) for pid in chosen]
                rgb = [i for b, _ in blocks for i in b]
                ir = [i for _, b in blocks for i in b]
            yield rgb + ir

    def _pick_paired(self, rng: random.Random, pid: int) -> tuple[list[int], list[int]]:
        """K RGB and K thermal images of one identity; the first pair_slots slots are
        co-observed pairs while the identity has RGB images with a partner."""
        paired = self.paired_rgb.get(pid, [])
        first = rng.sample(paired, min(self.pair_slots, len(paired)))
        taken = set(first)
        rest = [i for i in self.by[RGB][pid] if i not in taken]
        rgb = first + (rng.sample(rest, self.k - len(first)) if len(rest) >= self.k - len(first)
                       else [rng.choice(rest or first) for _ in range(self.k - len(first))])
        ir: list[int] = []
        for v in first:
            cands = sorted(self.partners[v] - set(ir))
            if cands:
                ir.append(rng.choice(cands))
            else:       # its partners are taken by earlier slots: the slot is not a pair
                break
        taken = set(ir)
        pool = [t for t in self.by[THERMAL][pid] if t not in taken]
        need = self.k - len(ir)
        ir += rng.sample(pool, need) if len(pool) >= need else [rng.choice(pool or ir) for _ in range(need)]
        return rgb, ir

    def paired_mask(self, batch: list[int]) -> torch.Tensor:
        """[P·K] bool: RGB slot i and thermal slot i of `batch` (as yielded) are co-observed."""
        n = self.p * self.k
        if self.partners is None:
            return torch.zeros(n, dtype=torch.bool)
        return torch.tensor([batch[n + i] in self.partners.get(batch[i], ()) for i in range(n)])


class AddedViewBatches(Sampler):
    """CAJ's channel augmentation as an *added* view (`data.channel_aug_mode = "add"`): every
    batch [RGB P·K, thermal P·K] of the wrapped sampler gets its RGB images once more, as
    (index, True), appended: [RGB, thermal, RGB channel-exchanged]. The batch grows by half."""

    def __init__(self, sampler: CrossModalIdentitySampler):
        self.sampler = sampler
        self.n_rgb = sampler.p * sampler.k

    def set_epoch(self, epoch: int):
        self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.sampler)

    def __iter__(self):
        for batch in self.sampler:
            yield [(i, False) for i in batch] + [(i, True) for i in batch[:self.n_rgb]]


def load_tensor_batch(samples: list[Sample], height: int, width: int) -> torch.Tensor:
    tf = eval_transform(height, width)
    return torch.stack([tf(load_image(s.path, s.modality)) for s in samples])


def as_numpy_labels(samples: list[Sample]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([s.label for s in samples]), np.array([s.camera for s in samples])
