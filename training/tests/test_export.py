"""ONNX export (real ResNet-50 at a tiny input) and INT8 QDQ quantization round-trips."""
import json

import numpy as np
import onnx
import torch

from vireid_train.export import export, ort_session, read_metadata, roundtrip_max_abs_diff
from vireid_train.model import ReIDNet
from vireid_train.quantize import quantize
from vireid_train.synthetic import render_person
import random


def test_resnet50_export_roundtrip_and_metadata(tmp_path):
    torch.manual_seed(0)
    model = ReIDNet(7, arch="resnet50")
    # A randomly initialised ResNet-50 is numerically ill-conditioned: its residual sums grow
    # with depth and the BNNeck then divides by tiny spreads, so even PyTorch float32 vs float64
    # differ by ~5e-4. Trained ResNets have small residual-branch gains; mimic that (x0.2 on each
    # block's last BN) so the check measures the exporter, not float32 cancellation.
    with torch.no_grad():
        for block in [b for layer in (model.layer1, model.layer2, model.layer3, model.layer4) for b in layer]:
            block.bn3.weight.mul_(0.2)
    # Collect BN statistics from data, as training does, so the features have the scale of a
    # trained model's (an untouched random net outputs values in the hundreds).
    for m in model.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.momentum = None
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, 64, 32))
    model.eval()
    paths = [export(model, tmp_path / "r50.onnx", 64, 32, "baseline", "unit test", {"r1": 1.0})]
    m = onnx.load(str(paths[0]))
    assert m.opset_import[0].version >= 17
    assert m.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    md = read_metadata(paths[0])
    assert md["vireid.input_height"] == "64" and md["vireid.input_width"] == "32"
    assert md["vireid.embedding_dim"] == "2048" and md["vireid.modality_handling"] == "shared"
    assert [float(v) for v in md["vireid.mean"].split(",")] == [0.485, 0.456, 0.406]
    assert [float(v) for v in md["vireid.std"].split(",")] == [0.229, 0.224, 0.225]
    assert md["vireid.method"] == "baseline" and json.loads(md["vireid.metrics"]) == {"r1": 1.0}
    assert md["vireid.precision"] == "fp32"
    # batch 3 (export traced batch 2): dynamic batch and numerics both checked
    assert roundtrip_max_abs_diff(model, paths[0], 64, 32, batch=3) <= 1e-4


def calibration_list(folder, crops: int, people: int, size: tuple[int, int]) -> list[str]:
    """`crops` rendered crops of `people` people, RGB and thermal in turn, listed in
    folder/calib.txt as quantize reads them; returns the list's lines."""
    rng = random.Random(0)
    rows = []
    for i in range(crops):
        thermal = i % 2 == 1
        p = folder / f"c{i}.png"
        render_person(i % people, thermal, rng, size).save(p)
        rows.append(f"{p.name} {'thermal' if thermal else 'rgb'}")
    (folder / "calib.txt").write_text("\n".join(rows) + "\n")
    return rows


def test_quantize_roundtrip_tiny_model(tmp_path):
    torch.manual_seed(0)
    model = ReIDNet(5, arch="resnet10").eval()
    fp32 = export(model, tmp_path / "tiny.onnx", 32, 16, "baseline", "unit test")
    rows = calibration_list(tmp_path, 24, 6, (16, 32))
    int8 = quantize(fp32, tmp_path / "calib.txt", tmp_path / "tiny.int8.onnx")
    q = onnx.load(str(int8))
    ops = {n.op_type for n in q.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    # per-channel weights: some DequantizeLinear has a vector scale
    inits = {t.name: t for t in q.graph.initializer}
    assert any(n.op_type == "DequantizeLinear" and n.input[1] in inits and len(inits[n.input[1]].dims) == 1
               and inits[n.input[1]].dims[0] > 1 for n in q.graph.node)
    # GeM pooling stays float: no quantized activation feeds it
    dq_out = {o for n in q.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    tail = [n for n in q.graph.node if n.name.startswith("/pool/")]
    assert tail and not any(i in dq_out for n in tail for i in n.input)
    md = read_metadata(int8)
    assert md["vireid.quantization_activations"] == "uint8"
    assert md["vireid.quantization"] == "int8-qdq" and md["vireid.precision"] == "int8" and md["vireid.input_height"] == "32"
    # INT8 features stay close to FP32 on in-distribution crops
    from vireid_train.quantize import preprocess
    x = np.concatenate([preprocess(tmp_path / r.split()[0], r.split()[1], md) for r in rows[:8]])
    a = ort_session(fp32).run(None, {"images": x})[0]
    b = ort_session(int8).run(None, {"images": x})[0]
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.mean() > 0.95, cos


def test_quantize_keeps_depthwise_and_image_convolutions_float(tmp_path):
    """MobileNetV2's depthwise convolutions and its stem (the convolution on the image) stay
    float (their weights get no DequantizeLinear); its dense 1×1 convolutions are INT8."""
    torch.manual_seed(0)
    model = ReIDNet(5, arch="mobilenet_v2").eval()
    fp32 = export(model, tmp_path / "mnv2.onnx", 64, 32, "baseline", "unit test")
    calibration_list(tmp_path, 8, 4, (32, 64))
    q = onnx.load(str(quantize(fp32, tmp_path / "calib.txt", tmp_path / "mnv2.int8.onnx")))
    dq_out = {o for n in q.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = [n for n in q.graph.node if n.op_type == "Conv"]
    depthwise = [n for n in convs if any(a.name == "group" and a.i > 1 for a in n.attribute)]
    assert len(depthwise) == 17  # one per inverted-residual block
    stem = convs[0]
    assert stem not in depthwise and not any(n.input[1] in dq_out for n in depthwise + [stem])
    assert sum(n.input[1] in dq_out for n in convs) == len(convs) - len(depthwise) - 1
