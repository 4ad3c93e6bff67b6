"""Workbench API, queries: the named query library with its declared parameters, run read-only.

No Cypher text comes from the browser: only a library name and parameter values, which the
library checks and coerces exactly as ``mokg query NAME -p KEY=VALUE`` does
(:meth:`queries.library.NamedQuery.bind` against the store's schema; the download's URL
parameters go through the CLI's own ``queries.params.parse_params``). A query that writes is
refused: the workbench writes only through the store's run API.
"""

from __future__ import annotations

import io
import math
from typing import Annotated, Any, Literal

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from graph.errors import InputError, QueryError
from queries.library import NamedQuery, load_library
from queries.params import INT64, parse_params
from workbench.api.explore import records
from workbench.app import Context, NotFound, context

router = APIRouter(tags=["queries"])
Ctx = Annotated[Context, Depends(context)]
Name = Annotated[str, Path(max_length=100, description="A query of the library (GET /api/queries).")]
Value = str | int | float | bool | list[str | int | float | bool]
SHOWN_ROWS = 1000  # rows the table gets; the download has them all


class RunRequest(BaseModel):
    """The parameters of one named query, by name (strings are parsed as the CLI parses them)."""

    model_config = ConfigDict(extra="forbid")
    params: dict[str, Value | None] = Field(default_factory=dict)


@router.get("/queries")
def list_queries() -> dict[str, list[dict[str, Any]]]:
    """Every named query with its description, whether it writes, and its declared parameters."""
    lib = load_library()
    return {"queries": [describe(lib.queries[name]) for name in lib.names()]}


@router.post("/queries/{name}")
def run_query(ctx: Ctx, name: Name, body: RunRequest) -> dict[str, Any]:
    """Run a read-only named query; the first rows as a table (``total``: how many in all)."""
    df = _run(ctx, name, body.params)
    shown = df.head(SHOWN_ROWS)
    return {
        "columns": [str(c) for c in df.columns],
        "rows": [list(r.values()) for r in records(shown)],
        "total": len(df),
        "truncated": len(df) > SHOWN_ROWS,
    }


@router.get("/queries/{name}/download")
def download(
    ctx: Ctx,
    request: Request,
    name: Name,
    format: Annotated[Literal["csv", "parquet"], Query()] = "csv",
) -> Response:
    """Run a read-only named query and send every row as CSV or Parquet; the query's parameters
    are the URL's other parameters (``?format=csv&user_id=u_0000001``)."""
    items = [f"{k}={v}" for k, v in request.query_params.multi_items() if k != "format"]
    df = _run(ctx, name, parse_params(items, infer_types=False))
    if format == "csv":
        body, media = df.to_csv(index=False).encode(), "text/csv; charset=utf-8"
    else:
        body, media = _parquet(name, df), "application/vnd.apache.parquet"
    headers = {"Content-Disposition": f'attachment; filename="{name}.{format}"'}
    return Response(body, media_type=media, headers=headers)


def describe(q: NamedQuery) -> dict[str, Any]:
    """A query as the page builds its form from it."""
    params = [
        {"name": p.name, "type": p.type, "required": p.required, "default": p.default} for p in q.params
    ]
    return {"name": q.name, "description": q.description, "writes": q.writes, "params": params}


def _run(ctx: Ctx, name: str, given: dict[str, Any]) -> pd.DataFrame:
    lib = load_library()
    if name not in lib.queries:
        raise NotFound(f"no named query {name!r}; GET /api/queries lists them")
    query = lib.get(name)
    if query.writes:
        raise QueryError(
            f"query {name!r} writes; the workbench runs read-only queries (CLI: mokg query --write)"
        )
    for key, value in given.items():
        _check_value(name, key, value)
    with ctx.use() as store:
        _, bound = query.bind(store.dialect, given, store.schema)  # the library's checks, first
        for key, value in bound.items():
            _check_value(name, key, value)
        return store.run(name, given)


def _check_value(query: str, key: str, value: Any) -> None:
    """What the database cannot take: text that is not UTF-8, integers past 64 bits, NaN or infinity."""
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                raise InputError(f"query {query!r}: parameter {key!r} is not valid UTF-8 text") from None
        elif isinstance(v, int) and not isinstance(v, bool) and not INT64[0] <= v <= INT64[1]:
            raise InputError(f"query {query!r}: parameter {key!r} is an integer outside the 64-bit range")
        elif isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"query {query!r}: parameter {key!r} must be a finite number, got {v}")


def _parquet(name: str, df: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    try:
        df.to_parquet(buffer, index=False)
    except (ValueError, TypeError, ImportError) as exc:  # pyarrow's errors are ValueError/TypeError
        raise QueryError(
            f"the result of {name!r} cannot be written as Parquet ({exc}); download CSV"
        ) from None
    return buffer.getvalue()
