"""Smoke test of `python -m bench.foundation` on the toy data set with a fake text encoder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench.foundation import METHODS, main
from loaders.precision import cpu_has_fast_bf16
from tests.support.fakes import FakeEncoder
from tests.support.foundation_toy import toy_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_benchmark_runs_on_toy_data_and_reports_every_measure(tmp_path: Path) -> None:
    out = tmp_path / "foundation.json"
    argv = ["--threads", "1", "--batch-size", "128", "--warmup", "1", "--batches", "2", "--rounds", "1"]
    argv += [
        "--requests",
        "20",
        "--candidates",
        "50",
        "--check",
        "10",
        "--quality-epochs",
        "1",
        "--out",
        str(out),
    ]
    r = main(argv, data=toy_data(n_requests=60, pages=20), text_encoder=FakeEncoder)
    assert {"command", "data", "cache", "train", "serve", "peak_rss_mb"} <= set(r)
    cache = r["cache"]
    assert cache["first_run_encoded"] == cache["texts_needed"] > 0
    assert cache["hit_rate"] == 1.0 and cache["second_run_encoded"] == 0 and cache["identical_features"]
    train = r["train"]
    assert set(train["samples_per_s"]) == set(METHODS) and min(train["samples_per_s"].values()) > 0
    assert train["foundation_over_mmoe"] > 0
    serve = r["serve"]
    assert serve["checked_requests"] == 10 and serve["max_prob_diff"] <= 1e-5
    assert serve["same_top20"] == 10
    assert {"full model", "fastscore"} <= set(serve["rows"])
    assert all(row["requests_per_s"] > 0 for row in serve["rows"].values())
    assert "fastscore, batches of 16" in serve["rows"] and serve["best_path"] in serve["rows"]
    quality = serve["bf16_quality"]
    if cpu_has_fast_bf16():  # bf16 rows and their AUC against fp32 on the held-out samples
        assert "fastscore bf16, batches of 16" in serve["rows"]
        workers = serve["rows"]["fastscore bf16, batches of 16, 2 processes x 1 thread"]
        assert workers["requests"] == 20 and workers["requests_per_s"] > 0
        assert quality["test_samples"] > 0 and abs(quality["auc_change"]) < 0.02
        assert quality["top20_overlap"] > 0.5 and "up to 1 epochs" in quality["weights"]
    else:
        assert "no native bf16" in quality["bf16"]
    assert json.loads(out.read_text())["serve"]["candidates"] == 50


def test_workers_that_cannot_start_fail_the_run_instead_of_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bench import foundation_serving

    monkeypatch.setattr(foundation_serving, "START_TIMEOUT_S", 3.0)
    with pytest.raises(RuntimeError, match="did not start in 3 s"):
        foundation_serving.timed_workers(tmp_path / "no-artefacts", "fp32", [("u", "d")], [np.zeros(1)], 1, 2)
