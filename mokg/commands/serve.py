"""`mokg serve`: the web workbench (issue 22) over the store every command uses.

Explore the graph, review mined facts, build audiences and manage runs in a browser. Bound to
127.0.0.1 by default; ``--host`` anything else requires ``--token`` (a bearer token checked on every
request). The work is :func:`workbench.server.run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from graph.errors import InputError
from mokg.commands.audience import LogOpt, WindowsOpt
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
    conversion_log: LogOpt = None,
    campaign_windows: WindowsOpt = None,
) -> None:
    """Serve the web workbench until Ctrl-C: explore, review mined facts, audiences, runs."""
    from workbench.app import WorkbenchConfig
    from workbench.server import check_binding, run

    check_binding(host, token)
    for given in (conversion_log, campaign_windows):
        if given is not None and not given.is_file():
            raise InputError(
                f"{given} is not a file; give the advertiser's Parquet file, or leave the option out"
            )
    config = WorkbenchConfig(
        store=store_config(),
        token=token,
        feedback=feedback,
        exports=exports,
        audit_log=audit_log,
        world=world,
        conversions=conversion_log,
        windows=campaign_windows,
    )
    run(config, host, port)


def register(groups: Groups) -> None:
    """`serve`."""
    groups.app.command("serve")(serve)
