"""RecBole's atomic files: tab-separated, one typed header line, every cell checked by its type.

RecBole (Zhao et al., *RecBole: Towards a Unified, Comprehensive and Efficient Framework for
Recommendation Algorithms*, CIKM 2021) keeps a dataset as up to five files ``NAME.inter``,
``.user``, ``.item``, ``.kg`` and ``.link`` whose header names each column ``field:type``:

- ``token``: one text value (an id, a year, a gender);
- ``float``: a number;
- ``token_seq``: texts separated by spaces (genres, the words of a title);
- ``float_seq``: numbers separated by spaces.

:func:`read_atomic` reads a file as RecBole does (tab-separated, quoted cells allowed) and parses
every column by its type, so a number that is not one is refused wherever it stands. Problems are
one-line :class:`graph.errors.InputError` s naming the file, the data row and the column (as the
header writes it, e.g. ``'rating:float'``), like every reader's (:mod:`loaders.readers.parsing`).
An empty cell is a missing value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loaders.readers.parsing import Where, is_blank, parse_key, read_csv

FIELD_TYPES = ("token", "float", "token_seq", "float_seq")


@dataclass(frozen=True)
class AtomicFile:
    """A parsed atomic file: ``values[field]`` holds each column typed (``None``/NaN where empty):
    ``str`` for token, float64 for float, lists of ``str`` / ``float`` for the sequences."""

    where: Where
    types: dict[str, str]  # field -> type, in the file's order
    raw: pd.DataFrame  # the cells as stripped text, by field; index = 1-based data row
    values: dict[str, pd.Series] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.where.path

    def header(self, name: str) -> str:
        return f"{name}:{self.types[name]}"

    def require(self, name: str, kinds: tuple[str, ...] = ("token",)) -> str:
        """The field ``name`` (which must have one of ``kinds``), or an error naming the header."""
        if name not in self.types:
            found = ", ".join(self.header(n) for n in self.types)
            raise self.where.header_error((f"{name}:{kinds[0]}",), f"missing required column; found: {found}")
        if self.types[name] not in kinds:
            raise self.where.header_error(
                (self.header(name),), f"must be of type {' or '.join(kinds)} in a RecBole .{self.suffix}"
            )
        return name

    @property
    def suffix(self) -> str:
        return self.path.suffix.lstrip(".")

    def keys(self, name: str, prefix: str = "") -> pd.Series:
        """A token column as ids: every cell non-empty, ``prefix`` + the text within the id limit."""
        return parse_key(self.raw[name], self.where, self.header(name), prefix)

    def check(self, bad: pd.Series | np.ndarray, name: str, problem: str) -> None:
        self.where.check(bad, self.raw[name], self.header(name), problem)


def read_atomic(path: Path) -> AtomicFile:
    """Read and type-check one atomic file (see the module docstring)."""
    where = Where(path)
    frame = read_csv(path, where, sep="\t", names=None)
    types: dict[str, str] = {}
    for column in frame.columns:
        name, sep, kind = str(column).rpartition(":")
        if not sep or not name or kind not in FIELD_TYPES:
            raise where.header_error(
                (str(column),),
                f"not a typed RecBole column (name:type, type one of {', '.join(FIELD_TYPES)})",
            )
        if name in types:
            raise where.header_error((str(column),), f"the field {name!r} appears twice")
        types[name] = kind
    raw = frame.set_axis(list(types), axis=1)
    atomic = AtomicFile(where, types, raw)
    for name, kind in types.items():
        atomic.values[name] = _PARSERS[kind](atomic, name)
    return atomic


def _tokens(af: AtomicFile, name: str) -> pd.Series:
    values = af.raw[name]
    return values.where(~is_blank(values), None)


def _floats(af: AtomicFile, name: str) -> pd.Series:
    values = af.raw[name]
    blank = is_blank(values)
    nums = pd.to_numeric(values.where(~blank), errors="coerce").astype("float64")
    af.check(nums.isna() & ~blank, name, "{value!r} is not a number")
    af.check(~np.isfinite(nums.fillna(0.0)), name, "{value!r} is not a finite number")
    return nums


def _token_seqs(af: AtomicFile, name: str) -> pd.Series:
    values = af.raw[name]
    return values.str.split().where(~is_blank(values), None)


def _float_seqs(af: AtomicFile, name: str) -> pd.Series:
    values = af.raw[name]
    parts = values.where(~is_blank(values)).str.split().explode().dropna()
    nums = pd.to_numeric(parts, errors="coerce")
    bad = nums.isna() | ~np.isfinite(nums.fillna(0.0))
    rows = values.index.isin(parts.index[bad.to_numpy()])
    af.check(rows, name, "{value!r} is not a list of numbers separated by spaces")
    lists = nums.groupby(level=0).agg(list)
    return pd.Series(lists, index=values.index, dtype=object).where(~is_blank(values), None)


_PARSERS = {"token": _tokens, "float": _floats, "token_seq": _token_seqs, "float_seq": _float_seqs}


def typed(value: Any) -> Any:
    """A parsed cell as JSON takes it (None for a missing one)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list):
        return [typed(v) for v in value]
    return value
