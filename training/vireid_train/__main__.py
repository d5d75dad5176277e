"""python -m vireid_train {train,export,quantize,evaluate,synth,bench-data,translations} …"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def _train(a):
    from .config import load_config
    from .train import train
    overrides = list(a.set or [])
    if a.init_weights:
        overrides.append(f"model.init_weights={a.init_weights}")
    if a.init_checkpoint:
        overrides.append(f"model.init_checkpoint={a.init_checkpoint}")
    if a.out_dir:
        overrides.append(f"train.out_dir={a.out_dir}")
    if a.smoke:
        from .imagelevel import smoke_overrides
        overrides = smoke_overrides(a.config, overrides)
    train(load_config(a.config, overrides), resume=not (a.no_resume or a.smoke))


def _translations(a):
    from .imagelevel import grid_from_checkpoint
    torch.set_num_threads(a.threads)
    print(f"translations: {grid_from_checkpoint(a.checkpoint, a.out, a.root, a.people)}")


def _bench_data(a):
    from .config import load_config
    from .train import bench_data
    result = bench_data(load_config(a.config, list(a.set or [])), a.batches)
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


def _export(a):
    from .export import export
    from .train import load_checkpoint
    torch.set_num_threads(a.threads)
    model, ck = load_checkpoint(a.checkpoint)
    d = ck["config"]["data"]
    metrics = json.loads(Path(a.metrics).read_text()) if a.metrics else None
    if metrics:
        metrics = {k: v for k, v in metrics.items() if not k.startswith("_")}
    training_data = a.training_data or (f"{d['dataset']} layout at {d['root']} (trial {d['trial']}), "
                                        f"{d['height']}x{d['width']}")
    path = export(model, a.out, d["height"], d["width"], ck["config"]["method"]["name"], training_data,
                  metrics)
    print(f"exported {path} (round-trip vs PyTorch <= 1e-4 checked)")


def _quantize(a):
    from .quantize import quantize
    out = quantize(a.model, a.calibration, a.out, a.calibration_method, a.activations)
    print(f"quantized {a.model} -> {out}")


def _onnx_embedder(path: str):
    from .export import ort_inputs, ort_session
    if not Path(path).is_file():
        raise FileNotFoundError(f"ONNX model {path} does not exist")
    session = ort_session(path)

    def run(x: torch.Tensor, modality: int) -> np.ndarray:
        return session.run(None, ort_inputs(session, x.numpy(), modality))[0]
    return run


def _evaluate(a):
    from .evaluate import evaluate, format_metrics, torch_embedder
    from .export import read_metadata
    torch.set_num_threads(a.threads)
    if a.checkpoint:
        from .train import load_checkpoint
        device = a.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        elif device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("--device cuda but PyTorch sees no CUDA device; use --device auto or cpu")
        model, ck = load_checkpoint(a.checkpoint, device)
        embed, (h, w) = torch_embedder(model), (ck["config"]["data"]["height"], ck["config"]["data"]["width"])
    elif a.onnx:
        md = read_metadata(a.onnx)
        embed, h, w = _onnx_embedder(a.onnx), int(md["vireid.input_height"]), int(md["vireid.input_width"])
    else:
        sys.exit("evaluate: give --checkpoint PATH or --onnx PATH")
    m = evaluate(embed, a.dataset, a.root, h, w, trials=a.trials, trial=a.trial, return_features=True)
    qf, gf = m.pop("_features")
    result = {"model": a.checkpoint or a.onnx, **m}
    print(f"eval {result['model']}: {format_metrics(m)}")
    if a.compare:
        m2 = evaluate(_onnx_embedder(a.compare), a.dataset, a.root, h, w, trials=a.trials, trial=a.trial,
                      return_features=True)
        qf2, gf2 = m2.pop("_features")
        cos = float(np.mean(np.concatenate([(qf * qf2).sum(1), (gf * gf2).sum(1)])))
        print(f"eval {a.compare}: {format_metrics(m2)}")
        result["compare"] = {"model": a.compare, **m2, "mean_cosine": cos,
                             "delta_r1": m2["r1"] - m["r1"], "delta_mAP": m2["mAP"] - m["mAP"]}
        print(f"compare: mean cosine {cos:.5f}, dR1={m2['r1'] - m['r1']:+.2f} dmAP={m2['mAP'] - m['mAP']:+.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))


def _synth(a):
    from .synthetic import write_regdb, write_sysu
    size = (a.width, a.height)
    if a.layout == "sysu":
        write_sysu(a.out, a.train_ids, a.test_ids, a.per_cam, size, a.seed)
    else:
        write_regdb(a.out, a.train_ids, a.test_ids, a.per_cam, size, a.seed)
    print(f"wrote synthetic {a.layout} layout (with attributes.csv) to {a.out}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m vireid_train", description=__doc__)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train a method from a config (resumes from <out_dir>/last.pt)")
    t.add_argument("--config", required=True)
    t.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    t.add_argument("--init-weights", help="local torchvision ImageNet state dict (.pth); never downloaded")
    t.add_argument("--init-checkpoint", help="start from an earlier run's last.pt (same arch and stems): the "
                   "classifier and method state are kept when their shapes match (same training set: a "
                   "continued run), new otherwise (fine-tuning on another set)")
    t.add_argument("--out-dir")
    t.add_argument("--no-resume", action="store_true")
    t.add_argument("--smoke", action="store_true",
                   help="a few steps on a tiny synthetic set (rendered into <out_dir>/smoke-data) on the CPU, from "
                        "scratch; image-level methods also write <out_dir>/translations.png")
    t.set_defaults(fn=_train)
    g = sub.add_parser("translations", help="picture of generated cross-modality images of test-split people "
                       "(d2rl, jsia, disentangle checkpoints)")
    g.add_argument("--checkpoint", required=True)
    g.add_argument("--out", required=True, help="X.png")
    g.add_argument("--root", help="dataset folder whose test split to draw (default: the run's eval_root or root); "
                   "with idx/pairs.txt (vireid synth regdb --paired) the real images are those of the same instant")
    g.add_argument("--people", type=int, default=8)
    g.add_argument("--threads", type=int, default=2)
    g.set_defaults(fn=_translations)
    e = sub.add_parser("export", help="checkpoint -> ONNX with vireid.* metadata (+ round-trip check)")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--out", required=True, help="X.onnx")
    e.add_argument("--training-data", help="what it was trained on, for vireid.training_data (default: the "
                   "checkpoint's dataset, root, trial and size)")
    e.add_argument("--metrics", help="metrics.json to embed as vireid.metrics")
    e.add_argument("--threads", type=int, default=2)
    e.set_defaults(fn=_export)
    q = sub.add_parser("quantize", help="FP32 ONNX -> INT8 QDQ ONNX, calibrated on a crop list")
    q.add_argument("--model", required=True)
    q.add_argument("--calibration", required=True, help="list file of 'relpath rgb|thermal' lines")
    q.add_argument("--out", required=True)
    q.add_argument("--calibration-method", default="minmax", help="minmax | percentile | entropy")
    q.add_argument("--activations", default="uint8",
                   help="uint8 (asymmetric, CPU; default) | int8 (symmetric, for TensorRT)")
    q.set_defaults(fn=_quantize)
    v = sub.add_parser("evaluate", help="cross-modal evaluation of a checkpoint or ONNX model")
    v.add_argument("--checkpoint")
    v.add_argument("--onnx", help="ONNX model to evaluate")
    v.add_argument("--compare", help="second ONNX (e.g. INT8): prints mean cosine and R1/mAP deltas")
    v.add_argument("--dataset", default="sysu")
    v.add_argument("--root", required=True)
    v.add_argument("--trial", type=int, default=1)
    v.add_argument("--trials", type=int, default=10)
    v.add_argument("--threads", type=int, default=2)
    v.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where a --checkpoint is embedded (ONNX models run on the CPU)")
    v.add_argument("--json")
    v.set_defaults(fn=_evaluate)
    b = sub.add_parser("bench-data", help="images/s of a config's training data path alone (no network)")
    b.add_argument("--config", required=True)
    b.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    b.add_argument("--batches", type=int, default=30, help="timed batches (after 2 warm-up batches)")
    b.add_argument("--json", help="also write the result here")
    b.set_defaults(fn=_bench_data)
    s = sub.add_parser("synth", help="write a small synthetic dataset in the SYSU-MM01 or RegDB layout")
    s.add_argument("layout", choices=["sysu", "regdb"])
    s.add_argument("--out", required=True)
    s.add_argument("--train-ids", type=int, default=100)
    s.add_argument("--test-ids", type=int, default=50)
    s.add_argument("--per-cam", type=int, default=6)
    s.add_argument("--height", type=int, default=128)
    s.add_argument("--width", type=int, default=64)
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(fn=_synth)
    a = ap.parse_args(argv)
    try:
        a.fn(a)
    except (FileNotFoundError, ValueError, RuntimeError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
