"""Audiences in the workbench: campaigns, a method's size curve and sample, overlap, export.

Methods and their configs are the CLI's (:func:`gnn.audience.configs.method_config`, the
registry :data:`gnn.audience.base.TARGETERS`); errors are the project's one-line ones (the app
answers them with 400); export goes through exactly the CLI's guards and
audit (:mod:`gnn.audience.export`: ``audited``, ``check_request``, ``export_audience``), so a
refused export reads the CLI's message. Fitting (a GNN's training) is slow: fitted targeters are
kept in a :class:`TargeterCache` for the app's life, per method, config hash and graph version (a
write to the store, such as retiring a fact, makes the next request fit again).

Overlap between two methods is the Jaccard index of their top-N users, |A ∩ B| / |A ∪ B|.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnn.audience.base import TARGETERS, Targeter, config_hash, load_campaign, make_targeter
from graph.errors import InputError
from graph.store import GraphStore

CURVE_POINTS = 100
MAX_SAMPLE = 50
MAX_PATHS = 5
FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class MethodChoice:
    """Args: method (rule, ppr, gnn, lookalike, density); seed, features, epochs: the GNN's (gnn,
    lookalike, density), as `mokg audience score --seed --features`; epochs None: its default;
    conversions, windows: the advertiser's conversion log and campaign schedule (lookalike,
    density), as `--conversion-log --campaign-windows`."""

    method: str
    seed: int = 0
    features: bool = True
    epochs: int | None = None
    conversions: Path | None = None
    windows: Path | None = None

    def __post_init__(self) -> None:
        if self.method not in TARGETERS:
            known = ", ".join(TARGETERS)
            raise InputError(f"unknown targeting method {self.method!r}; choose one of: {known}")
        if not 0 <= self.seed < 2**32:
            raise InputError(f"seed must be 0..2**32-1, got {self.seed}")
        if self.epochs is not None and not 1 <= self.epochs <= 1000:
            raise InputError(f"epochs must be 1..1000 (or left out for the default), got {self.epochs}")

    def config(self) -> Any:
        from gnn.audience.configs import method_config

        return method_config(
            self.method, self.seed, self.features, self.conversions, self.windows, epochs=self.epochs
        )


class TargeterCache:
    """Fitted targeters by (method, config hash), each with the graph version it was fitted on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fitted: dict[tuple[str, str], tuple[str, Targeter]] = {}

    def get(self, store: GraphStore, choice: MethodChoice) -> Targeter:
        """The fitted targeter (fitted now when absent or fitted on an older graph version).
        Call it under the app's store lock, so one request fits and the others wait for it."""
        config = choice.config()
        key, version = (choice.method, config_hash(config)), str(store.version())
        with self._lock:
            hit = self._fitted.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        targeter = make_targeter(choice.method).fit(store, config)
        with self._lock:
            self._fitted[key] = (version, targeter)
        return targeter


def campaigns(store: GraphStore) -> list[dict[str, Any]]:
    """Every campaign with its intents, domain and budget."""
    table = store.node_table("Campaign", ["name"])
    out = []
    for cid, name in zip(table["id"].astype(str), table["name"], strict=True):
        info = load_campaign(store, cid)
        out.append(
            {
                "id": cid,
                "name": name if isinstance(name, str) else None,
                "intents": list(info.intents),
                "domain": info.domain,
                "budget": info.budget,
            }
        )
    return sorted(out, key=lambda c: c["id"])


def _check_size(size: int) -> None:
    if not 1 <= size <= 10_000_000:
        raise InputError(f"size must be a positive number of users, got {size}")


def ranked(store: GraphStore, cache: TargeterCache, campaign: str, choice: MethodChoice) -> pd.DataFrame:
    """Every user scored for ``campaign`` by the method, best first."""
    load_campaign(store, campaign)
    return cache.get(store, choice).score(campaign)


def _why(targeter: Targeter, user: str, campaign: str) -> list[str]:
    return [p.describe() for p in targeter.explain(user, campaign)[:MAX_PATHS]]


def preview(
    store: GraphStore, cache: TargeterCache, campaign: str, choice: MethodChoice, size: int, sample: int = 10
) -> dict[str, Any]:
    """The size curve (score at rank, at most :data:`CURVE_POINTS` ranks), ``sample`` users spread
    over the top ``size`` with the paths that explain them, and how many users score above 0."""
    _check_size(size)
    if not 0 <= sample <= MAX_SAMPLE:
        raise InputError(f"sample must be 0..{MAX_SAMPLE}, got {sample}")
    scores = ranked(store, cache, campaign, choice)
    n = len(scores)
    ranks = np.unique(np.linspace(1, n, min(n, CURVE_POINTS)).round().astype(int)) if n else np.zeros(0, int)
    top = scores.head(size)
    spread = np.linspace(0, len(top) - 1, min(sample, len(top))) if len(top) else np.zeros(0)
    picks = np.unique(spread.round().astype(int))
    targeter = cache.get(store, choice)
    users = [
        {
            "rank": int(i) + 1,
            "user": str(top["user_id"].iloc[i]),
            "score": float(top["score"].iloc[i]),
            "why": _why(targeter, str(top["user_id"].iloc[i]), campaign),
        }
        for i in picks
    ]
    return {
        "campaign": campaign,
        "method": choice.method,
        "users": n,
        "size": len(top),
        "threshold": float(top["score"].iloc[-1]) if len(top) else None,
        "reached": int((scores["score"] > 0).sum()),
        "sizes": [int(r) for r in ranks],
        "scores": [float(scores["score"].iloc[r - 1]) for r in ranks],
        "sample": users,
    }


def overlap(
    store: GraphStore, cache: TargeterCache, campaign: str, choices: list[MethodChoice], size: int
) -> dict[str, Any]:
    """The Jaccard index of every two methods' top ``size`` users."""
    _check_size(size)
    names = [c.method for c in choices]
    if not 1 <= len(choices) <= len(TARGETERS) or len(set(names)) != len(names):
        raise InputError(f"give 1..{len(TARGETERS)} different methods, got {names}")
    tops = [set(ranked(store, cache, campaign, c).head(size)["user_id"].astype(str)) for c in choices]
    matrix = [[len(a & b) / len(a | b) if a | b else 1.0 for b in tops] for a in tops]
    sizes = [len(t) for t in tops]
    return {"campaign": campaign, "size": size, "methods": names, "sizes": sizes, "matrix": matrix}


@dataclass(frozen=True)
class ExportRequest:
    """Args: as `mokg audience export`: campaign, size, min_size, salt (--hash-salt),
    with_attributes; fmt: parquet or csv (the file is named by the workbench, in its exports folder)."""

    campaign: str
    size: int
    min_size: int | None = None
    salt: str | None = None
    with_attributes: bool = False
    fmt: str = "parquet"

    def __post_init__(self) -> None:
        if self.fmt not in FORMATS:
            raise InputError(f"format must be one of {', '.join(FORMATS)}, got {self.fmt!r}")

    def out(self, folder: Path, method: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.campaign)[:80] or "campaign"
        stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
        return folder / f"{safe}-{method}-{stamp}.{self.fmt}"


def export(
    store: GraphStore,
    cache: TargeterCache,
    request: ExportRequest,
    choice: MethodChoice,
    exports: Path,
    audit_log: Path,
) -> dict[str, Any]:
    """Export as `mokg audience export` does (same order: audited, cheap checks, campaign, fit,
    export); a refusal is the CLI's AudienceError (answered 400 with its message). The manifest,
    with the paths of the file and the manifest."""
    from gnn.audience.export import ExportConfig, audited, check_request, export_audience, manifest_path

    out = request.out(exports, choice.method)
    cfg = ExportConfig(
        request.campaign,
        request.size,
        choice.method,
        out,
        request.min_size,
        request.salt,
        request.with_attributes,
        audit_log,
        False,
    )
    with audited(cfg) as attempt:
        check_request(cfg)
        load_campaign(store, request.campaign)
        config = choice.config()
        manifest = export_audience(store, cache.get(store, choice), config, cfg, attempt)
    return {**manifest, "file": str(out), "manifest": str(manifest_path(out))}
