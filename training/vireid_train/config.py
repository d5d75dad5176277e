"""Run configuration: a TOML file (training/configs/*.toml) plus `--set section.key=value`."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

DEFAULTS = {
    "data": {"dataset": "sysu", "root": "", "eval_root": "", "trial": 1, "height": 288, "width": 144, "p": 8, "k": 4,
             "channel_aug": False, "channel_aug_mode": "replace", "grey_jitter": False, "low_light": 0.0,
             "erasing_p": 0.5, "erasing": "torchvision", "pad": -1, "pad_fill": 0, "flip": True,
             "workers": 0, "resident": False, "decode_workers": 0, "pairs": "", "pair_slots": -1},
    "model": {"arch": "resnet50", "two_stream": False, "pooling": "gem", "gem_p": 3.0, "gem_learnable": True,
              "test_feature": "bn", "attr_heads": False, "init_weights": "", "init_checkpoint": ""},
    "method": {"name": "baseline"},
    "train": {"epochs": 60, "optimizer": "adam", "lr": 3.5e-4, "backbone_lr_mult": 1.0, "momentum": 0.9,
              "nesterov": True, "weight_decay": 5e-4, "schedule": "cosine", "warmup_epochs": 5,
              "milestones": [20, 50], "gamma": 0.1, "seed": 0, "threads": 2, "batches_per_epoch": 0,
              "log_every": 10, "eval_every": 0, "eval_trials": 10, "save_every": 1, "out_dir": "runs/run",
              "device": "auto", "amp": "auto", "channels_last": "auto", "time_budget_s": 0.0,
              "budget_warmup_iters": 5},
}

# Enumerated options: value -> what to say when it is wrong.
CHOICES = {
    ("data", "channel_aug_mode"): ("replace", "add"),
    ("data", "erasing"): ("torchvision", "caj"),
    ("model", "pooling"): ("gem", "avg", "max"),
    ("model", "test_feature"): ("bn", "pooled"),
    ("train", "optimizer"): ("adam", "sgd"),
    ("train", "schedule"): ("cosine", "step"),
    ("train", "device"): ("auto", "cpu", "cuda"),
}
TRISTATE = (("train", "amp"), ("train", "channels_last"))   # "auto" | true | false


def _coerce(old, text: str):
    if isinstance(old, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true/false, got {text!r}")
        return text.lower() == "true"
    if isinstance(old, int):
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(old, float):
        return float(text)
    if isinstance(old, list):
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = None
        if not isinstance(value, list):
            raise ValueError(f"expected a list such as [20, 50], got {text!r}")
        return value
    if old is None:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    return text


def _check_keys(section: str, values: dict, where: str) -> None:
    """[method] keys are checked by the method itself (methods.py); the others here."""
    if section == "method":
        return
    unknown = sorted(set(values) - set(DEFAULTS[section]))
    if unknown:
        raise ValueError(f"{where}: unknown key {section}.{unknown[0]}; known: {sorted(DEFAULTS[section])}")


def load_config(path: str | None, overrides: list[str] = ()) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"--config {path}: no such file (see training/configs/)")
        with p.open("rb") as f:
            user = tomllib.load(f)
        for section, values in user.items():
            if section not in cfg:
                raise ValueError(f"{path}: unknown section [{section}]; known: {sorted(cfg)}")
            if not isinstance(values, dict):
                raise ValueError(f"{path}: [{section}] must be a table")
            _check_keys(section, values, str(path))
            cfg[section].update(values)
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. data.root=/data/sysu")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in cfg:
            raise ValueError(f"--set {item!r}: unknown section {section!r}; known: {sorted(cfg)}")
        _check_keys(section, {name: None}, f"--set {item!r}")
        try:
            cfg[section][name] = _coerce(cfg[section].get(name), value)
        except ValueError as e:
            raise ValueError(f"--set {item!r}: {e}") from None
    if not cfg["data"]["root"]:
        raise ValueError("data.root is empty: set it in the config or with --set data.root=PATH")
    if cfg["data"]["p"] < 2:
        raise ValueError("data.p must be >= 2 (triplet and LbA negatives need two identities per batch)")
    for (section, key), allowed in CHOICES.items():
        if cfg[section][key] not in allowed:
            raise ValueError(f"{section}.{key} = {cfg[section][key]!r}: choose one of {allowed}")
    for section, key in TRISTATE:
        v = cfg[section][key]
        if isinstance(v, str) and v.lower() in ("true", "false"):
            cfg[section][key] = v.lower() == "true"
        elif v != "auto" and not isinstance(v, bool):
            raise ValueError(f"{section}.{key} = {v!r}: choose auto, true or false")
    t = cfg["train"]
    if not isinstance(t["milestones"], list) or not all(isinstance(m, (int, float)) for m in t["milestones"]):
        raise ValueError(f"train.milestones = {t['milestones']!r}: a list of epochs, e.g. [20, 50]")
    if float(t["time_budget_s"]) < 0:
        raise ValueError("train.time_budget_s must be >= 0 (0 = no budget)")
    return cfg
