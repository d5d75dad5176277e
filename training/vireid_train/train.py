"""Training loop with checkpoints every epoch and resume."""
from __future__ import annotations

import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from . import data as D
from .evaluate import evaluate, format_metrics, torch_embedder
from .methods import Method
from .model import ReIDNet


def build_model(cfg: dict, num_classes: int) -> ReIDNet:
    m = cfg["model"]
    return ReIDNet(num_classes, arch=m["arch"], two_stream=bool(m["two_stream"]), gem_p=float(m["gem_p"]))


def load_checkpoint(path: str | Path) -> tuple[ReIDNet, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (train writes <out_dir>/last.pt)")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"], ck["num_classes"])
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck


def _lr_at(cfg: dict, epoch_float: float) -> float:
    t = cfg["train"]
    base, warm, total = float(t["lr"]), float(t["warmup_epochs"]), float(t["epochs"])
    if epoch_float < warm:
        return base * (0.1 + 0.9 * epoch_float / warm)
    # cosine decay to 1% after warm-up
    progress = (epoch_float - warm) / max(1e-9, total - warm)
    return base * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(cfg: dict, resume: bool = True, log=print) -> dict:
    t = cfg["train"]
    torch.set_num_threads(int(t["threads"]))
    random.seed(t["seed"]); np.random.seed(t["seed"]); torch.manual_seed(t["seed"])
    out = Path(t["out_dir"]); out.mkdir(parents=True, exist_ok=True)
    d = cfg["data"]
    samples, num_classes = D.load_train(d["dataset"], d["root"], d["trial"])
    tf_rgb, tf_ir = D.train_transforms(d["height"], d["width"], bool(d["channel_aug"]), float(d["erasing_p"]),
                                       bool(d["grey_jitter"]), float(d["low_light"]))
    sampler = D.CrossModalIdentitySampler(samples, d["p"], d["k"], seed=t["seed"],
                                          batches=int(t["batches_per_epoch"]) or None)
    loader = DataLoader(D.ReIDDataset(samples, tf_rgb, tf_ir), batch_sampler=sampler,
                        num_workers=int(d["workers"]))
    model = build_model(cfg, num_classes)
    if cfg["model"]["init_weights"] and cfg["model"]["init_checkpoint"]:
        raise ValueError("model.init_weights and model.init_checkpoint both set: choose one starting point")
    if cfg["model"]["init_weights"]:
        missing = model.load_imagenet(cfg["model"]["init_weights"])
        log(f"init: ImageNet weights from {cfg['model']['init_weights']} ({len(missing)} head keys new)")
    elif cfg["model"]["init_checkpoint"]:
        model.load_backbone(cfg["model"]["init_checkpoint"])
        log(f"init: fine-tuning the backbone of {cfg['model']['init_checkpoint']} (new classifier)")
    else:
        log("init: from scratch (no --init-weights)")
    method = Method(cfg["method"]["name"], {k: v for k, v in cfg["method"].items() if k != "name"},
                    num_classes, model.embedding_dim, d["k"])
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.Adam(params, lr=float(t["lr"]), weight_decay=float(t["weight_decay"]))
    start_epoch = 0
    ck_path = out / "last.pt"
    if resume and ck_path.exists():
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        if ck["num_classes"] != num_classes or ck["config"]["method"]["name"] != cfg["method"]["name"]:
            raise ValueError(f"{ck_path} is from a different run (classes/method differ); "
                             "use another train.out_dir or --no-resume")
        model.load_state_dict(ck["model"]); method.load_state_dict(ck["method"]); opt.load_state_dict(ck["opt"])
        start_epoch = ck["epoch"] + 1
        log(f"resume: {ck_path} at epoch {start_epoch}")
    log(f"train: {cfg['method']['name']} {cfg['model']['arch']} two_stream={cfg['model']['two_stream']} "
        f"{d['dataset']} {len(samples)} images {num_classes} ids, {len(sampler)} batches/epoch of "
        f"{2 * d['p'] * d['k']} at {d['height']}x{d['width']}")
    epochs = int(t["epochs"])
    metrics: dict = {}
    for epoch in range(start_epoch, epochs):
        model.train(); method.train()
        sampler.set_epoch(epoch)
        t0, seen, run = time.time(), 0, {}
        for it, (x, y, mod) in enumerate(loader):
            lr = _lr_at(cfg, epoch + it / len(sampler))
            for g in opt.param_groups:
                g["lr"] = lr
            loss, parts = method(model, x, y, mod)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"loss became {float(loss)} at epoch {epoch} iter {it}: lower train.lr")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += x.shape[0]
            for k, v in parts.items():
                run[k] = run.get(k, 0.0) + v
            if (it + 1) % int(t["log_every"]) == 0 or it + 1 == len(sampler):
                avg = " ".join(f"{k}={v / (it + 1):.3f}" for k, v in run.items())
                log(f"epoch {epoch + 1}/{epochs} iter {it + 1}/{len(sampler)} lr={lr:.2e} {avg} "
                    f"{seen / (time.time() - t0):.1f} img/s")
        torch.save({"model": model.state_dict(), "method": method.state_dict(), "opt": opt.state_dict(),
                    "epoch": epoch, "config": cfg, "num_classes": num_classes}, ck_path)
        ev = int(t["eval_every"])
        if ev and (epoch + 1) % ev == 0 and epoch + 1 < epochs:
            m = evaluate(torch_embedder(model), d["dataset"], d["root"], d["height"], d["width"],
                         trials=int(t["eval_trials"]), trial=d["trial"])
            log(f"eval epoch {epoch + 1}: {format_metrics(m)}")
    model.eval()
    metrics = evaluate(torch_embedder(model), d["dataset"], d["root"], d["height"], d["width"],
                       trials=int(t["eval_trials"]), trial=d["trial"])
    metrics.update({"method": cfg["method"]["name"], "seed": t["seed"], "epochs": epochs,
                    "protocol": "sysu all-search single-shot" if d["dataset"] == "sysu" else f"{d['dataset']} thermal->visible"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(f"FINAL method={cfg['method']['name']} {format_metrics(metrics)} checkpoint={ck_path}")
    sys.stdout.flush()
    return metrics
