"""Smoke test of `python -m bench.density`: a tiny run reports every phase with its ratios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.density import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tiny_run_reports_training_sampling_and_score_throughput(tmp_path: Path) -> None:
    out = tmp_path / "density.md"
    argv = ["--dataset", "moons", "--n", "400", "--pairs", "200", "--train-points", "3000"]
    argv += ["--score-points", "500", "--ode-points", "3000", "--ode-steps", "2", "--out", str(out)]
    r = main(argv)
    t, s, e = r["training"], r["sampling"], r["score"]
    assert list(t["rows"]) == ["paper", "fast", "nsf"]
    assert t["rows"]["nsf"]["over_nsf"] == pytest.approx(1.0)
    for name in ("paper", "fast"):
        row = t["rows"][name]
        assert row["fit_s"] > 0 and row["over_nsf"] == pytest.approx(row["fit_s"] / t["rows"]["nsf"]["fit_s"])
        assert row["goal_met"] == (row["over_nsf"] <= 0.2)
    assert t["configs"]["fast"]["steps"] < 500 and t["configs"]["paper"]["steps"] == 500
    assert s["ode_over_mlp"] == pytest.approx(s["ode_s_10k"] / s["mlp_s_10k"]) and s["mlp_s_10k"] > 0
    assert e["train_points"] == 3000 and e["score_points"] == 500
    m = r["ode_memory"]
    assert (m["points"], m["steps"], m["chunk"]) == (3000, 2, 1024) and m["seconds"] > 0
    assert m["result_mb"] == 3000 * 2 * 4 / 2**20 and m["peak_rss_after_mb"] >= m["peak_rss_before_mb"]
    assert [row["batch"] for row in e["rows"].values()] == [2048, 3000]
    assert all(row["points_per_s"] > 0 for row in e["rows"].values())
    assert out.read_text().startswith("`python -m bench.density --dataset moons")
    assert json.loads(out.with_suffix(".json").read_text())["dataset"] == "moons"


def test_an_unknown_config_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--ours", "paper,turbo"])
    assert "--ours takes paper and/or fast" in capsys.readouterr().err
