"""The tables and the figure of ``mokg eval memory``: written aside and renamed into place.

Files in ``out``: ``memory_<sets>.csv`` (one row per data set and method), ``.md`` (the tables with
the command that made them), ``_probes.jsonl`` (every probe: what was recalled, the reply, whether
it was right), ``_sizes.png`` (memory size over sessions, with and without forget/merge).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from consumers.memory.evaluate import MethodResult
from consumers.memory.run import KS
from graph import files


def summary(results: list[MethodResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        same, right = r.consistency()
        row: dict[str, object] = {"dataset": r.dataset, "method": r.method}
        row |= {f"recall@{k}": r.recall_at(k) for k in KS}
        row |= {
            f"hit@{max(KS)}": r.hit_at(max(KS)),
            f"turns/item@{max(KS)}": r.turns_per_item(max(KS)),
            "answer": r.answer_accuracy(),
            "answered": sum(p.correct is not None for p in r.probes),
            "same top-1": same,
            "all right": right,
            "memory (end)": r.sizes[-1] if r.sizes else float("nan"),
            "seconds": r.seconds,
            "probes": len(r.probes),
        }
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(results: list[MethodResult], command: str) -> str:
    table = summary(results)
    parts = [f"Made by: `{command}`", ""]
    for name, frame in table.groupby("dataset", sort=False):
        parts += [
            f"### {name}",
            "",
            frame.drop(columns=["dataset"]).to_markdown(index=False, floatfmt=".3f"),
            "",
        ]
    parts += [
        "recall@k: share of a probe's evidence turns covered by the top-k recalled items; hit@k: at least "
        "one; turns/item: turns a recalled item stands for (a merged thought stands for several); answer: "
        "the reply holds half the gold answer's content words (offline: the top 3 items' text; yes/no "
        "probes not scored); same top-1 / all right: paraphrase groups whose members recall the same "
        "first item / are all answered right; memory (end): active items per user after the last session.",
        "",
    ]
    return "\n".join(parts)


def plot_sizes(results: list[MethodResult], path: Path) -> Path:
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    sets = list(dict.fromkeys(r.dataset for r in results))
    fig = Figure(figsize=(5 * len(sets), 3.6))
    axes = fig.subplots(1, len(sets), squeeze=False)
    for ax, name in zip(axes[0], sets, strict=True):
        shown: set[tuple[float, ...]] = set()
        for r in results:
            key = tuple(r.sizes)
            if r.dataset != name or not r.sizes or key in shown:
                continue
            shown.add(key)
            label = {"tim": "TiM (forget + merge)", "tim-plain": "TiM thoughts, no forget/merge"}.get(
                r.method, r.method
            )
            ax.plot(range(1, len(r.sizes) + 1), r.sizes, marker="o", ms=3, label=label)
        ax.set(title=name, xlabel="session", ylabel="items in memory per user (mean)")
        ax.legend(fontsize=8)
    fig.tight_layout()
    files.write_file(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path


def write_results(results: list[MethodResult], out: Path, command: str) -> list[Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = out / ("memory_" + "-".join(dict.fromkeys(r.dataset for r in results)))
    written = [
        files.write_csv(stem.with_suffix(".csv"), summary(results)),
        files.write_text(stem.with_suffix(".md"), markdown(results, command)),
        files.write_text(
            Path(f"{stem}_probes.jsonl"),
            "".join(
                json.dumps({"dataset": r.dataset, "method": r.method, **asdict(p)}) + "\n"
                for r in results
                for p in r.probes
            ),
        ),
    ]
    written.append(plot_sizes(results, Path(f"{stem}_sizes.png")))
    return written
