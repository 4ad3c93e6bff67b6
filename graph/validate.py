"""Check rows and frames against the schema before anything reaches a database.

Every write path validates its whole input first, so bad input is refused with one clear error
and nothing is half-written. Errors name the label or relation, the row and the column. Keys
(``id``, and an edge's ``head`` and ``tail``) are non-empty strings of at most
:data:`MAX_KEY_LENGTH` characters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from graph.errors import InputError
from graph.schema import (
    EDGE_SYSTEM_PROPS,
    KEY,
    NODE_SYSTEM_PROPS,
    SCHEMA,
    Prop,
    PropType,
    Schema,
)

Row = dict[str, Any]
MAX_KEY_LENGTH = 1024  # characters in a node id (and so in an edge's head or tail)
ARROW_TYPES: dict[PropType, pa.DataType] = {
    PropType.STRING: pa.string(),
    PropType.INT64: pa.int64(),
    PropType.DOUBLE: pa.float64(),
    PropType.BOOL: pa.bool_(),
    PropType.TIMESTAMP: pa.timestamp("us"),
}


def to_utc(value: Any) -> datetime:
    """A naive UTC datetime from a datetime, pandas Timestamp or ISO-8601 string."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    if not isinstance(value, datetime):
        raise TypeError(value)
    result: datetime = value
    if result.tzinfo is not None:
        result = result.astimezone(UTC).replace(tzinfo=None)
    return result


def coerce_value(prop: Prop, value: Any) -> Any:
    """The value as the Python type the backends expect, or TypeError/ValueError."""
    if value is None:
        return None
    t = prop.type
    if t is PropType.STRING and isinstance(value, str):
        return value
    if t is PropType.INT64 and isinstance(value, int) and not isinstance(value, bool):
        return value
    if t is PropType.DOUBLE and isinstance(value, int | float) and not isinstance(value, bool):
        if math.isnan(value):
            return None
        return float(value)
    if t is PropType.BOOL and isinstance(value, bool):
        return value
    if t is PropType.TIMESTAMP:
        return to_utc(value)
    raise TypeError(value)


def _check_row(where: str, row: Mapping[str, Any], props: dict[str, Prop], system: frozenset[str]) -> Row:
    if not isinstance(row, Mapping):
        raise InputError(f"{where}: expected a mapping of property -> value, got {type(row).__name__}")
    out: Row = {}
    for name, value in row.items():
        if name in system:
            raise InputError(f"{where}: {name!r} is set by the store; leave it out of the row")
        prop = props.get(name)
        if prop is None:
            raise InputError(f"{where}: unknown property {name!r}; allowed: {', '.join(sorted(props))}")
        try:
            out[name] = coerce_value(prop, value)
        except (TypeError, ValueError):
            raise InputError(
                f"{where}: property {name!r} must be {prop.type.value}, got {type(value).__name__} {value!r}"
            ) from None
    return out


def _require_key(where: str, row: Row, key: str) -> str:
    value = row.get(key)
    if not isinstance(value, str) or not value:
        raise InputError(f"{where}: missing its key {key!r} (a non-empty string)")
    if len(value) > MAX_KEY_LENGTH:
        raise InputError(f"{where}: {_too_long(key, len(value))}")
    return value


def _too_long(key: str, length: int) -> str:
    return f"key {key!r} is {length:,} characters long; keys may have at most {MAX_KEY_LENGTH:,}"


def _pad(rows: list[Row], columns: Iterable[str]) -> list[Row]:
    cols = list(columns)
    return [{c: r.get(c) for c in cols} for r in rows]


def validate_node_rows(label: str, rows: Sequence[Mapping[str, Any]], schema: Schema = SCHEMA) -> list[Row]:
    """Rows for ``label``: keys present and unique, properties declared and well-typed."""
    lab = schema.label(label)
    props = {p.name: p for p in lab.props}
    out: list[Row] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(rows):
        where = f"{label} row {i}"
        row = _check_row(where, raw, props, NODE_SYSTEM_PROPS)
        key = _require_key(where, row, KEY)
        if key in seen:
            raise InputError(f"{where}: duplicate key id={key!r} (also row {seen[key]})")
        seen[key] = i
        out.append(row)
    columns = sorted({c for r in out for c in r})
    return _pad(out, columns)


def validate_edge_rows(
    rel_type: str, rows: Sequence[Mapping[str, Any]], schema: Schema = SCHEMA
) -> list[Row]:
    """Rows for ``rel_type``: ``head``/``tail`` ids present, (head, tail) unique, props typed.

    ``confidence`` defaults to 1.0 (an observed fact) and must lie in [0, 1].
    """
    rel = schema.rel(rel_type)
    props = {p.name: p for p in rel.props}
    props["head"] = Prop("head", PropType.STRING)
    props["tail"] = Prop("tail", PropType.STRING)
    out: list[Row] = []
    seen: dict[tuple[str, str], int] = {}
    for i, raw in enumerate(rows):
        where = f"{rel_type} row {i}"
        row = _check_row(where, raw, props, EDGE_SYSTEM_PROPS)
        pair = (_require_key(where, row, "head"), _require_key(where, row, "tail"))
        if pair in seen:
            raise InputError(f"{where}: duplicate edge {pair[0]!r}->{pair[1]!r} (also row {seen[pair]})")
        seen[pair] = i
        conf = row.get("confidence")
        if conf is None:
            row["confidence"] = 1.0
        elif not 0.0 <= conf <= 1.0:
            raise InputError(f"{where}: confidence must lie in [0, 1], got {conf}")
        out.append(row)
    columns = sorted({c for r in out for c in r} | {"confidence"})
    return _pad(out, columns)


def _cast_column(where: str, series: pd.Series, prop: Prop) -> pa.Array:
    target = ARROW_TYPES[prop.type]
    try:
        if prop.type is PropType.TIMESTAMP:
            ts = pd.to_datetime(series, utc=True, errors="raise").dt.tz_localize(None)
            return pa.array(ts.astype("datetime64[us]"), type=target)
        return pa.array(series, type=target, from_pandas=True)
    except (ValueError, TypeError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        row = _first_bad_row(series, prop)
        raise InputError(
            f"{where}: column {prop.name!r} must be {prop.type.value}"
            + (f"; row {row} holds {series.iloc[row]!r}" if row is not None else f" ({exc})")
        ) from None


def _first_bad_row(series: pd.Series, prop: Prop) -> int | None:
    for i, value in enumerate(series):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            continue
        try:
            if prop.type is PropType.TIMESTAMP:
                pd.Timestamp(value)
            else:
                coerce_value(prop, value.item() if hasattr(value, "item") else value)
        except (TypeError, ValueError):
            return i
    return None


def _check_key_lengths(where: str, keys: pd.Series, key: str) -> None:
    if not (pd.api.types.is_object_dtype(keys) or pd.api.types.is_string_dtype(keys)):
        return  # not text: the cast to the schema's string type refuses it
    lengths = keys.str.len().fillna(0).to_numpy()
    long = lengths > MAX_KEY_LENGTH
    if long.any():
        row = int(long.argmax())
        raise InputError(f"{where}: row {row}: {_too_long(key, int(lengths[row]))}")


def validate_frame(where: str, frame: pd.DataFrame, props: Sequence[Prop], keys: Sequence[str]) -> pa.Table:
    """A pandas frame as an Arrow table of the schema's types; keys non-null and unique."""
    allowed = {p.name: p for p in props}
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        raise InputError(f"{where}: unknown column(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    for key in keys:
        if key not in frame.columns:
            raise InputError(f"{where}: missing key column {key!r}")
        nulls = frame[key].isna().to_numpy()
        if nulls.any():
            raise InputError(f"{where}: key column {key!r} is empty in row {int(nulls.argmax())}")
        _check_key_lengths(where, frame[key], key)
    dup = frame.duplicated(subset=list(keys)).to_numpy()
    if dup.any():
        row = int(dup.argmax())
        key_text = ", ".join(f"{k}={frame[k].iloc[row]!r}" for k in keys)
        raise InputError(f"{where}: duplicate key {key_text} in row {row}")
    arrays = [_cast_column(where, frame[c], allowed[c]) for c in frame.columns]
    return pa.table(arrays, names=[str(c) for c in frame.columns])
