"""The store's whole-graph reads: subgraphs (optionally a k-hop neighbourhood) and statistics.

:meth:`BaseStore.subgraph <graph.base.BaseStore.subgraph>` and ``stats`` delegate here; both
read through the store's named queries (``fetch_nodes``, ``khop_ids``, ``count_*``), so they work
the same on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from graph.errors import InputError
from graph.schema import KEY
from graph.subgraph import Subgraph

if TYPE_CHECKING:
    from graph.base import BaseStore


def fetch_nodes(store: BaseStore, label: str, ids: Sequence[str] | None) -> pd.DataFrame:
    """Every property of the ``label`` nodes (all of them, or those of ``ids``)."""
    lab = store.schema.label(label)
    cols = store._node_columns(lab.name)
    if ids is None:
        return store._read(store._q("fetch_nodes", label=lab.name, columns=cols))
    if not ids:
        return pd.DataFrame(columns=[p.name for p in lab.props])
    return store._read(store._q("fetch_nodes_by_id", label=lab.name, columns=cols), {"ids": list(ids)})


def khop(store: BaseStore, seeds: Mapping[str, Sequence[str]], hops: int) -> dict[str, set[str]]:
    """Label → ids of the nodes within ``hops`` of the ``seeds`` (the seeds included)."""
    from graph.tables import with_columns

    if not 1 <= hops <= 5:
        raise InputError(f"hops must be between 1 and 5, got {hops}")
    reached: dict[str, set[str]] = {}
    for label, ids in seeds.items():
        lab = store.schema.label(label).name
        reached.setdefault(lab, set()).update(ids)
        # a person chose the seeds and hops: the query runs under the limits of `run`
        df = store._user_read(store._q("khop_ids", label=lab, hops=hops), {"ids": list(ids)})
        df = with_columns(df, ["label", "id"])  # a Bolt server may name no columns for no rows
        for lbl, i in zip(df["label"], df["id"], strict=True):
            reached.setdefault(str(lbl), set()).add(str(i))
    return reached


def subgraph(
    store: BaseStore,
    labels: Sequence[str] | None,
    rel_types: Sequence[str] | None,
    seeds: Mapping[str, Sequence[str]] | None,
    hops: int,
) -> Subgraph:
    """See :meth:`graph.base.BaseStore.subgraph`."""
    schema = store._schema_for(rel_types or ())
    version = store.version()
    wanted = [schema.label(x).name for x in (labels or schema.data_labels())]
    rels = [schema.rel(r) for r in (rel_types or list(schema.rel_types))]
    reached = khop(store, seeds, hops) if seeds else None
    sub = Subgraph(version)
    for label in wanted:
        ids = None if reached is None else sorted(reached.get(label, set()))
        df = fetch_nodes(store, label, ids)
        if len(df):
            sub.nodes[label] = df.reset_index(drop=True)
    for rel in rels:
        for h, t in rel.endpoints:
            if h in sub.nodes and t in sub.nodes:
                df = store.edge_table((h, rel.name, t), [p.name for p in rel.props])
                if df.empty:
                    continue
                keep = df["head"].isin(sub.nodes[h][KEY]) & df["tail"].isin(sub.nodes[t][KEY])
                if keep.any():
                    sub.edges[(h, rel.name, t)] = df[keep].reset_index(drop=True)
    return sub


def stats(store: BaseStore) -> dict[str, Any]:
    """See :meth:`graph.base.BaseStore.stats`."""
    from graph.tables import edge_key_name

    schema = store.refresh_schema()
    nodes = {
        label: int(store._read(store._q("count_nodes", label=label))["c"].iloc[0])
        for label in [*schema.data_labels(), "Run"]
    }
    edges: dict[str, int] = {}
    for rel in schema.rel_types.values():
        for h, t in rel.endpoints:
            n = int(store._read(store._q("count_edges", head=h, rel=rel.name, tail=t))["c"].iloc[0])
            if n:
                edges[edge_key_name((h, rel.name, t))] = n
    return {
        "store": store.config.describe(),
        "version": store.version().as_dict(),
        "nodes": {k: v for k, v in nodes.items() if v},
        "edges": edges,
        "total_nodes": sum(v for k, v in nodes.items() if not schema.labels[k].system),
        "total_edges": sum(edges.values()),
        "runs": nodes.get("Run", 0),
    }
