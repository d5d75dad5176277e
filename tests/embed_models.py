"""Writes tiny ONNX embedding models for the Rust embed tests (tests/embed_eval/embed_onnx.rs).

Graph: image [N,3,H,W] -> GlobalAveragePool -> Flatten -> MatMul W[3,8] -> [N,8]
with W chosen so the output is [r, g, b, r, g, b, 0, 0] of the pooled, normalised
input: the tests can predict every feature exactly. The per-modality variant adds
10 * modality[n] to the last component (a stand-in for a second stem).

usage: embed_models.py OUT_DIR
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

H, W, D = 32, 16, 8
META = {
    "vireid.input_height": str(H),
    "vireid.input_width": str(W),
    "vireid.mean": "0.5,0.5,0.5",
    "vireid.std": "0.5,0.5,0.5",
    "vireid.embedding_dim": str(D),
    "vireid.method": "tiny-test",
    "vireid.training_data": "none (test fixture)",
}


def build(per_modality=False, channels=3, meta=True):
    w = np.zeros((channels, D), dtype=np.float32)
    for c in range(min(channels, 3)):
        w[c, c] = 1.0
        w[c, c + 3] = 1.0
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", channels, H, W])]
    nodes = [
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
    ]
    inits = [numpy_helper.from_array(w, "W")]
    if per_modality:
        inputs.append(helper.make_tensor_value_info("modality", TensorProto.FLOAT, ["N"]))
        e = np.zeros((1, D), dtype=np.float32)
        e[0, D - 1] = 10.0
        inits += [numpy_helper.from_array(e, "E"), numpy_helper.from_array(np.array([1], dtype=np.int64), "ax")]
        nodes += [
            helper.make_node("MatMul", ["flat", "W"], ["proj"]),
            helper.make_node("Unsqueeze", ["modality", "ax"], ["m2"]),
            helper.make_node("Mul", ["m2", "E"], ["shift"]),
            helper.make_node("Add", ["proj", "shift"], ["feature"]),
        ]
    else:
        nodes.append(helper.make_node("MatMul", ["flat", "W"], ["feature"]))
    out = helper.make_tensor_value_info("feature", TensorProto.FLOAT, ["N", D])
    graph = helper.make_graph(nodes, "tiny_embedder", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta:
        props = dict(META)
        props["vireid.modality_handling"] = "per_modality" if per_modality else "shared"
        for k, v in props.items():
            p = model.metadata_props.add()
            p.key, p.value = k, v
    onnx.checker.check_model(model)
    return model


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    onnx.save(build(), os.path.join(out, "tiny.onnx"))
    onnx.save(build(meta=False), os.path.join(out, "tiny_nometa.onnx"))
    onnx.save(build(per_modality=True), os.path.join(out, "tiny_two_stream.onnx"))
    onnx.save(build(channels=1), os.path.join(out, "tiny_wrong_shape.onnx"))
    data = open(os.path.join(out, "tiny.onnx"), "rb").read()
    open(os.path.join(out, "tiny_truncated.onnx"), "wb").write(data[: len(data) // 2])


if __name__ == "__main__":
    main()
