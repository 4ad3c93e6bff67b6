"""A :class:`~graph.subgraph.Subgraph` as a ``networkx.MultiDiGraph``.

Nodes are keyed ``"{label}:{id}"`` and carry ``label``, ``id`` and their non-null properties.
Edges are keyed by relation type and carry ``type`` plus their non-null properties. Timestamps
become UTC ISO strings and numpy scalars plain Python values, so the graph dumps to JSON as is.
The graph attribute ``graph_version`` is ``sub.version.as_dict()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from graph import files
from graph.export.props import EDGE_ENDS, plain, records
from graph.subgraph import Subgraph

if TYPE_CHECKING:
    import networkx as nx

NODE_LINK_FIELDS = {"edges": "edges", "name": "key", "source": "head", "target": "tail"}
"""Node-link JSON field names. networkx's defaults (``id``, ``source``) would overwrite the
node's ``id`` and the edge's provenance ``source``; read back with
``node_link_graph(d, **NODE_LINK_FIELDS)``.
"""


def node_key(label: str, id: str) -> str:
    """The networkx node key of node ``id`` of ``label``."""
    return f"{label}:{id}"


def to_networkx(sub: Subgraph) -> nx.MultiDiGraph:
    """Convert ``sub`` to a MultiDiGraph (layout above)."""
    import networkx as nx

    g = nx.MultiDiGraph(graph_version=sub.version.as_dict())
    for label, df in sub.nodes.items():
        for row in records(df):
            attrs = {k: plain(v) for k, v in row.items()}
            g.add_node(node_key(label, str(row["id"])), **{"label": label, **attrs})
    for (head, rel, tail), df in sub.edges.items():
        for row in records(df):
            attrs = {k: plain(v) for k, v in row.items() if k not in EDGE_ENDS}
            u, v = node_key(head, str(row["head"])), node_key(tail, str(row["tail"]))
            g.add_edge(u, v, key=rel, **{"type": rel, **attrs})
    return g


def write_networkx(sub: Subgraph, path: str | Path) -> Path:
    """Write ``sub`` as node-link JSON with the field names of :data:`NODE_LINK_FIELDS`."""
    import networkx as nx

    data = nx.node_link_data(to_networkx(sub), **NODE_LINK_FIELDS)
    return files.write_text(path, json.dumps(data, ensure_ascii=False, indent=1))
