"""The pieces of the one-shot GPU job (training/device/run.sh) that are Python.

    python -m vireid_train.device probe --out probe.json            what the machine has
    python -m vireid_train.device all-ids --root DIR [--trial 1]    train on every identity of DIR
    python -m vireid_train.device merge --out DIR ROOT:train ROOT:test …   one training root of several
    python -m vireid_train.device night-day --root SCENE_CROPS --out DIR   night thermal vs day visible
    python -m vireid_train.device pack --checkpoint last.pt --out-dir $OUT
    python -m vireid_train.device unpack --parts-dir DIR --out last.pt
    python -m vireid_train.device int8 --checkpoint last.pt --out resume.int8.pt [--gpu-seconds S]
    python -m vireid_train.device unint8 --checkpoint resume.int8.pt --out last.pt
    python -m vireid_train.device retrievals --checkpoint last.pt --root EVAL --out r.png
    python -m vireid_train.device report --out $OUT/metrics.json --part k=FILE.json …
    python -m vireid_train.device card --metrics M.json --eval-fp32 R.json --eval-int8 R.json --out card.md

Nothing here downloads anything: `probe` only looks for ImageNet ResNet-50 weights that are
already on the machine (PyTorch hub and Hugging Face caches).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from . import pack

# Where PyTorch hub and Hugging Face keep downloaded weights, and what licence each
# source publishes its ResNet-50 weights under (the ImageNet terms of use apply to the
# training images in every case).
_HUB_DIRS = [
    ("torchvision", lambda: Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints",
     "BSD-3-Clause (torchvision)"),
    ("huggingface", lambda: Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface")) / "hub",
     "Apache-2.0 (timm) or as its model card says"),
]


def find_pretrained() -> list[dict]:
    """ImageNet ResNet-50 weight files already on this machine, with their likely licence."""
    found = []
    for source, where, licence in _HUB_DIRS:
        root = where()
        if not root.is_dir():
            continue
        for f in sorted(root.rglob("*")):
            name = str(f.relative_to(root)).lower()
            if f.is_file() and "resnet50" in name.replace("-", "").replace("_", "") \
                    and f.suffix in (".pth", ".pt", ".bin", ".safetensors"):
                found.append({"path": str(f), "source": source, "licence": licence, "bytes": f.stat().st_size})
    return found


def as_torchvision_state(path: str, out: str) -> str:
    """timm and torchvision name ResNet-50 parameters alike (conv1, bn1, layer1…, fc);
    safetensors files are converted to a .pth state dict that `--init-weights` reads."""
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        state = load_file(path)
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    if "layer4.2.conv3.weight" not in state:
        raise ValueError(f"{path}: not a torchvision/timm ResNet-50 state dict (no layer4.2.conv3.weight)")
    torch.save(state, out)
    return out


def probe() -> dict:
    info = {"python": platform.python_version(), "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(), "cpus": os.cpu_count(),
            "pretrained_resnet50": find_pretrained()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update({"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1),
                     "gpu_capability": f"{p.major}.{p.minor}", "cuda": torch.version.cuda})
    return info


def all_ids(root: str | Path, trial: int = 1) -> int:
    """Makes trial `trial`'s training lists of a RegDB-layout set hold every identity (its
    train and test lists, relabelled 0..C-1), for a set rendered only to train on: the job
    evaluates on another population (another seed), so no identity is wasted on a test split.
    The original lists are kept as *.orig. Returns the number of identities."""
    idx = Path(root) / "idx"
    for mod in ("visible", "thermal"):
        if not (idx / f"train_{mod}_{trial}.txt").is_file():
            raise FileNotFoundError(f"{idx}: no train_{mod}_{trial}.txt; render the set with `vireid synth regdb`")
    labels: dict[str, int] = {}
    for mod in ("visible", "thermal"):
        lines = []
        for split in ("train", "test"):
            f = idx / f"{split}_{mod}_{trial}.txt"
            orig = f.with_suffix(".txt.orig")
            if not orig.exists():
                f.rename(orig)
            for line in orig.read_text().splitlines():
                if line.strip():
                    lines.append(line.split()[0])
        out = []
        for rel in lines:
            person = rel.split("/")[1]  # Visible/<id>/… and Thermal/<id>/… name the same person
            labels.setdefault(person, len(labels))
            out.append(f"{rel} {labels[person]}")
        (idx / f"train_{mod}_{trial}.txt").write_text("\n".join(out) + "\n")
        # the test lists stay as they were (now a subset of training: not an evaluation set)
        (idx / f"test_{mod}_{trial}.txt").write_text((idx / f"test_{mod}_{trial}.txt.orig").read_text())
    return len(labels)


def merge(out: str | Path, sources: list[str], trial: int = 1) -> dict:
    """One RegDB-layout training root out of several (`ROOT:train` or `ROOT:test` = which of
    its trial lists to take): the studio set and the scene-crop sets of the job. Each source's
    identity folders are linked under new global numbers (`Visible/<n>` → ROOT/Visible/<id>),
    labels are renumbered, and attributes.csv rows follow their identity (-1 = not applicable
    where a source has none, e.g. scene crops). Returns counts per source."""
    out = Path(out)
    for sub in ("Visible", "Thermal", "idx"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {"visible": [], "thermal": []}
    attr_header, attr_rows, counts = None, {}, {}
    gid_of: dict[tuple[int, str], int] = {}
    for k, spec in enumerate(sources):
        root_s, _, split = spec.rpartition(":")
        if split not in ("train", "test") or not root_s:
            raise ValueError(f"merge source {spec!r}: expected ROOT:train or ROOT:test")
        root = Path(root_s).resolve()
        attrs = {}
        if (root / "attributes.csv").is_file():
            from .data import read_attributes_csv
            names, classes, attrs = read_attributes_csv(root / "attributes.csv")
            header = "id," + ",".join(f"{n}:{c}" for n, c in zip(names, classes))
            if attr_header not in (None, header):
                raise ValueError(f"{root}/attributes.csv: columns differ from an earlier source's ({header})")
            attr_header = header
        n_images = 0
        for mod, folder in (("visible", "Visible"), ("thermal", "Thermal")):
            f = root / "idx" / f"{split}_{mod}_{trial}.txt"
            if not f.is_file():
                raise FileNotFoundError(f"merge source {spec!r}: {f} does not exist")
            for line in f.read_text().splitlines():
                if not line.strip():
                    continue
                rel = line.split()[0]
                parts = rel.split("/")
                if len(parts) != 3 or parts[0] != folder:
                    raise ValueError(f"{f}: {rel!r} is not {folder}/<id>/<file>")
                gid = gid_of.setdefault((k, parts[1]), len(gid_of) + 1)
                link = out / folder / str(gid)
                if not link.exists():
                    link.symlink_to(root / folder / parts[1], target_is_directory=True)
                lists[mod].append(f"{folder}/{gid}/{parts[2]} {gid - 1}")
                n_images += 1
                try:
                    attr_rows.setdefault(gid, attrs.get(int(parts[1])))
                except ValueError:
                    attr_rows.setdefault(gid, None)
        counts[spec] = {"images": n_images, "identities": sum(1 for (kk, _) in gid_of if kk == k)}
    for mod, lines in lists.items():
        (out / "idx" / f"train_{mod}_{trial}.txt").write_text("\n".join(lines) + "\n")
        (out / "idx" / f"test_{mod}_{trial}.txt").write_text("")
    if attr_header:
        width = attr_header.count(",")
        rows = [f"{gid}," + ",".join(str(v) for v in (vals if vals else [-1] * width)) for gid, vals in sorted(attr_rows.items())]
        (out / "attributes.csv").write_text(attr_header + "\n" + "\n".join(rows) + "\n")
    return counts


def night_day(root: str | Path, out: str | Path, trial: int = 1) -> tuple[int, int]:
    """The product's question on scene crops (`vireid synth scene --crops`): night thermal
    queries against day visible crops. Writes a view of ROOT at OUT whose trial lists keep only
    those lines (with all crops a thermal query finds the visible crop of the same instant, same
    pose and place, and R1 is inflated). Returns (queries, gallery)."""
    root, out = Path(root).resolve(), Path(out)
    (out / "idx").mkdir(parents=True, exist_ok=True)
    counts = []
    for mod, folder, keep in (("thermal", "Thermal", "night_"), ("visible", "Visible", "day_")):
        src = root / "idx" / f"test_{mod}_{trial}.txt"
        if not src.is_file():
            raise FileNotFoundError(f"{src} does not exist: give a folder written by `vireid synth scene --crops`")
        lines = [ln for ln in src.read_text().splitlines() if ln.strip() and Path(ln.split()[0]).name.startswith(keep)]
        if not lines:
            raise ValueError(f"{src}: no {keep}* crops; is it a day/night scene's crop folder?")
        (out / "idx" / f"test_{mod}_{trial}.txt").write_text("\n".join(lines) + "\n")
        link = out / folder
        if not link.exists():
            link.symlink_to(root / folder, target_is_directory=True)
        counts.append(len(lines))
    return counts[0], counts[1]


def retrievals(checkpoint: str, root: str, out: str, queries: int = 8, top: int = 5, trial: int = 1) -> dict:
    """A picture of what the model does: thermal queries of unseen people (left) and their
    top visible matches, green when the same person, red when not."""
    from PIL import Image, ImageDraw

    from .data import eval_transform, load_image, load_test
    from .train import load_checkpoint

    model, ck = load_checkpoint(checkpoint)
    h, w = ck["config"]["data"]["height"], ck["config"]["data"]["width"]
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = model.to(dev)
    thermal, visible = load_test("regdb", root, trial)
    seen, qs = set(), []
    for s in thermal:
        if s.label not in seen:
            seen.add(s.label)
            qs.append(s)
        if len(qs) == queries:
            break
    tf = eval_transform(h, w)

    def embed(samples, modality):
        feats = []
        with torch.no_grad():
            for i in range(0, len(samples), 64):
                x = torch.stack([tf(load_image(s.path, s.modality)) for s in samples[i:i + 64]]).to(dev)
                feats.append(torch.nn.functional.normalize(model(x, modality)["bn"].float(), dim=1).cpu())
        return torch.cat(feats)

    g = embed(visible, 0)
    q = embed(qs, 1)
    sim = q @ g.t()
    best = sim.topk(top, dim=1).indices
    cell_w, cell_h, pad = 64, 128, 6
    sheet = Image.new("RGB", ((top + 1) * (cell_w + pad) + pad + 8, len(qs) * (cell_h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    hits = 0
    for r, s in enumerate(qs):
        y = pad + r * (cell_h + pad)
        sheet.paste(load_image(s.path, 1).resize((cell_w, cell_h)), (pad, y))
        for c, j in enumerate(best[r].tolist()):
            x = pad + 8 + (c + 1) * (cell_w + pad)
            ok = visible[j].label == s.label
            hits += ok and c == 0
            draw.rectangle([x - 3, y - 3, x + cell_w + 2, y + cell_h + 2], fill=(40, 170, 60) if ok else (200, 40, 40))
            sheet.paste(load_image(visible[j].path, 0).resize((cell_w, cell_h)), (x, y))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return {"retrievals_png": Path(out).name, "queries": len(qs), "rank1_hits": int(hits)}


def report(out: str, parts: list[str]) -> dict:
    """Merges named JSON files (`name=path`) and timings into one metrics JSON."""
    merged: dict = {"written_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for item in parts:
        name, _, path = item.partition("=")
        p = Path(path)
        merged[name] = json.loads(p.read_text()) if p.is_file() else {"missing": path}
    Path(out).write_text(json.dumps(merged, indent=2) + "\n")
    return merged


def _pct(report: dict) -> dict:
    m = report["mean"]
    return {"R1": 100 * m["cmc"][0], "R10": 100 * m["cmc"][min(9, len(m["cmc"]) - 1)],
            "mAP": 100 * m["mAP"], "mINP": 100 * m["mINP"]}


def card(metrics_json: str, eval_fp32: str, eval_int8: str, out: str, scene_fp32: str = "", scene_int8: str = "") -> str:
    """The model card of a GPU-trained default model: what it was trained on and how, where,
    and what `vireid eval` measured on people nobody trained or evaluated on."""
    m = json.loads(Path(metrics_json).read_text())
    f32, i8 = (_pct(json.loads(Path(p).read_text())) for p in (eval_fp32, eval_int8))
    job, probe_, train = m.get("job", {}), m.get("probe", {}), m.get("train", {})
    rows = "\n".join(f"| {name} | {r['R1']:.2f} | {r['R10']:.2f} | {r['mAP']:.2f} | {r['mINP']:.2f} |"
                     for name, r in (("FP32", f32), ("INT8 Q/DQ", i8)))
    scene_rows = ""
    if scene_fp32 and scene_int8:
        s32, s8 = (_pct(json.loads(Path(p).read_text())) for p in (scene_fp32, scene_int8))
        scene_rows = "\n".join(f"| {name} | {r['R1']:.2f} | {r['R10']:.2f} | {r['mAP']:.2f} | {r['mINP']:.2f} |"
                               for name, r in (("FP32", s32), ("INT8 Q/DQ", s8)))
        scene_rows = f"""
Night thermal → day visible on the crops of an unseen day/night scene (`vireid synth scene --seed 8001
--seconds 90 --people 20 --crops`, then `python -m vireid_train.device night-day`): the question the
product asks at night. Same command with `--root out/device-finish/scene-nd`:

| model | R1 | R10 | mAP | mINP |
| --- | ---: | ---: | ---: | ---: |
{scene_rows}
"""
    text = f"""# Model card: `vireid_default` (GPU-trained, synthetic data)

| file | what |
| --- | --- |
| `vireid_default.onnx` | INT8 Q/DQ (what vireid loads by default) |
| `vireid_default.fp32.onnx` | FP32, not in git: `training/device/finish.sh FILES --install` rebuilds it from the job's checkpoint |
| `training/device/resume.int8.pt` | the continuation checkpoint (weights at 8 bits per channel); the next GPU job continues it |

## Where and how it was trained

- Machine: {probe_.get('gpu', 'no GPU')} ({probe_.get('gpu_memory_gib', '?')} GiB), torch {probe_.get('torch', '?')},
  CUDA {probe_.get('cuda', '?')}; job wall time {job.get('wall_s', '?')} s, training budget {job.get('budget_s', '?')} s
  (`training/device/run.sh`, log in the job's `run.log`).
- Data: {job.get('train_ids', '?')} synthetic people x {job.get('train_images', '?')} images per sensor (visible + thermal),
  RegDB layout, {job.get('width', '?')}x{job.get('height', '?')}, `vireid synth regdb --seed 101`; every identity trains;
  plus the person crops of {job.get('scenes', 0)} rendered day/night scenes (`vireid synth scene --crops`, seeds 7001..).
- Start: {job.get('init', 'see run.log')}. ImageNet weights on the machine: {len(probe_.get('pretrained_resnet50', []))} file(s)
  {', '.join(f"{p['path']} ({p['licence']})" for p in probe_.get('pretrained_resnet50', [])) or ''}.
- Recipe: `training/device/gpu.toml` (method {train.get('method', '?')}, test feature {train.get('test_feature', '?')},
  {train.get('epochs_run', '?')} epochs of {train.get('batches_per_epoch', '?')} batches in {train.get('train_seconds', '?')} s).

## Measured

Thermal → visible on 100 synthetic people nobody trained or evaluated on (`vireid synth regdb --ids 200
--seed 303`, trial 1's test half), all thermal crops as queries against all visible crops:
`vireid eval dataset --protocol regdb --direction t2v --trials 1 --root out/device-finish/eval --model M`
(percentages):

| model | R1 | R10 | mAP | mINP |
| --- | ---: | ---: | ---: | ---: |
{rows}

INT8 − FP32: ΔmAP {i8['mAP'] - f32['mAP']:+.2f} (target: within 1.0). The job's own evaluation on its
held-out population (seed 202): {json.dumps({k: train.get(k) for k in ('r1', 'mAP', 'mINP') if k in train})}.
{scene_rows}"""
    Path(out).write_text(text)
    return text


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m vireid_train.device", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("probe"); p.add_argument("--out", required=True)
    p = sub.add_parser("imagenet", help="convert a found ResNet-50 weight file for --init-weights")
    p.add_argument("--weights", required=True); p.add_argument("--out", required=True)
    p = sub.add_parser("all-ids"); p.add_argument("--root", required=True); p.add_argument("--trial", type=int, default=1)
    p = sub.add_parser("merge", help="one training root out of ROOT:train|test sources")
    p.add_argument("--out", required=True); p.add_argument("sources", nargs="+")
    p = sub.add_parser("night-day", help="a view of a scene-crop set: night thermal queries, day visible gallery")
    p.add_argument("--root", required=True); p.add_argument("--out", required=True)
    p = sub.add_parser("pack"); p.add_argument("--checkpoint", required=True); p.add_argument("--out-dir", required=True)
    p.add_argument("--manifest", help="also write the manifest JSON here")
    p = sub.add_parser("unpack"); p.add_argument("--parts-dir", required=True); p.add_argument("--out", required=True)
    p.add_argument("--metrics", help="the job's metrics JSON (checks parts and checksum)")
    p = sub.add_parser("int8"); p.add_argument("--checkpoint", required=True); p.add_argument("--out", required=True)
    p.add_argument("--provenance", default="{}", help="JSON merged into the checkpoint's provenance")
    p = sub.add_parser("unint8"); p.add_argument("--checkpoint", required=True); p.add_argument("--out", required=True)
    p = sub.add_parser("retrievals"); p.add_argument("--checkpoint", required=True); p.add_argument("--root", required=True)
    p.add_argument("--out", required=True); p.add_argument("--json")
    p = sub.add_parser("report"); p.add_argument("--out", required=True); p.add_argument("--part", action="append", default=[])
    p = sub.add_parser("card"); p.add_argument("--metrics", required=True); p.add_argument("--eval-fp32", required=True)
    p.add_argument("--eval-int8", required=True); p.add_argument("--out", required=True)
    p.add_argument("--scene-fp32", default=""); p.add_argument("--scene-int8", default="")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "probe":
            info = probe()
            Path(a.out).write_text(json.dumps(info, indent=2) + "\n")
            print(json.dumps(info))
        elif a.cmd == "imagenet":
            print(as_torchvision_state(a.weights, a.out))
        elif a.cmd == "all-ids":
            print(f"all-ids: {all_ids(a.root, a.trial)} identities in the training lists of {a.root}")
        elif a.cmd == "merge":
            for spec, c in merge(a.out, a.sources).items():
                print(f"merge: {spec}: {c['identities']} identities, {c['images']} images")
        elif a.cmd == "night-day":
            q, g = night_day(a.root, a.out)
            print(f"night-day: {q} night thermal queries, {g} day visible gallery crops in {a.out}")
        elif a.cmd == "pack":
            m = pack.pack_parts(a.checkpoint, a.out_dir)
            if a.manifest:
                Path(a.manifest).write_text(json.dumps(m, indent=2) + "\n")
            print(f"pack: {len(m['parts'])} parts, {m['bytes'] / 2**20:.1f} MiB, sha256 {m['sha256'][:12]}…")
        elif a.cmd == "unpack":
            manifest = pack.read_manifest(a.metrics) if a.metrics else None
            print(f"unpack: {pack.unpack_parts(a.parts_dir, a.out, manifest)}")
        elif a.cmd == "int8":
            out = pack.pack_int8(a.checkpoint, a.out, json.loads(a.provenance))
            print(f"int8: {out} ({out.stat().st_size / 2**20:.1f} MiB)")
        elif a.cmd == "unint8":
            print(f"unint8: {pack.unpack_int8(a.checkpoint, a.out)}")
        elif a.cmd == "retrievals":
            r = retrievals(a.checkpoint, a.root, a.out)
            if a.json:
                Path(a.json).write_text(json.dumps(r) + "\n")
            print(f"retrievals: {r}")
        elif a.cmd == "report":
            report(a.out, a.part)
        elif a.cmd == "card":
            card(a.metrics, a.eval_fp32, a.eval_int8, a.out, a.scene_fp32, a.scene_int8)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
