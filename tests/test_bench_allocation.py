"""Smoke test of `python -m bench.allocation`: a tiny run reports the decision overhead and every
end-to-end row, with consistent ratios (no timing asserts)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.allocation import main
from consumers.allocation.synthetic import synthetic_outcomes

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tiny_run_reports_decisions_and_end_to_end_rows(tmp_path: Path) -> None:
    out = tmp_path / "allocation.md"
    argv = ["--requests", "2000", "--epochs", "3", "--decisions", "300", "--rounds", "2", "--out", str(out)]
    r = main(argv)
    d, e = r["decision"], r["end_to_end"]
    assert d["rows"] == 300 and d["choose_us"] > 0 and d["choose_batch_us"] > 0
    assert d["goal_met"] == (d["choose_us"] < 50) and len(d["rounds_us"]["choose"]) == 2
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
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["requests"] == 2000 and saved["source"] == "synthetic"


def test_saved_outcomes_are_benchmarked_on_the_replayed_share(tmp_path: Path) -> None:
    synthetic_outcomes(1500, 3).save(tmp_path / "saved")
    argv = ["--outcomes", str(tmp_path / "saved"), "--epochs", "2", "--decisions", "50", "--rounds", "1"]
    r = main([*argv, "--cost", "cpu_seconds", "--out", str(tmp_path / "b.md")])
    assert 0 < r["requests"] < 1500 and r["requests"] == r["simulation"]["requests"]
    assert r["decision"]["rows"] == 50


def test_a_bad_budget_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--budget", "1.5"])
    assert "--budget is a share in (0, 1]" in capsys.readouterr().err
