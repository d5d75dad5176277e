"""INT8 embedder speed, three ways in one run on the same model and batch.

1. Export a torchvision ResNet-50 (random weights: SPEED ONLY, its features mean
   nothing) as the re-id embedder (fc removed, 2048-d output, input 288x144,
   vireid.* metadata), then quantise it with onnxruntime.quantization static QDQ
   (per-channel weights, calibration on random inputs).
2. Time, at batch B: PyTorch FP32 (eager, CPU), ONNX Runtime's own Python API on
   the INT8 model, and `vireid bench embed` on the same INT8 model.
3. Print one JSON object with the ratios.

usage: embed_bench.py [--batch 16] [--runs 5] [--threads 2] [--workdir target/bench-embed] [--vireid target/release/vireid]
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

H, W, D = 288, 144, 2048


def build_model():
    torch.manual_seed(0)
    m = torchvision.models.resnet50(weights=None)
    m.fc = torch.nn.Identity()
    return m.eval()


def export(model, path):
    x = torch.randn(2, 3, H, W)
    torch.onnx.export(model, x, path, input_names=["input"], output_names=["feature"],
                      dynamic_axes={"input": {0: "N"}, "feature": {0: "N"}}, opset_version=17, dynamo=False)
    add_metadata(path, "fp32")


def add_metadata(path, precision):
    m = onnx.load(path)
    del m.metadata_props[:]
    meta = {
        "vireid.input_height": str(H), "vireid.input_width": str(W),
        "vireid.mean": "0.485,0.456,0.406", "vireid.std": "0.229,0.224,0.225",
        "vireid.embedding_dim": str(D), "vireid.modality_handling": "shared",
        "vireid.method": "resnet50-random-weights (speed benchmark only)",
        "vireid.training_data": "none", "vireid.precision": precision,
    }
    for k, v in meta.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.save(m, path)


class RandomReader(CalibrationDataReader):
    def __init__(self, n=8):
        rng = np.random.default_rng(0)
        self.data = iter([{"input": rng.standard_normal((1, 3, H, W), dtype=np.float32)} for _ in range(n)])

    def get_next(self):
        return next(self.data, None)


def timed(fn, runs):
    fn(); fn()  # warm-up
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main():
    global H, W
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="target/bench-embed")
    ap.add_argument("--vireid", default="target/release/vireid")
    ap.add_argument("--size", default=f"{H}x{W}", help="input HxW (the default model uses 64x32)")
    a = ap.parse_args()
    try:
        H, W = (int(v) for v in a.size.lower().split("x"))
    except ValueError:
        sys.exit(f"--size {a.size!r}: expected HxW, e.g. 288x144")
    os.makedirs(a.workdir, exist_ok=True)
    fp32 = os.path.join(a.workdir, f"resnet50_{H}x{W}_fp32.onnx")
    pre = os.path.join(a.workdir, f"resnet50_{H}x{W}_pre.onnx")
    int8 = os.path.join(a.workdir, f"resnet50_{H}x{W}_int8.onnx")
    model = build_model()
    if not os.path.exists(int8):
        export(model, fp32)
        quant_pre_process(fp32, pre)
        quantize_static(pre, int8, RandomReader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        add_metadata(int8, "int8")

    torch.set_num_threads(a.threads)
    x = torch.randn(a.batch, 3, H, W)
    with torch.inference_mode():
        t_torch = timed(lambda: model(x), a.runs)

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    sess = ort.InferenceSession(int8, so, providers=["CPUExecutionProvider"])
    xn = x.numpy()
    t_ort = timed(lambda: sess.run(None, {"input": xn}), a.runs)

    env = dict(os.environ)
    out = subprocess.run([a.vireid, "--log", "warn", "bench", "embed", "--model", int8, "--batch", str(a.batch),
                          "--runs", str(a.runs), "--crop", f"{W}x{H}"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"vireid bench embed failed: {out.stderr}")
    v = json.loads(out.stdout.strip().splitlines()[-1])
    t_vireid = v["median_batch_ms"] / 1e3
    print(json.dumps({
        "input": f"{H}x{W}", "batch": a.batch, "threads": a.threads, "runs": a.runs,
        "torch_fp32_ms": t_torch * 1e3, "ort_python_int8_ms": t_ort * 1e3, "vireid_int8_ms": t_vireid * 1e3,
        "vireid_crops_per_s": a.batch / t_vireid,
        "speedup_vs_torch_fp32": t_torch / t_vireid,
        "ratio_vs_ort_python": t_ort / t_vireid,
    }, indent=1))


if __name__ == "__main__":
    main()
