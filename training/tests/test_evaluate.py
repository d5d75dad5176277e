"""Ranking metrics against hand-computed values, the protocol rules of `vireid eval`
(src/eval/metrics.rs), and agreement with the Rust evaluator on the same distance matrix."""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from vireid_train.evaluate import protocol_metrics, rank_metrics


def test_rank_metrics_hand_values():
    # query 0 (id 1): ranking g0(id 2) g1(id 1) g2(id 1) -> first hit at rank 2;
    #   AP = (1/2 + 2/3)/2 = 7/12; INP = 2 matches / rank 3 of the last = 2/3
    # query 1 (id 2): ranking g0(id 2) first -> AP 1, INP 1
    dist = np.array([[0.1, 0.2, 0.3], [0.1, 0.5, 0.6]])
    m = rank_metrics(dist, [1, 2], [2, 1, 1], [3, 6], [1, 4, 5], sysu=True)
    assert m["r1"] == pytest.approx(50.0)
    assert m["r5"] == pytest.approx(100.0)
    assert m["mAP"] == pytest.approx(100 * (7 / 12 + 1) / 2)
    assert m["mINP"] == pytest.approx(100 * (2 / 3 + 1) / 2)


def test_sysu_ignores_cam2_gallery_for_cam3_queries():
    dist = np.array([[0.1, 0.2]])
    # the only closer true match is from cam 2 and the query from cam 3: it is ignored
    m = rank_metrics(dist, [1], [1, 1], [3], [2, 4], sysu=True)
    assert m["r1"] == pytest.approx(100.0) and m["mAP"] == pytest.approx(100.0)
    dist = np.array([[0.1, 0.2, 0.3]])
    m = rank_metrics(dist, [1], [1, 5, 1], [3], [2, 1, 4], sysu=True)
    assert m["r1"] == pytest.approx(0.0) and m["mAP"] == pytest.approx(50.0)
    # the same query from cam 6 keeps the cam-2 match
    m = rank_metrics(dist, [1], [1, 5, 1], [6], [2, 1, 4], sysu=True)
    assert m["r1"] == pytest.approx(100.0)


# ---------------------------------------------------------------- the rules of src/eval/metrics.rs

def test_dedup_cmc_for_sysu_and_llcm_plain_for_regdb():
    # ranking id2, id2, id2, id1: plain rank 4, deduplicated rank 2; AP/INP on the full ranking
    dist = np.array([[0.1, 0.2, 0.3, 0.4]])
    sysu = protocol_metrics(dist, [1], [6], [2, 2, 2, 1], [1, 1, 1, 1], "sysu")
    regdb = protocol_metrics(dist, [1], [6], [2, 2, 2, 1], [1, 1, 1, 1], "regdb")
    assert list(sysu["cmc"]) == [0.0, 1.0, 1.0, 1.0] and list(regdb["cmc"]) == [0.0, 0.0, 0.0, 1.0]
    assert sysu["mAP"] == pytest.approx(0.25) and regdb["mAP"] == pytest.approx(0.25)
    assert sysu["mINP"] == pytest.approx(0.25)


def test_sysu_cam3_query_ignores_every_cam2_item_not_only_its_own_id():
    # gallery id1@cam2 (closest), id2@cam2, id1@cam1, id2@cam4; the cam-3 query keeps only
    # [id2@cam4 (0.3), id1@cam1 (0.4)]: rank 2, AP 1/2 (the reference rule drops id2@cam2 too)
    dist = np.array([[0.1, 0.2, 0.4, 0.3]])
    m = protocol_metrics(dist, [1], [3], [1, 2, 1, 2], [2, 2, 1, 4], "sysu")
    assert list(m["cmc"]) == [0.0, 1.0, 1.0, 1.0] and m["mAP"] == pytest.approx(0.5)


def test_llcm_rule_ties_short_gallery_and_errors():
    # LLCM: the same identity in the query's camera is ignored
    m = protocol_metrics(np.array([[0.1, 0.2, 0.3]]), [1], [2], [1, 3, 1], [2, 2, 5], "llcm")
    assert list(m["cmc"]) == [0.0, 1.0, 1.0] and m["mAP"] == pytest.approx(0.5)
    # equal distances: gallery order decides (stable sort)
    m = protocol_metrics(np.array([[0.5, 0.5, 0.5]]), [1], [1], [2, 1, 1], [2, 2, 2], "regdb")
    assert list(m["cmc"]) == [0.0, 1.0, 1.0] and m["mAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # gallery of 5: rank 10 and 20 are the last CMC entry
    r = rank_metrics(np.arange(5.0)[None], [4], [0, 1, 2, 3, 4], [1], [2] * 5, protocol="regdb")
    assert r["r1"] == 0.0 and r["r5"] == r["r10"] == r["r20"] == 100.0
    with pytest.raises(ValueError, match="NaN at row 0, column 1"):
        protocol_metrics(np.array([[0.1, np.nan]]), [1], [1], [1, 2], [1, 1], "regdb")
    with pytest.raises(ValueError, match="no valid query"):
        protocol_metrics(np.array([[0.1, 0.2]]), [5], [3], [1, 2], [1, 2], "sysu")
    with pytest.raises(ValueError, match="rows must be queries"):
        protocol_metrics(np.array([[0.1, 0.2]]), [1], [1], [1], [1], "regdb")


def _vireid_binary():
    root = Path(__file__).resolve().parents[2]
    for rel in ("target/release/vireid", "target/portable/release/vireid", "training/device/bin/vireid"):
        if (root / rel).is_file() and os.access(root / rel, os.X_OK):
            return root / rel
    return None


@pytest.mark.parametrize("protocol", ["sysu", "regdb", "llcm"])
def test_python_and_rust_evaluators_agree(tmp_path, protocol):
    binary = _vireid_binary()
    if binary is None:
        pytest.skip("no vireid binary (target/release/vireid): `make test` builds it before pytest")
    rng = np.random.default_rng({"sysu": 1, "regdb": 2, "llcm": 3}[protocol])
    nq, ng = 60, 90
    q_ids, g_ids = rng.integers(0, 18, nq), rng.integers(0, 15, ng)   # ids 15-17: no match
    q_cams = rng.choice([3, 6], nq) if protocol == "sysu" else rng.integers(1, 4, nq)
    g_cams = rng.choice([1, 2, 4, 5], ng) if protocol == "sysu" else rng.integers(1, 4, ng)
    dist = rng.random((nq, ng)).astype(np.float32)
    dist[:, ::7] = dist[:, :1]          # ties, broken by gallery order
    np.save(tmp_path / "d.npy", dist)
    for name, ids, cams in (("q", q_ids, q_cams), ("g", g_ids, g_cams)):
        (tmp_path / f"{name}.csv").write_text("id,cam\n" + "".join(f"{i},{c}\n" for i, c in zip(ids, cams)))
    run = subprocess.run([str(binary), "eval", "distmat", "--protocol", protocol, "--distmat", str(tmp_path / "d.npy"),
                          "--query-meta", str(tmp_path / "q.csv"), "--gallery-meta", str(tmp_path / "g.csv"),
                          "--json", str(tmp_path / "r.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    rust = json.loads((tmp_path / "r.json").read_text())
    py = protocol_metrics(dist, q_ids, q_cams, g_ids, g_cams, protocol)
    assert py["num_valid_queries"] == rust["num_valid_queries"] < nq   # some queries have no match
    assert len(py["cmc"]) == len(rust["cmc"]) == 20
    assert np.abs(np.array(py["cmc"]) - np.array(rust["cmc"])).max() < 1e-6
    assert abs(py["mAP"] - rust["mAP"]) < 1e-6 and abs(py["mINP"] - rust["mINP"]) < 1e-6
