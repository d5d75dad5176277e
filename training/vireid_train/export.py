"""ONNX export with the vireid.* metadata contract, and the ONNX Runtime round-trip check."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from .data import IMAGENET_MEAN, IMAGENET_STD
from .model import RGB, THERMAL, EmbeddingGraph, ReIDNet

OPSET = 17
MODALITY_NAMES = {RGB: "rgb", THERMAL: "thermal"}


def metadata(model: ReIDNet, height: int, width: int, method: str, training_data: str,
             metrics: dict | None, modality: int | None) -> dict[str, str]:
    md = {
        "vireid.input_height": str(height),
        "vireid.input_width": str(width),
        "vireid.mean": ",".join(f"{v:g}" for v in IMAGENET_MEAN),
        "vireid.std": ",".join(f"{v:g}" for v in IMAGENET_STD),
        "vireid.embedding_dim": str(model.embedding_dim),
        "vireid.modality_handling": "per_modality" if model.two_stream else "shared",
        "vireid.method": method,
        "vireid.training_data": training_data,
        "vireid.metrics": json.dumps(metrics or {}, sort_keys=True),
        "vireid.arch": model.arch,
    }
    if modality is not None:
        md["vireid.modality"] = MODALITY_NAMES[modality]
    return md


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


def graph_paths(out: str | Path, two_stream: bool) -> dict[int, Path]:
    """Shared model → OUT; two-stream → OUT with .rgb / .thermal before .onnx."""
    out = Path(out)
    if not two_stream:
        return {RGB: out}
    stem = out.name[:-5] if out.name.endswith(".onnx") else out.name
    return {m: out.with_name(f"{stem}.{name}.onnx") for m, name in MODALITY_NAMES.items()}


def export(model: ReIDNet, out: str | Path, height: int, width: int, method: str, training_data: str,
           metrics: dict | None = None, check: bool = True) -> list[Path]:
    """Writes one graph (shared stem) or one per modality (two-stream). Returns the paths."""
    model.eval()
    written = []
    for modality, path in graph_paths(out, model.two_stream).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        graph = EmbeddingGraph(model, modality).eval()
        dummy = torch.randn(2, 3, height, width)
        torch.onnx.export(graph, (dummy,), str(path), input_names=["images"], output_names=["features"],
                          dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                          opset_version=OPSET, do_constant_folding=True, dynamo=False)
        set_metadata(path, metadata(model, height, width, method, training_data, metrics,
                                    modality if model.two_stream else None))
        onnx.checker.check_model(str(path))
        if check:
            diff = roundtrip_max_abs_diff(model, path, modality, height, width)
            if diff > 1e-4:
                raise RuntimeError(f"{path}: ONNX Runtime differs from PyTorch by {diff:.2e} (> 1e-4)")
        written.append(path)
    return written


def ort_session(path: str | Path, threads: int = 2) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def roundtrip_max_abs_diff(model: ReIDNet, path: str | Path, modality: int, height: int, width: int,
                           batch: int = 3, seed: int = 0) -> float:
    """Max |ORT - PyTorch| over a batch of random inputs (batch differs from the export's 2,
    which also checks the dynamic batch axis)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, height, width, generator=g)
    with torch.no_grad():
        ref = model(x, modality)["bn"].numpy()
    got = ort_session(path).run(None, {"images": x.numpy()})[0]
    return float(np.abs(ref - got).max())
