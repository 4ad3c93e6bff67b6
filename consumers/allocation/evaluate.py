"""Every policy of GreenFlow's evaluation (arXiv:2312.16176) on one day at one budget, the
revenue-computation frontier over budgets, and budget adherence per window.

A :class:`Day` is today's requests (true rewards, for scoring only), the estimator's predictions
for today and for yesterday, and yesterday's traffic. The day's budget at saving ``s`` is
``B = (1 − s) · max_j q_j · R`` (what the most expensive chain would spend, less ``s``), split
over windows ∝ today's traffic, ∝ yesterday's (a forecast that misses today's campaign), or flat.
Policies: ``max chain``, ``best fixed`` (the best chain within ``B/R`` per request, hindsight),
``random`` (cost-matched), ``dcaf`` (static ``λ`` from yesterday), ``greenflow`` (``λ`` online by
the config's rule, (D3) pacing by default, on the estimated rewards), ``greenflow (step rule)``
(the other rule, (D2), for comparison), ``greenflow (true rewards)`` (the config's rule on the true
rewards: what the estimator's errors cost) and ``optimum`` (the LP (O1) with hindsight, pooled
budget). Each row: budget, spend, reward and the reward kept as a share of the max chain's and
of the optimum's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from consumers.allocation.config import BUDGET_SPLITS, DUAL_RULES, AllocationConfig
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.pacing import (
    PacingPlan,
    SpendCurve,
    choice_table,
    dispersion,
    run_plan,
    window_curves,
    window_demand,
)
from consumers.allocation.policies import best_fixed, optimum, random_choices
from consumers.allocation.primal_dual import StepHook, StreamRun, dynamic_run, solve_lambda, static_run
from consumers.allocation.traffic import window_counts, window_index

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Day:
    """``today`` [R requests], ``pred`` [R, C] estimated for today, ``pred_yesterday`` [R_y, C] for
    ``yesterday``'s requests (DCAF's ``λ`` and the dynamic policy's ``λ_ref`` are solved on them)."""

    today: ChainOutcomes
    pred: F64
    yesterday: ChainOutcomes
    pred_yesterday: F64
    cost_unit: str = "flops"
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def cost(self) -> F64:
        return self.today.cost(self.cost_unit)

    def n_windows(self, window_s: float) -> int:
        return int(window_index(self.today.times, window_s)[-1]) + 1


def window_budgets(day: Day, per_request: float, split: str, window_s: float) -> F64:
    """[W] the day's budget ``per_request · R`` split over the windows by ``split``."""
    n = day.n_windows(window_s)
    total = per_request * day.today.n_requests
    if split == "traffic":
        share = window_counts(day.today.times, window_s, n).astype(float)
    elif split == "forecast":
        share = window_counts(day.yesterday.times, window_s, n).astype(float) + 1.0
    else:
        share = np.ones(n)
    return np.asarray(total * share / share.sum(), dtype=float)


def dual_run(
    day: Day,
    budgets: F64,
    rule: str,
    config: AllocationConfig,
    truth: bool = False,
    on_step: StepHook | None = None,
) -> StreamRun:
    """GreenFlow over the day at window ``budgets`` [W] with ``λ`` by ``rule``: ``pace`` (D3, the
    spend curve of yesterday's predictions) or ``step`` (D2, ``λ_ref`` solved on yesterday at the
    same budget per request); ``truth``: on the true rewards (yesterday's and today's)."""
    pred, ref = (day.today.rewards, day.yesterday.rewards) if truth else (day.pred, day.pred_yesterday)
    cost, t = day.cost, day.today.times
    if rule == "step":
        per_request = float(budgets.sum()) / day.today.n_requests
        lam = solve_lambda(ref, cost, per_request * day.yesterday.n_requests)
        return dynamic_run(
            pred, cost, t, budgets, lam, config.window_s, config.control_s, config.step_size, on_step=on_step
        )
    plan = pacing_plan(day, budgets, config, truth)
    return run_plan(pred, cost, t, plan, config.control_s, _pace_tables(day, truth)[1], on_step)


def _pace_tables(day: Day, truth: bool) -> tuple[SpendCurve, NDArray[np.int16]]:
    """Yesterday's spend curve and today's best responses on its grid (true rewards with ``truth``),
    built once per day: they do not depend on the budget, so the frontier and the splits reuse them."""
    key = f"pace:{truth}"
    if key not in day.cache:
        pred, ref = (day.today.rewards, day.yesterday.rewards) if truth else (day.pred, day.pred_yesterday)
        curve = SpendCurve.build(ref, day.cost)
        day.cache[key] = (curve, choice_table(pred, day.cost, curve.grid))
    tables: tuple[SpendCurve, NDArray[np.int16]] = day.cache[key]
    return tables


def pacing_plan(day: Day, budgets: F64, config: AllocationConfig, truth: bool = False) -> PacingPlan:
    """(D3)'s plan for the day: the spend curve of yesterday's predictions (true rewards with
    ``truth``) for the day and, with ``pace_window_prior``, per window; the window ``budgets``,
    yesterday's request counts per window as the forecast and, with ``pace_dispersion_bin_s``, the
    dispersion of yesterday's arrivals."""
    curve, b = _pace_tables(day, truth)[0], np.asarray(budgets, float)
    expected = window_counts(day.yesterday.times, config.window_s, len(b)).astype(float)
    per_window = None
    if config.pace_window_prior is not None:
        wkey = f"pace-windows:{truth}:{len(b)}:{config.window_s}:{config.pace_window_prior}"
        if wkey not in day.cache:
            ref = day.yesterday.rewards if truth else day.pred_yesterday
            day.cache[wkey] = window_curves(
                curve, ref, day.cost, day.yesterday.times, len(b), config.window_s, config.pace_window_prior
            )
        per_window = day.cache[wkey]
    bin_s = config.pace_dispersion_bin_s
    spread = 1.0 if bin_s is None else dispersion(day.yesterday.times, config.window_s, bin_s)
    return PacingPlan(
        curve, b, expected, config.window_s, config.pace_prior, config.pace_margin, per_window,
        config.pace_rate_prior, spread,
    )  # fmt: skip


def other_rule(config: AllocationConfig) -> str:
    return next(r for r in DUAL_RULES if r != config.dual_rule)


def stream_runs(day: Day, saving: float, split: str, config: AllocationConfig) -> dict[str, StreamRun]:
    """``dcaf``, ``greenflow`` (the config's rule), ``greenflow (<other> rule)`` and ``greenflow
    (true rewards)`` over the day at ``saving``."""
    cost, per_request = day.cost, (1 - saving) * float(day.cost.max())
    budgets = window_budgets(day, per_request, split, config.window_s)
    lam = solve_lambda(day.pred_yesterday, cost, per_request * day.yesterday.n_requests)
    return {
        "dcaf": static_run(day.pred, cost, day.today.times, budgets, lam, config.window_s),
        "greenflow": dual_run(day, budgets, config.dual_rule, config),
        f"greenflow ({other_rule(config)} rule)": dual_run(day, budgets, other_rule(config), config),
        "greenflow (true rewards)": dual_run(day, budgets, config.dual_rule, config, truth=True),
    }


def policy_rows(day: Day, saving: float, config: AllocationConfig) -> list[dict[str, Any]]:
    """One row per policy at the budget saving ``saving`` (module doc)."""
    out, cost, rewards = day.today, day.cost, day.today.rewards
    r, per_request = out.n_requests, (1 - saving) * float(day.cost.max())
    budget = per_request * r
    opt = optimum(rewards, cost, budget)
    top = int(np.argmax(cost))
    choices = {
        "max chain": np.full(r, top),
        "best fixed": np.full(r, best_fixed(rewards, cost, per_request)),
        "random": random_choices(cost, per_request, r, config.seed),
        **{k: v.choices for k, v in stream_runs(day, saving, config.budget_split, config).items()},
        "optimum": opt.choices,
    }
    max_reward = float(rewards[:, top].sum())
    rows = []
    for name, ch in choices.items():
        reward = opt.value if name == "optimum" else float(rewards[np.arange(r), ch].sum())
        spend = float(cost[ch].sum())
        rows.append(
            {
                "saving": saving,
                "policy": name,
                "budget": budget,
                "spend": spend,
                "spend_share": spend / budget,
                "saved_vs_max": 1 - spend / (float(cost[top]) * r),
                "reward": reward,
                "kept_vs_max": reward / max_reward,
                "kept_vs_optimum": reward / opt.value,
                "cpu_s_per_request": float(out.cpu_seconds[ch].mean()),
            }
        )
    return rows


def frontier(day: Day, config: AllocationConfig) -> pd.DataFrame:
    """Every policy at every saving of ``config.frontier_savings`` that some chain can meet (a budget
    below the cheapest chain's cost has no policy), and every fixed chain."""
    cost, rewards, top = day.cost, day.today.rewards, float(day.cost.max())
    feasible = [s for s in config.frontier_savings if (1 - s) * top >= float(cost.min())]
    rows = [row for s in feasible for row in policy_rows(day, s, config)]
    for j, chain in enumerate(day.today.chains):
        rows.append(
            {
                "saving": np.nan,
                "policy": f"fixed {chain.name}",
                "spend": float(cost[j]) * day.today.n_requests,
                "saved_vs_max": 1 - float(cost[j]) / top,
                "reward": float(rewards[:, j].sum()),
                "kept_vs_max": float(rewards[:, j].sum() / rewards[:, int(np.argmax(cost))].sum()),
                "cpu_s_per_request": float(day.today.cpu_seconds[j]),
            }
        )
    return pd.DataFrame(rows)


def adherence(day: Day, config: AllocationConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Spend against budget per window for ``dcaf`` and GreenFlow under both dual rules at
    ``config.budget_saving`` under every budget split: (per window, summary). A window *binds*
    when the max chain for all its requests would overspend it; its *attainable* spend is the
    smaller of its budget and its demand at ``λ = 0`` on the estimated rewards
    (:func:`.pacing.window_demand`: no (D1) policy spends more), and ``attainable_ratio`` is the
    spend against it. The summary's peak is the window with the most requests, and its reward is
    a share of the offline optimum at the day's budget."""
    n = day.n_windows(config.window_s)
    counts = window_counts(day.today.times, config.window_s, n)
    peak = int(np.argmax(counts))
    rewards, r = day.today.rewards, day.today.n_requests
    best = optimum(rewards, day.cost, (1 - config.budget_saving) * float(day.cost.max()) * r).value
    demand = window_demand(day.pred, day.cost, day.today.times, n, config.window_s)
    names = ("dcaf", f"greenflow ({other_rule(config)} rule)", "greenflow")
    rows, summary = [], []
    for split in BUDGET_SPLITS:
        runs = stream_runs(day, config.budget_saving, split, config)
        for name in names:
            run = runs[name]
            ratio = run.spend / np.where(run.budget > 0, run.budget, np.nan)
            cap = np.minimum(run.budget, demand)
            reach = run.spend / np.where(cap > 0, cap, np.nan)
            binds = counts * float(day.cost.max()) > run.budget
            rows += [
                {
                    "split": split,
                    "policy": name,
                    "window": w,
                    "requests": int(counts[w]),
                    "budget": run.budget[w],
                    "demand_at_0": demand[w],
                    "spend": run.spend[w],
                    "ratio": ratio[w],
                    "attainable_ratio": reach[w],
                    "binds": bool(binds[w]),
                }
                for w in range(n)
            ]
            off_peak = binds & (np.arange(n) != peak)
            dev = np.abs(reach - 1.0)
            summary.append(
                {
                    "split": split,
                    "policy": name,
                    "day_ratio": float(run.spend.sum() / run.budget.sum()),
                    "kept_vs_optimum": float(rewards[np.arange(r), run.choices].sum() / best),
                    "peak_ratio": float(ratio[peak]),
                    "max_overspend": float(np.nanmax(ratio - 1.0)),
                    "max_abs_dev_binding_off_peak": float(
                        np.nanmax(np.abs(ratio[off_peak] - 1.0), initial=0.0)
                    ),
                    "mean_abs_dev_binding": float(np.nanmean(np.abs(ratio[binds] - 1.0)))
                    if binds.any()
                    else 0.0,
                    "windows_demand_below_budget": int((demand < run.budget).sum()),
                    "max_abs_dev_attainable": float(np.nanmax(dev, initial=0.0)),
                    "within_2pct_attainable": float(np.mean(dev[np.isfinite(dev)] <= 0.02)),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(summary)
