"""Property values as the converters see them: declared types, nulls, UTC timestamps.

Every converter walks the same node and edge tables; this module answers the three questions they
share: what type the schema declares for a column, whether a cell is null, and how a timestamp is
written (timezone-aware UTC ISO 8601; naive timestamps are taken as UTC, as the schema stores them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from graph.errors import InputError
from graph.schema import EDGE_COMMON, SCHEMA, Prop, PropType

EDGE_ENDS = ("head", "tail")
"""Columns of an edge table that name its endpoints rather than hold properties."""

NUMERIC_TYPES = frozenset({PropType.INT64, PropType.DOUBLE, PropType.BOOL})

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def declared_types(name: str, *, edge: bool) -> dict[str, PropType]:
    """Column name -> declared type for a label (``edge=False``) or relation type; for a relation
    type the MoKG's own schema lacks (one declared in a store), the properties every edge has."""
    table = SCHEMA.rel_types if edge else SCHEMA.labels
    owner = table.get(name)
    props: tuple[Prop, ...] = owner.props if owner is not None else EDGE_COMMON if edge else ()
    return {p.name: p.type for p in props}


def infer_type(value: object) -> PropType:
    """The type of an undeclared property, from its Python value."""
    if isinstance(value, bool | np.bool_):
        return PropType.BOOL
    if isinstance(value, int | np.integer):
        return PropType.INT64
    if isinstance(value, float | np.floating):
        return PropType.DOUBLE
    if isinstance(value, datetime | np.datetime64):
        return PropType.TIMESTAMP
    return PropType.STRING


def is_null(value: Any) -> bool:
    """True for None, NaN, NaT and pandas NA; False for any other scalar or container."""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def iso_utc(value: Any) -> str:
    """A timestamp as timezone-aware UTC ISO 8601, e.g. ``2024-05-01T12:00:00+00:00``."""
    ts = pd.Timestamp(value)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts.isoformat()


def plain(value: object) -> Any:
    """A JSON-friendly Python value: numpy scalars unboxed, timestamps as UTC ISO strings."""
    if isinstance(value, datetime | np.datetime64):
        return iso_utc(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def records(df: pd.DataFrame, *, drop: tuple[str, ...] = ()) -> Iterator[dict[str, Any]]:
    """Rows of ``df`` as dicts holding only their non-null cells, minus the ``drop`` columns."""
    for row in df.to_dict("records"):
        yield {str(k): v for k, v in row.items() if k not in drop and not is_null(v)}


def check_name(name: str, what: str) -> str:
    """``name`` if it is a plain identifier (safe in file names and IRIs), else an InputError."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"{what} {name!r} is not a plain identifier (letters, digits, '_'); "
            "rename it in the schema before exporting"
        )
    return name
