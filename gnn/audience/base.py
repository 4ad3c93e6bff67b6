"""The one extension point for audience targeting: the :class:`Targeter` protocol and its registry.

A targeter is fitted once on a store (``fit(store, config)``: it reads what it needs through the
``GraphStore`` API and keeps no connection open), then scores every user of the store for a
campaign (``score(campaign)`` → a frame ``user_id, score``, best first) and, for the graph
methods, says which graph paths justify a user (``explain(user, campaign)``).

New methods are added by writing one class with a typed frozen config and one line in
:data:`TARGETERS`; nothing else changes (the CLI, the evaluation and the benchmark look methods up
here).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from graph.errors import MokgError
from graph.store import GraphStore

TARGETERS: dict[str, str] = {
    "rule": "gnn.audience.rule:RuleTargeter",
    "ppr": "gnn.audience.ppr:PPRTargeter",
    "gnn": "gnn.audience.gnn:GNNTargeter",
    "lookalike": "gnn.audience.lookalike:LookalikeTargeter",
    "density": "gnn.audience.density:DensityTargeter",
}
SCORE_COLUMNS = ["user_id", "score"]


class AudienceError(MokgError):
    """A campaign, method or export request that cannot be served (the message says why)."""


@dataclass(frozen=True)
class Campaign:
    """A campaign as the store shows it: targeted intents (with TARGETS confidence), domain, budget."""

    id: str
    intents: tuple[str, ...]
    weights: tuple[float, ...]
    domain: str | None
    budget: int | None


@dataclass(frozen=True)
class GraphPath:
    """One path from a campaign's intent to a user: node ids, their labels, the relations between."""

    ids: tuple[str, ...]
    labels: tuple[str, ...]
    relations: tuple[str, ...]
    weight: float

    def describe(self) -> str:
        parts = [f"{self.labels[0]}:{self.ids[0]}"]
        for rel, label, node in zip(self.relations, self.labels[1:], self.ids[1:], strict=True):
            parts.append(f"-[{rel}]- {label}:{node}")
        return " ".join(parts) + f"  (weight {self.weight:.3g})"


@runtime_checkable
class Targeter(Protocol):
    """Fit on a store, score every user for a campaign, explain a user's score."""

    name: str

    def fit(self, store: GraphStore, config: Any) -> Targeter: ...

    def score(self, campaign: str) -> pd.DataFrame: ...

    def explain(self, user: str, campaign: str) -> list[GraphPath]: ...


def config_hash(config: Any) -> str:
    """A short stable hash of a dataclass config (for provenance stamps)."""
    text = json.dumps(asdict(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def make_targeter(name: str) -> Targeter:
    """A new, unfitted targeter of the registered method ``name``."""
    if name not in TARGETERS:
        raise AudienceError(f"unknown targeting method {name!r}; choose one of: {', '.join(TARGETERS)}")
    module, cls = TARGETERS[name].split(":")
    targeter: Targeter = getattr(importlib.import_module(module), cls)()
    return targeter


def default_config(name: str) -> Any:
    """The method's config with its defaults (each targeter class names its ``config_type``)."""
    make_targeter(name)  # validates the name
    module, cls = TARGETERS[name].split(":")
    return getattr(importlib.import_module(module), cls).config_type()


def load_campaign(store: GraphStore, campaign_id: str) -> Campaign:
    """The campaign's intents, domain and budget; an unknown campaign is an :class:`AudienceError`."""
    df = store.run("audience_campaign", {"campaign_id": campaign_id})
    if not len(df):
        known = store.node_table("Campaign")["id"].tolist()
        hint = ", ".join(sorted(known)[:5]) or "none: ingest a world first"
        raise AudienceError(f"unknown campaign {campaign_id!r}; campaigns in the store include: {hint}")
    rows = df[df["intent"].notna()]
    domain = df["domain"].dropna()
    budget = df["budget"].dropna()
    return Campaign(
        id=campaign_id,
        intents=tuple(str(x) for x in rows["intent"]),
        weights=tuple(float(x) if pd.notna(x) else 1.0 for x in rows["weight"]),
        domain=str(domain.iloc[0]) if len(domain) else None,
        budget=int(budget.iloc[0]) if len(budget) else None,
    )


def score_frame(user_ids: Any, scores: Any) -> pd.DataFrame:
    """Every user with a score, best first (ties by user id, so the order is deterministic)."""
    df = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object), "score": np.asarray(scores, float)})
    return df.sort_values(["score", "user_id"], ascending=[False, True], ignore_index=True)


def positions(ids: Any, values: Any) -> np.ndarray:
    """Row of each of ``values`` in the id list ``ids`` (-1 where absent)."""
    return np.asarray(pd.Index(list(ids)).get_indexer(pd.Index(list(values))))


def store_users(store: GraphStore) -> list[str]:
    """All User ids of the store, sorted."""
    return sorted(store.node_table("User")["id"].astype(str).tolist())


def declared_kg_edges(store: GraphStore) -> list[tuple[str, str, str]]:
    """The edge types of a knowledge graph a user loaded into ``store``: every endpoint pair of
    the relation types declared there (``mokg schema list``) and, when there are any, ``SAME_AS``
    (Item → Entity), which links the catalogue to that KG's entities. Empty for a store without
    declared types."""
    keys = [(h, r.name, t) for r in store.schema.external_relations() for h, t in r.endpoints]
    return [("Item", "SAME_AS", "Entity"), *keys] if keys else []
