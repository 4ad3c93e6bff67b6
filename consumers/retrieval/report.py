"""The retrieval evaluation's results: the table per seed, its mean ± std over seeds, the recall
curves, and how they are written (CSV, Markdown, a PNG figure of Recall@K per method).

``table``: one row per (seed, method, query set) with ``n_queries`` and one column per measure of
:mod:`.evaluate`. ``curves``: one row per (seed, method, query set, k) with ``recall``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from consumers.retrieval.evaluate import MEASURES
from graph import files

KEYS = ["method", "queries"]


@dataclass(frozen=True)
class RetrievalResults:
    """The per-seed table, the recall curves and the run's context (module doc)."""

    corpus: str
    table: pd.DataFrame
    ann_recall: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def seeds(self) -> list[int]:
        return sorted({int(s) for s in self.table["seed"]}) if "seed" in self.table else []

    def summary(self) -> pd.DataFrame:
        """Mean and std over seeds per (method, query set): ``n_queries`` (mean), ``{m}`` and
        ``{m}_std`` per measure (std NaN for one seed); rows in the table's order."""
        grouped = self.table.groupby(KEYS, sort=False)
        out = grouped[["n_queries", *MEASURES]].mean()
        std = grouped[list(MEASURES)].std().add_suffix("_std")
        return out.join(std).reset_index()

    def markdown(self) -> str:
        """The summary as a Markdown table (``mean ± std`` with several seeds) and the context."""
        summary = self.summary()
        several = len(self.seeds) > 1
        cols = [*KEYS, "n_queries", *MEASURES]
        head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"

        def cell(row: dict[Any, Any], col: str) -> str:
            if col in MEASURES:
                return f"{row[col]:.4f} ± {row[col + '_std']:.4f}" if several else f"{row[col]:.4f}"
            if col == "n_queries":
                return f"{row[col]:.0f}"
            return str(row[col])

        body = "".join(
            "| " + " | ".join(cell(r, c) for c in cols) + " |\n" for r in summary.to_dict("records")
        )
        notes = "".join(f"\n- {k}: {v}" for k, v in self.meta.items())
        ann = ", ".join(f"{k} {v:.4f}" for k, v in self.ann_recall.items())
        ann_line = f"\n- approximate index recall vs exact: {ann}" if ann else ""
        return f"{head}{body}{notes}{ann_line}\n"


def combine(parts: list[RetrievalResults]) -> RetrievalResults:
    """One result from the runs of several seeds (meta and ANN recall of the first; ``seeds`` listed)."""
    first = parts[0]
    meta = dict(first.meta) | {"seed": ", ".join(str(p.meta.get("seed")) for p in parts)}
    for key in first.meta:
        if key.startswith("trained "):
            meta[key] = " | ".join(str(p.meta.get(key, "-")) for p in parts)
    return RetrievalResults(
        first.corpus,
        pd.concat([p.table for p in parts], ignore_index=True),
        first.ann_recall,
        meta,
        pd.concat([p.curves for p in parts], ignore_index=True),
    )


def plot_recall(curves: pd.DataFrame, path: Path, title: str) -> Path:
    """Recall@K per method (mean over seeds), one panel per query set, written to ``path`` (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    mean = curves.groupby([*KEYS, "k"], sort=False)["recall"].mean().reset_index()
    sets = list(dict.fromkeys(mean["queries"]))
    fig = Figure(figsize=(5.2 * len(sets), 4.2))
    axes = fig.subplots(1, len(sets), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        for method, rows in mean[mean["queries"] == name].groupby("method", sort=False):
            ax.plot(rows["k"], rows["recall"], marker="o", ms=3, label=str(method))
        ax.set_xscale("log")
        ax.set_xlabel("K (items retrieved)")
        ax.set_ylabel("Recall@K")
        ax.set_ylim(0, 1)
        ax.set_title(f"{title}: {name} queries")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    files.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    return path


def write_results(results: RetrievalResults, out: Path) -> list[Path]:
    """``retrieval_<corpus>.csv`` (per seed), ``.md`` (the summary), ``_recall.csv`` and
    ``_recall.png`` (the curves) in ``out``, each written aside and renamed into place."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"retrieval_{results.corpus}"
    csv, md = out / f"{stem}.csv", out / f"{stem}.md"
    files.write_csv(csv, results.table)
    files.write_text(md, results.markdown())
    written = [csv, md]
    if not results.curves.empty:
        curve_csv = out / f"{stem}_recall.csv"
        files.write_csv(curve_csv, results.curves)
        written += [curve_csv, plot_recall(results.curves, out / f"{stem}_recall.png", results.corpus)]
    return written
