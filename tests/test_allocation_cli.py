"""`mokg allocate simulate` and `mokg allocate serve` (issue 20): the replay of a day through
GreenFlow's dynamic allocator on synthetic traffic, its written files and errors, and the
allocator saved, loaded and served."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from consumers.allocation.config import AllocationConfig, RewardConfig
from consumers.allocation.evaluate import stream_runs
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.persist import load_allocator, serve_table
from consumers.allocation.primal_dual import Allocator
from consumers.allocation.run import prepare
from consumers.allocation.simulate import (
    ReplayTick,
    SimulationRequest,
    SimulationResult,
    run_simulation,
)
from consumers.allocation.synthetic import synthetic_outcomes
from graph import files
from graph.errors import InputError
from mokg.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = AllocationConfig(reward=RewardConfig(hidden=32, epochs=6, batch_size=1024, lr=1e-2))


@pytest.fixture(scope="module")
def days() -> tuple[ChainOutcomes, ChainOutcomes]:
    return synthetic_outcomes(6000, 0, campaign_hour=None), synthetic_outcomes(6000, 1, day=1)


@pytest.fixture(scope="module")
def simulated(days: tuple[ChainOutcomes, ChainOutcomes]) -> tuple[SimulationResult, list[ReplayTick]]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    ticks: list[ReplayTick] = []
    try:
        result = run_simulation(days[1], SimulationRequest(0.6, FAST, "cmd"), ticks.append, days[0])
    finally:
        torch.set_num_threads(before)
    return result, ticks


def test_the_replay_is_greenflows_policy_and_spends_the_budget(
    days: tuple[ChainOutcomes, ChainOutcomes], simulated: tuple[SimulationResult, list[ReplayTick]]
) -> None:
    result, ticks = simulated
    day = prepare(days[1], FAST, days[0]).day
    eval_choices = stream_runs(day, 0.4, FAST.budget_split, FAST)["greenflow"].choices
    assert np.array_equal(result.choices, eval_choices)
    s, w = result.summary, result.windows
    assert len(w) == 24 and w["requests"].sum() == 6000 == s["requests"]
    assert s["spend"] == pytest.approx(w["spend"].sum()) and s["budget"] == pytest.approx(w["budget"].sum())
    assert s["budget"] == pytest.approx(0.6 * day.cost.max() * 6000)
    assert abs(s["spend_share"] - 1) < 0.03 and s["saved_vs_max"] == pytest.approx(1 - 0.6 * s["spend_share"])
    assert s["reward"] == pytest.approx(w["reward"].sum()) and 0.8 < s["kept_vs_max"] <= 1.05
    # one tick per control step, one closing tick per window; the last one has the whole day
    assert len(ticks) == 24 * 60 and sum(t.window_done for t in ticks) == 24
    assert [t.done for t in ticks] == sorted(t.done for t in ticks) and ticks[-1].done == 6000
    assert ticks[-1].spend == pytest.approx(s["spend"]) and ticks[-1].budget == pytest.approx(s["budget"])
    assert result.allocator.lam == s["lam_end"] and result.allocator.chains == days[1].chains


def test_simulate_prints_windows_and_totals_and_writes_its_files(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    args = ["allocate", "simulate", "--budget", "0.6", "--requests", "3000", "--out", str(out)]
    done = CliRunner().invoke(app, [*args, "--pacing", "bursty", "--save-allocator", str(out / "alloc.npz")])
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert lines[0].startswith("`mokg allocate simulate --budget 0.6 --traffic synthetic --requests 3000")
    assert sum(line.startswith("| ") and line[2].isdigit() for line in lines) == 24
    assert any(
        line.startswith("requests 3,000; budget") and "60% of the most expensive" in line for line in lines
    )
    assert any(line.startswith("reward ") and "of the most expensive chain's" in line for line in lines)
    # off a terminal the progress is one line per window (and the estimator's and the replay's)
    progress = done.stderr.splitlines()
    assert sum(line.startswith("window ") for line in progress) == 24 and len(progress) == 26
    windows = pd.read_csv(out / "simulate_synthetic_windows.csv")
    summary = json.loads((out / "simulate_synthetic.json").read_text())
    assert len(windows) == 24 and summary["spend"] == pytest.approx(windows["spend"].sum())
    assert summary["budget_share"] == 0.6 and summary["command"] == lines[0].strip("`")
    back = load_allocator(out / "alloc.npz")
    assert back.lam == pytest.approx(summary["lam_end"]) and "--pacing bursty" in lines[0]
    assert back.plan is not None and back.plan.window_rho is not None and back.plan.dispersion >= 1
    assert summary["config"]["pace_window_prior"] == 30.0
    assert not list(out.glob("*.tmp*"))


def test_simulate_reads_saved_outcomes(tmp_path: Path) -> None:
    synthetic_outcomes(2000, 2).save(tmp_path / "saved")
    args = ["allocate", "simulate", "--budget", "0.5", "--outcomes", str(tmp_path / "saved")]
    done = CliRunner().invoke(app, [*args, "--estimator", "hgb", "--out", str(tmp_path / "o")])
    assert done.exit_code == 0, done.output
    summary = json.loads((tmp_path / "o" / "simulate_synthetic.json").read_text())
    assert summary["requests"] + summary["yesterday_requests"] == 2000 and "--outcomes" in summary["command"]
    bad = CliRunner().invoke(app, [*args, "--traffic", "world"])
    assert bad.exit_code != 0 and "holds synthetic requests" in str(bad.exception)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "1.5"], "--budget is a share of the most expensive chain's cost in (0, 1]"),
        (["--budget", "0"], "--budget is a share"),
        (["--budget", "0.6", "--traffic", "world"], "--traffic world needs --world DIR"),
        (
            ["--budget", "0.6", "--traffic", "movielens", "--cascade", "huge"],
            "--cascade 'huge': name a preset",
        ),
        (["--budget", "0.6", "--traffic", "mars"], "unknown --traffic 'mars'"),
        (["--budget", "0.6", "--control-s", "7"], "must divide window_s"),
        (["--budget", "0.6", "--pacing", "smooth"], "unknown --pacing 'smooth'; choose from plain, bursty"),
    ],
)
def test_simulate_refuses_bad_input_in_one_line(args: list[str], message: str) -> None:
    done = CliRunner().invoke(app, ["allocate", "simulate", *args, "--requests", "100"])
    assert done.exit_code != 0 and isinstance(done.exception, InputError)
    assert message in str(done.exception) and "\n" not in str(done.exception)


def test_the_allocator_round_trips_and_serves(
    tmp_path: Path,
    days: tuple[ChainOutcomes, ChainOutcomes],
    simulated: tuple[SimulationResult, list[ReplayTick]],
) -> None:
    allocator, x = simulated[0].allocator, days[1].features[:500]
    path = allocator.save(tmp_path / "a.npz", {"note": "test"})
    back = load_allocator(path)
    assert back.lam == allocator.lam and back.chains == allocator.chains
    assert back.feature_names == days[1].feature_names and np.array_equal(back.cost, allocator.cost)
    assert [back.choose(r) for r in x] == [allocator.choose(r) for r in x]
    assert np.array_equal(back.choose_batch(x), [allocator.choose(r) for r in x])
    assert back.chain(x[0]) == days[1].chains[allocator.choose(x[0])]
    assert len(set(back.choose_batch(x).tolist())) > 1  # the allocator really chooses
    frame = pd.DataFrame(x, columns=list(days[1].feature_names)).assign(request=[f"r{i}" for i in range(500)])
    table = serve_table(back, frame)
    assert table["request"].tolist()[:2] == ["r0", "r1"] and np.array_equal(
        table["chain"], back.choose_batch(x)
    )
    frame.to_csv(tmp_path / "rows.csv", index=False)
    serve = ["allocate", "serve", "--model", str(path), "--requests", str(tmp_path / "rows.csv")]
    done = CliRunner().invoke(app, [*serve, "--no-pace"])
    assert done.exit_code == 0, done.output
    served = pd.read_csv(tmp_path / "rows.csv").pipe(lambda f: serve_table(back, f))
    first = f"r0,{served['chain'][0]},{served['chain_name'][0]},{back.lam}"
    assert done.stdout.splitlines()[1] == first
    untimed = CliRunner().invoke(app, serve)  # the allocator paces by default: it needs request times
    assert untimed.exit_code != 0 and "pacing needs a time column" in str(untimed.exception)
    lines = frame.head(3).to_json(orient="records", lines=True)
    done = CliRunner().invoke(app, ["allocate", "serve", "--model", str(path), "--lambda", "0"], input=lines)
    assert done.exit_code == 0 and len(done.stdout.splitlines()) == 4
    assert done.stdout.splitlines()[1].endswith(",0.0")
    missing = CliRunner().invoke(app, ["allocate", "serve", "--model", str(path)], input='{"activity": 1}\n')
    assert missing.exit_code != 0 and "lack the feature columns depth" in str(missing.exception)


def test_the_saved_allocator_paces_serving_as_the_replay_did(
    tmp_path: Path, simulated: tuple[SimulationResult, list[ReplayTick]]
) -> None:
    """(D3) travels with the allocator: served the replayed day in time order, the loaded allocator
    makes the replay's choices and spends each hour's budget as the replay did."""
    result = simulated[0]
    today = result.today
    back = load_allocator(result.allocator.save(tmp_path / "a.npz"))
    assert back.plan is not None and np.array_equal(back.plan.budgets, result.windows["budget"])
    frame = pd.DataFrame(today.features, columns=list(today.feature_names)).assign(time=today.times)
    shuffled = frame.sample(frac=1.0, random_state=0)  # served in time order, returned as given
    table = serve_table(back, shuffled, paced=True)
    assert table["request"].tolist() == list(range(len(frame)))
    choices = np.empty(len(frame), dtype=np.int64)
    choices[shuffled.index.to_numpy()] = table["chain"].to_numpy()
    assert np.mean(choices == result.choices) > 0.99
    served = back.pacer.spend if back.pacer is not None else None
    assert served is not None and np.allclose(served / result.windows["spend"], 1.0, atol=0.02)
    assert table["lambda"].nunique() > 10  # λ moves with the spend
    frame.to_parquet(tmp_path / "day.parquet")
    done = CliRunner().invoke(
        app,
        ["allocate", "serve", "--model", str(tmp_path / "a.npz"), "--requests", str(tmp_path / "day.parquet"),
         "--out", str(tmp_path / "chains.csv")],
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    assert "λ by (D3) pacing" in done.stdout and "over the 24 windows with requests" in done.stdout
    assert pd.read_csv(tmp_path / "chains.csv")["chain"].tolist() == choices.tolist()
    bad = frame.assign(time=["x"] * len(frame))
    with pytest.raises(InputError, match="time column has empty or non-numeric"):
        serve_table(back, bad, paced=True)
    with pytest.raises(InputError, match="no pacing plan"):
        serve_table(Allocator(back.model, back.cost, 0.0, back.chains, back.feature_names), frame, paced=True)


def test_a_corrupted_or_foreign_allocator_is_refused(
    tmp_path: Path,
    days: tuple[ChainOutcomes, ChainOutcomes],
    simulated: tuple[SimulationResult, list[ReplayTick]],
) -> None:
    path = simulated[0].allocator.save(tmp_path / "a.npz")
    raw = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(InputError, match="not"):
        load_allocator(tmp_path / "cut.npz")
    with np.load(path) as npz:  # λ changed, the old hash kept
        arrays = {k: npz[k] for k in npz.files}
    meta = json.loads(arrays["meta"].tobytes())
    arrays["meta"] = np.frombuffer(json.dumps({**meta, "lam": 0.0}, sort_keys=True).encode(), np.uint8)
    with (tmp_path / "edited.npz").open("wb") as fh:
        np.savez(fh, **arrays)
    assert zipfile.is_zipfile(tmp_path / "edited.npz")
    with pytest.raises(InputError, match="fails its sha256 check"):
        load_allocator(tmp_path / "edited.npz")
    (tmp_path / "rows.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="is not an allocator"):
        load_allocator(tmp_path / "rows.csv")
    with pytest.raises(InputError, match="is not a file"):
        load_allocator(tmp_path / "nothing.npz")
    arrays = {k: v for k, v in arrays.items() if k not in ("meta", "sha256")}  # an hgb file whose graph
    arrays |= {"onnx": np.frombuffer(b"not a graph", np.uint8), "chain_matrix": np.zeros((24, 6))}  # is
    raw = json.dumps({**meta, "estimator": "hgb", "threads": 1}, sort_keys=True).encode()  # not ONNX,
    digest = np.asarray(files.array_digest(raw, arrays))  # its hash made to match
    np.savez(tmp_path / "graph.npz", meta=np.frombuffer(raw, np.uint8), sha256=digest, **arrays)
    with pytest.raises(InputError, match="ONNX graph does not load"):
        load_allocator(tmp_path / "graph.npz")


def test_an_hgb_allocator_is_saved_as_onnx_and_serves_the_replays_choices(
    tmp_path: Path, days: tuple[ChainOutcomes, ChainOutcomes]
) -> None:
    """The boosted trees predict through ONNX Runtime in the evaluation and in serving: the graph
    predicts what sklearn's booster does, and a saved, reloaded hgb allocator paces a shuffled day
    as the replay did."""
    config = AllocationConfig(reward=RewardConfig(kind="hgb", epochs=6))
    result = run_simulation(days[1], SimulationRequest(0.6, config, "cmd"), lambda _: None, days[0])
    model = result.allocator.model
    booster = model.state["booster"]
    x = days[1].features[:300]
    tiled = np.hstack([np.repeat(x, 24, axis=0), np.tile(model.state["chains"], (len(x), 1))])
    expected = booster.predict(tiled.astype(np.float32)).reshape(len(x), 24)
    assert np.allclose(model.predict(x), expected, atol=1e-5)
    assert np.allclose([model.predict_row(r) for r in x[:20]], expected[:20], atol=1e-5)
    back = load_allocator(result.allocator.save(tmp_path / "h.npz"))
    assert back.model.kind == "hgb" and np.array_equal(back.model.predict(x), model.predict(x))
    today = result.today
    frame = pd.DataFrame(today.features, columns=list(today.feature_names)).assign(time=today.times)
    shuffled = frame.sample(frac=1.0, random_state=1)
    table = serve_table(back, shuffled, paced=True)
    choices = np.empty(len(frame), dtype=np.int64)
    choices[shuffled.index.to_numpy()] = table["chain"].to_numpy()
    assert np.mean(choices == result.choices) > 0.99 and len(set(choices.tolist())) > 1
