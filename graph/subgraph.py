"""A subgraph read out of a store: node and edge tables plus the graph version they came from.

Backends only produce this neutral form; the converters in :mod:`graph.export` turn it into
PyTorch Geometric ``HeteroData``, ``networkx``, RDF or Parquet, so every backend exports alike.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

EdgeKey = tuple[str, str, str]
"""(head label, relation type, tail label)."""


@dataclass(frozen=True)
class GraphVersion:
    """Which state of the graph a read saw.

    ``seq`` counts runs that have written to the store; ``run_id`` is the latest of them. Two reads
    with the same (seq, run_id) and no deleted run in between saw the same graph.
    """

    backend: str
    schema_version: str
    seq: int
    run_id: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.backend}:schema-v{self.schema_version}:seq-{self.seq}:{self.run_id or '-'}"


@dataclass
class Subgraph:
    """Node tables by label and edge tables by (head, type, tail).

    ``nodes[label]`` has a unique ``id`` column plus that label's properties. ``edges[key]`` has
    ``head`` and ``tail`` (node ids, always present in ``nodes``) plus the relation's properties.
    """

    version: GraphVersion
    nodes: dict[str, pd.DataFrame] = field(default_factory=dict)
    edges: dict[EdgeKey, pd.DataFrame] = field(default_factory=dict)

    def num_nodes(self) -> int:
        return sum(len(df) for df in self.nodes.values())

    def num_edges(self) -> int:
        return sum(len(df) for df in self.edges.values())

    def summary(self) -> dict[str, Any]:
        return {
            "version": self.version.as_dict(),
            "nodes": {label: len(df) for label, df in sorted(self.nodes.items())},
            "edges": {"|".join(k): len(df) for k, df in sorted(self.edges.items())},
        }
