"""The density evaluation's results (issue 19): the table per seed, its mean ± std over seeds, and
how they are written (CSV, Markdown, the run's config as JSON, a PNG grid of samples for the 2-D
sets).

``table``: one row per (seed, data set, method) with the columns of
:func:`consumers.density.evaluate.evaluate`. ``samples``: the first seed's samples per (data set,
method), 2-D sets only, at most :data:`PLOT_POINTS` each; ``data``: the train points shown beside them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from graph import files

KEYS = ["dataset", "method"]
MEASURES = {
    "fit_s": ("fit s", ".1f"),
    "sample_s_10k": ("sample s/10k", ".3g"),
    "test_loglik": ("test loglik", ".3f"),
    "mmd2": ("MMD²", ".4f"),
    "energy": ("energy", ".4f"),
    "sliced_w1": ("SW1", ".4f"),
    "c2st": ("C2ST", ".3f"),
    "memo_median_ratio": ("memo ratio", ".2f"),
    "memo_share": ("memo share", ".3f"),
    "memo_share_heldout": ("held-out share", ".3f"),
}
"""column → (heading, format) of the Markdown table."""
PLOT_POINTS = 2000


@dataclass(frozen=True)
class DensityResults:
    """The per-seed table, the run's notes (``meta``, with the command) and the 2-D samples."""

    name: str
    table: pd.DataFrame
    meta: dict[str, str] = field(default_factory=dict)
    samples: dict[tuple[str, str], NDArray[np.float64]] = field(default_factory=dict)
    data: dict[str, NDArray[np.float64]] = field(default_factory=dict)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(s) for s in self.table["seed"]})

    def summary(self) -> pd.DataFrame:
        """Mean and std over seeds per (data set, method): ``{m}`` and ``{m}_std`` per measure (std
        NaN for one seed); rows in the table's order."""
        grouped = self.table.groupby(KEYS, sort=False)
        out = grouped[["dim", "n_train", *MEASURES]].mean()
        return out.join(grouped[list(MEASURES)].std().add_suffix("_std")).reset_index()

    def markdown(self) -> str:
        """The command, the summary table (``mean ± std`` with several seeds) and the notes."""
        several = len(self.seeds) > 1
        heads = ["data set", "method", *(h for h, _ in MEASURES.values())]
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        for r in self.summary().to_dict("records"):
            cells = [f"{r['dataset']} ({r['dim']:.0f}-d, {r['n_train']:.0f} train)", str(r["method"])]
            cells += [_cell(r[m], r[f"{m}_std"], fmt, several) for m, (_, fmt) in MEASURES.items()]
            lines.append("| " + " | ".join(cells) + " |")
        command = self.meta.get("command", "")
        notes = "".join(f"\n- {k}: {v}" for k, v in self.meta.items() if k != "command")
        return f"`{command}`\n\n" + "\n".join(lines) + "\n" + notes + "\n"


def _cell(mean: float, std: float, fmt: str, several: bool) -> str:
    if math.isnan(mean):
        return "—"
    return f"{mean:{fmt}} ± {std:{fmt}}" if several and not math.isnan(std) else f"{mean:{fmt}}"


def plot_samples(results: DensityResults, path: Path) -> Path:
    """Scatter plots of the 2-D sets: one row per data set, columns the train data and each method."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    sets = list(results.data)
    methods = list(dict.fromkeys(m for _, m in results.samples))
    fig = Figure(figsize=(2.3 * (1 + len(methods)), 2.3 * len(sets)))
    axes = fig.subplots(len(sets), 1 + len(methods), squeeze=False)
    for i, name in enumerate(sets):
        panels = [("data (train)", results.data[name])]
        panels += [(m, results.samples[(name, m)]) for m in methods if (name, m) in results.samples]
        lim = np.quantile(np.abs(results.data[name]), 0.995) * 1.3
        for ax, (title, points) in zip(axes[i], panels, strict=False):
            ax.scatter(points[:, 0], points[:, 1], s=1, alpha=0.5, linewidths=0)
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
            ax.set_title(title if i == 0 else "", fontsize=9)
        axes[i][0].set_ylabel(name, fontsize=9)
    fig.tight_layout()
    files.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path


def write_results(results: DensityResults, out: Path, config: dict[str, Any] | None = None) -> list[Path]:
    """``density_<name>.csv`` (per seed), ``.md`` (the summary), ``_config.json`` (``config``, when
    given) and, with 2-D sets, ``_samples.png`` in ``out``, each written aside and renamed into place."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"density_{results.name}"
    csv, md = out / f"{stem}.csv", out / f"{stem}.md"
    files.write_csv(csv, results.table)
    files.write_text(md, results.markdown())
    written = [csv, md]
    if config is not None:
        written.append(out / f"{stem}_config.json")
        files.write_text(written[-1], json.dumps(config, indent=2, default=str) + "\n")
    if results.data:
        written.append(plot_samples(results, out / f"{stem}_samples.png"))
    return written
