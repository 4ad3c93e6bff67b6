"""Command groups that live next to their layer, registered onto the `mokg` app by ``register_all``.

Each module here defines ``register(app, eval_app)``: it adds its commands to the main app and its
evaluations under ``mokg eval``. Heavy imports stay inside the command functions, so building the
CLI does no work.
"""

from __future__ import annotations

import importlib

import typer

MODULES: tuple[str, ...] = ("audience", "mining", "rec", "lightpair", "privatelora", "schema")


def register_all(app: typer.Typer, eval_app: typer.Typer) -> None:
    """Add every command module's commands to ``app`` and ``eval_app``."""
    for name in MODULES:
        importlib.import_module(f"mokg.commands.{name}").register(app, eval_app)
