"""Smoke test of `python -m bench.allocation`: a tiny run reports the decision overhead and every
end-to-end row, with consistent ratios (no timing asserts); on the small world the real cascade is
served (computed and measured rows)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from bench.allocation import main
from consumers.allocation.build import PRESETS, build_world
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.synthetic import synthetic_outcomes
from graph.store import StoreConfig, open_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tiny_run_reports_decisions_and_end_to_end_rows(tmp_path: Path) -> None:
    out = tmp_path / "allocation.md"
    argv = ["--requests", "2000", "--epochs", "3", "--decisions", "300", "--rounds", "2", "--out", str(out)]
    r = main(argv)
    d, e = r["decision"], r["end_to_end"]
    assert d["rows"] == 300 and d["choose_us"] > 0 and d["choose_batch_us"] > 0
    assert d["goal_met"] == (d["choose_us"] < 50) and len(d["rounds_us"]["choose"]) == 2
    assert d["table_us"] > 0 and d["loop_us"] > 0  # (D3)'s update before each request
    assert d["choose_at_us"] > 0  # serving with the saved pacing plan, one request at a time
    rows = e["rows"]
    assert list(rows) == ["max chain", "greenflow, choose", "greenflow, choose_batch"]
    base = rows["max chain"]["requests_per_s"]
    assert rows["max chain"]["over_max"] == pytest.approx(1.0) and rows["max chain"]["reward_kept"] == 1.0
    for name, row in rows.items():
        assert row["requests_per_s"] == pytest.approx(1 / (row["cpu_s"] + row["decision_us"] * 1e-6))
        assert row["over_max"] == pytest.approx(row["requests_per_s"] / base), name
    assert rows["greenflow, choose"]["decision_us"] == d["choose_us"]
    # at 60% of the max chain's FLOPs the chosen chains cost less CPU and keep the simulation's reward
    assert rows["greenflow, choose"]["cpu_s"] < rows["max chain"]["cpu_s"]
    assert rows["greenflow, choose"]["reward_kept"] == pytest.approx(r["simulation"]["kept_vs_max"])
    assert e["measured"] is None and "cascade itself was not run" in e["method"]
    text = out.read_text()
    assert text.startswith("`python -m bench.allocation --requests 2000")
    assert "| greenflow, choose_batch |" in text and "computed from the outcomes' cpu_seconds" in text
    assert "| Allocator.choose_at, one row at a time" in text
    assert "(D3) λ before each request" in text
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["requests"] == 2000 and saved["source"] == "synthetic"


def test_saved_outcomes_are_benchmarked_on_the_replayed_share(tmp_path: Path) -> None:
    synthetic_outcomes(1500, 3).save(tmp_path / "saved")
    argv = ["--outcomes", str(tmp_path / "saved"), "--epochs", "2", "--decisions", "50", "--rounds", "1"]
    r = main([*argv, "--cost", "cpu_seconds", "--out", str(tmp_path / "b.md")])
    assert 0 < r["requests"] < 1500 and r["requests"] == r["simulation"]["requests"]
    assert r["decision"]["rows"] == 50 and "sklearn_predict_us" not in r["decision"]
    trees = main([*argv, "--estimator", "hgb", "--out", str(tmp_path / "h.md")])
    assert trees["estimator"] == "hgb" and trees["decision"]["sklearn_predict_us"] > 0
    assert (
        trees["decision"]["choose_at_us"] > 0
        and "HistGradientBoostingRegressor.predict" in (tmp_path / "h.md").read_text()
    )


def test_a_bad_budget_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--budget", "1.5"])
    assert "--budget is a share in (0, 1]" in capsys.readouterr().err


def test_a_world_serves_the_real_cascade_at_the_budget_and_at_the_max_chain(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    world, graph = world_store
    cache, out = tmp_path / "cache", tmp_path / "w.md"
    argv = ["--world", str(world), "--store", str(graph), "--cascade", "tiny", "--cache", str(cache)]
    argv += ["--epochs", "2", "--decisions", "50", "--rounds", "2", "--serve-requests", "20"]
    r = main([*argv, "--out", str(out)])
    e = r["end_to_end"]
    m = e["measured"]
    assert r["source"] == "world" and m["requests"] == 20 and m["rounds"] == 2
    rows = m["rows"]
    assert list(rows) == ["max chain, serve", "greenflow, choose + serve"]
    for row in rows.values():
        assert len(row["rounds"]) == 2 and min(row["rounds"]) > 0
        assert row["requests_per_s"] == pytest.approx(statistics.median(row["rounds"]))
    green, dearest = rows["greenflow, choose + serve"], rows["max chain, serve"]
    assert green["over_max"] == pytest.approx(green["requests_per_s"] / dearest["requests_per_s"])
    assert 0 < m["cost_share"] <= 1 and m["max_chain"] == PRESETS["tiny"].chains()[-1].name
    assert list(e["rows"]) == ["max chain", "greenflow, choose", "greenflow, choose_batch"]  # kept
    assert "measured: the trained cascade (tiny)" in e["method"]
    assert "| greenflow, choose + serve |" in out.read_text()
    # the outcomes went to the cache; a second run reuses them, and they are what a fresh build gives
    (folder,) = cache.iterdir()
    saved = ChainOutcomes.load(folder)
    again = main([*argv, "--out", str(tmp_path / "again.md")])
    assert again["requests"] == r["requests"] and len(list(cache.iterdir())) == 1
    with open_store(StoreConfig(path=graph)) as store:
        fresh = build_world(store, world, PRESETS["tiny"])
    np.testing.assert_array_equal(fresh.outcomes.rewards, saved.rewards)
    assert list(fresh.outcomes.request_ids) == list(saved.request_ids)


def test_world_traffic_needs_a_world_and_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--traffic", "world"])
    assert "--traffic world needs --world DIR and --store DIR" in capsys.readouterr().err
