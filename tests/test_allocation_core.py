"""GreenFlow's allocator (issue 20) on synthetic chain outcomes: the dual update, the offline
optimum, the baselines, the reward estimator, traffic and the written results."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from consumers.allocation.config import AllocationConfig, RewardConfig
from consumers.allocation.evaluate import Day, adherence, frontier, policy_rows
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.policies import best_fixed, optimum, optimum_lp, random_choices
from consumers.allocation.primal_dual import Allocator, best_response, dynamic_run, solve_lambda
from consumers.allocation.reward import RewardModel, estimator_quality, exploration_log, fit_reward
from consumers.allocation.run import command_line, run, write_results
from consumers.allocation.synthetic import synthetic_outcomes
from consumers.allocation.traffic import (
    arrival_times,
    diurnal_profile,
    fold_to_day,
    window_counts,
    window_slices,
)
from graph.errors import InputError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = RewardConfig(hidden=32, epochs=6, batch_size=1024, lr=1e-2)


@pytest.fixture(scope="module")
def days() -> tuple[ChainOutcomes, ChainOutcomes]:
    """(yesterday without the campaign, today with its 3× hour), 12,000 requests each."""
    return synthetic_outcomes(12_000, 0, campaign_hour=None), synthetic_outcomes(12_000, 1)


@pytest.fixture(scope="module")
def model(days: tuple[ChainOutcomes, ChainOutcomes]) -> RewardModel:
    """The MLP estimator fitted on yesterday's exploration log (torch on one thread, as
    ``one_torch_thread`` does for a test)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fit_reward(exploration_log(days[0], 0), days[1].chains, FAST)
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def day(days: tuple[ChainOutcomes, ChainOutcomes], model: RewardModel) -> Day:
    yesterday, today = days
    return Day(today, model.predict(today.features), yesterday, model.predict(yesterday.features))


def test_traffic_has_the_campaign_peak_and_windows_cover_every_request() -> None:
    plain = np.bincount(
        (arrival_times(200_000, 3, diurnal_profile(campaign_hour=None)) // 3600).astype(int), minlength=24
    )
    times = arrival_times(200_000, 3, diurnal_profile(campaign_hour=21))
    peak = np.bincount((times // 3600).astype(int), minlength=24)
    share = peak / peak.sum() / (plain / plain.sum())
    assert share[21] == pytest.approx(3.0 * share[20], rel=0.05)  # 3× its hour's normal traffic
    assert plain.max() / plain.min() > 3  # diurnal
    slices = window_slices(times, 900)
    assert sum(s.stop - s.start for s in slices) == len(times) and len(slices) == 96
    assert window_counts(times, 3600, 24).tolist() == peak.tolist()


def test_a_multi_day_replay_folds_into_one_day() -> None:
    out = synthetic_outcomes(500, 4)
    days_later = np.sort(np.random.default_rng(0).integers(0, 700, size=out.n_requests)) * 86_400.0
    replay = dataclasses.replace(out, times=out.times + days_later)
    folded = fold_to_day(replay)
    assert np.allclose(folded.times, out.times) and np.array_equal(folded.rewards, out.rewards)
    # a replay in its own order (day by day) whose seconds of the day interleave across days
    rng = np.random.default_rng(1)
    seconds, days = rng.uniform(0, 86_400, out.n_requests), np.arange(out.n_requests) // 50
    replay = replay.retimed(np.sort(days * 86_400.0 + seconds))
    folded = fold_to_day(replay)
    assert np.all(np.diff(folded.times) >= 0) and folded.times.max() < 86_400
    by_id = dict(zip(replay.request_ids, replay.rewards[:, 0], strict=True))
    assert [by_id[r] for r in folded.request_ids] == folded.rewards[:, 0].tolist()  # rows move together


def test_dual_update_makes_spend_converge_to_the_budget_on_a_stationary_stream() -> None:
    out = synthetic_outcomes(24_000, 5, campaign_hour=None, amplitude=0.0)
    cost = out.cost()
    per_window = 0.5 * cost.max() * out.n_requests / 24
    lam_ref = solve_lambda(out.rewards, cost, 0.5 * cost.max() * out.n_requests)
    for lam0 in (0.0, 5 * lam_ref):  # far too generous, far too strict
        run_ = dynamic_run(
            out.rewards, cost, out.times, np.full(24, per_window), lam_ref, 3600, 60, 0.5, lam0=lam0
        )
        ratio = run_.spend / run_.budget
        assert np.all(np.abs(ratio[2:] - 1) < 0.04), ratio
        assert abs(run_.spend.sum() / run_.budget.sum() - 1) < 0.02


def test_infinite_budget_picks_the_best_chain_per_request(day: Day, model: RewardModel) -> None:
    today = day.today
    best = day.pred.argmax(1)
    run_ = dynamic_run(day.pred, day.cost, today.times, np.full(24, 1e300), 1.0, 3600, 60, 0.5, lam0=0.0)
    assert np.array_equal(run_.choices, best)
    allocator = Allocator(model, day.cost, 0.0)
    rows = today.features[:200]
    assert [allocator.choose(r) for r in rows] == model.predict(rows).argmax(1).tolist()
    allocator.set_lambda(1e6 / float(day.cost.min()))  # a prohibitive price: the cheapest chain
    assert allocator.choose(rows[0]) == int(np.argmin(day.cost))


def test_lp_and_bisection_optimum_agree_on_a_small_instance() -> None:
    out = synthetic_outcomes(150, 9)
    cost = out.cost()
    for saving in (0.0, 0.3, 0.6, 0.9):
        budget = (1 - saving) * cost.max() * out.n_requests
        opt = optimum(out.rewards, cost, budget)
        assert opt.value == pytest.approx(optimum_lp(out.rewards, cost, budget), rel=1e-7)
        assert opt.spend <= budget * (1 + 1e-12) and opt.integer_value <= opt.value + 1e-12
    with pytest.raises(InputError, match="cheapest"):
        optimum(out.rewards, cost, 0.5 * cost.min() * out.n_requests)


def test_the_optimum_bounds_every_policy_at_its_own_spend(day: Day) -> None:
    rows = policy_rows(day, 0.4, AllocationConfig())
    by = {r["policy"]: r for r in rows}
    for r in rows:
        if r["policy"] == "optimum":  # the bound itself: the LP value at the budget
            continue
        assert optimum(day.today.rewards, day.cost, r["spend"]).value >= r["reward"] - 1e-9, r["policy"]
    assert by["greenflow"]["kept_vs_optimum"] > by["best fixed"]["kept_vs_optimum"]
    assert by["greenflow"]["kept_vs_optimum"] > by["random"]["kept_vs_optimum"]
    assert abs(by["greenflow"]["spend_share"] - 1) < 0.02
    assert by["random"]["spend_share"] == pytest.approx(1.0, abs=0.03)


def test_fixed_chains_cost_and_earn_what_the_outcomes_say(day: Day) -> None:
    fr = frontier(day, AllocationConfig(frontier_savings=(0.4,)))
    fixed = fr[fr["policy"].str.startswith("fixed ")].reset_index(drop=True)
    r = day.today.n_requests
    assert fixed["spend"].tolist() == pytest.approx((day.today.flops * r).tolist())
    assert fixed["reward"].tolist() == pytest.approx(day.today.rewards.sum(0).tolist())
    top = int(np.argmax(day.today.flops))
    assert fixed["kept_vs_max"][top] == pytest.approx(1.0)
    beyond = 1 - 0.5 * float(day.cost.min() / day.cost.max())  # a budget no chain meets
    swept = frontier(day, AllocationConfig(frontier_savings=(0.4, beyond)))
    assert set(swept["saving"].dropna()) == {0.4}  # skipped, not an error
    per_request = 0.6 * day.today.flops.max()
    j = best_fixed(day.today.rewards, day.cost, per_request)
    assert day.today.flops[j] <= per_request
    assert (
        random_choices(day.cost, per_request, 5, 0).tolist()
        == random_choices(day.cost, per_request, 5, 0).tolist()
    )


def test_reward_estimator_beats_a_constant_on_held_out_requests(
    days: tuple[ChainOutcomes, ChainOutcomes], model: RewardModel
) -> None:
    yesterday, today = days
    log = exploration_log(yesterday, 0)
    hgb = fit_reward(
        exploration_log(yesterday.subset(np.arange(4000)), 0),
        today.chains,
        RewardConfig(kind="hgb", epochs=4),
    )
    held_out = today.subset(np.arange(3000))
    for fitted in (model, hgb):
        q = estimator_quality(fitted.predict(held_out.features), held_out, float(log.reward.mean()), 0)
        assert q["skill"] > 0.5 and q["spearman"] > 0.5 and q["top1_share"] > 0.9, (fitted.kind, q)


def test_dynamic_adheres_to_window_budgets_better_than_dcaf_on_the_peak_stream(day: Day) -> None:
    _, summary = adherence(day, AllocationConfig())
    s = {(r["split"], r["policy"]): r for r in summary.to_dict("records")}
    for split in ("forecast", "flat"):
        dcaf, greenflow = s[(split, "dcaf")], s[(split, "greenflow")]
        assert dcaf["peak_ratio"] > 1.5  # the campaign hour blows a static λ's budget
        assert abs(greenflow["peak_ratio"] - 1) < 0.03
        assert greenflow["max_overspend"] < dcaf["max_overspend"]


def test_run_writes_the_tables_with_the_command_first(
    days: tuple[ChainOutcomes, ChainOutcomes], tmp_path: Path
) -> None:
    yesterday, today = (d.subset(np.arange(0, d.n_requests, 3)) for d in days)
    config = AllocationConfig(frontier_savings=(0.2, 0.4), reward=RewardConfig(epochs=3, batch_size=1024))
    results = run(today, config, yesterday=yesterday)
    written = write_results(results, tmp_path, config.as_dict())
    md = (tmp_path / "allocation_synthetic.md").read_text()
    assert md.startswith("`mokg eval allocation --traffic synthetic --budget-saving 0.4")
    assert (
        all(p.exists() for p in written)
        and (tmp_path / "allocation_synthetic_frontier.png").stat().st_size > 0
    )
    assert set(results.at_budget["policy"]) >= {
        "greenflow",
        "dcaf",
        "random",
        "best fixed",
        "optimum",
        "max chain",
    }
    assert results.energy["kwh_saved_per_day"].iloc[0] == 0.0
    split = run(today, config)  # no yesterday: a random half of today's requests
    assert split.meta["data"].startswith("synthetic")


def test_bad_settings_are_one_line_errors() -> None:
    for kwargs in (
        {"budget_saving": 1.0},
        {"cost_unit": "joules"},
        {"control_s": 7.0},
        {"budget_split": "x"},
    ):
        with pytest.raises(InputError):
            AllocationConfig(**kwargs)
    with pytest.raises(InputError, match="estimator"):
        RewardConfig(kind="forest")


def test_best_response_is_the_lagrangian_argmax() -> None:
    pred = np.array([[1.0, 2.0, 2.5], [0.0, 0.1, 3.0]])
    cost = np.array([0.0, 1.0, 2.0])
    assert best_response(pred, cost, 0.0).tolist() == [2, 2]
    assert best_response(pred, cost, 0.9).tolist() == [1, 2]
    assert solve_lambda(pred, cost, 4.0) == 0.0
    lam = solve_lambda(pred, cost, 3.0)
    assert cost[best_response(pred, cost, lam)].sum() <= 3.0


def test_movielens_hour_profile_is_diurnal() -> None:
    from consumers.allocation.traffic import movielens_profile, movielens_times

    try:
        profile = movielens_profile()
    except InputError as exc:
        pytest.skip(str(exc))
    assert profile.sum() == pytest.approx(1.0) and profile.max() / profile.min() > 2
    times = movielens_times(5000, 0, campaign_hour=12)
    assert np.all(np.diff(times) >= 0) and times.max() < 86_400


def test_the_cli_evaluates_synthetic_traffic_and_saved_outcomes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mokg.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["eval", "allocation", "--requests", "3000", "--out", str(tmp_path / "s")])
    assert done.exit_code == 0, done.output
    md = (tmp_path / "s" / "allocation_synthetic.md").read_text()
    assert md.startswith("`mokg eval allocation --traffic synthetic --requests 3000 --budget-saving 0.4")
    synthetic_outcomes(2000, 2).save(tmp_path / "saved")
    args = ["--outcomes", str(tmp_path / "saved"), "--estimator", "hgb", "--out", str(tmp_path / "o")]
    done = runner.invoke(app, ["eval", "allocation", *args])
    assert done.exit_code == 0, done.output
    assert "--outcomes" in (tmp_path / "o" / "allocation_synthetic.md").read_text().splitlines()[0]
    bad = runner.invoke(app, ["eval", "allocation", "--traffic", "world"])
    assert bad.exit_code != 0 and "--traffic world needs --world DIR" in str(bad.exception)
    bad = runner.invoke(app, ["eval", "allocation", "--budget-split", "hourly"])
    assert bad.exit_code != 0 and "unknown budget split" in str(bad.exception)


def test_an_every_chain_log_sees_each_requests_whole_reward_row() -> None:
    out = synthetic_outcomes(300, 7)
    log = exploration_log(out, 0, every=True)
    c = len(out.chains)
    assert log.features.shape == (300 * c, out.features.shape[1]) and log.chain[:c].tolist() == list(range(c))
    assert np.array_equal(log.reward.reshape(300, c), out.rewards)
    assert np.array_equal(log.features[c], out.features[1]) and log.request[c] == 1 == log.request[2 * c - 1]
    random_log = exploration_log(out, 0)
    assert len(random_log.reward) == 300
    with pytest.raises(InputError, match="unknown exploration log"):
        AllocationConfig(log="all")
    assert "--log every" in command_line(AllocationConfig(log="every"), "--traffic synthetic")
