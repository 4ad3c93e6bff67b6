"""What every reader returns: a :class:`Dataset` of node and edge frames, and how it goes in.

A dataset is shaped exactly for :meth:`graph.store.GraphStore.bulk_load` (columns are schema
property names; edge frames have ``head`` and ``tail``), has been validated in full by its
reader, and is written by :func:`ingest_dataset` in one transaction: all of it or nothing.

A dataset may bring relation types of its own (an external KG's, :attr:`Dataset.relations`): they
are declared in the store in the same transaction (:meth:`graph.store.GraphStore.bulk_load`).

A load never replaces what is stored unless asked: rows already in the graph (from this file
before, another dataset or a mining run) keep their values, only missing rows and properties are
added, and the rows whose values differ are reported as kept. ``overwrite=True`` replaces them
(``delete_run`` of the load puts the old values back), except in ``refs``: labels whose rows
only reference nodes by id (a triples file's endpoints, named after their ids) and must never
rename a node that exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pandas as pd

from graph.errors import InputError, SchemaError
from graph.schema import RelType
from graph.store import GraphStore, LoadReport
from graph.subgraph import EdgeKey


@dataclass(frozen=True)
class Dataset:
    """Node frames by label and edge frames by (head label, relation type, tail label)."""

    source: str
    nodes: dict[str, pd.DataFrame] = field(default_factory=dict)
    edges: dict[EdgeKey, pd.DataFrame] = field(default_factory=dict)
    refs: frozenset[str] = frozenset()
    relations: tuple[RelType, ...] = ()  # external relation types ``edges`` use, declared on load

    def counts(self) -> dict[str, int]:
        """Rows per label and per edge key, e.g. ``{"User": 3, "User-INTERACTED-Item": 5}``."""
        out = {label: len(df) for label, df in self.nodes.items()}
        out.update({"-".join(key): len(df) for key, df in self.edges.items()})
        return out


class Reader(Protocol):
    """One public file format in; a validated :class:`Dataset` out. Options live on the reader."""

    @property
    def name(self) -> str: ...

    def read(self, path: Path, *, domain: str | None = None) -> Dataset: ...


def ingest_dataset(
    store: GraphStore, dataset: Dataset, run_id: str, *, overwrite: bool = False
) -> LoadReport:
    """Write the dataset with one ``bulk_load`` (one transaction; idempotent). Stored values are
    kept unless ``overwrite`` (never for ``dataset.refs``)."""
    tables: list[str | EdgeKey] = [*dataset.nodes, *dataset.edges]
    keep = set(dataset.refs) if overwrite else set(tables)
    try:
        return store.bulk_load(
            run_id=run_id, nodes=dataset.nodes, edges=dataset.edges, keep=keep, relations=dataset.relations
        )
    except (InputError, SchemaError) as exc:
        raise type(exc)(f"{dataset.source}: {exc}") from None
