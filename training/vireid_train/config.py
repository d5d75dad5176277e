"""Run configuration: a TOML file (training/configs/*.toml) plus `--set section.key=value`."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path

DEFAULTS = {
    "data": {"dataset": "sysu", "root": "", "trial": 1, "height": 288, "width": 144, "p": 8, "k": 4,
             "channel_aug": False, "grey_jitter": False, "low_light": 0.0, "erasing_p": 0.5, "workers": 0},
    "model": {"arch": "resnet50", "two_stream": False, "gem_p": 3.0, "init_weights": "", "init_checkpoint": ""},
    "method": {"name": "baseline"},
    "train": {"epochs": 60, "lr": 3.5e-4, "weight_decay": 5e-4, "warmup_epochs": 5, "seed": 0,
              "threads": 2, "batches_per_epoch": 0, "log_every": 10, "eval_every": 0, "eval_trials": 10,
              "out_dir": "runs/run"},
}


def _coerce(old, text: str):
    if isinstance(old, bool):
        if text.lower() not in ("true", "false"):
            raise ValueError(f"expected true/false, got {text!r}")
        return text.lower() == "true"
    if isinstance(old, int):
        return float(text) if any(c in text for c in ".eE") else int(text)
    if isinstance(old, float):
        return float(text)
    if old is None:
        try:
            return tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            return text
    return text


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
            cfg[section].update(values)
    for item in overrides:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise ValueError(f"--set {item!r}: expected section.key=value, e.g. data.root=/data/sysu")
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        if section not in cfg:
            raise ValueError(f"--set {item!r}: unknown section {section!r}; known: {sorted(cfg)}")
        try:
            cfg[section][name] = _coerce(cfg[section].get(name), value)
        except ValueError as e:
            raise ValueError(f"--set {item!r}: {e}") from None
    if not cfg["data"]["root"]:
        raise ValueError("data.root is empty: set it in the config or with --set data.root=PATH")
    if cfg["data"]["p"] < 2:
        raise ValueError("data.p must be >= 2 (triplet and LbA negatives need two identities per batch)")
    return cfg
