"""Ranking metrics against hand-computed values, and the SYSU cam-3/cam-2 rule."""
import numpy as np
import pytest

from vireid_train.evaluate import rank_metrics


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
