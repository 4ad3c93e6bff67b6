"""Writing query results: a table on the terminal, or JSON / JSON-lines / CSV / Parquet files."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from graph import files
from graph.errors import InputError

FORMATS = ("table", "json", "jsonl", "csv", "parquet")


def _jsonable(value: Any) -> Any:
    if isinstance(value, date):  # datetime and pandas Timestamp are dates too
        return value.isoformat()
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain(df: pd.DataFrame) -> list[dict[str, Any]]:
    records = df.astype(object).where(df.notna(), None).to_dict("records")
    return [{str(k): _jsonable(v) for k, v in r.items()} for r in records]


def render_table(df: pd.DataFrame, title: str | None = None, limit: int = 50) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for col in df.columns:
        table.add_column(str(col))
    for row in _plain(df.head(limit)):
        table.add_row(*["" if v is None else str(v) for v in row.values()])
    console = Console()
    console.print(table)
    if len(df) > limit:
        console.print(f"[dim]… {len(df) - limit} more rows (use --format csv --out FILE)[/dim]")
    console.print(f"[dim]{len(df)} row(s)[/dim]")


def check_result_target(fmt: str, out: Path | None) -> None:
    """Refuse a format or ``--out`` that cannot be written, before the query runs."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "parquet" and out is None:
        raise InputError("--format parquet needs --out FILE")
    if out is not None and fmt != "table":
        files.target(out)


def write_result(df: pd.DataFrame, fmt: str, out: Path | None, title: str | None = None) -> None:
    """Print or write ``df``; files are written aside and renamed into place (:mod:`graph.files`)."""
    check_result_target(fmt, out)
    if fmt == "table":
        render_table(df, title)
        return
    if out is None:
        sys.stdout.write(_serialise(df, fmt))
    elif fmt == "parquet":
        files.write_file(out, lambda tmp: df.to_parquet(tmp, index=False))
    else:
        files.write_text(out, _serialise(df, fmt))


def _serialise(df: pd.DataFrame, fmt: str) -> str:
    rows = _plain(df)
    if fmt == "json":
        return json.dumps(rows, indent=2, default=str) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, default=str) + "\n" for r in rows)
    flat = df.copy()
    for col in flat.columns:
        if any(isinstance(v, list | dict | np.ndarray) for v in flat[col]):
            flat[col] = flat[col].map(lambda v: json.dumps(_jsonable(v), default=str))
    return str(flat.to_csv(index=False))
