"""A day of requests replayed through GreenFlow's dynamic primal-dual allocator, as served
(``mokg allocate simulate``; "GreenFlow: A Computation Allocation Framework for Building
Environmentally Sound Recommendation System", IJCAI 2023, arXiv:2312.16176).

As :func:`consumers.allocation.run.run` prepares a day (a multi-day replay folded into one;
yesterday given, or a random ``explore_share`` of the requests; the reward estimator fitted on
yesterday's exploration log), then one policy only, GreenFlow's (D1) with ``λ`` by the config's
rule ((D3) pacing of :mod:`.pacing` by default, or (D2) of :mod:`.primal_dual`), at one budget:

    B = budget · max_j q_j · R        (``budget`` a share in (0, 1] of the most expensive chain's cost)

split over the windows by ``budget_split``, ``λ_ref`` solved on yesterday (DCAF's ``λ``). The
replay reports after every control step (:class:`ReplayTick`: requests done, spend so far, the
budget so far — past windows' budgets plus the elapsed share of the current one — and ``λ``), and
ends with per window ``[W]`` requests, budget, spend, mean and final ``λ`` and true reward, and the
totals: reward, spend, and the reward's share of the most expensive chain's. The allocator at the
day's last ``λ`` ((D3): the median ``λ`` of the last window, whose final requests are priced for
its end game) comes with the result (:meth:`.primal_dual.Allocator.save` for serving), and with
(D3) its pacing plan (yesterday's spend curve, the window budgets and yesterday's counts), so that
serving sets ``λ`` before every request as the replay did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from consumers.allocation.config import AllocationConfig
from consumers.allocation.evaluate import Day, dual_run, pacing_plan, window_budgets
from consumers.allocation.outcomes import ChainOutcomes
from consumers.allocation.primal_dual import Allocator, solve_lambda
from consumers.allocation.run import prepare
from consumers.allocation.traffic import window_index
from graph import files
from graph.errors import InputError

if TYPE_CHECKING:
    from graph.progress import Progress, Stage


@dataclass(frozen=True)
class SimulationRequest:
    """One replay: ``budget`` a share in (0, 1] of the most expensive chain's cost per request;
    ``allocation`` the rest of GreenFlow's settings (cost unit, windows, control step, ``η``, budget
    split, estimator, exploration share, seed; its ``budget_saving`` is not used); ``command``
    the command line that asked for it (recorded in the summary)."""

    budget: float = 0.6
    allocation: AllocationConfig = field(default_factory=AllocationConfig)
    command: str = ""

    def __post_init__(self) -> None:
        if not 0.0 < self.budget <= 1.0:
            raise InputError(
                f"--budget is a share of the most expensive chain's cost in (0, 1], e.g. 0.6; "
                f"got {self.budget}"
            )


@dataclass(frozen=True)
class ReplayTick:
    """After a control step: ``done`` of ``total`` requests, the day's spend and budget so far,
    ``lam`` (λ after the step's update); ``window_done``: the step closed window ``window``, whose
    ``window_spend`` and ``window_budget`` are final."""

    done: int
    total: int
    window: int
    spend: float
    budget: float
    lam: float
    window_done: bool
    window_spend: float
    window_budget: float


Watcher = Callable[[ReplayTick], None]


@dataclass(frozen=True, eq=False)
class SimulationResult:
    """``windows``: one row per window; ``summary``: the totals; ``choices`` [R] the chains served
    to ``today`` (the requests replayed: folded to one day, less yesterday's share when split);
    ``allocator`` at the day's last ``λ``."""

    windows: pd.DataFrame
    summary: dict[str, Any]
    choices: NDArray[np.int64]
    allocator: Allocator
    today: ChainOutcomes

    def lines(self) -> list[str]:
        """The per-window table and the totals, as printed."""
        s, unit = self.summary, self.summary["cost_unit"]
        out = [
            f"`{s['command']}`",
            "",
            f"| window | requests | budget ({unit}) | spend | spend / budget | λ at end |",
        ]
        out.append("|---|---|---|---|---|---|")
        for w in self.windows.itertuples():
            cells = f"{w.window} | {w.requests:,} | {w.budget:.4g} | {w.spend:.4g} | {w.ratio:.1%}"
            out.append(f"| {cells} | {w.lam_end:.3g} |")
        return [
            *out,
            "",
            f"requests {s['requests']:,}; budget {s['budget']:.4g} {unit} ({s['budget_share']:.0%} of the "
            f"most expensive chain's), spend {s['spend']:.4g} ({s['spend_share']:.1%} of the budget, "
            f"{s['saved_vs_max']:.1%} saved against the most expensive chain)",
            f"reward {s['reward']:.4g} = {s['kept_vs_max']:.1%} of the most expensive chain's "
            f"({s['max_reward']:.4g}); λ_ref {s['lam_ref']:.3g}, final λ {s['lam_end']:.3g}",
        ]


def run_simulation(
    outcomes: ChainOutcomes,
    request: SimulationRequest,
    progress: Watcher | None = None,
    yesterday: ChainOutcomes | None = None,
) -> SimulationResult:
    """Replay ``outcomes`` (today; ``yesterday`` for the exploration log, else a split) through the
    dynamic allocator at ``request.budget`` (module doc); ``progress`` sees every control step."""
    config = request.allocation
    prep = prepare(outcomes, config, yesterday)
    day, model = prep.day, prep.model
    cost, today = day.cost, day.today
    per_request = request.budget * float(cost.max())
    budgets = window_budgets(day, per_request, config.budget_split, config.window_s)
    lam_ref = solve_lambda(day.pred_yesterday, cost, per_request * day.yesterday.n_requests)
    steps = round(config.window_s / config.control_s)

    def on_step(k: int, done: int, lam: float, spend: NDArray[np.float64]) -> None:
        if progress is None:
            return
        w, pos = divmod(k, steps)
        so_far = float(budgets[:w].sum() + budgets[w] * (pos + 1) / steps)
        closed = pos == steps - 1
        tick = ReplayTick(
            done,
            today.n_requests,
            w,
            float(spend.sum()),
            so_far,
            lam,
            closed,
            float(spend[w]),
            float(budgets[w]),
        )
        progress(tick)

    run = dual_run(day, budgets, config.dual_rule, config, on_step=on_step)
    lam_end = float(run.lam[-1]) if len(run.lam) else lam_ref
    if config.dual_rule == "pace" and len(run.lam):  # (D3)'s last λ is the window's end game
        last = window_index(today.times, config.window_s)
        lam_end = float(np.median(run.lam[last == last[-1]]))
    allocator = Allocator(model, cost, lam_end, today.chains, today.feature_names)
    if config.dual_rule == "pace":  # serving sets λ by (D3) too: the plan travels with the allocator
        allocator.pace(pacing_plan(day, budgets, config))
    windows = _windows(today, run.choices, run.lam, budgets, run.spend, config.window_s)
    summary = _summary(day, request, run.choices, budgets, lam_ref, lam_end)
    return SimulationResult(windows, summary, run.choices, allocator, today)


def _windows(
    today: ChainOutcomes,
    choices: NDArray[np.int64],
    lams: NDArray[np.float64],
    budgets: NDArray[np.float64],
    spend: NDArray[np.float64],
    window_s: float,
) -> pd.DataFrame:
    w = window_index(today.times, window_s)
    n = len(budgets)
    reward = today.rewards[np.arange(today.n_requests), choices]
    frame = pd.DataFrame({"w": w, "lam": lams, "reward": reward})
    per = frame.groupby("w").agg(requests=("lam", "size"), lam_mean=("lam", "mean"), lam_end=("lam", "last"))
    per = per.join(frame.groupby("w")["reward"].sum()).reindex(range(n))
    return pd.DataFrame(
        {
            "window": np.arange(n),
            "start_s": np.arange(n) * window_s,
            "requests": per["requests"].fillna(0).astype(int).to_numpy(),
            "budget": budgets,
            "spend": spend,
            "ratio": spend / np.where(budgets > 0, budgets, np.nan),
            "lam_mean": per["lam_mean"].ffill().fillna(0.0).to_numpy(),
            "lam_end": per["lam_end"].ffill().fillna(0.0).to_numpy(),
            "reward": per["reward"].fillna(0.0).to_numpy(),
        }
    )


def _summary(
    day: Day,
    request: SimulationRequest,
    choices: NDArray[np.int64],
    budgets: NDArray[np.float64],
    lam_ref: float,
    lam_end: float,
) -> dict[str, Any]:
    today, cost, r = day.today, day.cost, day.today.n_requests
    top = int(np.argmax(cost))
    reward, max_reward = float(today.rewards[np.arange(r), choices].sum()), float(today.rewards[:, top].sum())
    spend, budget = float(cost[choices].sum()), float(budgets.sum())
    return {
        "command": request.command,
        "source": today.source,
        "cost_unit": day.cost_unit,
        "requests": r,
        "yesterday_requests": day.yesterday.n_requests,
        "budget_share": request.budget,
        "budget": budget,
        "spend": spend,
        "spend_share": spend / budget,
        "saved_vs_max": 1 - spend / (float(cost[top]) * r),
        "reward": reward,
        "max_chain": today.chains[top].name,
        "max_reward": max_reward,
        "kept_vs_max": reward / max_reward if max_reward else float("nan"),
        "cpu_s_per_request": float(today.cpu_seconds[choices].mean()),
        "max_cpu_s_per_request": float(today.cpu_seconds[top]),
        "lam_ref": lam_ref,
        "lam_end": lam_end,
        "config": request.allocation.as_dict(),
    }


def write_simulation(result: SimulationResult, out: Path) -> list[Path]:
    """``simulate_<source>_windows.csv`` and ``simulate_<source>.json`` in ``out``, each aside-renamed."""
    stem = f"simulate_{result.summary['source']}"
    return [
        files.write_csv(out / f"{stem}_windows.csv", result.windows),
        files.write_text(out / f"{stem}.json", json.dumps(result.summary, indent=2, default=str)),
    ]


class SpendProgress:
    """A :data:`Watcher` drawn on a :class:`graph.progress.Progress` board: a ``replay`` stage of
    requests done (a live bar on a terminal) and, when a window closes, a finished stage named with
    the window's spend against its budget, the day's spend so far against the budget so far and
    ``λ`` (on a terminal one bar per window; elsewhere one line per window). ``fit`` is the stage
    of the estimator's training, closed at the first tick."""

    def __init__(self, board: Progress, unit: str) -> None:
        self.board, self.unit = board, unit
        self.fit: Stage | None = board.stage("reward estimator on the exploration log")
        self.replay: Stage | None = None
        self.last_done = 0

    def __call__(self, tick: ReplayTick) -> None:
        if self.fit is not None:
            self.fit.close()
            self.fit = None
        if self.replay is None:
            self.replay = self.board.stage("replay", tick.total, "requests")
        if tick.window_done:
            ratio = tick.window_spend / tick.window_budget if tick.window_budget > 0 else float("nan")
            name = (
                f"window {tick.window:02d}: spend {tick.window_spend:.3g} / budget {tick.window_budget:.3g} "
                f"{self.unit} ({ratio:.1%}); day so far {tick.spend:.3g} / {tick.budget:.3g}; "
                f"λ {tick.lam:.3g}"
            )
            stage = self.board.stage(name, tick.done - self.last_done, "requests")
            stage.update(stage.total or 0)
            stage.close()
            self.last_done = tick.done
        self.replay.update(tick.done)
