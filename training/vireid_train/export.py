"""ONNX export with the vireid.* metadata contract, and the ONNX Runtime round-trip check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .data import IMAGENET_MEAN, IMAGENET_STD
from .model import EmbeddingGraph, ReIDNet

OPSET = 17


def metadata(model: ReIDNet, height: int, width: int, method: str, training_data: str,
             metrics: dict | None, precision: str = "fp32") -> dict[str, str]:
    """The vireid.* keys of engines/README.md (plus vireid.arch)."""
    return {
        "vireid.input_height": str(height),
        "vireid.input_width": str(width),
        "vireid.mean": ",".join(f"{v:g}" for v in IMAGENET_MEAN),
        "vireid.std": ",".join(f"{v:g}" for v in IMAGENET_STD),
        "vireid.embedding_dim": str(model.embedding_dim),
        "vireid.modality_handling": "per_modality" if model.two_stream else "shared",
        "vireid.method": method,
        "vireid.training_data": training_data,
        "vireid.metrics": json.dumps(metrics or {}, sort_keys=True),
        "vireid.precision": precision,
        "vireid.arch": model.arch,
    }


def set_metadata(path: str | Path, md: dict[str, str]) -> None:
    m = onnx.load(str(path))
    keep = [p for p in m.metadata_props if p.key not in md]
    del m.metadata_props[:]
    m.metadata_props.extend(keep)
    for k, v in md.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(path))


def read_metadata(path: str | Path) -> dict[str, str]:
    return {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}


def export(model: ReIDNet, out: str | Path, height: int, width: int, method: str, training_data: str,
           metrics: dict | None = None, check: bool = True) -> Path:
    """One graph; a two-stream model gets the extra `modality` input [N] (0.0 RGB, 1.0 thermal)."""
    model.eval()
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    graph = EmbeddingGraph(model).eval()
    images = torch.randn(2, 3, height, width)
    if model.two_stream:
        args, names = (images, torch.tensor([0.0, 1.0])), ["images", "modality"]
    else:
        args, names = (images,), ["images"]
    axes = {n: {0: "batch"} for n in names + ["features"]}
    torch.onnx.export(graph, args, str(path), input_names=names, output_names=["features"],
                      dynamic_axes=axes, opset_version=OPSET, do_constant_folding=True, dynamo=False)
    set_metadata(path, metadata(model, height, width, method, training_data, metrics))
    onnx.checker.check_model(str(path))
    if check:
        diff = roundtrip_max_abs_diff(model, path, height, width)
        if diff > 1e-4:
            raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.2e} (> 1e-4)")
    return path


def ort_inputs(session: ort.InferenceSession, images: np.ndarray, modality: int | np.ndarray) -> dict:
    feeds = {session.get_inputs()[0].name: images}
    if any(i.name == "modality" for i in session.get_inputs()):
        feeds["modality"] = np.broadcast_to(np.asarray(modality, np.float32), (images.shape[0],)).copy()
    return feeds


def ort_session(path: str | Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def roundtrip_max_abs_diff(model: ReIDNet, path: str | Path, height: int, width: int,
                           batch: int = 3, seed: int = 0) -> float:
    """Max |ORT - PyTorch| over a batch of random inputs of mixed modality (batch differs from
    the export's 2, which also checks the dynamic batch axis)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, height, width, generator=g)
    mod = torch.arange(batch) % 2
    with torch.no_grad():
        ref = model.embed(x, mod).numpy()
    sess = ort_session(path)
    got = sess.run(None, ort_inputs(sess, x.numpy(), mod.numpy()))[0]
    return float(np.abs(ref - got).max())
