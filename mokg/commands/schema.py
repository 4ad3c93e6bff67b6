"""`mokg schema add-relation|list`: relation types declared in the store (issue 14).

The MoKG's own relation set is closed; a knowledge graph a user brings needs types of its own.
They are declared in the store (``mokg load recbole`` declares a ``.kg`` file's relations itself),
checked as safe identifiers before any Cypher is built, and never offered to PAIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

schema_app = typer.Typer(
    help="The store's schema: the MoKG's own relation types and those declared in the store.",
    no_args_is_help=True,
)
LabelOpt = Annotated[str, typer.Option(help="A node label of the MoKG, e.g. Entity or Item.")]


@schema_app.command("add-relation")
def add_relation(
    name: Annotated[
        str, typer.Argument(help="The type's name: upper-case letters, digits, '_' (FILM_ACTOR).")
    ],
    from_label: Annotated[str, typer.Option("--from", help="The head label, e.g. Entity or Item.")],
    to_label: Annotated[str, typer.Option("--to", help="The tail label.")],
    description: Annotated[str, typer.Option(help="What the relation means.")] = "",
) -> None:
    """Declare a relation type (or another endpoint pair of one) in a run of its own; running it
    again changes nothing. `mokg runs delete RUN` removes it while no other run's edges use it."""
    from graph.declared import declare_relation
    from mokg import cli

    store = cli._open()
    try:
        run_id = declare_relation(store, name, from_label, to_label, description)
        version = store.refresh_schema().version
    finally:
        store.close()
    pair = f"({from_label})-[:{name}]->({to_label})"
    if run_id is None:
        typer.echo(f"{pair} is declared already (schema v{version}); nothing changed")
        return
    typer.echo(f"declared {pair} in run {run_id} (schema v{version})")


@schema_app.command("list")
def list_relations(
    external: Annotated[
        bool, typer.Option("--external", help="Only the types declared in the store.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, json, jsonl, csv or parquet.")] = "table",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the list to this file.")] = None,
) -> None:
    """Every relation type and endpoint pair: kind (mokg, mined or external), the source name of an
    external type, and the run that declared it and when (the store's schema history)."""
    from graph.declared import schema_listing
    from mokg import cli
    from mokg.output import check_result_target, write_result

    check_result_target(fmt, out)
    store = cli._open()
    try:
        table = schema_listing(store, external_only=external)
        version = store.schema.version
    finally:
        store.close()
    write_result(table, fmt, out, title=f"relation types (schema v{version})")


def register(app: typer.Typer, eval_app: typer.Typer) -> None:
    app.add_typer(schema_app, name="schema")
