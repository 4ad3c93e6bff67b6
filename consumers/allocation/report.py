"""GreenFlow's evaluation results (issue 20, arXiv:2312.16176): the policies at the headline
budget, the revenue-computation frontier, budget adherence per window, the reward estimator's
quality, and the energy estimate; written as CSV, Markdown (first line: the command) and a PNG of
the frontier, each aside and renamed (:mod:`graph.files`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from graph import files

POLICY_COLUMNS = {
    "policy": ("policy", "s"),
    "spend_share": ("spend / budget", ".3f"),
    "saved_vs_max": ("saved vs max chain", ".1%"),
    "kept_vs_max": ("reward kept vs max chain", ".2%"),
    "kept_vs_optimum": ("reward kept vs optimum", ".2%"),
    "cpu_s_per_request": ("CPU s / request", ".3g"),
}
ADHERENCE_COLUMNS = {
    "split": ("budget split", "s"),
    "policy": ("policy", "s"),
    "day_ratio": ("day spend / budget", ".3f"),
    "kept_vs_optimum": ("reward kept vs optimum", ".2%"),
    "peak_ratio": ("peak hour", ".3f"),
    "max_overspend": ("max overspend", ".1%"),
    "max_abs_dev_binding_off_peak": ("max |dev| off peak", ".1%"),
    "mean_abs_dev_binding": ("mean |dev|", ".1%"),
    "windows_demand_below_budget": ("windows wanting less than budget", "d"),
    "max_abs_dev_attainable": ("max |dev| vs attainable", ".1%"),
    "within_2pct_attainable": ("windows within ±2 % of attainable", ".0%"),
}
ENERGY_COLUMNS = {
    "policy": ("policy", "s"),
    "kwh_per_day": ("kWh/day", ".3g"),
    "kg_co2_per_day": ("kg CO2/day", ".3g"),
    "kwh_saved_per_day": ("kWh saved/day", ".3g"),
    "kg_co2_saved_per_day": ("kg CO2 saved/day", ".3g"),
}


@dataclass(frozen=True)
class AllocationResults:
    """``at_budget``: one row per policy at the headline saving; ``frontier``: every policy at
    every saving plus the fixed chains; ``windows`` / ``adherence``: spend per window and its
    summary; ``estimator``: held-out quality; ``calibration``: by predicted decile; ``energy``: the
    estimate per policy; ``meta``: notes, with ``command`` first."""

    name: str
    at_budget: pd.DataFrame
    frontier: pd.DataFrame
    windows: pd.DataFrame
    adherence: pd.DataFrame
    estimator: dict[str, float]
    calibration: pd.DataFrame
    energy: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)

    def markdown(self) -> str:
        """The command, then one table per part and the notes."""
        est = " | ".join(f"{k} {v:.4g}" for k, v in self.estimator.items())
        cal = ", ".join(
            f"{p:.3g}→{r:.3g}"
            for p, r in zip(self.calibration["predicted"], self.calibration["realised"], strict=True)
        )
        parts = [
            f"`{self.meta.get('command', '')}`",
            f"## Policies at the budget ({self.meta.get('saving', '')})",
            _table(self.at_budget, POLICY_COLUMNS),
            "## Budget adherence per window (spend / budget)",
            _table(self.adherence, ADHERENCE_COLUMNS),
            "## Reward estimator (held-out requests)",
            est + "\n\ncalibration (mean predicted → realised, by predicted decile): " + cal,
            "## Energy and carbon per day (an estimate)",
            _table(self.energy, ENERGY_COLUMNS),
        ]
        notes = "".join(f"\n- {k}: {v}" for k, v in self.meta.items() if k != "command")
        return "\n\n".join(parts) + "\n" + notes + "\n"


def _table(frame: pd.DataFrame, columns: dict[str, tuple[str, str]]) -> str:
    lines = ["| " + " | ".join(h for h, _ in columns.values()) + " |", "|" + "---|" * len(columns)]
    for r in frame.to_dict("records"):
        lines.append("| " + " | ".join(_cell(r.get(k), fmt) for k, (_, fmt) in columns.items()) + " |")
    return "\n".join(lines)


def _cell(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return str(value) if fmt == "s" else f"{value:{fmt}}"


def plot_frontier(results: AllocationResults, path: Path) -> Path:
    """Reward kept vs computation saved (both against the max chain): fixed chains as points, every
    policy as a line over the budgets."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    fr = results.frontier
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    fixed = fr[fr["policy"].str.startswith("fixed ")]
    ax.scatter(fixed["saved_vs_max"], fixed["kept_vs_max"], s=12, c="grey", label="fixed chains")
    for name, part in fr[~fr["policy"].str.startswith("fixed ")].groupby("policy", sort=False):
        if name == "max chain":
            continue
        part = part.sort_values("saved_vs_max")
        ax.plot(part["saved_vs_max"], part["kept_vs_max"], marker="o", ms=3, label=str(name))
    ax.set(
        xlabel="computation saved vs the most expensive chain",
        ylabel="reward kept vs the most expensive chain",
    )
    ax.set_title(f"revenue-computation frontier ({results.name})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    files.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path


def write_results(results: AllocationResults, out: Path, config: dict[str, Any] | None = None) -> list[Path]:
    """``allocation_<name>.md`` and ``_{policies,frontier,windows,adherence,energy,calibration}.csv``,
    ``_frontier.png`` and ``_config.json`` (when given) in ``out``, each aside and renamed."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"allocation_{results.name}"
    written = [files.write_text(out / f"{stem}.md", results.markdown())]
    tables = {
        "policies": results.at_budget,
        "frontier": results.frontier,
        "windows": results.windows,
        "adherence": results.adherence,
        "energy": results.energy,
        "calibration": results.calibration,
    }
    written += [files.write_csv(out / f"{stem}_{k}.csv", v) for k, v in tables.items()]
    written.append(plot_frontier(results, out / f"{stem}_frontier.png"))
    if config is not None:
        written.append(
            files.write_text(out / f"{stem}_config.json", json.dumps(config, indent=2, default=str) + "\n")
        )
    return [Path(p) for p in written]
