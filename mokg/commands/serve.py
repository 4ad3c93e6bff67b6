"""`mokg serve`: the web workbench (issue 22) over the store every command uses.

Explore the graph, review mined facts, build audiences and manage runs in a browser. Bound to
127.0.0.1 by default; ``--host`` anything else requires ``--token`` (a bearer token checked on every
request). The work is :func:`workbench.server.run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mokg.context import store_config

if TYPE_CHECKING:
    from mokg.commands import Groups


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind; not loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8765,
    token: Annotated[
        str | None, typer.Option(help="Bearer token every request must carry (open the URL with ?token=...).")
    ] = None,
    feedback: Annotated[
        Path,
        typer.Option(help="Review decisions go to this JSON-lines file (`mokg feedback import` reads it)."),
    ] = Path("mokg-data/workbench/feedback.jsonl"),
    exports: Annotated[Path, typer.Option(help="Audience exports are written to this folder.")] = Path(
        "mokg-data/workbench/exports"
    ),
    audit_log: Annotated[Path, typer.Option(help="The audience exports' audit log.")] = Path(
        "mokg-data/audit/audience_exports.jsonl"
    ),
    world: Annotated[
        Path | None, typer.Option(help="The world directory the store was ingested from.")
    ] = None,
) -> None:
    """Serve the web workbench until Ctrl-C: explore, review mined facts, audiences, runs."""
    from workbench.app import WorkbenchConfig
    from workbench.server import check_binding, run

    check_binding(host, token)
    config = WorkbenchConfig(
        store=store_config(),
        token=token,
        feedback=feedback,
        exports=exports,
        audit_log=audit_log,
        world=world,
    )
    run(config, host, port)


def register(groups: Groups) -> None:
    """`serve`."""
    groups.app.command("serve")(serve)
