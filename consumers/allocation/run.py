"""GreenFlow's evaluation (issue 20, arXiv:2312.16176): ``run(outcomes, config)`` →
:class:`AllocationResults`.

0. A replay spanning more than two days (MovieLens-1M's) is folded into one day
   (:func:`.traffic.fold_to_day`): the budget windows are hours of one day.
1. Yesterday and today: ``yesterday`` when given, else a random ``explore_share`` of the requests
   (``config.seed``) is yesterday and the rest today.
2. The exploration log: yesterday's requests each served a uniformly random chain
   (:func:`.reward.exploration_log`); the reward estimator is fitted on it and predicts every
   chain's reward for yesterday's and today's requests; its quality is measured on today's (held
   out: never logged).
3. Every policy at the headline budget and over the frontier's budgets (:mod:`.evaluate`),
   budget adherence per window under every budget split, and the energy estimate (:mod:`.energy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from consumers.allocation.config import AllocationConfig
from consumers.allocation.energy import energy_table, formula
from consumers.allocation.evaluate import Day, adherence, frontier, policy_rows
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.report import AllocationResults, write_results
from consumers.allocation.reward import (
    RewardModel,
    calibration,
    estimator_quality,
    exploration_log,
    fit_reward,
)
from consumers.allocation.traffic import DAY_S, fold_to_day
from graph.errors import InputError
from graph.progress import StageProgress


def command_line(config: AllocationConfig, source: str) -> str:
    """The ``mokg eval allocation`` call that makes these results (``source``: ``--traffic X`` or
    ``--outcomes DIR``, with what else chose the requests)."""
    from consumers.allocation.config import PACINGS

    fields = {k: getattr(config, k) for k in ("pace_window_prior", "pace_dispersion_bin_s")}
    pacing = next((name for name, v in PACINGS.items() if v == fields), "custom")
    return (
        f"mokg eval allocation {source} --budget-saving {config.budget_saving} --cost {config.cost_unit} "
        f"--budget-split {config.budget_split} --estimator {config.reward.kind} --pacing {pacing} "
        f"--log {config.log} --seed {config.seed}"
    )


def split_days(outcomes: ChainOutcomes, share: float, seed: int) -> tuple[ChainOutcomes, ChainOutcomes]:
    """(yesterday, today): a random ``share`` of the requests, and the rest, each in arrival order."""
    rng = np.random.default_rng(seed)
    mask = rng.random(outcomes.n_requests) < share
    if mask.all() or not mask.any():
        raise InputError(f"{outcomes.n_requests} requests are too few to split into yesterday and today")
    return outcomes.subset(mask), outcomes.subset(~mask)


@dataclass(frozen=True)
class Prepared:
    """A day ready for the policies: ``day`` (today and yesterday with the estimated rewards), the
    fitted ``model``, the exploration log's mean reward and whether the replay was ``folded``."""

    day: Day
    model: RewardModel
    logged_mean: float
    folded: bool


def prepare(
    outcomes: ChainOutcomes, config: AllocationConfig, yesterday: ChainOutcomes | None = None
) -> Prepared:
    """Steps 0–2 of the module doc: fold, split, log, fit the estimator, predict both days."""
    folded = outcomes.n_requests > 1 and float(np.ptp(outcomes.times)) > 2 * DAY_S
    if folded:  # a multi-day replay: one day with its hour-of-day profile
        outcomes = fold_to_day(outcomes)
        yesterday = None if yesterday is None else fold_to_day(yesterday)
    if yesterday is None:
        yesterday, today = split_days(outcomes, config.explore_share, config.seed)
    else:
        today = outcomes
    if yesterday.chain_names != today.chain_names:
        raise InputError(
            "yesterday's and today's outcomes have different chains; build both with one cascade"
        )
    log = exploration_log(yesterday, config.seed, every=config.log == "every")
    model = fit_reward(log, today.chains, config.reward)
    day = Day(
        today, model.predict(today.features), yesterday, model.predict(yesterday.features), config.cost_unit
    )
    return Prepared(day, model, float(log.reward.mean()), folded)


def run(
    outcomes: ChainOutcomes,
    config: AllocationConfig,
    yesterday: ChainOutcomes | None = None,
    progress: StageProgress | None = None,
    source: str | None = None,
) -> AllocationResults:
    """The tables of ``config`` on ``outcomes`` (module doc); ``progress`` ticks once per part;
    ``source``: the command's options that chose the requests (default ``--traffic <source>``)."""
    tick = progress("allocation: estimator, budget, frontier, adherence", 4) if progress else None
    prep = prepare(outcomes, config, yesterday)
    day, today, yesterday = prep.day, prep.day.today, prep.day.yesterday
    quality = estimator_quality(day.pred, today, prep.logged_mean, config.seed)
    cal = calibration(day.pred, today.rewards)
    if tick:
        tick()
    at_budget = pd.DataFrame(policy_rows(day, config.budget_saving, config))
    if tick:
        tick()
    front = frontier(day, config)
    if tick:
        tick()
    windows, summary = adherence(day, config)
    if tick:
        tick()
    meta = _meta(config, today, yesterday, source or f"--traffic {today.source}")
    if prep.folded:
        meta["data"] += "; a multi-day replay folded into one day (each request at its UTC second of the day)"
    return AllocationResults(
        today.source,
        at_budget,
        front,
        windows,
        summary,
        quality,
        cal,
        energy_table(at_budget, config.energy),
        meta,
    )


def _meta(
    config: AllocationConfig, today: ChainOutcomes, yesterday: ChainOutcomes, source: str
) -> dict[str, str]:
    cost = today.cost(config.cost_unit)
    return {
        "command": command_line(config, source),
        "saving": f"budget = {1 - config.budget_saving:.0%} of the most expensive chain's {config.cost_unit}",
        "data": f"{today.source}: {today.n_requests:,} requests today, {yesterday.n_requests:,} yesterday "
        f"(exploration log: uniformly random chains); {len(today.chains)} chains, cost "
        f"{cost.min():.3g}–{cost.max():.3g} {config.cost_unit} per request",
        "greenflow": f"(D1) per request on the estimated rewards ({config.reward.kind}); λ by the "
        f"{config.dual_rule} rule: pace (D3) before every request from yesterday's spend curve, κ = "
        f"{config.pace_prior:g}, z = {config.pace_margin:g}; step (D2) every {config.control_s:g} s, "
        f"η = {config.step_size}, λ_0 = λ_ref = DCAF's λ; budget windows of {config.window_s:g} s split by "
        f"{config.budget_split}",
        "optimum": "LP relaxation of (P1) with the true rewards over the whole day (one pooled budget), "
        "solved through its dual (O1); its reward is the LP value, its spend and CPU those of the "
        "integer solution",
        "best fixed": "the fixed chain with the most true reward among those within the budget per request",
        "adherence": "binding windows: the max chain would overspend them; "
        "peak: the window with the most requests",
        "energy": formula(config.energy),
        "seed": str(config.seed),
    }


__all__ = [
    "AllocationConfig",
    "AllocationResults",
    "Prepared",
    "command_line",
    "prepare",
    "run",
    "split_days",
    "write_results",
]
