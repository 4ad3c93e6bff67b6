"""`python -m bench.distributed` runs end to end on a few ML-1M users (figures: docs/scaling.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_the_distributed_bench_trains_on_one_and_two_processes(tmp_path: Path) -> None:
    from bench import distributed

    out = tmp_path / "ddp.json"
    distributed.main(["--max-users", "60", "--epochs", "1", "--out", str(out)])
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["nproc"], r["threads"]) for r in result["rows"]] == [(1, 2), (1, 1), (2, 2)]
    assert all(r["samples_per_s"] > 0 and 0.0 <= r["valid_auc"] <= 1.0 for r in result["rows"])
    assert result["vs_one_rank"] == pytest.approx(
        result["rows"][2]["samples_per_s"] / result["rows"][1]["samples_per_s"], abs=1e-3
    )
