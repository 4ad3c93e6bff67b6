"""Parsing shared by the readers: where a value sits in its file, columns, timestamps, numbers.

Every problem becomes a :class:`graph.errors.InputError` that names the file, the 1-based row
(``data row N (line M)`` for CSV, ``line N`` for JSON lines) and the column or field.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError

MS_THRESHOLD = 1e11  # a unix time at or above this is milliseconds (1e11 s is the year 5138)
MAX_ABS_MS = 1e14  # beyond ~ the year 5138 in ms: refused as a timestamp


@dataclass(frozen=True)
class Where:
    """A file's positions for error messages. Frames read from it are indexed by row number."""

    path: Path
    header_lines: int = 1  # lines before data row 1 (1 for a CSV header, 0 headerless)
    json_lines: bool = False  # rows are numbered by line (JSON lines)

    @property
    def word(self) -> str:
        return "field" if self.json_lines else "column"

    def row(self, number: int) -> str:
        if self.json_lines:
            return f"line {number}"
        return f"data row {number} (line {number + self.header_lines})"

    def error(self, number: int, column: str, problem: str) -> InputError:
        return InputError(f"{self.path}: {self.row(number)}, {self.word} {column!r}: {problem}")

    def header_error(self, names: tuple[str, ...], problem: str, line: int = 1) -> InputError:
        place = f"line {line} (nor any other line)" if self.json_lines else "header (line 1)"
        return InputError(f"{self.path}: {place}, {self.word} {' or '.join(map(repr, names))}: {problem}")

    def check(self, bad: pd.Series | np.ndarray, values: pd.Series, column: str, problem: str) -> None:
        """Raise for the first row where ``bad`` holds; ``problem`` may use ``{value!r}``."""
        mask = np.asarray(bad, dtype=bool)
        if mask.any():
            pos = int(mask.argmax())
            raise self.error(int(values.index[pos]), column, problem.format(value=values.iloc[pos]))


def read_csv(path: Path, where: Where, *, sep: str | None, names: tuple[str, ...] | None) -> pd.DataFrame:
    """Every cell as a stripped string ('' when empty); the index is the 1-based data row."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if sep is None:
        with path.open(encoding="utf-8") as fh:
            sep = "\t" if "\t" in fh.readline() else ","
    try:
        frame = pd.read_csv(
            path,
            sep=sep,
            header=None if names else "infer",
            names=list(names) if names else None,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            encoding="utf-8",
            engine="c" if len(sep) == 1 else "python",  # e.g. ML-1M's "::"
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a readable {sep!r}-separated file: {exc}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame.apply(lambda col: col.str.strip()) if len(frame) else frame


def read_json_lines(path: Path, fields: Iterable[str]) -> pd.DataFrame:
    """The wanted fields of each JSON object, one per line; the index is the line number."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    wanted = tuple(fields)
    records: list[dict[str, object]] = []
    numbers: list[int] = []
    with path.open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(
                    f"{path}: line {number}, column {exc.colno}: not valid JSON ({exc.msg}); "
                    "each line must hold one JSON object"
                ) from None
            if not isinstance(obj, dict):
                raise InputError(f"{path}: line {number}: expected a JSON object, got {type(obj).__name__}")
            records.append({k: obj[k] for k in wanted if k in obj})
            numbers.append(number)
    return pd.DataFrame(records, index=numbers, dtype=object)


def pick_columns(
    frame: pd.DataFrame, where: Where, aliases: Mapping[str, tuple[str, ...]], required: tuple[str, ...]
) -> dict[str, str]:
    """The frame's column for each wanted name (first alias present), or an error if required."""
    found: dict[str, str] = {}
    for name, options in aliases.items():
        hit = next((c for c in options if c in frame.columns), None)
        if hit is not None:
            found[name] = hit
        elif name in required:
            raise where.header_error(
                options,
                f"missing required {where.word}; found: {', '.join(map(str, frame.columns)) or 'none'}",
                line=int(frame.index[0]) if len(frame) else 1,
            )
    return found


def is_blank(values: pd.Series) -> pd.Series:
    """True where a value is missing or an empty string."""
    return values.isna() | (values.astype(str).str.strip() == "")


def parse_text(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Non-empty strings (numbers from JSON become their text), or an error naming the first gap."""
    where.check(is_blank(values), values, column, "is missing or empty; every row needs a value")
    return values.astype(str).str.strip()


def parse_numbers(values: pd.Series, where: Where, column: str, low: float, high: float) -> pd.Series:
    """Floats in [low, high], or an error naming the first value that is not one."""
    nums = pd.to_numeric(values.where(~is_blank(values)), errors="coerce").astype("float64")
    where.check(nums.isna(), values, column, "{value!r} is not a number")
    where.check((nums < low) | (nums > high), values, column, f"{{value!r}} is outside [{low:g}, {high:g}]")
    return nums


def parse_timestamps(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Naive UTC times from unix seconds, unix milliseconds (values >= 1e11) or ISO-8601 text.

    ISO-8601 text without an offset is taken as UTC.
    """
    nums = pd.to_numeric(values.where(~is_blank(values)), errors="coerce").astype("float64")
    is_num = nums.notna().to_numpy()
    ms = nums.where(nums.abs() >= MS_THRESHOLD, nums * 1000.0)
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    ok_num = is_num & (ms.abs() < MAX_ABS_MS).to_numpy()
    if ok_num.any():
        stamps = pd.to_datetime(ms[ok_num].round().astype("int64"), unit="ms")
        out[ok_num] = stamps.astype("datetime64[us]")
    text = ~is_num & ~is_blank(values).to_numpy()
    if text.any():
        iso = pd.to_datetime(values[text].astype(str), utc=True, format="ISO8601", errors="coerce")
        out[text] = iso.dt.tz_localize(None).astype("datetime64[us]")
    where.check(
        out.isna(), values, column, "cannot read {value!r} as a time (unix seconds or ms, or ISO-8601)"
    )
    return out


def collapse_repeats(edges: pd.DataFrame) -> pd.DataFrame:
    """One edge per (head, tail): the latest row's values (by ``ts``; ties: the later row), with
    ``count`` summed over the repeats."""
    keys = ["head", "tail"]
    repeated = edges.duplicated(keys, keep=False).to_numpy()
    if not repeated.any():
        return edges.reset_index(drop=True)
    ordered = edges[repeated].sort_values("ts", kind="stable")
    counts = ordered.groupby(keys, sort=False)["count"].sum()
    latest = ordered.drop_duplicates(keys, keep="last").set_index(keys)
    latest["count"] = counts
    return pd.concat([edges[~repeated], latest.reset_index()[list(edges.columns)]], ignore_index=True)
