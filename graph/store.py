"""The one `GraphStore` protocol, the store configuration, and the backend registry.

Backends register themselves in :data:`BACKENDS` (name → factory); :func:`open_store` picks one
from a :class:`StoreConfig` (built from ``MOKG_*`` environment variables by default).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import pandas as pd

from graph.errors import StoreError
from graph.schema import RelType, Schema
from graph.subgraph import EdgeKey, GraphVersion, Subgraph

LIMIT_ENV = {
    "wait_s": "MOKG_WAIT",
    "query_timeout_s": "MOKG_QUERY_TIMEOUT",
    "max_rows": "MOKG_MAX_ROWS",
    "max_query_chars": "MOKG_MAX_QUERY_CHARS",
    "max_query_depth": "MOKG_MAX_QUERY_DEPTH",
}


@dataclass(frozen=True)
class StoreConfig:
    """Where the graph lives and what a query may cost. ``from_env`` reads ``MOKG_STORE``,
    ``MOKG_PATH``, ``MOKG_NEO4J_*`` and the limits' variables (:data:`LIMIT_ENV`).

    The limits bound every query ``store.run`` sends (named or ad-hoc; 0 turns one off):
    ``query_timeout_s`` and ``max_rows``; ad-hoc Cypher text is also checked for its length and
    bracket nesting before any parser sees it. ``wait_s`` is how long opening an embedded store
    that another process holds keeps retrying before it gives up.
    """

    backend: str = "embedded"
    path: Path = Path("mokg-data/graph")
    neo4j_uri: str = "bolt://localhost:7687"
    neo4j_user: str = "neo4j"
    neo4j_password: str = ""
    neo4j_database: str | None = None
    batch_size: int | None = None  # rows per write batch; None = the backend's default
    connect_timeout_s: float = 5.0
    wait_s: float = 0.0
    query_timeout_s: float = 60.0
    max_rows: int = 10_000_000
    max_query_chars: int = 10_000
    max_query_depth: int = 50

    def __post_init__(self) -> None:
        for name in LIMIT_ENV:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
                raise StoreError(f"{name} must be a number >= 0 (0 turns it off), got {value!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StoreConfig:
        e = os.environ if env is None else env
        cfg = cls(
            backend=e.get("MOKG_STORE", cls.backend),
            path=Path(e.get("MOKG_PATH", str(cls.path))),
            neo4j_uri=e.get("MOKG_NEO4J_URI", cls.neo4j_uri),
            neo4j_user=e.get("MOKG_NEO4J_USER", cls.neo4j_user),
            neo4j_password=e.get("MOKG_NEO4J_PASSWORD", cls.neo4j_password),
            neo4j_database=e.get("MOKG_NEO4J_DATABASE") or None,
        )
        limits: dict[str, Any] = {
            name: _env_number(e, var, type(getattr(cls, name))) for name, var in LIMIT_ENV.items() if var in e
        }
        return replace(cfg, **{**limits, **{k: v for k, v in overrides.items() if v is not None}})

    def describe(self) -> str:
        if self.backend == "embedded":
            return f"embedded store at {self.path}"
        return f"{self.backend} store at {self.neo4j_uri} (database {self.neo4j_database or 'default'})"


def _env_number(env: Mapping[str, str], var: str, kind: type) -> float | int:
    text = env[var]
    try:
        value: float | int = kind(text)
    except ValueError:
        raise StoreError(f"{var} must be a number ({kind.__name__}), got {text!r}") from None
    if not value >= 0:
        raise StoreError(f"{var} must be >= 0 (0 turns the limit off), got {text!r}")
    return value


@dataclass
class TableReport:
    """What one load did to one node label or edge type. ``kept``: rows already in the store with
    other values, left as they were (a load that keeps existing rows)."""

    rows: int = 0
    created: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    kept: int | None = None


@dataclass
class LoadReport:
    run_id: str
    nodes: dict[str, TableReport] = field(default_factory=dict)
    edges: dict[str, TableReport] = field(default_factory=dict)

    def total_rows(self) -> int:
        return sum(t.rows for t in [*self.nodes.values(), *self.edges.values()])


@runtime_checkable
class GraphStore(Protocol):
    """The operations every backend offers. Writes are validated first, transactional, idempotent.

    ``schema`` is the store's: the MoKG's own (:data:`graph.schema.SCHEMA`) plus the relation
    types declared in the store (``declare_relations``, or ``bulk_load(relations=...)``); every
    read and write checks names against it."""

    backend: str
    dialect: str
    config: StoreConfig

    @property
    def schema(self) -> Schema: ...

    def refresh_schema(self) -> Schema: ...

    def init_schema(self) -> None: ...

    def declare_relations(self, relations: Sequence[RelType], *, run_id: str) -> LoadReport: ...

    def start_run(self, kind: str, note: str = "", source: str | None = None) -> str: ...

    def finish_run(self, run_id: str, *, ok: bool = True) -> None: ...

    def run_context(self, kind: str, note: str = "") -> AbstractContextManager[str]: ...

    def upsert_nodes(self, label: str, rows: Sequence[Mapping[str, Any]], *, run_id: str) -> TableReport: ...

    def upsert_edges(
        self,
        rel_type: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        run_id: str,
        head: str | None = None,
        tail: str | None = None,
    ) -> TableReport: ...

    def remove_edges(self, key: EdgeKey, pairs: Sequence[tuple[str, str]], *, run_id: str) -> int: ...

    def bulk_load(
        self,
        *,
        run_id: str,
        nodes: Mapping[str, pd.DataFrame] | None = None,
        edges: Mapping[str, pd.DataFrame] | Mapping[EdgeKey, pd.DataFrame] | None = None,
        progress: Callable[[str, int], None] | None = None,
        keep: Collection[str | EdgeKey] = (),
        relations: Sequence[RelType] = (),
    ) -> LoadReport: ...

    def run(
        self, query: str, params: Mapping[str, Any] | None = None, *, read_only: bool = True
    ) -> pd.DataFrame: ...

    def subgraph(
        self,
        labels: Sequence[str] | None = None,
        rel_types: Sequence[str] | None = None,
        seeds: Mapping[str, Sequence[str]] | None = None,
        hops: int = 1,
    ) -> Subgraph: ...

    def node_table(self, label: str, columns: Sequence[str] = ()) -> pd.DataFrame: ...

    def edge_table(self, key: str | EdgeKey, columns: Sequence[str] = ()) -> pd.DataFrame: ...

    def delete_run(self, run_id: str) -> dict[str, int]: ...

    def runs(self) -> pd.DataFrame: ...

    def version(self) -> GraphVersion: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


BackendFactory = Callable[[StoreConfig, bool], GraphStore]
BACKENDS: dict[str, str] = {
    "embedded": "graph.backends.embedded:EmbeddedStore",
    "neo4j": "graph.backends.neo4j_bolt:Neo4jStore",
}


def open_store(config: StoreConfig | None = None, *, create: bool = False) -> GraphStore:
    """Open the configured store. ``create=True`` makes a new embedded store where none exists."""
    import importlib

    cfg = config or StoreConfig.from_env()
    target = BACKENDS.get(cfg.backend)
    if target is None:
        raise StoreError(
            f"unknown store backend {cfg.backend!r}; set MOKG_STORE to one of: {', '.join(BACKENDS)}"
        )
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    store: GraphStore = cls(cfg, create)
    return store


def iter_batches(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
