"""GreenFlow's pacing rule (D3, ``consumers/allocation/pacing.py``) on synthetic chain outcomes: the
spend curve and its inverse, and spend per window against budget on a stationary stream and on a
stream with a quiet hour (the case the subgradient step (D2) misses)."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.pacing import (
    PacingPlan,
    SpendCurve,
    dispersion,
    paced_run,
    run_plan,
    window_curves,
    window_demand,
)
from consumers.allocation.primal_dual import best_response, dynamic_run, solve_lambda
from consumers.allocation.synthetic import synthetic_outcomes
from consumers.allocation.traffic import arrival_times, window_counts, window_index
from graph.errors import InputError

QUIET = 3


def flat_day(seed: int, n: int = 24_000) -> ChainOutcomes:
    return synthetic_outcomes(n, seed, campaign_hour=None, amplitude=0.0)


@pytest.fixture(scope="module")
def yesterday() -> ChainOutcomes:
    return flat_day(6)


@pytest.fixture(scope="module")
def curve(yesterday: ChainOutcomes) -> SpendCurve:
    return SpendCurve.build(yesterday.rewards, yesterday.cost())


def attainable_ratio(out: ChainOutcomes, spend: np.ndarray, budgets: np.ndarray) -> np.ndarray:
    demand = window_demand(out.rewards, out.cost(), out.times, len(budgets), 3600)
    return np.asarray(spend / np.minimum(budgets, demand))


def test_the_spend_curve_falls_with_the_price_and_its_inverse_meets_the_target(
    yesterday: ChainOutcomes, curve: SpendCurve
) -> None:
    cost = yesterday.cost()
    assert np.all(np.diff(curve.rho) <= 0) and curve.grid[0] == 0.0
    assert curve.rho[0] == pytest.approx(cost[yesterday.rewards.argmax(1)].mean())
    assert curve.price(2 * curve.rho[0]) == 0.0  # a target above the demand: no price
    top = curve.price(0.5 * cost.min())  # below the cheapest chain: everything on the cheapest
    assert np.all(best_response(yesterday.rewards, cost, top) == int(np.argmin(cost)))
    targets = np.linspace(0.2, 0.9, 8) * curve.rho[0]
    prices = [curve.price(b) for b in targets]
    assert np.all(np.diff(prices) < 0)  # a lower target, a higher price
    for b, lam in zip(targets, prices, strict=True):
        spent = cost[best_response(yesterday.rewards, cost, lam)].mean()
        assert spent == pytest.approx(b, rel=0.03)
    # a window whose requests all want the dearest chain lifts the blended curve: a higher price
    seen = np.full_like(curve.rho, cost.max()) * 50
    assert curve.price(targets[3], seen, 50, prior=100.0) > prices[3]
    with pytest.raises(InputError, match="reference"):
        SpendCurve.build(yesterday.rewards[:0], cost)


def test_pacing_holds_every_window_of_a_stationary_stream(
    yesterday: ChainOutcomes, curve: SpendCurve
) -> None:
    today = flat_day(5)
    cost = today.cost()
    budgets = np.full(24, 0.5 * cost.max() * today.n_requests / 24)
    expected = window_counts(yesterday.times, 3600, 24).astype(float)
    run = paced_run(today.rewards, cost, today.times, budgets, curve, expected, 3600, 60)
    ratio = run.spend / budgets
    assert np.all(np.abs(ratio - 1) <= 0.02), ratio
    assert np.all(attainable_ratio(today, run.spend, budgets) == ratio)  # every window binds here


def test_pacing_holds_a_quiet_hour_the_forecast_missed(yesterday: ChainOutcomes, curve: SpendCurve) -> None:
    full = flat_day(7)
    hour = window_index(full.times, 3600)
    keep = (hour != QUIET) | (np.random.default_rng(0).random(full.n_requests) < 0.1)
    today = full.subset(keep)  # hour 3 brings a tenth of its usual ~1,000 requests
    cost = today.cost()
    counts = window_counts(today.times, 3600, 24)
    assert 60 < counts[QUIET] < 140
    per_request = 0.5 * cost.max()
    expected = window_counts(yesterday.times, 3600, 24).astype(float)  # the forecast misses it
    # budgets follow today's traffic: the quiet hour's budget is a tenth of the others'
    budgets = per_request * counts.astype(float)
    run = paced_run(today.rewards, cost, today.times, budgets, curve, expected, 3600, 60)
    ratio = attainable_ratio(today, run.spend, budgets)
    assert np.all(np.abs(ratio - 1) <= 0.02), ratio
    # budgets from yesterday's traffic: the quiet hour's far exceeds what its requests want, so
    # (D3) prices it at 0 and every request there takes its best chain
    flat = np.full(24, per_request * today.n_requests / 24)
    run = paced_run(today.rewards, cost, today.times, flat, curve, expected, 3600, 60)
    in_quiet = hour[keep] == QUIET
    free = run.lam[in_quiet] == 0.0  # once the first requests show how quiet the hour is
    assert free.mean() > 0.95 and free[-20:].all()
    assert np.array_equal(run.choices[in_quiet][free], today.rewards[in_quiet][free].argmax(1))
    assert np.all(np.abs(attainable_ratio(today, run.spend, flat) - 1) <= 0.02)


LUMPY_COST = np.array([0.33, 0.5, 1.4, 1.6])


def lumpy_stream(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pred [R, 4], times [R]): the worlds' shape of demand: ~200 requests an hour, each wanting
    either a dear chain (62 %) or a cheap one, so a window's demand at λ = 0 is 0.9–1.2 × budget."""
    rng = np.random.default_rng(seed)
    times = arrival_times(n, seed, np.full(24, 1 / 24))
    want = rng.random(n) < 0.62
    gain = np.where(want, rng.uniform(0.02, 0.4, n), rng.uniform(-0.3, -0.01, n))[:, None]
    pred = rng.normal(0.6, 0.1, n)[:, None] + gain * (LUMPY_COST - 0.33) + rng.normal(0, 0.01, (n, 4))
    return pred, times


def test_on_lumpy_quiet_traffic_pacing_adheres_where_the_step_rule_does_not() -> None:
    (ref, ref_t), (pred, times) = lumpy_stream(4800, 100), lumpy_stream(4800, 0)
    budgets = np.full(24, LUMPY_COST[pred.argmax(1)].mean() / 1.06 * 200)
    cap = np.minimum(budgets, window_demand(pred, LUMPY_COST, times, 24, 3600))
    curve, expected = SpendCurve.build(ref, LUMPY_COST), window_counts(ref_t, 3600, 24).astype(float)
    pace = np.abs(paced_run(pred, LUMPY_COST, times, budgets, curve, expected, 3600, 60).spend / cap - 1)
    lam_ref = solve_lambda(ref, LUMPY_COST, float(budgets.mean()) / 200 * len(ref))
    step = dynamic_run(pred, LUMPY_COST, times, budgets, lam_ref, 3600, 60, 0.5)
    dev = np.abs(step.spend / cap - 1)
    assert np.mean(pace <= 0.02) >= 0.9 and np.mean(dev <= 0.02) < 0.7, (pace, dev)
    assert pace.mean() < 0.5 * dev.mean()


def test_the_bursty_variant_reads_dispersion_and_a_curve_per_window(yesterday: ChainOutcomes) -> None:
    """(D3)'s ``bursty`` pieces: the index of dispersion is ~1 for Poisson arrivals and grows when
    each arrival brings a burst; the per-window curve is the window's own mean shrunk toward the
    day's, and the day's where yesterday had no request."""
    poisson = arrival_times(20_000, 3, np.full(24, 1 / 24))
    assert 0.999 <= dispersion(poisson, 3600) < 1.3
    rng = np.random.default_rng(0)
    bursts = np.concatenate([s + rng.uniform(0, 60, 10) for s in poisson[:2_000]]) % 86_400
    assert dispersion(bursts, 3600) > 5
    cost, ref, t = yesterday.cost(), yesterday.rewards, yesterday.times
    curve = SpendCurve.build(ref, cost)
    quiet = window_index(t, 3600) != QUIET
    per = window_curves(curve, ref[quiet], cost, t[quiet], 24, 3600, shrink=1e-9)
    w0 = window_index(t, 3600) == 0
    own = cost[best_response(ref[w0], cost, float(curve.grid[10]))].mean()
    assert per[0, 10] == pytest.approx(own, rel=1e-6) and np.allclose(per[QUIET], curve.rho)
    assert np.all(np.diff(per, axis=1) <= 0)
    budgets = np.full(24, 0.5 * cost.max() * len(t) / 24)
    expected = window_counts(t, 3600, 24).astype(float)
    plan = PacingPlan(curve, budgets, expected, 3600, window_rho=per, dispersion=3.0)
    run = run_plan(ref, cost, t, plan, 60)
    assert np.all(np.abs(run.spend / budgets - 1) <= 0.02)  # a stationary stream is still held
    with pytest.raises(InputError, match=r"window_rho is \[W, G\]"):
        PacingPlan(curve, budgets, expected, 3600, window_rho=per[:3])
