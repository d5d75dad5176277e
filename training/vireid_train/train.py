"""Training loop: CPU or CUDA, checkpoints every epoch and resume, optional wall-clock budget."""
from __future__ import annotations

import collections
import contextlib
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
from . import imagelevel
from .methods import Method
from .model import ReIDNet


def build_model(cfg: dict, num_classes: int) -> ReIDNet:
    m = cfg["model"]
    special = imagelevel.build_model(cfg, num_classes)   # d2rl, jsia, disentangle(_lowdim) networks
    if special is not None:
        return special
    return ReIDNet(num_classes, arch=m["arch"], two_stream=bool(m["two_stream"]), gem_p=float(m["gem_p"]),
                   pooling=m.get("pooling", "gem"), gem_learnable=bool(m.get("gem_learnable", True)),
                   test_feature=m.get("test_feature", "bn"))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[ReIDNet, dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (train writes <out_dir>/last.pt)")
    ck = torch.load(path, map_location="cpu", weights_only=False)
    model = build_model(ck["config"], ck["num_classes"])
    model.load_state_dict(ck["model"])
    model.to(device).eval()
    return model, ck


# ---------------------------------------------------------------- device

def resolve_device(cfg: dict) -> tuple[torch.device, bool, bool]:
    """(device, amp, channels_last) from train.device / amp / channels_last ("auto" = on for CUDA)."""
    t = cfg["train"]
    want = t.get("device", "auto")
    if want == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device = cuda but PyTorch sees no CUDA device (torch.cuda.is_available() is "
                           "False); use train.device=auto or cpu")
    device = torch.device("cuda" if want == "cuda" or (want == "auto" and torch.cuda.is_available()) else "cpu")
    auto = lambda v: (device.type == "cuda") if v == "auto" else bool(v)
    return device, auto(t.get("amp", "auto")), auto(t.get("channels_last", "auto"))


def autocast_factory(device: torch.device, amp: bool):
    """bf16 autocast for the network forward (losses stay float32: methods.py casts)."""
    if not amp:
        return contextlib.nullcontext
    return lambda: torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# ---------------------------------------------------------------- optimiser and schedule

def build_optimizer(cfg: dict, model: ReIDNet, method: Method) -> torch.optim.Optimizer:
    """Adam (one group, as before) or the AGW/LbA SGD: Nesterov momentum, weight decay on all,
    two groups: the backbone at lr × backbone_lr_mult, the new layers (BNNeck, classifier(s),
    method heads) at lr. Each group keeps its multiplier in "lr_mult"."""
    t = cfg["train"]
    lr, wd, mult = float(t["lr"]), float(t["weight_decay"]), float(t["backbone_lr_mult"])
    head_ids = {id(p) for p in list(model.bnneck.parameters()) + list(model.classifier.parameters())}
    head = [p for p in list(model.bnneck.parameters()) + list(model.classifier.parameters()) if p.requires_grad]
    head += method.head_parameters()
    # image-level methods: generators and discriminators in their own Adam groups (imagelevel.py)
    extra = method.param_groups(model) if hasattr(method, "param_groups") else []
    claimed = {id(p) for g in extra for p in g["params"]}
    if extra and t["optimizer"] != "adam":
        raise ValueError(f"method {cfg['method']['name']}: set train.optimizer = adam (its generators and "
                         "discriminators train with Adam)")
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids and id(p) not in claimed]
    if t["optimizer"] == "adam":
        if mult == 1.0:
            groups = [{"params": backbone + head, "lr_mult": 1.0, "name": "all"}]
        else:
            groups = [{"params": backbone, "lr_mult": mult, "name": "backbone"},
                      {"params": head, "lr_mult": 1.0, "name": "head"}]
        opt = torch.optim.Adam(groups + extra, lr=lr, weight_decay=wd)
    else:
        groups = [{"params": backbone, "lr_mult": mult, "name": "backbone"},
                  {"params": head, "lr_mult": 1.0, "name": "head"}]
        opt = torch.optim.SGD(groups, lr=lr, momentum=float(t["momentum"]), weight_decay=wd,
                              nesterov=bool(t["nesterov"]))
    return opt


def lr_factor(cfg: dict, epoch: float) -> float:
    """Multiplier of train.lr at (fractional) schedule epoch `epoch`.

    cosine: linear warm-up from 0.1 over warmup_epochs (per iteration), then cosine to 1 %.
    step (AGW / LbA): warm-up (e + 1) / warmup_epochs for whole epochs e < warmup_epochs, then
    × gamma at each milestone passed (LbA: 10 warm-up epochs, × 0.1 at 20, × 0.01 at 50)."""
    t = cfg["train"]
    warm, total = float(t["warmup_epochs"]), float(t["epochs"])
    if t.get("schedule", "cosine") == "step":
        e = math.floor(epoch + 1e-9)
        if e < warm:
            return (e + 1) / warm
        return float(t["gamma"]) ** sum(1 for m in t["milestones"] if e >= m)
    if epoch < warm:
        return 0.1 + 0.9 * epoch / warm
    progress = (epoch - warm) / max(1e-9, total - warm)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _lr_at(cfg: dict, epoch_float: float) -> float:
    return float(cfg["train"]["lr"]) * lr_factor(cfg, epoch_float)


# ---------------------------------------------------------------- time budget

class Budget:
    """`train.time_budget_s`: after a few warm-up iterations, measure iterations/s and fix the
    run length (epochs × batches) so that the run, LR schedule included (stretched or shrunk to
    the new length), ends inside the budget; re-planned once at the end of the first epoch with
    the measured checkpoint time. A hard stop checkpoints if the budget is exceeded anyway.
    The budget counts from the start of train() (data decoding included) to the last training
    iteration; the final evaluation comes after it."""

    SAFETY = 0.97

    def __init__(self, seconds: float, warmup_iters: int, t0: float, log):
        self.seconds, self.warmup, self.t0, self.log = seconds, max(2, warmup_iters), t0, log
        self.t_first = 0.0      # when the first iteration (one-off costs: cuDNN autotune, allocation) ended
        self.planned = False

    def elapsed(self) -> float:
        return time.time() - self.t0

    def exceeded(self) -> bool:
        return self.elapsed() > self.seconds

    def per_iter(self, done_iters: int) -> float:
        """Seconds per iteration since the first one (call with the device synchronised)."""
        return (time.time() - self.t_first) / max(1, done_iters - 1)

    def plan(self, done_iters: int, bpe: int, epochs_cfg: int, per_epoch_overhead: float = 0.0) -> dict:
        per = self.per_iter(done_iters)
        left = max(0.0, (self.seconds - self.elapsed()) * self.SAFETY)
        total = done_iters + int(left / (per + per_epoch_overhead / bpe))
        if total < bpe:
            plan = {"epochs": 1, "batches": max(done_iters, total)}
        else:
            plan = {"epochs": max(1, total // bpe), "batches": bpe}
        self.log(f"time budget {self.seconds:.0f}s: {1 / per:.2f} it/s measured, {self.elapsed():.1f}s used, "
                 f"{per_epoch_overhead:.1f}s per-epoch overhead -> {plan['epochs']} epochs x {plan['batches']} "
                 f"batches (config: {epochs_cfg} x {bpe}); LR schedule scaled by "
                 f"{plan['epochs'] * plan['batches'] / (epochs_cfg * bpe):.3f}")
        return plan


# ---------------------------------------------------------------- data

class TrainData:
    """The training batches of a config: the identity sampler (+ CAJ's added views), and either
    the per-image PIL DataLoader or the device-resident set. batches() yields (images on the
    device, labels on the device, modality on the CPU)."""

    def __init__(self, cfg: dict, device: torch.device, log=print):
        d, t = cfg["data"], cfg["train"]
        self.device = device
        self.aug = D.AugConfig.from_config(d)
        self.samples, self.num_classes = D.load_train(d["dataset"], d["root"], d["trial"])
        self.attrs = D.load_attributes(d["root"], self.samples, self.num_classes) \
            if cfg["model"].get("attr_heads") else None
        self.pairs = _read_pairs(cfg, self.samples, log)
        slots = int(d.get("pair_slots", -1))
        self.sampler = D.CrossModalIdentitySampler(self.samples, d["p"], d["k"], seed=t["seed"],
                                                   batches=int(t["batches_per_epoch"]) or None,
                                                   partners=self.pairs.partners() if self.pairs else None,
                                                   pair_slots=max(1, int(d["k"]) // 2) if slots < 0 else slots)
        self.batch_sampler = D.AddedViewBatches(self.sampler) if self.aug.add_view else self.sampler
        self.resident = self.loader = None
        self._masks = collections.deque()
        if d.get("resident"):
            self.resident = D.ResidentTrainSet(self.samples, self.aug, device, seed=int(t["seed"]),
                                               workers=int(d["decode_workers"]))
            log(f"data: resident on {device}: {len(self.samples)} images decoded in {self.resident.decode_s:.1f}s "
                f"({self.resident.nbytes / 2**20:.0f} MiB uint8), augmented on the device")
        else:
            tf_rgb, tf_ir, tf_extra = D.pil_transforms(self.aug)
            self.loader = DataLoader(D.ReIDDataset(self.samples, tf_rgb, tf_ir, tf_extra),
                                     batch_sampler=_Noting(self.batch_sampler, self._masks, self._paired),
                                     num_workers=int(d["workers"]),
                                     pin_memory=device.type == "cuda")

    def batches(self):
        """(images, labels on the device, modality on the CPU, paired [P·K] bool on the CPU or None
        without data.pairs: RGB slot i and thermal slot i are co-observed)."""
        if self.resident is not None:
            for views in self.batch_sampler:
                yield (*self.resident.batch(views), self._paired(views))
        else:
            self._masks.clear()    # of batches drawn ahead by an iteration that was broken off
            for x, y, mod in self.loader:
                yield (x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True), mod,
                       self._masks.popleft())

    def _paired(self, views: list) -> torch.Tensor | None:
        if self.pairs is None:
            return None
        return self.sampler.paired_mask([v[0] if isinstance(v, tuple) else v for v in views])


class _Noting:
    """The batch sampler of the PIL DataLoader path: the DataLoader draws batches ahead of use,
    in order, so each batch's pair mask waits in a queue until the batch comes out."""

    def __init__(self, inner, queue: collections.deque, mask):
        self.inner, self.queue, self.mask = inner, queue, mask

    def __iter__(self):
        for views in self.inner:
            self.queue.append(self.mask(views))
            yield views

    def __len__(self):
        return len(self.inner)


def _read_pairs(cfg: dict, samples: list, log):
    """data.pairs (co-observed RGB/thermal pairs of the training lists), or None."""
    d, lam = cfg["data"], float(cfg["method"].get("lambda_pair", 0.0))
    if not d.get("pairs"):
        if lam > 0:
            raise ValueError(f"method.lambda_pair = {lam:g} needs co-observed pairs: set data.pairs (e.g. "
                             "idx/pairs.txt, written by `vireid synth regdb --paired` and `vireid synth scene "
                             "--crops`), or method.lambda_pair = 0")
        return None
    from .pairs import read_pairs, resolve
    try:
        test = [s for half in D.load_test(d["dataset"], d["root"], d["trial"]) for s in half]
    except FileNotFoundError:
        test = []
    pairs = read_pairs(resolve(d["root"], d["pairs"]), d["root"], samples, test)
    log(f"data: {len(pairs.pairs)} co-observed pairs of training crops from {pairs.path} "
        f"({pairs.test_pairs} of the test lists skipped); method.lambda_pair = {lam:g}")
    return pairs


def bench_data(cfg: dict, batches: int = 30, log=print) -> dict:
    """Images/s of the training data path alone (sampling, decoding, augmentation, transfer to
    the device), without the network: `python -m vireid_train bench-data`."""
    torch.set_num_threads(int(cfg["train"]["threads"]))
    device, _, _ = resolve_device(cfg)
    t0 = time.time()
    data = TrainData(cfg, device, log)
    setup = time.time() - t0
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    n = seen = 0
    t1 = None
    for epoch in range(10**6):
        data.sampler.set_epoch(epoch)
        for x, *_ in data.batches():
            n += 1
            if n == 3:            # the first batches start workers and warm caches
                sync()
                t1, seen = time.time(), 0
            elif t1 is not None:
                seen += x.shape[0]
            if n >= batches + 2:
                break
        if n >= batches + 2:
            break
    sync()
    dt = time.time() - t1
    out = {"path": "resident" if data.resident is not None else f"PIL loader, {cfg['data']['workers']} workers",
           "device": str(device), "images_per_s": seen / dt, "batches": n - 2, "setup_s": setup,
           "batch_size": int(x.shape[0])}
    log(f"bench-data: {out['path']} on {device}: {out['images_per_s']:.0f} img/s over {n - 2} batches of "
        f"{out['batch_size']} (set-up {setup:.1f}s)")
    return out


# ---------------------------------------------------------------- training

def _restore_method_state(method: Method, state: dict | None, log) -> str:
    if not state:
        return "none in checkpoint"
    mine = method.state_dict()
    ok = {k: v for k, v in state.items() if k in mine and mine[k].shape == v.shape}
    if not ok:
        return "not reused (shapes differ)"
    method.load_state_dict(ok, strict=False)
    return f"{len(ok)}/{len(mine)} tensors reused"


def train(cfg: dict, resume: bool = True, log=print) -> dict:
    if cfg["method"]["name"] == imagelevel.LOWDIM:      # trains on extracted embeddings (disentangle.py)
        from .disentangle import train_lowdim
        return train_lowdim(cfg, resume, log)
    t_start = time.time()
    t = cfg["train"]
    torch.set_num_threads(int(t["threads"]))
    random.seed(t["seed"]); np.random.seed(t["seed"]); torch.manual_seed(t["seed"])
    device, amp, channels_last = resolve_device(cfg)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    elif amp:
        # bf16 on the CPU is for tests of the CUDA code path. oneDNN's bf16 convolutions (torch
        # 2.15, Xeon with AMX) returned NaN in a quarter of a layer's outputs from finite inputs on
        # the first forward after an optimiser step, not on a re-run; ATen's own kernels do not.
        torch.backends.mkldnn.enabled = False
        log("amp on the CPU: oneDNN disabled (its bf16 convolutions gave transient NaNs here)")
    out = Path(t["out_dir"]); out.mkdir(parents=True, exist_ok=True)
    d = cfg["data"]
    eval_root = d.get("eval_root") or d["root"]   # evaluation people may live in another dataset folder
    data = TrainData(cfg, device, log)
    aug, samples, num_classes, attrs = data.aug, data.samples, data.num_classes, data.attrs
    sampler, resident = data.sampler, data.resident
    model = build_model(cfg, num_classes)
    if cfg["model"]["init_weights"] and cfg["model"]["init_checkpoint"]:
        raise ValueError("model.init_weights and model.init_checkpoint both set: choose one starting point")
    if cfg["method"]["name"] in imagelevel.IMAGE_METHODS:
        method = imagelevel.build_method(cfg, num_classes, model)
    else:
        method = Method(cfg["method"]["name"], {k: v for k, v in cfg["method"].items() if k != "name"},
                        num_classes, model.embedding_dim, d["k"],
                        attr_classes=attrs.classes if attrs else None, attr_table=attrs.table if attrs else None,
                        attr_names=attrs.names if attrs else None)
    if cfg["model"]["init_weights"]:
        missing = model.load_imagenet(cfg["model"]["init_weights"])
        log(f"init: ImageNet weights from {cfg['model']['init_weights']} ({len(missing)} head keys new)")
    elif cfg["model"]["init_checkpoint"]:
        ck0 = model.load_backbone(cfg["model"]["init_checkpoint"])
        same = ck0.get("config", {}).get("method", {}).get("name") == cfg["method"]["name"]
        restored = _restore_method_state(method, ck0.get("method"), log) if same else "other method: new"
        log(f"init: weights of {cfg['model']['init_checkpoint']}; classifier "
            f"{'kept (same classes: a continued run)' if ck0['classifier_kept'] else 'new (other classes)'}; "
            f"method state {restored}")
    else:
        log("init: from scratch (no --init-weights)")
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    method.to(device)
    method.configure(autocast_factory(device, amp), seed=int(t["seed"]))
    opt = build_optimizer(cfg, model, method)
    epochs_cfg = int(t["epochs"])
    bpe = len(sampler)
    plan = {"epochs": epochs_cfg, "batches": bpe}
    start_epoch = 0
    ck_path = out / "last.pt"
    if resume and ck_path.exists():
        ck = torch.load(ck_path, map_location="cpu", weights_only=False)
        if ck["num_classes"] != num_classes or ck["config"]["method"]["name"] != cfg["method"]["name"]:
            raise ValueError(f"{ck_path} is from a different run (classes/method differ); "
                             "use another train.out_dir or --no-resume")
        model.load_state_dict(ck["model"]); method.load_state_dict(ck["method"], strict=False)
        try:
            opt.load_state_dict(ck["opt"])
        except ValueError as err:
            raise ValueError(f"{ck_path}: its optimiser state does not fit train.optimizer = {t['optimizer']} "
                             f"({err}); use the run's own config or --no-resume") from None
        start_epoch = ck["epoch"] + 1
        if ck.get("plan") and float(t["time_budget_s"]) > 0:
            plan = ck["plan"]
        log(f"resume: {ck_path} at epoch {start_epoch}")
    budget = Budget(float(t["time_budget_s"]), int(t["budget_warmup_iters"]), t_start, log) \
        if float(t["time_budget_s"]) > 0 else None
    if budget is not None and start_epoch > 0:
        budget.planned = True     # a resumed run keeps its saved plan; the hard stop still applies
    per_batch = 2 * d["p"] * d["k"] + (d["p"] * d["k"] if aug.add_view else 0)
    log(f"train: {cfg['method']['name']} {cfg['model']['arch']} two_stream={cfg['model']['two_stream']} "
        f"{d['dataset']} {len(samples)} images {num_classes} ids, {bpe} batches/epoch of {per_batch} at "
        f"{d['height']}x{d['width']}; device={device} amp={'bf16' if amp else 'off'} "
        f"channels_last={channels_last} data={'resident' if resident else 'PIL loader'} "
        f"optimizer={t['optimizer']} schedule={t.get('schedule', 'cosine')}"
        + (f" attributes={','.join(attrs.names)}" if attrs else ""))

    def save(epoch: int, partial: bool = False) -> float:
        t0 = time.time()
        torch.save({"model": model.state_dict(), "method": method.state_dict(), "opt": opt.state_dict(),
                    "epoch": epoch, "config": cfg, "num_classes": num_classes, "plan": plan,
                    "partial_epoch": partial, "attributes": attrs.names if attrs else None}, ck_path)
        return time.time() - t0

    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    epoch, done, stopped = start_epoch, 0, False
    first_epoch_of_process = True
    while epoch < plan["epochs"] and not stopped:
        model.train(); method.train()
        sampler.set_epoch(epoch)
        if resident is not None:
            resident.augment.reseed(int(t["seed"]) * 1000003 + epoch)
        t0, seen, run, n_it = time.time(), 0, {}, 0
        for it, (x, y, mod, paired) in enumerate(data.batches()):
            if it >= plan["batches"]:
                break
            sched = (epoch + it / plan["batches"]) * (epochs_cfg * bpe) / (plan["epochs"] * plan["batches"])
            lr = _lr_at(cfg, sched)
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_mult", 1.0)
            method.set_epoch(sched)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss, parts = method(model, x, y, mod, paired)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            seen += x.shape[0]
            done += 1
            n_it = it + 1
            for k, v in parts.items():   # device tensors: read only when logging
                run[k] = run[k] + v if k in run else v
            if (it + 1) % int(t["log_every"]) == 0 or it + 1 == plan["batches"]:
                vals = {k: float(v) / (it + 1) for k, v in run.items()}
                if not all(math.isfinite(v) for v in vals.values()):
                    raise FloatingPointError(f"loss became non-finite by epoch {epoch + 1} iter {it + 1} ({vals}): "
                                             "lower train.lr")
                avg = " ".join(f"{k}={v:.3f}" for k, v in vals.items())
                log(f"epoch {epoch + 1}/{plan['epochs']} iter {it + 1}/{plan['batches']} lr={lr:.2e} {avg} "
                    f"{seen / (time.time() - t0):.1f} img/s")
            if budget is not None:
                if done == 1:
                    sync()
                    budget.t_first = time.time()
                elif not budget.planned and done >= budget.warmup:
                    sync()
                    plan = budget.plan(done, bpe, epochs_cfg)
                    budget.planned = True
                if budget.exceeded():
                    log(f"time budget {budget.seconds:.0f}s exceeded at epoch {epoch + 1} iter {it + 1}: "
                        f"stopping; checkpoint saved")
                    stopped = True
                    break
        sync()
        dt = time.time() - t0
        replan = budget is not None and budget.planned and start_epoch == 0 and first_epoch_of_process and not stopped \
            and epoch + 1 < plan["epochs"] and plan["batches"] == bpe
        per_iter = budget.per_iter(done) if replan else 0.0
        log(f"epoch {epoch + 1}/{plan['epochs']} done: {seen} images in {dt:.1f}s = {seen / max(dt, 1e-9):.1f} img/s")
        last = stopped or epoch + 1 >= plan["epochs"]
        save_every = int(t["save_every"])
        # with a budget the first epoch always saves, so that the plan knows what a save costs
        save_s = save(epoch, partial=stopped and n_it < plan["batches"]) \
            if last or replan or (save_every > 0 and (epoch + 1) % save_every == 0) else 0.0
        if replan:
            overhead = save_s / max(1, save_every) if save_every > 0 else 0.0
            budget.t_first = time.time() - per_iter * max(1, done - 1)   # the measured rate, save excluded
            plan = budget.plan(done, bpe, epochs_cfg, per_epoch_overhead=overhead)
            plan["epochs"] = max(plan["epochs"], epoch + 1)
            if plan["epochs"] == epoch + 1:
                save(epoch)    # the run ends here after all: the checkpoint carries the final plan
            last = epoch + 1 >= plan["epochs"]
        first_epoch_of_process = False
        ev = int(t["eval_every"])
        if ev and (epoch + 1) % ev == 0 and not last:
            m = evaluate(torch_embedder(model), d["dataset"], eval_root, d["height"], d["width"],
                         trials=int(t["eval_trials"]), trial=d["trial"])
            log(f"eval epoch {epoch + 1}: {format_metrics(m)}")
        epoch += 1
    t_eval = time.time()
    model.eval()
    metrics = evaluate(torch_embedder(model), d["dataset"], eval_root, d["height"], d["width"],
                       trials=int(t["eval_trials"]), trial=d["trial"])
    metrics.update({"method": cfg["method"]["name"], "seed": t["seed"], "epochs": plan["epochs"],
                    "epochs_run": epoch - start_epoch, "iterations": done,
                    "batches_per_epoch": plan["batches"], "device": str(device),
                    "train_seconds": round(t_eval - t_start, 1), "eval_seconds": round(time.time() - t_eval, 1),
                    "stopped_by_budget": stopped,
                    "test_feature": model.test_feature, "eval_root": str(eval_root),
                    "protocol": "sysu all-search single-shot" if d["dataset"] == "sysu" else f"{d['dataset']} thermal->visible"})
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    imagelevel.after_training(cfg, model, method, out, log)   # translations.png of unseen people
    log(f"FINAL method={cfg['method']['name']} {format_metrics(metrics)} checkpoint={ck_path}")
    sys.stdout.flush()
    return metrics
