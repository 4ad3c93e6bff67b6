"""Workbench pages (skeleton; the owner fills it in): ``mount(app)`` adds the HTML pages and static files."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the pages and ``/static`` to ``app``."""
