"""Moving checkpoints through narrow doors.

The GPU machine (training/device/README.md) sends back at most 8 files of 16 MiB, and it
receives the working tree in at most 64 MiB, of which the deployed INT8 model already takes
23. So a checkpoint travels in two forms:

- **bf16 parts** (`pack_parts` / `unpack_parts`): what the GPU job writes to `$OUT`. The model
  (and method) state in bfloat16 — the precision the network was trained in under autocast —
  serialised once and cut into parts of at most 15 MiB; `finish.sh` reassembles them here. The
  optimiser state is left behind (it is as large as the model again); a continued run starts
  its optimiser afresh, with its warm-up.
- **int8 continuation** (`pack_int8` / `unpack_int8`): what stays in git so that GPU windows
  add up. Every weight matrix and convolution kernel is stored at 8 bits per output channel
  (symmetric, scale = max|w|/127, the grid the deployed INT8 model puts its weights on: a
  rounding error of about 1 % of a channel's spread, below the noise of one SGD step), the
  rest (BN statistics, GeM p, biases) in float32. About a quarter of the float32 size.

Both unpack to an ordinary `last.pt`-style checkpoint (float32) that `export`,
`--init-checkpoint` and `evaluate` read.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

PART_BYTES = 15 * 1024 * 1024
PART_GLOB = "ckpt.bf16.part*"
INT8_FORMAT = "vireid-int8-v1"
BF16_FORMAT = "vireid-bf16-v1"
# Weights smaller than this stay float32: quantizing them saves nothing and stems are sensitive.
INT8_MIN_NUMEL = 1024


def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist (train writes <out_dir>/last.pt)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # truncated or foreign file: zip, pickle or torch errors
        raise ValueError(f"{path}: cannot be read as a checkpoint ({err})") from err
    if not isinstance(ck, dict) or "model" not in ck or "config" not in ck:
        raise ValueError(f"{path}: not a vireid_train checkpoint (no 'model'/'config' entries)")
    return ck


def _portable(ck: dict) -> dict:
    """What travels: weights and what is needed to rebuild the network, not the optimiser."""
    keep = {k: ck[k] for k in ("config", "num_classes", "epoch") if k in ck}
    keep["model"] = ck["model"]
    keep["method"] = ck.get("method", {})
    keep["provenance"] = ck.get("provenance", {})
    return keep


def _cast_floats(state: dict, dtype: torch.dtype) -> dict:
    return {k: (v.to(dtype) if torch.is_floating_point(v) else v) for k, v in state.items()}


def pack_parts(checkpoint: str | Path, out_dir: str | Path, part_bytes: int = PART_BYTES) -> dict:
    """Writes `out_dir/ckpt.bf16.partNN` and returns a manifest (parts, sizes, sha256) for
    the job's metrics JSON."""
    ck = _portable(_load(checkpoint))
    ck["model"] = _cast_floats(ck["model"], torch.bfloat16)
    ck["method"] = _cast_floats(ck["method"], torch.bfloat16)
    ck["format"] = BF16_FORMAT
    buf = io.BytesIO()
    torch.save(ck, buf)
    blob = buf.getvalue()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(PART_GLOB):
        old.unlink()
    parts = []
    for i in range(0, len(blob), part_bytes):
        name = f"ckpt.bf16.part{i // part_bytes:02d}"
        (out_dir / name).write_bytes(blob[i:i + part_bytes])
        parts.append(name)
    return {"format": BF16_FORMAT, "parts": parts, "bytes": len(blob),
            "sha256": hashlib.sha256(blob).hexdigest()}


def unpack_parts(parts_dir: str | Path, out: str | Path, manifest: dict | None = None) -> Path:
    """Reassembles the parts in `parts_dir` into a float32 checkpoint at `out`. With a
    manifest (the job's metrics JSON "checkpoint" entry), the part list and checksum are
    checked, so a missing or truncated part is named instead of failing deep in torch.load."""
    parts_dir = Path(parts_dir)
    found = sorted(p.name for p in parts_dir.glob(PART_GLOB))
    if not found:
        raise FileNotFoundError(f"{parts_dir}: no {PART_GLOB} files (the GPU job writes them to $OUT)")
    if manifest:
        missing = [p for p in manifest["parts"] if p not in found]
        if missing:
            raise FileNotFoundError(f"{parts_dir}: checkpoint parts {missing} missing; bring back every file of the run")
        found = list(manifest["parts"])
    blob = b"".join((parts_dir / p).read_bytes() for p in found)
    if manifest and hashlib.sha256(blob).hexdigest() != manifest["sha256"]:
        raise ValueError(f"{parts_dir}: the checkpoint parts do not match their checksum "
                         f"({len(blob)} bytes, expected {manifest['bytes']}): a part is truncated or from another run")
    try:
        ck = torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"{parts_dir}: the parts {found} do not form a checkpoint ({err})") from err
    if ck.get("format") != BF16_FORMAT:
        raise ValueError(f"{parts_dir}: parts hold {ck.get('format')!r}, expected {BF16_FORMAT}")
    ck["model"] = _cast_floats(ck["model"], torch.float32)
    ck["method"] = _cast_floats(ck["method"], torch.float32)
    del ck["format"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, out)
    return out


def _quantize(t: torch.Tensor) -> dict:
    flat = t.float().reshape(t.shape[0], -1)
    scale = flat.abs().amax(dim=1).clamp(min=1e-12) / 127.0
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8)
    return {"q": q.reshape(t.shape), "scale": scale}


def _dequantize(entry: dict) -> torch.Tensor:
    q = entry["q"]
    return (q.float().reshape(q.shape[0], -1) * entry["scale"][:, None]).reshape(q.shape)


def _int8_state(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        if torch.is_floating_point(v) and v.dim() >= 2 and v.numel() >= INT8_MIN_NUMEL:
            out[k] = _quantize(v)
        else:
            out[k] = v.float() if torch.is_floating_point(v) else v
    return out


def _float_state(state: dict) -> dict:
    return {k: (_dequantize(v) if isinstance(v, dict) else v) for k, v in state.items()}


def pack_int8(checkpoint: str | Path, out: str | Path, provenance: dict | None = None) -> Path:
    """The continuation checkpoint kept in git (see the module doc)."""
    ck = _portable(_load(checkpoint))
    if provenance:
        ck["provenance"] = {**ck.get("provenance", {}), **provenance}
    ck["model"] = _int8_state(ck["model"])
    ck["method"] = _int8_state(ck["method"])
    ck["format"] = INT8_FORMAT
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, out)
    return out


def unpack_int8(path: str | Path, out: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"continuation checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:
        raise ValueError(f"{path}: cannot be read as a checkpoint ({err})") from err
    if not isinstance(ck, dict) or ck.get("format") != INT8_FORMAT:
        raise ValueError(f"{path}: not a {INT8_FORMAT} continuation checkpoint (make one with `pack --int8`)")
    ck["model"] = _float_state(ck["model"])
    ck["method"] = _float_state(ck["method"])
    del ck["format"]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, out)
    return out


def read_manifest(metrics_json: str | Path) -> dict | None:
    p = Path(metrics_json)
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text()).get("checkpoint")
    except json.JSONDecodeError as err:
        raise ValueError(f"{p}: not valid JSON ({err})") from err
