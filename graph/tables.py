"""Arrow tables typed by the schema, as the stores write them; frames with fixed columns as they read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from graph.changes import Target
from graph.changes import target_props as props_of
from graph.errors import InputError
from graph.schema import SCHEMA, Prop, PropType, Schema
from graph.subgraph import EdgeKey
from graph.validate import ARROW_TYPES

HEAD_TAIL = (Prop("head", PropType.STRING), Prop("tail", PropType.STRING))


def edge_key_name(key: EdgeKey) -> str:
    return f"({key[0]})-[:{key[1]}]->({key[2]})"


def rows_table(rows: list[dict[str, Any]], props: Sequence[Prop]) -> pa.Table:
    """Validated rows as an Arrow table typed by the schema."""
    by_name = {p.name: p for p in props}
    cols = list(rows[0]) if rows else []
    fields = [pa.field(c, ARROW_TYPES[by_name[c].type]) for c in cols]
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def typed_table(frame: pd.DataFrame, target: Target, schema: Schema = SCHEMA) -> pa.Table:
    """A frame of key and property columns as Arrow, typed by the schema (nulls included)."""
    props = {**props_of(target, schema), "head": HEAD_TAIL[0], "tail": HEAD_TAIL[1]}
    fields = [pa.field(str(c), ARROW_TYPES[props[str(c)].type]) for c in frame.columns]
    return pa.Table.from_pandas(frame, schema=pa.schema(fields), preserve_index=False)


def with_columns(df: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``df`` with exactly ``columns`` (some Bolt servers send no column names for no rows)."""
    if df.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    return df[columns]


def with_confidence(where: str, table: pa.Table) -> pa.Table:
    """``table`` with a ``confidence`` column: absent or null means 1.0 (observed); outside [0, 1] is an
    error naming the first row."""
    if "confidence" not in table.column_names:
        return table.append_column("confidence", pa.array([1.0] * table.num_rows, pa.float64()))
    filled = pc.fill_null(table.column("confidence"), 1.0)  # like upsert_edges: absent means observed
    table = table.set_column(table.column_names.index("confidence"), "confidence", filled)
    conf = filled.to_numpy(zero_copy_only=False)
    bad = ~((conf >= 0.0) & (conf <= 1.0))
    if bad.any():
        row = int(bad.argmax())
        raise InputError(f"{where}: confidence must lie in [0, 1]; row {row} holds {conf[row]}")
    return table
