"""Smoke test of `python -m bench.retrieval`: a tiny run on the electronics corpus, a fake encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.retrieval import main, scale_vectors
from tests.support.fakes import CenteredFakeEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tiny_run_reports_every_row_and_column(tmp_path: Path) -> None:
    out = tmp_path / "retrieval.md"
    argv = ["--items", "120", "--queries", "30", "--scale-items", "400", "--scale-queries", "20"]
    argv += ["--ef-search", "64", "--nprobe", "1", "--rounds", "2", "--threads", "1", "--out", str(out)]
    r = main(argv, encoder=CenteredFakeEncoder)
    s, x = r["search"], r["scale"]
    assert (s["items"], s["queries"], x["items"], x["real_items"], x["queries"]) == (120, 30, 400, 120, 20)
    assert list(s["rows"]) == ["mokg search (hnsw index)", "numpy brute force", "BM25 (bm25s)"]
    for row in s["rows"].values():
        assert {"encode_s", "search_s", "total_s", "queries_per_s", "search_qps"} <= set(row)
        assert row["queries_per_s"] > 0 and row["over_bm25"] > 0 and row["over_numpy"] > 0
    assert s["rows"]["BM25 (bm25s)"]["over_bm25"] == pytest.approx(1.0)
    assert s["rows"]["numpy brute force"]["over_numpy"] == pytest.approx(1.0)
    assert s["encode_items_per_s"] > 0 and s["index_save_s"] > 0 and s["index_load_s"] > 0
    assert 0.0 <= s["index_recall_vs_exact"] <= 1.0
    hnsw, ivf = ["hnsw, efSearch 64", "hnsw, efSearch 128"], ["ivf, nprobe 1 of 10", "ivf, nprobe 8 of 10"]
    assert list(x["rows"]) == ["flat", *hnsw, *ivf]  # efSearch 128 and nprobe 8 of √400 lists: mokg search's
    for w in x["rows"].values():
        assert w["build_s"] > 0 and w["queries_per_s"] > 0 and w["speedup"] > 0
        assert 0.0 <= w["recall_at_k"] <= 1.0 and isinstance(w["goal_met"], bool)
    assert x["rows"]["flat"]["recall_at_k"] == 1.0
    assert x["shipped"] == {"hnsw": hnsw[1], "ivf": ivf[1]}
    assert x["goal_met"] == any(x["rows"][row]["goal_met"] for row in x["shipped"].values())
    assert isinstance(x["goal_met"], bool) and isinstance(s["goal_met"], bool)
    assert x["rows"][ivf[1]]["recall_at_k"] >= x["rows"][ivf[0]]["recall_at_k"]  # more lists probed
    assert r["peak_rss_mb"] >= x["hnsw_peak_rss_mb"] > 0

    md = out.read_text()
    for needle in (
        "| path | encode s",
        "| mokg search (hnsw index) |",
        "| BM25 (bm25s) |",
        "| hnsw, efSearch 64 |",
        "| ivf, nprobe 8 of 10 |",
    ):
        assert needle in md
    assert "synthetic" in md and "goal recall >= 0.95" in md and "goal >= 1,000 queries/s" in md
    assert json.loads(out.with_suffix(".json").read_text())["scale"]["items"] == 400


def test_scale_vectors_keep_the_real_ones_and_are_unit_length() -> None:
    rng = np.random.default_rng(1)
    base = rng.standard_normal((30, 16)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    groups = np.array(["a", "b", "c"] * 10)
    x = scale_vectors(base, groups, 250, 0.3, seed=0)
    assert x.shape == (250, 16) and x.dtype == np.float32
    assert np.array_equal(x[:30], base)
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    # each synthetic vector is near a real one of its group (mixtures of two same-group rows + noise)
    assert float((x[30:] @ base.T).max(axis=1).mean()) > 0.5
