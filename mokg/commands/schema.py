"""`mokg schema add-relation|list`: relation types declared in the store (issue 14).

The MoKG's own relation set is closed; a knowledge graph a user brings needs types of its own.
They are declared in the store (``mokg load recbole`` declares a ``.kg`` file's relations itself),
checked as safe identifiers before any Cypher is built, and never offered to PAIR.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mokg.context import open_store

if TYPE_CHECKING:
    from mokg.commands import Groups

LabelOpt = Annotated[str, typer.Option(help="A node label of the MoKG, e.g. Entity or Item.")]


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

    with open_store() as store:
        run_id = declare_relation(store, name, from_label, to_label, description)
        version = store.refresh_schema().version
    pair = f"({from_label})-[:{name}]->({to_label})"
    if run_id is None:
        typer.echo(f"{pair} is declared already (schema v{version}); nothing changed")
        return
    typer.echo(f"declared {pair} in run {run_id} (schema v{version})")


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
    from mokg.output import check_result_target, write_result

    check_result_target(fmt, out)
    with open_store() as store:
        table = schema_listing(store, external_only=external)
        version = store.schema.version
    write_result(table, fmt, out, title=f"relation types (schema v{version})")


def register(groups: Groups) -> None:
    """`schema add-relation|list`."""
    groups["schema"].command("add-relation")(add_relation)
    groups["schema"].command("list")(list_relations)
