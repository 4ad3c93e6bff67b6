"""`mokg eval density` (issue 19): a tiny run writes its files with finite metrics; bad names are
one-line errors. No timing is asserted (a shared machine)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from consumers.density.baselines import FlowConfig, KDEConfig
from consumers.density.config import DensityConfig, EvalConfig
from consumers.density.run import run, write_results
from graph.errors import InputError
from mokg.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = EvalConfig(
    datasets=("moons",),
    methods=("diffusion", "diffusion-ode", "kde", "maf"),
    n=400,
    seeds=(0,),
    sample_size=300,
    loglik_rows=20,
    density=DensityConfig(steps=20, pairs=300, epochs=5, likelihood_steps=10),
    kde=KDEConfig(bandwidths=(0.1, 0.3), folds=2),
    maf=FlowConfig(kind="maf", transforms=1, hidden_features=(8,), max_epochs=2, patience=1),
)


def test_a_tiny_run_writes_the_table_the_config_and_the_scatter_plots(tmp_path: Path) -> None:
    results = run(None, TINY)
    written = write_results(results, tmp_path, TINY.as_dict())
    assert [p.name for p in written] == [
        "density_moons.csv",
        "density_moons.md",
        "density_moons_config.json",
        "density_moons_samples.png",
    ]
    table = pd.read_csv(tmp_path / "density_moons.csv")
    assert list(table["method"]) == list(TINY.methods) and set(table["n_train"]) == {320}
    for col in ("fit_s", "sample_s_10k", "mmd2", "energy", "sliced_w1", "c2st", "memo_median_ratio"):
        assert table[col].map(math.isfinite).all(), col
    loglik = dict(zip(table["method"], table["test_loglik"], strict=True))
    assert math.isnan(loglik["diffusion"])  # the MLP generator has no density
    assert all(math.isfinite(loglik[m]) for m in ("diffusion-ode", "kde", "maf"))
    fits = dict(zip(table["method"], table["fit_s"], strict=True))
    assert fits["diffusion-ode"] == 0.0 and fits["diffusion"] > 0.0  # training-free ODE; one shared fit
    md = (tmp_path / "density_moons.md").read_text()
    assert md.startswith("`mokg eval density --datasets moons --methods diffusion,diffusion-ode,kde,maf")
    assert "| moons (2-d, 320 train) | diffusion | " in md and "bandwidth √ε" in md
    assert json.loads((tmp_path / "density_moons_config.json").read_text())["density"]["pairs"] == 300
    assert (tmp_path / "density_moons_samples.png").stat().st_size > 1000


def test_several_seeds_give_mean_and_std() -> None:
    config = EvalConfig(
        datasets=("8gaussians",), methods=("kde",), n=200, seeds=(0, 1), sample_size=200, kde=TINY.kde
    )
    results = run(None, config)
    assert results.seeds == [0, 1] and len(results.table) == 2
    assert " ± " in results.markdown().splitlines()[4]


def test_unknown_names_are_refused_naming_the_choices() -> None:
    with pytest.raises(InputError, match=r"unknown data set.*choose from moons"):
        EvalConfig(datasets=("mooons",))
    with pytest.raises(InputError, match=r"unknown method.*realnvp.*choose from diffusion"):
        EvalConfig(methods=("kde", "realnvp"))


def test_the_cli_refuses_bad_names_in_one_line_and_its_help_teaches() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["eval", "density", "--datasets", "moons,swirl"])
    assert bad.exit_code != 0 and "unknown data set(s) swirl; choose from moons" in str(bad.exception)
    bad = runner.invoke(app, ["eval", "density", "--methods", "glow"])
    assert bad.exit_code != 0 and "unknown method(s) glow; choose from diffusion" in str(bad.exception)
    bad = runner.invoke(app, ["eval", "density", "--seeds", "0,x"])
    assert bad.exit_code != 0 and "--seeds must be comma-separated integers" in str(bad.exception)
    helped = runner.invoke(app, ["eval", "density", "--help"])
    assert all(w in helped.output for w in ("diffusion-ode", "checkerboard", "--sample-size", "Examples"))


def test_diffusion_fast_is_its_own_fit_with_the_cheaper_labelling() -> None:
    from consumers.density.config import FAST_LABELLING
    from consumers.density.data import load_dataset
    from consumers.density.evaluate import OursCache, evaluate

    data, cache = load_dataset("moons", 400, 0), OursCache()
    rows = {m: evaluate(m, data, TINY, 0, cache).row for m in ("diffusion", "diffusion-fast")}
    fast, _ = cache.get(data, TINY, 0, None, fast=True)
    paper, _ = cache.get(data, TINY, 0, None)
    assert fast is not paper and fast.config.steps == FAST_LABELLING["steps"] and paper.config.steps == 20
    assert fast.config.solver == paper.config.solver and fast.config.pairs == paper.config.pairs
    assert math.isnan(rows["diffusion-fast"]["test_loglik"]) and rows["diffusion-fast"]["fit_s"] > 0
