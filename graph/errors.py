"""Errors for people: each says what was wrong and what to do. The CLI prints them without a traceback."""

from __future__ import annotations


class MokgError(Exception):
    """Base class of every error mokg raises on purpose."""

    exit_code = 2


class SchemaError(MokgError):
    """A label, relation type or property that the MoKG schema does not declare."""


class InputError(MokgError):
    """Rows or parameters that do not fit the schema (missing key, wrong type, duplicate key, ...)."""


class QueryError(MokgError):
    """A named query that does not exist, a missing parameter, or Cypher the backend rejected."""


class StoreError(MokgError):
    """A store that cannot be opened or is not a mokg store."""


class StoreUnavailable(StoreError):
    """A backend server that cannot be reached."""

    exit_code = 3


def one_line(text: object, limit: int = 400) -> str:
    """A backend's message as one line (whitespace collapsed), cut at ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
