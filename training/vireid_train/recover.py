"""A trainable checkpoint from an exported FP32 ONNX model, when its training checkpoint is gone:

    python -m vireid_train.recover --onnx engines/vireid_default.fp32.onnx --root DATA --out M.pt

The export folds every BatchNorm2d into the convolution before it (W' = W·γ/σ, b' = β − γμ/σ),
so the graph holds W' and b' but not the statistics. Recovery unfolds them: the convolution
gets W', and its BatchNorm gets statistics measured on training crops (`--root`: a RegDB-layout
folder's training lists) with γ = √(σ_z² + ε), β = μ_z + b', running mean μ_z, running
variance σ_z² (μ_z, σ_z² per channel of W'x over the crops). In eval mode that is exactly
W'x + b' again; in train mode a batch like the crops normalises to the same values, so training
continues from the exported function, not from a distorted one. GeM's p and the BNNeck are
copied; the identity classifier is not in the graph (a fine-tune on new people gets a new one
anyway). The recovered features are checked against ONNX Runtime on the crops (max |Δ| printed,
> 1e-3 is an error).

Which convolution is which: a fresh network of the same architecture with identity BatchNorm is
exported the same way; its Conv nodes then carry the modules' own weights, which names each
node, and the exported model's Conv nodes come in the same order.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from . import data as D
from .export import EmbeddingGraph, OPSET, ort_inputs, ort_session, read_metadata
from .model import ReIDNet


def _tensors(model: onnx.ModelProto):
    """name -> array of a constant input; the exporter writes equal tensors once and the others
    as Identity nodes (or Constant nodes) of it, which are followed."""
    init = {t.name: t for t in model.graph.initializer}
    const = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant"}
    alias = {n.output[0]: n.input[0] for n in model.graph.node if n.op_type == "Identity"}

    def tensor(name: str, node) -> np.ndarray:
        while name in alias:
            name = alias[name]
        if name in init:
            return numpy_helper.to_array(init[name]).copy()
        if name in const:
            return numpy_helper.to_array(const[name].attribute[0].t).copy()
        raise ValueError(f"{node.op_type} node {node.name}: its input {name} is not a constant")
    return tensor


def _conv_params(model: onnx.ModelProto) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(weight, bias or None) of every Conv node, in graph order."""
    tensor = _tensors(model)
    return [(tensor(n.input[1], n), tensor(n.input[2], n) if len(n.input) > 2 else None)
            for n in model.graph.node if n.op_type == "Conv"]


def _bnneck(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The BNNeck: the graph's one BatchNormalization node (scale, bias, mean, var)."""
    nodes = [n for n in model.graph.node if n.op_type == "BatchNormalization"]
    if len(nodes) != 1:
        raise ValueError(f"{len(nodes)} BatchNormalization nodes; an export with the BNNeck feature "
                         "(model.test_feature = bn) has exactly one")
    tensor, node = _tensors(model), nodes[0]
    return {k: tensor(name, node) for k, name in zip(("weight", "bias", "running_mean", "running_var"), node.input[1:5])}


def _bn_of(conv_name: str) -> str:
    """The BatchNorm2d after a convolution of the torchvision ResNet definition."""
    head, _, last = conv_name.rpartition(".")
    if last.startswith("conv"):
        return f"{head}.bn{last[4:]}"
    if last == "0":                       # stems.i.0 -> stems.i.1, ….downsample.0 -> ….downsample.1
        return f"{head}.1"
    raise ValueError(f"no BatchNorm known after {conv_name}")


def conv_order(arch: str, two_stream: bool, height: int, width: int, tmp: Path) -> list[str]:
    """Names of the convolutions in the order the exporter writes their Conv nodes."""
    torch.manual_seed(0)
    net = ReIDNet(1, arch=arch, two_stream=two_stream).eval()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):      # distinct weights everywhere (the two stems start equal)
            nn.init.normal_(m.weight)
        if isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight); nn.init.zeros_(m.bias)
            m.running_mean.zero_(); m.running_var.fill_(1.0 - m.eps)
    path = tmp / "order.onnx"
    images = torch.randn(2, 3, height, width)
    args, names = ((images, torch.tensor([0.0, 1.0])), ["images", "modality"]) if two_stream else ((images,), ["images"])
    torch.onnx.export(EmbeddingGraph(net).eval(), args, str(path), input_names=names, output_names=["features"],
                      dynamic_axes={n: {0: "batch"} for n in names + ["features"]}, opset_version=OPSET,
                      do_constant_folding=True, dynamo=False)
    convs = {n: m.weight.detach().numpy() for n, m in net.named_modules() if isinstance(m, nn.Conv2d)}
    order = []
    for w, _ in _conv_params(onnx.load(str(path))):
        hits = [n for n, v in convs.items() if v.shape == w.shape and np.allclose(v, w, rtol=1e-5, atol=1e-7)]
        if len(hits) != 1:
            raise RuntimeError(f"cannot name a Conv node of shape {w.shape} ({len(hits)} candidates)")
        order.append(hits[0])
    if sorted(order) != sorted(convs):
        raise RuntimeError("the exported graph does not hold every convolution once")
    return order


def calibration_crops(root: str | Path, per_modality: int, height: int, width: int, seed: int = 0,
                      trial: int = 1) -> tuple[torch.Tensor, torch.Tensor, list[D.Sample]]:
    samples, _ = D.load_train("regdb", root, trial)
    rng = random.Random(seed)
    chosen = []
    for mod in (D.RGB, D.THERMAL):
        pool = [s for s in samples if s.modality == mod]
        chosen += rng.sample(pool, min(per_modality, len(pool)))
    x = D.load_tensor_batch(chosen, height, width)
    return x, torch.tensor([s.modality for s in chosen]), chosen


def train_mode_cosine(net: ReIDNet, x: torch.Tensor, mod: torch.Tensor, batch: int) -> float:
    """Mean cosine between the pooled (pre-BNNeck) features in train mode (BatchNorm on the
    statistics of one mixed batch: batch/2 crops of each modality) and in eval mode: how close
    a training step starts to the exported function."""
    k = max(1, batch // 2)
    idx = torch.cat([torch.nonzero(mod == m).flatten()[:k] for m in (0, 1)])
    with torch.no_grad():
        net.eval()
        ref = net(x[idx], mod[idx])["pooled"]
        state = {n: b.clone() for n, b in net.named_buffers()}
        net.train()
        got = net(x[idx], mod[idx])["pooled"]
        net.eval()
        for n, b in net.named_buffers():      # a train-mode forward moves the running statistics
            b.copy_(state[n])
    return float(torch.nn.functional.cosine_similarity(ref, got, dim=1).mean())


def recover(onnx_path: str | Path, root: str | Path, out: str | Path, per_modality: int = 128,
            batch: int = 64, log=print) -> dict:
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise FileNotFoundError(f"--onnx {onnx_path} does not exist")
    md = read_metadata(onnx_path)
    for key in ("vireid.arch", "vireid.input_height", "vireid.input_width", "vireid.modality_handling"):
        if key not in md:
            raise ValueError(f"--onnx {onnx_path}: no {key} in its metadata; only models exported by "
                             "`python -m vireid_train export` can be recovered")
    if md.get("vireid.precision", "fp32") != "fp32" or md.get("vireid.quantization"):
        raise ValueError(f"--onnx {onnx_path} is quantized; recover from the FP32 file (*.fp32.onnx)")
    arch, h, w = md["vireid.arch"], int(md["vireid.input_height"]), int(md["vireid.input_width"])
    two_stream = md["vireid.modality_handling"] == "per_modality"
    model = onnx.load(str(onnx_path))
    init = {t.name: numpy_helper.to_array(t).copy() for t in model.graph.initializer}
    try:
        bnneck = _bnneck(model)
    except ValueError as err:
        raise ValueError(f"--onnx {onnx_path}: {err}") from None
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    order = conv_order(arch, two_stream, h, w, out.parent)
    (out.parent / "order.onnx").unlink()
    params = _conv_params(model)
    if len(params) != len(order):
        raise ValueError(f"--onnx {onnx_path}: {len(params)} Conv nodes, a {arch} export has {len(order)}")
    net = ReIDNet(1, arch=arch, two_stream=two_stream, gem_learnable="model.pool.p" in init)
    mods = dict(net.named_modules())
    folded_bias = {}
    with torch.no_grad():
        for name, (wt, b) in zip(order, params):
            conv, bn = mods[name], mods[_bn_of(name)]
            if tuple(conv.weight.shape) != wt.shape:
                raise ValueError(f"--onnx {onnx_path}: {name} has shape {wt.shape}, expected {tuple(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(wt))
            fb = torch.from_numpy(b) if b is not None else torch.zeros(wt.shape[0])   # copies already
            folded_bias[name] = fb
            # exact eval-mode function for the measurement: BN(z) = z / √(1 − ε + ε) + b'
            bn.weight.fill_(1.0); bn.bias.copy_(fb); bn.running_mean.zero_(); bn.running_var.fill_(1.0 - bn.eps)
        if "model.pool.p" in init:
            net.pool.p.copy_(torch.from_numpy(init["model.pool.p"]).reshape(net.pool.p.shape))
        for k, v in bnneck.items():
            getattr(net.bnneck, k).copy_(torch.from_numpy(v))
    net.eval()
    x, mod, chosen = calibration_crops(root, per_modality, h, w)
    # per-channel sums of each convolution's output W'x (before the folded bias) over the crops
    stats: dict[str, list] = {n: [0, 0.0, 0.0] for n in order}
    hooks = []
    for name in order:
        def hook(m, inp, o, name=name):
            z = o.detach().double()
            s = stats[name]
            s[0] += z.numel() // z.shape[1]
            s[1] = s[1] + z.sum(dim=(0, 2, 3))
            s[2] = s[2] + (z * z).sum(dim=(0, 2, 3))
        hooks.append(mods[name].register_forward_hook(hook))
    feats = []
    with torch.no_grad():
        # modality blocks, as the training batches come (each stem sees its own modality)
        for i in range(0, len(x), batch):
            feats.append(net.embed(x[i:i + batch], mod[i:i + batch]))
    for hk in hooks:
        hk.remove()
    ref = torch.cat(feats).numpy()
    with torch.no_grad():
        for name in order:
            n, s1, s2 = stats[name]
            mean = (s1 / n).float()
            var = (s2 / n - (s1 / n) ** 2).clamp(min=0).float()
            bn = mods[_bn_of(name)]
            bn.running_mean.copy_(mean); bn.running_var.copy_(var)
            bn.weight.copy_((var + bn.eps).sqrt()); bn.bias.copy_(mean + folded_bias[name])
    with torch.no_grad():
        got = torch.cat([net.embed(x[i:i + batch], mod[i:i + batch]) for i in range(0, len(x), batch)]).numpy()
    sess = ort_session(onnx_path)
    onnx_feats = np.concatenate([sess.run(None, ort_inputs(sess, x[i:i + batch].numpy(), mod[i:i + batch].numpy()))[0]
                                 for i in range(0, len(x), batch)])
    diff = float(np.abs(got - onnx_feats).max())
    diff_measure = float(np.abs(ref - onnx_feats).max())
    scale = float(np.abs(onnx_feats).max())
    if diff > 1e-3 * max(1.0, scale):
        raise RuntimeError(f"recovered model differs from {onnx_path} by {diff:.2e} on the crops (> 1e-3)")
    cos = train_mode_cosine(net, x, mod, batch)
    config = {"data": {"dataset": "regdb", "root": str(root), "height": h, "width": w},
              "model": {"arch": arch, "two_stream": two_stream, "pooling": "gem", "gem_p": 3.0,
                        "gem_learnable": "model.pool.p" in init, "test_feature": "bn"},
              "method": {"name": md.get("vireid.method", "")}, "train": {}}
    report = {"onnx": str(onnx_path), "calibration_root": str(root), "calibration_crops": len(chosen),
              "max_abs_diff_eval": diff, "max_abs_diff_before_unfold": diff_measure, "feature_max_abs": scale,
              "train_mode_mean_cosine": cos, "convolutions": len(order)}
    torch.save({"model": net.state_dict(), "config": config, "num_classes": 1, "epoch": -1,
                "provenance": {"kind": "recovered", **report, "training_data": md.get("vireid.training_data", "")}},
               out)
    log(f"recovered {onnx_path} -> {out}: {len(order)} convolutions unfolded, BatchNorm statistics from "
        f"{len(chosen)} crops of {root}; eval features vs ONNX Runtime max |diff| {diff:.2e} (features up to "
        f"{scale:.1f}); pooled features in train mode (batch statistics) vs eval mode: mean cosine {cos:.4f}")
    return report


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vireid_train.recover", description=__doc__.split("\n\n")[0])
    ap.add_argument("--onnx", required=True, help="an FP32 model exported by `python -m vireid_train export`")
    ap.add_argument("--root", required=True, help="RegDB-layout folder whose training crops measure the statistics")
    ap.add_argument("--out", required=True, help="checkpoint to write (use with --init-checkpoint)")
    ap.add_argument("--crops", type=int, default=128, help="crops per modality (default 128)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", help="also write the report here")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    try:
        report = recover(a.onnx, a.root, a.out, a.crops)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
