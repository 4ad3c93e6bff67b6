"""The `mokg` command line. Each command builds its config, opens the store, calls one layer below.

Errors that mokg raises on purpose are printed as one line without a traceback (exit code 2, or 3
when a server cannot be reached); ``--debug`` shows the traceback.
"""

from __future__ import annotations

import json
import logging
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from graph.errors import InputError, MokgError
from mokg.context import STATE, open_store, set_limits, store_config

app = typer.Typer(
    name="mokg",
    help=(
        "mokg: a marketing knowledge graph (MoKG) in a real graph database.\n\n"
        "The store is chosen by --store/--path or the environment: MOKG_STORE=embedded (default; "
        "LadybugDB in the directory MOKG_PATH, default ./mokg-data/graph) or MOKG_STORE=neo4j "
        "with MOKG_NEO4J_URI, MOKG_NEO4J_USER, MOKG_NEO4J_PASSWORD (and MOKG_NEO4J_DATABASE).\n\n"
        "Start with `mokg demo`, then `mokg stats`, `mokg query --list`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Store(StrEnum):
    embedded = "embedded"
    neo4j = "neo4j"


class ExportFormat(StrEnum):
    rdf = "rdf"
    pyg = "pyg"
    networkx = "networkx"
    parquet = "parquet"
    neo4j_admin = "neo4j-admin"


class SplitChoice(StrEnum):
    temporal = "temporal"
    leave_last_out = "leave_last_out"
    cold_start = "cold_start"


class OutFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help="A query parameter as KEY=VALUE, typed by the query's header; repeat for several keys.",
    ),
]
CypherParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        help=(
            "A parameter as KEY=VALUE (repeat for several keys): true/false become booleans and "
            "numbers become int or float (n=5 is 5); KEY:str=VALUE keeps text (code:str=007), "
            "KEY:int=, KEY:float=, KEY:bool= force a type."
        ),
    ),
]
FormatOpt = Annotated[OutFormat, typer.Option("--format", "-f", help="How to print the result.")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write the result to this file.")]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout", help="Stop the query after SECONDS (default $MOKG_QUERY_TIMEOUT or 60; 0: none)."
    ),
]
MaxRowsOpt = Annotated[
    int | None,
    typer.Option("--max-rows", help="Refuse a result of more rows (default $MOKG_MAX_ROWS or 10M; 0: none)."),
]


class _Notice(logging.Handler):
    """The store's one-line notices (e.g. interrupted runs) on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.secho(f"warning: {record.getMessage()}", fg=typer.colors.YELLOW, err=True)


@app.callback()
def _global(
    store: Annotated[Store | None, typer.Option(help="Backend (default: $MOKG_STORE or embedded).")] = None,
    path: Annotated[Path | None, typer.Option(help="Embedded store directory (default: $MOKG_PATH).")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            help="If another process has the embedded store open, retry for up to SECONDS "
            "(default $MOKG_WAIT or 0: fail at once).",
        ),
    ] = None,
) -> None:
    STATE.update(store=store.value if store else None, path=path, debug=debug, wait=wait, limits={})
    notices = logging.getLogger("mokg.store")
    if not any(isinstance(h, _Notice) for h in notices.handlers):
        notices.addHandler(_Notice())


def _params(items: list[str] | None, *, infer_types: bool) -> dict[str, Any]:
    from queries.params import parse_params

    return parse_params(items, infer_types=infer_types)


@app.command()
def init() -> None:
    """Create the store (embedded: a new directory) or the constraints and indexes (Neo4j).

    Safe to run again: nothing that exists is changed.
    """
    with open_store(create=True) as store:
        store.init_schema()
        typer.echo(f"ready: {store.config.describe()} (schema v{store.version().schema_version})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the exports.")] = Path("mokg-data/export"),
    sample: Annotated[
        bool, typer.Option("--sample", help="Load the tiny hand-written sample graph instead.")
    ] = False,
    world: Annotated[
        Path | None, typer.Option(help="Where the demo world lives (default: next to --out).")
    ] = None,
) -> None:
    """The main job: the demo world (generated once) ingested into the store, named queries, exports."""
    from mokg.demo import run_demo

    run_demo(store_config(), out, sample=sample, world_dir=world)


@app.command()
def query(
    name: Annotated[str | None, typer.Argument(help="A query of the library (see --list).")] = None,
    param: ParamOpt = None,
    fmt: FormatOpt = OutFormat.table,
    out: OutOpt = None,
    list_: Annotated[bool, typer.Option("--list", help="List the named queries and exit.")] = False,
    write: Annotated[bool, typer.Option("--write", help="Allow a query that writes.")] = False,
    timeout: TimeoutOpt = None,
    max_rows: MaxRowsOpt = None,
) -> None:
    """Run a named query from queries/library, e.g. `mokg query user_intents -p user_id=user_ana`."""
    from mokg.output import check_result_target, write_result
    from queries.library import load_library

    set_limits(timeout, max_rows)

    lib = load_library()
    if list_ or name is None:
        for qname in lib.names():
            q = lib.queries[qname]
            typer.echo(f"{qname}\n    {q.description}\n    params: {q.signature()}")
        return
    lib.get(name)
    params = _params(param, infer_types=False)
    check_result_target(fmt.value, out)
    with open_store() as store:
        df = store.run(name, params, read_only=not write)
    write_result(df, fmt.value, out, title=name)


@app.command()
def cypher(
    text: Annotated[str, typer.Argument(help="Cypher text in the store's dialect.")],
    param: CypherParamOpt = None,
    fmt: FormatOpt = OutFormat.table,
    out: OutOpt = None,
    write: Annotated[bool, typer.Option("--write", help="Allow CREATE/MERGE/SET/DELETE.")] = False,
    timeout: TimeoutOpt = None,
    max_rows: MaxRowsOpt = None,
) -> None:
    """Run one ad-hoc Cypher statement, read-only unless --write. Values go in as $parameters via
    -p KEY=VALUE. A write is a run of its own (kind cypher): `mokg runs delete RUN` removes what
    it created, but cannot undo what it set or deleted.

    Numbers and true/false are typed (`-p n=5` makes `LIMIT $n` work); `-p code:str=007` keeps text.
    """
    from mokg.output import check_result_target, write_result

    params = _params(param, infer_types=True)
    check_result_target(fmt.value, out)
    set_limits(timeout, max_rows)
    with open_store() as store:
        df = store.run(text, params, read_only=not write)
        version = store.version() if write else None
    write_result(df, fmt.value, out)
    if version is not None:
        typer.echo(
            f"run {version.run_id} holds this write (graph version {version}); `mokg runs delete "
            f"{version.run_id}` removes what it created, not what it set or deleted",
            err=True,
        )


@app.command()
def export(
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="rdf (Turtle), pyg (.pt), networkx (node-link JSON), parquet (a directory) or "
            "neo4j-admin (a directory of CSVs + import.sh for Neo4j's offline bulk importer).",
        ),
    ],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output file (a directory for parquet and neo4j-admin).")
    ],
    label: Annotated[list[str] | None, typer.Option(help="Only these node labels (repeat).")] = None,
    rel: Annotated[list[str] | None, typer.Option(help="Only these relation types (repeat).")] = None,
    seed: Annotated[
        list[str] | None, typer.Option(help="Only the neighbourhood of LABEL:ID (repeat).")
    ] = None,
    hops: Annotated[int, typer.Option(help="Neighbourhood radius for --seed (1-5).")] = 2,
) -> None:
    """Export the graph (or a subgraph of it) with its graph version stamped in the output."""
    from mokg.exporting import check_export_target, export_subgraph

    check_export_target(fmt.value, out)
    seeds: dict[str, list[str]] = {}
    for s in seed or []:
        lab, sep, node_id = s.partition(":")
        if not sep or not node_id:
            raise InputError(f"--seed {s!r} is not LABEL:ID (e.g. --seed Intent:wedding_preparation)")
        seeds.setdefault(lab, []).append(node_id)
    with open_store() as store:
        sub = store.subgraph(labels=label, rel_types=rel, seeds=seeds or None, hops=hops)
    written = export_subgraph(sub, fmt.value, out)
    typer.echo(f"wrote {written} ({sub.num_nodes()} nodes, {sub.num_edges()} edges, version {sub.version})")


@app.command()
def stats(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Node and edge counts, runs, and the graph version they were read at."""
    with open_store() as store:
        info = store.stats()
    if as_json:
        typer.echo(json.dumps(info, indent=2, default=str))
        return
    import pandas as pd

    from mokg.output import render_table

    typer.echo(f"{info['store']}  version {info['version']}")
    render_table(pd.DataFrame(sorted(info["nodes"].items()), columns=["label", "nodes"]))
    render_table(pd.DataFrame(sorted(info["edges"].items()), columns=["relation", "edges"]))


@app.command()
def ingest(
    directory: Annotated[Path, typer.Argument(help="A world directory (from `mokg world generate`).")],
    with_truth_kg: Annotated[
        bool, typer.Option(help="Also load the hidden ground-truth KG (oracle runs only).")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Read and compare every row, also of files the store last loaded unchanged "
            "(by default those are skipped by their content hash).",
        ),
    ] = False,
) -> None:
    """Load a world's visible tables into the store in one run (re-ingesting changes nothing)."""
    from graph.progress import Progress
    from loaders.ingest import ingest_world, visible_rows

    total = visible_rows(directory)
    with open_store(create=True) as store:
        with Progress() as board:
            rows = board.stage(f"ingesting {directory}", total=total, unit="rows")
            report = ingest_world(
                store,
                directory,
                with_truth_kg=with_truth_kg,
                force=force,
                progress=lambda _name, n: rows.advance(n),
            )
        stats = store.stats()
    if not report.run_id:
        typer.echo(
            f"nothing changed: the store last loaded these {report.total_rows():,} rows from the same "
            "files (no new run; --force compares every row)"
        )
        return
    created = sum((t.created or 0) for t in [*report.nodes.values(), *report.edges.values()])
    updated = sum((t.updated or 0) for t in [*report.nodes.values(), *report.edges.values()])
    typer.echo(
        f"run {report.run_id}: {report.total_rows():,} rows read, {created:,} created, {updated:,} updated; "
        f"store now {stats['total_nodes']:,} nodes, {stats['total_edges']:,} edges"
    )


@app.command()
def load(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="movielens, amazon, triples or recbole.")],
    path: Annotated[
        Path,
        typer.Argument(
            help="The file: ratings CSV, reviews JSON-lines or triples CSV; recbole: the dataset's folder."
        ),
    ],
    metadata: Annotated[Path | None, typer.Option(help="amazon: the item metadata JSON-lines file.")] = None,
    domain: Annotated[
        str | None, typer.Option(help="Business domain of the interactions (recbole: the folder's name).")
    ] = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            help="Replace values already in the store (by default they are kept and only missing "
            "rows and properties are added); `mokg runs delete` of the load puts them back."
        ),
    ] = False,
) -> None:
    """Load a public-format dataset into the store in one run (validated first; re-loading is a no-op).

    movielens: `user,item,rating,ts` (or `userId,movieId,rating,timestamp`); amazon: reviews
    (`reviewerID`/`user_id`, `asin`/`parent_asin`, `overall`/`rating`, time) plus --metadata;
    triples: `head,relation,tail[,head_label,tail_label,confidence,source]`; recbole: a folder
    NAME/ with NAME.inter, .user, .item, .kg, .link (any that make sense; the .kg's relations are
    declared in the store as external types, see `mokg schema list`).
    """
    from dataclasses import replace

    from loaders.readers import READERS, AmazonReader, ingest_dataset

    if fmt not in READERS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(READERS)}")
    reader = READERS[fmt]
    if metadata is not None:
        if not isinstance(reader, AmazonReader):
            raise InputError("--metadata only applies to the amazon format")
        reader = replace(reader, metadata=metadata)
    dataset = reader.read(path, domain=domain)
    with open_store(create=True) as store, store.run_context("load", dataset.source) as run_id:
        report = ingest_dataset(store, dataset, run_id, overwrite=overwrite)
    tables = [*report.nodes.values(), *report.edges.values()]
    created, updated = sum(t.created or 0 for t in tables), sum(t.updated or 0 for t in tables)
    kept = sum(t.kept or 0 for t in tables)
    typer.echo(
        f"run {report.run_id}: {report.total_rows():,} rows from {dataset.source}, {created:,} created, "
        f"{updated:,} updated"
        + (f", {kept:,} already present with other values (kept; --overwrite replaces them)" if kept else "")
    )


@app.command()
def subgraph(
    out: Annotated[Path, typer.Option("--out", "-o", help="The .pt file to write.")],
    node_type: Annotated[
        list[str] | None, typer.Option(help="Node labels (repeat; default User, Item, Category, Brand).")
    ] = None,
    edge_type: Annotated[
        list[str] | None,
        typer.Option(
            help="Relation types (repeat; default INTERACTED, BELONGS_TO, MADE_BY, SUBCATEGORY_OF)."
        ),
    ] = None,
    domain: Annotated[
        str | None, typer.Option(help="Only this business domain's interactions and items.")
    ] = None,
    seed_node: Annotated[
        list[str] | None, typer.Option(help="Only the neighbourhood of LABEL:ID (repeat).")
    ] = None,
    hops: Annotated[int, typer.Option(help="Neighbourhood radius for --seed-node.")] = 1,
    split: Annotated[SplitChoice | None, typer.Option(help="How to split the INTERACTED edges.")] = None,
    cold_domain: Annotated[
        str | None, typer.Option(help="cold_start: the domain whose users are held out.")
    ] = None,
    features: Annotated[
        bool, typer.Option(help="Text embeddings (offline MiniLM, cached) as node features.")
    ] = True,
    reverse: Annotated[bool, typer.Option(help="Add reverse edge types (rev_<REL>).")] = False,
) -> None:
    """Build the PyTorch Geometric HeteroData a GNN trains on (id maps, features, leakage-free split)."""
    from graph.files import target
    from loaders.pyg import GraphDataConfig, build_graph_data, save_graph_data

    target(out)
    seeds: dict[str, list[str]] = {}
    for s in seed_node or []:
        lab, sep, node_id = s.partition(":")
        if not sep or not node_id:
            raise InputError(f"--seed-node {s!r} is not LABEL:ID (e.g. --seed-node User:u_0000001)")
        seeds.setdefault(lab, []).append(node_id)
    defaults = GraphDataConfig()
    cfg = GraphDataConfig(
        node_types=tuple(node_type or defaults.node_types),
        edge_types=tuple(edge_type or defaults.edge_types),
        seeds=seeds or None,
        hops=hops,
        domain=domain,
        reverse_edges=reverse,
        features=features,
        split=cast(Any, split.value if split else None),
        cold_domain=cold_domain,
    )
    with open_store() as store:
        graph = build_graph_data(store, cfg)
    save_graph_data(graph, out)
    typer.echo(f"wrote {out}: {graph.data}")
    if graph.split is not None:
        typer.echo(f"split: {json.dumps(graph.split.info(), default=str)}")


runs_app = typer.Typer(help="List or roll back the runs (write jobs) of the store.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(fmt: FormatOpt = OutFormat.table, out: OutOpt = None) -> None:
    """Every run with its status (running, done, failed, or interrupted: its writer is gone) and times."""
    from mokg.output import check_result_target, write_result

    check_result_target(fmt.value, out)
    with open_store() as store:
        write_result(store.runs(), fmt.value, out, title="runs")


@runs_app.command("delete")
def runs_delete(
    run_id: Annotated[str, typer.Argument(help="The run to remove (see `mokg runs list`).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Undo a run in one transaction: put back the values it changed (where nothing changed them
    since), remove the edges it created and its nodes that nothing else uses."""
    if not yes and not typer.confirm(f"delete everything run {run_id} created?"):
        raise typer.Abort()
    with open_store() as store:
        typer.echo(json.dumps(store.delete_run(run_id)))


eval_app = typer.Typer(
    help="Evaluate against the world's hidden truth (mined KG, recommendation, audiences).",
    no_args_is_help=True,
)
app.add_typer(eval_app, name="eval")


def _register_command_modules() -> None:
    from mokg.commands import register_all

    register_all(app, eval_app)


_register_command_modules()


def main() -> None:
    """Entry point of the `mokg` console script (usage errors are reported by typer itself)."""
    try:
        app()
    except MokgError as exc:
        if STATE["debug"]:
            raise
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(exc.exit_code)
