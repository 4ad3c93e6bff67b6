"""Query parameters from the command line: ``-p KEY=VALUE`` or ``-p KEY:TYPE=VALUE``.

Named queries type their parameters from the header of their ``.cypher`` file
(:meth:`queries.library.NamedQuery.bind`), so their values stay text here unless a type is given.
Ad-hoc Cypher has no declared types, so values are inferred (``infer=True``):

- ``true`` / ``false`` (any case) → bool;
- an ASCII integer (``-12``, ``+5``) → int (it must fit 64 bits);
- an ASCII decimal or exponent number (``0.5``, ``1e-3``, ``.5``) → float;
- anything else → the text as given.

``KEY:str=5`` keeps ``"5"`` as text; ``:int``, ``:float`` and ``:bool`` force those types (a value
that does not fit is an error). A key given twice is an error, not "the last one wins".
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any

from graph.errors import InputError

INT64 = (-(2**63), 2**63 - 1)
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_INT = re.compile(r"^[+-]?[0-9]+$")
_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?$")
EXAMPLE = "e.g. -p user_id=u_0000001, -p n=5, -p code:str=007"


def _int(text: str) -> int:
    if not _INT.match(text):
        raise ValueError("not an integer")
    value = int(text)
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError("an integer outside the 64-bit range")
    return value


def _float(text: str) -> float:
    if not _FLOAT.match(text):
        raise ValueError("not a decimal number")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number too large for a float")
    return value


def _bool(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise ValueError("not true or false")
    return text.lower() == "true"


TYPES: dict[str, Callable[[str], Any]] = {"str": str, "int": _int, "float": _float, "bool": _bool}


def infer(text: str) -> Any:
    """A bool, int or float if ``text`` spells one (rules above), else ``text`` itself."""
    if text.lower() in ("true", "false"):
        return _bool(text)
    if _INT.match(text):
        return _int(text)
    if _FLOAT.match(text):
        return _float(text)
    return text


def parse_item(item: str, *, infer_types: bool) -> tuple[str, Any]:
    """One ``KEY[:TYPE]=VALUE`` as (key, value)."""
    spec, sep, text = item.partition("=")
    key, colon, type_name = spec.strip().partition(":")
    if not sep or not _KEY.match(key):
        raise InputError(f"parameter {item!r} is not KEY=VALUE or KEY:TYPE=VALUE ({EXAMPLE})")
    if not colon:
        convert: Callable[[str], Any] = infer if infer_types else str
    elif type_name.strip() in TYPES:
        convert = TYPES[type_name.strip()]
    else:
        raise InputError(f"parameter {key!r}: unknown type {type_name!r}; use one of {', '.join(TYPES)}")
    try:
        return key, convert(text)
    except ValueError as exc:
        raise InputError(
            f"parameter {key!r}: {text!r} is {exc}; pass -p {key}:str=... to send text"
        ) from None


def parse_params(items: Iterable[str] | None, *, infer_types: bool) -> dict[str, Any]:
    """Every ``-p`` item as a dict; a key given twice is an error."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, value = parse_item(item, infer_types=infer_types)
        if key in out:
            raise InputError(f"parameter {key!r} is given twice (-p {key}=...); give each parameter once")
        out[key] = value
    return out
