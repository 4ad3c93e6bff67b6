"""Workbench API, runs: the store's runs (write jobs) with their counts, and rolling one back.

Listing is ``store.runs()`` plus the named query ``run_counts`` (the nodes of each data label and
the edges of each relation type every run created); deleting is ``store.delete_run`` (as
``mokg runs delete RUN``), refused unless the request repeats the run id in ``confirm``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from graph.errors import InputError
from graph.store import GraphStore
from graph.subgraph import GraphVersion
from graph.tables import with_columns
from workbench.api.explore import records
from workbench.app import Context, NotFound, context

router = APIRouter(tags=["runs"])
Ctx = Annotated[Context, Depends(context)]
RunId = Annotated[str, Path(max_length=200, description="A run id (GET /api/runs).")]


@router.get("/runs")
def list_runs(ctx: Ctx) -> dict[str, Any]:
    """Every run: kind, status, note, times, its graph version and how many nodes and edges it created."""
    with ctx.use() as store:
        runs = store.runs()
        counts = run_counts(store)
        version = store.version()
    rows = []
    for run in records(runs):
        seq = run.get("seq")
        made = counts.get(str(run["id"]), {})
        rows.append(
            {
                "run_id": run["id"],
                **{k: v for k, v in run.items() if k != "id"},
                "graph_version": str(
                    GraphVersion(version.backend, version.schema_version, seq or 0, run["id"])
                ),
                "nodes": sum(made.get("node", {}).values()),
                "edges": sum(made.get("edge", {}).values()),
                "created": made,
            }
        )
    return {"runs": rows, "version": str(version)}


@router.delete("/runs/{run_id}")
def delete_run(
    ctx: Ctx,
    run_id: RunId,
    confirm: Annotated[str, Query(max_length=200, description="The run id again, to confirm.")] = "",
) -> dict[str, int]:
    """Undo a run (as ``mokg runs delete``): the counts of what was removed and restored."""
    if confirm != run_id:
        raise InputError(f"deleting run {run_id!r} needs confirm={run_id} (the run id again)")
    with ctx.use() as store:
        known = store.runs()
        if not len(known) or run_id not in set(known["id"]):
            raise NotFound(f"no run {run_id!r}; GET /api/runs lists them")
        return store.delete_run(run_id)


def run_counts(store: GraphStore) -> dict[str, dict[str, dict[str, int]]]:
    """{run id: {"node"|"edge": {label or relation: count}}}, data labels only."""
    df = with_columns(store.run("run_counts"), ["run_id", "kind", "name", "count"])  # Bolt: none for no rows
    data = set(store.schema.data_labels())
    df = df[df["run_id"].notna() & ((df["kind"] == "edge") | df["name"].isin(data))]
    out: dict[str, dict[str, dict[str, int]]] = {}
    for run_id, kind, name, count in zip(df["run_id"], df["kind"], df["name"], df["count"], strict=True):
        out.setdefault(str(run_id), {}).setdefault(str(kind), {})[str(name)] = int(count)
    return out
