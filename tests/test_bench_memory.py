"""`python -m bench.memory --quick` end to end on small sizes (structure only; speed lives in the bench)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from bench import memory


def test_quick_bench_runs_and_reports(tmp_path: Path) -> None:
    out, figure = tmp_path / "memory.md", tmp_path / "memory.png"
    argv = ["--quick", "--vectors", "synthetic", "--sizes", "1000,4000", "--probes", "1,8", "--tables", "1,2"]
    r = memory.main(
        [*argv, "--rounds", "1", "--store-thoughts", "300", "--out", str(out), "--figure", str(figure)]
    )
    assert [s["n"] for s in r["sizes"]] == [1000, 4000]
    for size in r["sizes"]:
        exact = size["rows"]["exact (faiss flat IP)"]
        assert exact["recall_at_k"] == 1.0
        assert exact["nbytes"] == size["n"] * (4 * 384 + 8)
        lsh = [w for name, w in size["rows"].items() if name.startswith("LSH")]
        assert len(lsh) == 4
        for w in lsh:
            assert 0.0 <= w["recall_at_k"] <= 1.0 and w["queries_per_s"] > 0 and w["insert_per_s"] > 0
            assert w["nbytes"] >= w["tables"] * size["n"] * 384 * 4
        by = {(w["tables"], w["probes"]): w for w in lsh}
        assert by[1, 8]["recall_at_k"] >= by[1, 1]["recall_at_k"]  # more probes scan a superset
        assert by[1, 8]["scanned"] >= by[1, 1]["scanned"]
    assert r["store"]["thoughts"] == 300 and r["store"]["per_s"] > 0
    assert out.read_text().startswith("`python -m bench.memory --quick")
    assert json.loads(out.with_suffix(".json").read_text())["k"] == 10
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_grown_memory_is_unit_length_and_near_its_base() -> None:
    base, note = memory.base_vectors("synthetic", 200, seed=0)
    assert "synthetic" in note
    x = memory.grow(base, 500, noise=0.35, seed=1)
    assert x.shape == (500, 384) and x.dtype == np.float32
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.median((x @ base.T).max(axis=1)) > 0.8  # variants stay close to a real thought
    assert not np.allclose(x, memory.grow(base, 500, noise=0.35, seed=2))
    assert np.array_equal(x, memory.grow(base, 500, noise=0.35, seed=1))
