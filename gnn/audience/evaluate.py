"""`mokg eval audience`: every targeting method × graph condition against the world's hidden truth.

Conditions are stores that differ only in the KG they hold: ``none`` (the visible world: no
NEEDS/SERVES/CO_OCCURS_WITH/PRECEDES), ``truth`` (the same plus the world's ground-truth KG, an
oracle) and ``mined`` (a store holding the world plus a mined KG, given by path). ``none`` and
``truth`` are built under the work directory with :func:`loaders.ingest.ingest_world` (re-running is
a no-op). For each campaign of the world, with ``P`` its converters (``hidden/conversions.parquet``)
and K its budget (the Campaign node's ``budget``; the number of converters if missing), every
method ranks all users and :mod:`gnn.audience.metrics` scores the ranking. Lookalike and density
seeds for a campaign are cut from the conversion table by the rule in :mod:`gnn.audience.lookalike`:
only campaigns that ended before it started (``hidden/campaign_windows.parquet``). The GNN is
trained once per condition and shared by gnn, lookalike and density.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnn.audience.base import AudienceError, make_targeter
from gnn.audience.density import DensityTargeter, DensityTargeterConfig
from gnn.audience.gnn import GNNConfig, GNNTargeter
from gnn.audience.lookalike import ConversionLog, LookalikeTargeter
from gnn.audience.metrics import audience_metrics
from graph.store import GraphStore, StoreConfig, open_store
from loaders.world.layout import WorldDir

METHODS = ("rule", "ppr", "gnn", "lookalike", "density")
SEEDED = ("lookalike", "density")  # methods that score from the past conversion log (and the GNN)
CONDITIONS = ("none", "truth", "mined")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class EvalConfig:
    """Args: world: the world directory; work_dir: where the condition stores are built;
    mined_store: an embedded store with the world and a mined KG (adds the ``mined`` condition);
    methods, conditions: what to run; gnn: the GNN's config (its seed is ``seed``); density: the
    density targeter's (its GNN and log are the evaluation's, its seed ``seed``)."""

    world: Path
    work_dir: Path = Path("mokg-data/audience-eval")
    mined_store: Path | None = None
    methods: tuple[str, ...] = METHODS
    conditions: tuple[str, ...] = ("none", "truth")
    gnn: GNNConfig = field(default_factory=GNNConfig)
    density: DensityTargeterConfig = field(default_factory=DensityTargeterConfig)
    seed: int = 0


def condition_store(config: EvalConfig, condition: str) -> GraphStore:
    """The store for one graph condition (built from the world for ``none`` and ``truth``)."""
    from loaders.ingest import ingest_world

    if condition == "mined":
        if config.mined_store is None or not config.mined_store.exists():
            raise AudienceError(
                "the mined condition needs --mined-store PATH (a store with the world and a mined KG)"
            )
        return open_store(StoreConfig(path=config.mined_store))
    if condition not in CONDITIONS:
        raise AudienceError(f"unknown graph condition {condition!r}; use: {', '.join(CONDITIONS)}")
    store = open_store(StoreConfig(path=config.work_dir / f"store-{condition}"), create=True)
    ingest_world(store, config.world, with_truth_kg=condition == "truth")
    return store


def _truth(world: WorldDir) -> tuple[pd.DataFrame, pd.DataFrame]:
    conv = pd.read_parquet(world.hidden_for_evaluation("conversions.parquet"))
    windows = pd.read_parquet(world.hidden_for_evaluation("campaign_windows.parquet"))
    return conv, windows


def _past_log(conv: pd.DataFrame, windows: pd.DataFrame, campaign: str) -> ConversionLog:
    """The advertiser's log as of ``campaign``'s start: conversions of campaigns already over."""
    start = pd.to_datetime(windows.set_index("id")["start"])[campaign]
    over = windows["id"][pd.to_datetime(windows["end"]) < start]
    return ConversionLog(conv[conv["campaign"].isin(over) & (conv["campaign"] != campaign)], windows)


def _fit_all(
    config: EvalConfig, store: GraphStore, truth: tuple[pd.DataFrame, pd.DataFrame]
) -> dict[str, tuple[Any, float]]:
    """method → (fitted targeter, or the GNN for lookalike, or the AudienceError; fit seconds;
    density's include the GNN's)."""
    fitted: dict[str, tuple[Any, float]] = {}
    gnn: Any = None
    if {"gnn", *SEEDED} & set(config.methods):
        t0 = time.perf_counter()
        try:
            gnn = GNNTargeter().fit(store, replace(config.gnn, seed=config.seed))
        except AudienceError as exc:
            gnn = exc
        fitted["gnn"] = fitted["lookalike"] = fitted["density"] = (gnn, time.perf_counter() - t0)
    if "density" in config.methods and not isinstance(gnn, AudienceError):
        t0, gnn_s = time.perf_counter(), fitted["density"][1]
        no_log = ConversionLog(truth[0].iloc[:0], truth[1])  # each campaign's log comes at scoring
        density = DensityTargeter(no_log, gnn).fit(store, replace(config.density, seed=config.seed))
        fitted["density"] = (density, gnn_s + time.perf_counter() - t0)
    for method in config.methods:
        if method not in fitted:
            t0 = time.perf_counter()
            fitted[method] = (make_targeter(method).fit(store, None), time.perf_counter() - t0)
    return fitted


def _score_one(
    method: str,
    fitted: Any,
    store: GraphStore,
    campaign: str,
    truth: tuple[pd.DataFrame, pd.DataFrame],
) -> pd.DataFrame:
    if isinstance(fitted, AudienceError):
        raise fitted
    if method == "lookalike":  # the seed depends on the campaign: the log as of its start
        fitted = LookalikeTargeter(_past_log(*truth, campaign), fitted).fit(store)
    elif method == "density":  # fitted once per condition (PCA, population density); the seed here
        fitted = fitted.with_log(_past_log(*truth, campaign))
    ranked: pd.DataFrame = fitted.score(campaign)
    return ranked


def evaluate_condition(config: EvalConfig, condition: str, progress: Progress) -> list[dict[str, Any]]:
    """Per-campaign metric rows of every method on one condition's store."""
    conv, windows = _truth(WorldDir(config.world))
    rows: list[dict[str, Any]] = []
    with condition_store(config, condition) as store:
        budgets = store.node_table("Campaign", ["budget"]).set_index("id")["budget"]
        fitted = _fit_all(config, store, (conv, windows))
        for method in config.methods:
            progress(f"{condition}: {method}")
            for campaign in sorted(windows["id"]):
                positives = set(conv["user"][conv["campaign"] == campaign])
                k = int(budgets.get(campaign, len(positives)) or len(positives))
                row: dict[str, Any] = {"method": method, "condition": condition, "campaign": campaign}
                t0 = time.perf_counter()
                try:
                    ranked = _score_one(method, fitted[method][0], store, campaign, (conv, windows))
                    row.update(audience_metrics(ranked, positives, k).as_dict())
                    row["score_s"] = time.perf_counter() - t0
                except AudienceError as exc:
                    row.update(k=k, positives=len(positives), note=str(exc))
                rows.append({**row, "fit_s": fitted[method][1]})
    return rows


def summarise(per_campaign: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, condition): campaigns scored, mean P@K, R@K, AUC, lift, micro P@K."""
    out = []
    for (method, condition), g in per_campaign.groupby(["method", "condition"], sort=False):
        ok = g.dropna(subset=["precision"]) if "precision" in g else g.iloc[0:0]
        out.append(
            {
                "method": method,
                "condition": condition,
                "campaigns": f"{len(ok)}/{len(g)}",
                "precision@K": ok["precision"].mean() if len(ok) else np.nan,
                "recall@K": ok["recall"].mean() if len(ok) else np.nan,
                "AUC": ok["auc"].mean() if len(ok) else np.nan,
                "lift@K": ok["lift"].mean() if len(ok) else np.nan,
                "micro_precision@K": ok["hits"].sum() / ok["k"].sum() if len(ok) else np.nan,
                "fit_s": g["fit_s"].iloc[0],
            }
        )
    return pd.DataFrame(out)


def evaluate(config: EvalConfig, progress: Progress = lambda _: None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-campaign rows, summary table) over ``config.conditions`` × ``config.methods``."""
    for m in config.methods:
        make_targeter(m)
    conditions = list(config.conditions)
    if config.mined_store is not None and "mined" not in conditions:
        conditions.append("mined")
    rows = [r for c in conditions for r in evaluate_condition(config, c, progress)]
    per_campaign = pd.DataFrame(rows)
    return per_campaign, summarise(per_campaign)
