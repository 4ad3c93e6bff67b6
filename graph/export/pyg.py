"""A :class:`~graph.subgraph.Subgraph` as PyTorch Geometric ``HeteroData``.

Layout
- one node type per label: ``data[label].num_nodes`` and ``data[label].node_id`` (the string ids,
  in row order). If the label has numeric properties (INT64, DOUBLE or BOOL in the schema) with no
  null cell, they go in ``data[label].x`` (float32, ``[N, F]``) and their names in
  ``data[label].x_names``; columns with any null are left out rather than imputed.
- one edge type per ``(head label, relation, tail label)``: ``edge_index`` (long, ``[2, E]``) and
  ``edge_attr`` = confidence (float32, ``[E, 1]``). A table without a ``confidence`` column gets
  1.0 for every edge; a ``confidence`` column with a null is an InputError, never filled in, so
  ``edge_attr`` holds only beliefs the store actually recorded.
- ``data.graph_version`` = ``sub.version.as_dict()`` (provenance).

:class:`IdMaps` turns string ids into row indices and back.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from graph import files
from graph.errors import InputError
from graph.export.props import NUMERIC_TYPES, declared_types
from graph.subgraph import EdgeKey, Subgraph

if TYPE_CHECKING:
    import torch
    from torch_geometric.data import HeteroData


@dataclass(frozen=True)
class IdMaps:
    """Node id <-> row index, per label, for a ``HeteroData`` built by :func:`to_heterodata`."""

    to_index: dict[str, dict[str, int]]
    to_id: dict[str, list[str]]

    @classmethod
    def from_ids(cls, to_id: dict[str, list[str]]) -> IdMaps:
        """Build both directions from label -> ids in row order; ids must be unique per label."""
        to_index = {label: {id_: i for i, id_ in enumerate(ids)} for label, ids in to_id.items()}
        for label, ids in to_id.items():
            if len(to_index[label]) != len(ids):
                dupes = sorted(pd.Series(ids)[pd.Series(ids).duplicated()].unique())[:5]
                raise InputError(f"label {label} has duplicate node ids {dupes}; dedupe the table")
        return cls(to_index=to_index, to_id=to_id)

    def index(self, label: str, id: str) -> int:
        """The row of node ``id`` in ``data[label]``."""
        try:
            return self.to_index[self._label(label)][id]
        except KeyError:
            raise InputError(f"no {label} node with id {id!r} in this export") from None

    def id(self, label: str, index: int) -> str:
        """The id of row ``index`` of ``data[label]``."""
        ids = self.to_id[self._label(label)]
        if not 0 <= index < len(ids):
            raise InputError(f"{label} has {len(ids)} nodes; row {index} is out of range")
        return ids[index]

    def _label(self, label: str) -> str:
        if label not in self.to_id:
            raise InputError(
                f"label {label!r} is not in this export; it has: {', '.join(sorted(self.to_id))}"
            )
        return label


def to_heterodata(sub: Subgraph) -> tuple[HeteroData, IdMaps]:
    """Convert ``sub`` to ``HeteroData`` plus the id maps of its node types (layout above)."""
    from torch_geometric.data import HeteroData

    id_maps = IdMaps.from_ids({label: _ids(label, df) for label, df in sub.nodes.items()})
    data = HeteroData()
    for label, df in sub.nodes.items():
        data[label].num_nodes = len(df)
        data[label].node_id = id_maps.to_id[label]
        names, x = _features(label, df)
        if x is not None:
            data[label].x = x
            data[label].x_names = names
    for key, df in sub.edges.items():
        data[key].edge_index = _edge_index(key, df, id_maps)
        data[key].edge_attr = _confidence(key, df)
    data.graph_version = sub.version.as_dict()
    return data, id_maps


def save_heterodata(sub: Subgraph, path: str | Path) -> Path:
    """Convert ``sub`` and ``torch.save`` data, id maps and graph version to ``path`` (``.pt``)."""
    import torch

    data, id_maps = to_heterodata(sub)
    payload = {
        "data": data,
        "id_maps": {"to_id": id_maps.to_id},
        "graph_version": sub.version.as_dict(),
    }
    return files.write_file(path, lambda tmp: torch.save(payload, tmp))


def load_heterodata(path: str | Path) -> tuple[HeteroData, IdMaps]:
    """Read a file written by :func:`save_heterodata` back as (data, id maps).

    The graph version is ``data.graph_version`` (also stored beside it in the file).

    ``weights_only=False`` is needed because ``HeteroData`` is a Python object outside torch's
    safe-unpickling allowlist; it runs pickle, so load only files you (or mokg) wrote.
    """
    import torch

    if not Path(path).is_file():
        raise InputError(f"no HeteroData file at {path}; write one with save_heterodata")
    payload = torch.load(path, weights_only=False)
    id_maps = IdMaps.from_ids({k: list(v) for k, v in payload["id_maps"]["to_id"].items()})
    return payload["data"], id_maps


def _ids(label: str, df: pd.DataFrame) -> list[str]:
    if "id" not in df.columns or df["id"].isna().any():
        raise InputError(f"node table {label} needs an 'id' column with no nulls")
    return [str(v) for v in df["id"]]


def _features(label: str, df: pd.DataFrame) -> tuple[list[str], torch.Tensor | None]:
    import torch

    types = declared_types(label, edge=False)
    names = [c for c in df.columns if types.get(str(c)) in NUMERIC_TYPES and not df[c].isna().any()]
    if not names:
        return [], None
    x = df[names].to_numpy(dtype=np.float32, copy=True)
    return [str(c) for c in names], torch.from_numpy(x)


def _edge_index(key: EdgeKey, df: pd.DataFrame, id_maps: IdMaps) -> torch.Tensor:
    import torch

    rows = []
    for label, column in ((key[0], "head"), (key[2], "tail")):
        if label not in id_maps.to_id:
            raise InputError(f"edges {key} need node table {label}; the subgraph has none")
        index = pd.Index(id_maps.to_id[label]).get_indexer(pd.Index(df[column].astype(str)))
        if (index < 0).any():
            missing = sorted(set(df[column].astype(str)[index < 0]))[:5]
            raise InputError(f"edges {key} name {label} ids not in its node table: {missing}")
        rows.append(index)
    return torch.from_numpy(np.stack(rows).astype(np.int64)).reshape(2, len(df))


def _confidence(key: EdgeKey, df: pd.DataFrame) -> torch.Tensor:
    import torch

    if "confidence" not in df.columns:
        return torch.ones((len(df), 1), dtype=torch.float32)
    if df["confidence"].isna().any():
        raise InputError(
            f"edges {key} have null confidence in {int(df['confidence'].isna().sum())} rows; "
            "fill or drop them before exporting (nulls are not guessed)"
        )
    values = df["confidence"].to_numpy(dtype=np.float32).reshape(-1, 1)
    return torch.from_numpy(values.copy())
