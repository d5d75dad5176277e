"""The image-level methods (D2RL, JSIA-ReID, disentangled structure/appearance and its
low-dimensional variant) as `train` sees them: which network each one exports, which
objective it trains, the `--smoke` set-up, and the picture of cross-modality translations of
people the model never saw.

Each objective has the interface of methods.Method (forward(model, images, labels, modality)
→ (loss, parts), configure, set_epoch, head_parameters, state_dict) plus
`param_groups(model)`: the generators' and discriminators' Adam groups (own learning rate,
betas, weight decay) and `translate(...)` for the picture.
"""
from __future__ import annotations

from pathlib import Path

import torch

from . import gan

IMAGE_METHODS = ("d2rl", "jsia", "disentangle")
LOWDIM = "disentangle_lowdim"
ALL = IMAGE_METHODS + (LOWDIM,)


def build_model(cfg: dict, num_classes: int):
    """The network a config of one of these methods trains and exports; None for the others."""
    name = cfg["method"]["name"]
    if name == "d2rl":
        from .d2rl import build_model as b
    elif name == "jsia":
        from .jsia import build_model as b
    elif name == "disentangle":
        from .disentangle import build_model as b
    elif name == LOWDIM:
        from .disentangle import build_lowdim_model as b
    else:
        return None
    return b(cfg, num_classes)


def build_method(cfg: dict, num_classes: int, model, teacher: bool = True):
    """The objective of an image-level config (model: the network build_model made)."""
    name = cfg["method"]["name"]
    params = {k: v for k, v in cfg["method"].items() if k != "name"}
    if cfg["model"].get("attr_heads"):
        raise ValueError(f"method {name}: model.attr_heads is not supported (set it to false)")
    if cfg["train"]["optimizer"] != "adam":
        raise ValueError(f"method {name}: its generators and discriminators train with Adam; set train.optimizer = adam")
    if name == "d2rl":
        from .d2rl import D2RLMethod
        return D2RLMethod(params, num_classes, cfg)
    if name == "jsia":
        from .jsia import JSIAMethod
        return JSIAMethod(params, num_classes, cfg, _layer1_channels(model))
    if name == "disentangle":
        from .disentangle import DisentangleMethod
        return DisentangleMethod(params, num_classes, cfg, model.embedding_dim, teacher=teacher)
    raise ValueError(f"method {name!r} is not an image-level method ({IMAGE_METHODS})")


def _layer1_channels(model) -> int:
    """Channels of the ResNet's layer1 output (JSIA's content code): 64 (ResNet-10/18), 256 (ResNet-50)."""
    last = model.layer1[-1]
    return (last.conv3 if hasattr(last, "conv3") else last.conv2).out_channels


# ---------------------------------------------------------------- --smoke

SMOKE_COMMON = ["data.dataset=regdb", "data.trial=1", "data.eval_root=", "data.height=32", "data.width=16",
                "data.p=2", "data.k=2", "data.resident=false", "data.workers=0", "data.channel_aug_mode=replace",
                "model.arch=resnet10", "model.init_weights=", "model.init_checkpoint=", "model.attr_heads=false",
                "train.epochs=1", "train.batches_per_epoch=3", "train.warmup_epochs=0", "train.device=cpu",
                "train.amp=false", "train.channels_last=false", "train.threads=1", "train.eval_every=0",
                "train.eval_trials=1", "train.log_every=1", "train.time_budget_s=0", "train.save_every=1"]


def smoke_overrides(config: str | None, user: list[str]) -> list[str]:
    """`train --smoke`: a few steps of the config's method on a tiny synthetic RegDB-layout set
    (rendered into <train.out_dir>/smoke-data) on the CPU; the user's --set still apply."""
    from .config import load_config
    from .synthetic import write_regdb
    cfg = load_config(config, list(user) + ["data.root=smoke"])
    name = cfg["method"]["name"]
    out = Path(cfg["train"]["out_dir"])
    root = write_regdb(out / "smoke-data", n_train=4, n_test=3, per_id=3, size=(16, 32), seed=3)
    extra: list[str] = []
    if name == "d2rl":
        from .d2rl import SMOKE as extra
    elif name == "jsia":
        from .jsia import SMOKE as extra
    elif name == "disentangle":
        from .disentangle import SMOKE as extra
    elif name == LOWDIM:
        extra = ["method.classifier_epochs=2", f"method.embedder={_smoke_embedder(out, root)}"]
    return SMOKE_COMMON + list(extra) + list(user) + [f"data.root={root}"]


def _smoke_embedder(out: Path, root: Path) -> Path:
    """For the low-dimensional variant's smoke run: a baseline embedder trained for 3 steps."""
    from .config import load_config
    from .train import train
    path = out / "smoke-embedder" / "last.pt"
    if not path.is_file():
        cfg = load_config(None, SMOKE_COMMON + [f"data.root={root}", f"train.out_dir={path.parent}"])
        train(cfg, resume=False, log=lambda s: None)
    return path


# ---------------------------------------------------------------- the picture

def _read_pairs(root: Path) -> dict[str, str]:
    """ROOT/idx/pairs.txt (`vireid synth regdb --paired`): visible relpath → thermal relpath."""
    f = root / "idx" / "pairs.txt"
    out = {}
    if f.is_file():
        for line in f.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and not line.startswith("#"):
                out[parts[0]] = parts[1]
    return out


def translation_grid(model, method, cfg: dict, path: str | Path, root: str | None = None, people: int = 8,
                     device: str | torch.device = "cpu") -> Path:
    """A PNG of generated cross-modality images of test-split people (never trained on): per
    person, [RGB | generated thermal | real thermal] and [thermal | generated RGB | real RGB].
    With ROOT/idx/pairs.txt the real images are the co-registered ones of the same instant;
    style / appearance codes (JSIA, disentangle) come from another image of the same person in
    the target modality."""
    from .data import eval_transform, load_image, load_test
    d = cfg["data"]
    root = Path(root or d.get("eval_root") or d["root"])
    thermal, visible = load_test(d["dataset"], root, d["trial"])
    pairs = _read_pairs(root)
    by_path = {str(Path(s.path).relative_to(root)) if Path(s.path).is_absolute() else s.path: s for s in thermal}
    vis_by_id: dict[int, list] = {}
    ir_by_id: dict[int, list] = {}
    for s in visible:
        vis_by_id.setdefault(s.label, []).append(s)
    for s in thermal:
        ir_by_id.setdefault(s.label, []).append(s)
    ids = [i for i in sorted(vis_by_id) if i in ir_by_id][:people]
    if not ids:
        raise ValueError(f"{root}: no test identity with both RGB and thermal images for the translation grid")
    tf = eval_transform(d["height"], d["width"])
    load = lambda s: tf(load_image(s.path, s.modality))
    r1, t1, r2, t2 = [], [], [], []
    for i in ids:
        v, t = vis_by_id[i], ir_by_id[i]
        rel = str(Path(v[0].path).relative_to(root))
        paired = by_path.get(pairs.get(rel, ""))
        a_t = paired or t[0]
        r1.append(load(v[0])); t1.append(load(a_t))
        r2.append(load(v[1 % len(v)]))
        t2.append(load(next((s for s in t if s is not a_t), t[0])))
    stack = lambda xs: torch.stack(xs).to(device)
    model.eval(); method.eval()
    rgb2ir, ir2rgb = method.translate(model, stack(r1), stack(t1), stack(r2), stack(t2))
    rows = []
    for j in range(len(ids)):
        rows.append([gan.to_gan(r1[j][None])[0], rgb2ir[j].cpu(), gan.grey(gan.to_gan(t1[j][None]))[0],
                     gan.grey(gan.to_gan(t1[j][None]))[0], ir2rgb[j].cpu(), gan.to_gan(r1[j][None])[0]])
    ref = "same instant" if pairs else "real"
    return gan.save_grid(rows, ["RGB", "->thermal", f"{ref}", "thermal", "->RGB", f"{ref}"], path)


def after_training(cfg: dict, model, method, out_dir: Path, log=print) -> None:
    """train()'s last step for an image-level method: the translation picture in out_dir."""
    if cfg["method"]["name"] not in IMAGE_METHODS:
        return
    dev = next(model.parameters()).device
    path = translation_grid(model, method, cfg, Path(out_dir) / "translations.png", device=dev)
    log(f"translations: {path} (test-split people, never trained on)")


def grid_from_checkpoint(checkpoint: str, out: str, root: str | None = None, people: int = 8) -> Path:
    """`python -m vireid_train translations`: the picture from a saved run (e.g. on a --paired set)."""
    from .train import load_checkpoint
    model, ck = load_checkpoint(checkpoint)
    cfg = ck["config"]
    if cfg["method"]["name"] not in IMAGE_METHODS:
        raise ValueError(f"{checkpoint}: method {cfg['method']['name']!r} generates no images; the translation "
                         f"picture is for {IMAGE_METHODS}")
    method = build_method(cfg, ck["num_classes"], model, teacher=False)
    method.load_state_dict(ck["method"], strict=False)
    return translation_grid(model, method, cfg, out, root=root, people=people)
