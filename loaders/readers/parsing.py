"""Parsing shared by the readers: where a value sits in its file, columns, timestamps, numbers.

Every problem becomes a :class:`graph.errors.InputError` that names the file, the 1-based row
(``data row N (line M)`` for CSV, ``line N`` for JSON lines) and the column or field: bytes that
are not UTF-8, a file with no data rows, JSON objects, lists or booleans where text, numbers or
times belong, ids longer than :data:`graph.validate.MAX_KEY_LENGTH`, and times outside
[:data:`MIN_TIME`, :data:`MAX_TIME`).
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError
from graph.validate import MAX_KEY_LENGTH

MS_THRESHOLD = 1e11  # a unix time at or above this is milliseconds (1e11 s is the year 5138)
MIN_TIME = pd.Timestamp("1970-01-01")  # times before this are refused (typos, sign errors)
MAX_TIME = pd.Timestamp("2101-01-01")  # times from this on are refused (seconds read as ms, typos)
CHUNK = 1 << 20
SHOWN = 80  # characters of a bad value quoted in an error message


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

    def line_error(self, line: int, problem: str) -> InputError:
        """An error at a physical line of the file, found before it is split into rows (a quoted
        CSV cell may span lines, so the line is not turned into a data row number)."""
        return InputError(f"{self.path}: line {line}: {problem}")

    def header_error(self, names: tuple[str, ...], problem: str, line: int = 1) -> InputError:
        place = f"line {line} (nor any other line)" if self.json_lines else "header (line 1)"
        return InputError(f"{self.path}: {place}, {self.word} {' or '.join(map(repr, names))}: {problem}")

    def check(self, bad: pd.Series | np.ndarray, values: pd.Series, column: str, problem: str) -> None:
        """Raise for the first row where ``bad`` holds; ``problem`` may use ``{value!r}`` (shortened)."""
        mask = np.asarray(bad, dtype=bool)
        if mask.any():
            pos = int(mask.argmax())
            shown = _Shown(values.iloc[pos])
            raise self.error(int(values.index[pos]), column, problem.format(value=shown))


class _Shown:
    """A value as an error message shows it: its repr, cut to :data:`SHOWN` characters."""

    def __init__(self, value: object) -> None:
        self.value = value

    def __repr__(self) -> str:
        return _cut(repr(self.value))

    def __str__(self) -> str:
        return _cut(str(self.value))


def _cut(text: str) -> str:
    return text if len(text) <= SHOWN else f"{text[: SHOWN - 1]}…"


def not_utf8(path: Path, where: Where) -> InputError:
    """The error for the first byte of ``path`` that is not UTF-8, naming its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line, offset = 1, 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                bad = offset + exc.start - len(decoder.getstate()[0])
                fh.seek(0)
                before = fh.read(bad)
                byte = fh.read(1)
                return where.line_error(
                    before.count(b"\n") + 1,
                    f"byte 0x{byte.hex()} (file offset {bad}) is not UTF-8 text; save the file as UTF-8",
                )
            line, offset = line + chunk.count(b"\n"), offset + len(chunk)
    return where.line_error(line, "the file ends inside a UTF-8 character; save the file as UTF-8")


def _require_file(path: Path) -> None:
    if not path.is_file():
        raise InputError(f"{path}: no such file")


def _require_rows(frame: pd.DataFrame, where: Where) -> None:
    if not len(frame):
        what = "no JSON objects" if where.json_lines else "no data rows (only a header)"
        raise InputError(f"{where.path}: {what}; nothing to load, and no run was started")


def read_csv(path: Path, where: Where, *, sep: str | None, names: tuple[str, ...] | None) -> pd.DataFrame:
    """Every cell as a stripped string ('' when empty); the index is the 1-based data row.

    A file without data rows is refused.
    """
    _require_file(path)
    try:
        frame = _read_csv(path, sep, names)
    except UnicodeDecodeError:
        raise not_utf8(path, where) from None
    except (pd.errors.ParserError, ValueError) as exc:
        shown = " ".join(str(exc).split())
        raise InputError(f"{path}: not a readable delimited (CSV/TSV) file: {shown}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    _require_rows(frame, where)
    stripped: pd.DataFrame = frame.apply(lambda col: col.str.strip())
    return stripped


def _read_csv(path: Path, sep: str | None, names: tuple[str, ...] | None) -> pd.DataFrame:
    if sep is None:
        with path.open(encoding="utf-8") as fh:
            sep = "\t" if "\t" in fh.readline() else ","
    frame: pd.DataFrame = pd.read_csv(
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
    return frame


def read_json_lines(path: Path, fields: Iterable[str]) -> pd.DataFrame:
    """The wanted fields of each JSON object, one per line; the index is the line number.

    A file without any object is refused.
    """
    _require_file(path)
    where = Where(path, json_lines=True)
    wanted = tuple(fields)
    records: list[dict[str, object]] = []
    numbers: list[int] = []
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if line.strip():
                    records.append(_json_object(line, number, where, wanted))
                    numbers.append(number)
    except UnicodeDecodeError:
        raise not_utf8(path, where) from None
    frame = pd.DataFrame(records, index=numbers, dtype=object)
    _require_rows(frame, where)
    return frame


def _json_object(line: str, number: int, where: Where, wanted: tuple[str, ...]) -> dict[str, object]:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where.path}: line {number}, column {exc.colno}: not valid JSON ({exc.msg}); "
            "each line must hold one JSON object"
        ) from None
    except (ValueError, RecursionError) as exc:  # e.g. a 5,000-digit number, [[[[… nested too deep
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0]
        raise where.line_error(number, f"not usable JSON ({problem})") from None
    if not isinstance(obj, dict):
        raise where.line_error(number, f"expected a JSON object, got {type(obj).__name__}")
    picked = {k: obj[k] for k in wanted if k in obj}
    for key, value in picked.items():
        if not _encodable(value):
            raise where.error(
                number, key, "text with an unpaired surrogate escape (e.g. \\ud800); fix the text"
            )
    return picked


def _encodable(value: object) -> bool:
    """False if ``value`` holds text that is not valid Unicode (a lone surrogate from a JSON escape)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(v) for v in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


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


def check_plain(values: pd.Series, where: Where, column: str, wanted: str) -> None:
    """Refuse JSON objects, lists and booleans where ``wanted`` (text, a number, a time) belongs."""
    kinds = values.map(json_kind)
    where.check(kinds.notna(), kinds, column, f"a JSON {{value}} where {wanted} belongs")


def json_kind(value: object) -> str | None:
    if isinstance(value, bool | np.bool_):
        return "boolean"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list | tuple):
        return "list"
    return None


def parse_text(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Non-empty strings (numbers from JSON become their text), or an error naming the first gap."""
    check_plain(values, where, column, "text")
    where.check(is_blank(values), values, column, "is missing or empty; every row needs a value")
    return values.astype(str).str.strip()


def parse_key(values: pd.Series, where: Where, column: str, prefix: str = "") -> pd.Series:
    """Text as :func:`parse_text`, refused where ``prefix`` + the text would be too long for an id."""
    text = parse_text(values, where, column)
    length = text.str.len() + len(prefix)
    long = (length > MAX_KEY_LENGTH).to_numpy()
    if long.any():
        pos = int(long.argmax())
        raise where.error(
            int(text.index[pos]),
            column,
            f"an id of {int(length.iloc[pos]):,} characters (with the prefix {prefix!r}); "
            f"ids may have at most {MAX_KEY_LENGTH:,}",
        )
    return text


def parse_numbers(values: pd.Series, where: Where, column: str, low: float, high: float) -> pd.Series:
    """Floats in [low, high], or an error naming the first value that is not one."""
    check_plain(values, where, column, "a number")
    nums = pd.to_numeric(values.where(~is_blank(values)), errors="coerce").astype("float64")
    where.check(nums.isna(), values, column, "{value!r} is not a number")
    where.check((nums < low) | (nums > high), values, column, f"{{value!r}} is outside [{low:g}, {high:g}]")
    return nums


def _unix_ms(stamp: pd.Timestamp) -> float:
    return float((stamp - pd.Timestamp(0)).total_seconds() * 1000.0)


def parse_timestamps(values: pd.Series, where: Where, column: str) -> pd.Series:
    """Naive UTC times from unix seconds, unix milliseconds (values >= 1e11) or ISO-8601 text,
    each in [:data:`MIN_TIME`, :data:`MAX_TIME`).

    ISO-8601 text without an offset is taken as UTC.
    """
    check_plain(values, where, column, "a time")
    span = f"outside {MIN_TIME:%Y-%m-%d} .. {MAX_TIME - pd.Timedelta(days=1):%Y-%m-%d}"
    nums = pd.to_numeric(values.where(~is_blank(values)), errors="coerce").astype("float64")
    is_num = nums.notna().to_numpy()
    ms = nums.where(nums.abs() >= MS_THRESHOLD, nums * 1000.0)
    bad_num = is_num & ~((ms >= _unix_ms(MIN_TIME)) & (ms < _unix_ms(MAX_TIME))).to_numpy()
    where.check(bad_num, values, column, f"{{value!r}} as unix seconds or ms is {span}")
    out = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us]")
    if is_num.any():
        stamps = pd.to_datetime(ms[is_num].round().astype("int64"), unit="ms")
        out[is_num] = stamps.astype("datetime64[us]")
    text = ~is_num & ~is_blank(values).to_numpy()
    if text.any():
        iso = pd.to_datetime(values[text].astype(str), utc=True, format="ISO8601", errors="coerce")
        out[text] = iso.dt.tz_localize(None).astype("datetime64[us]")
    where.check(
        out.isna(), values, column, "cannot read {value!r} as a time (unix seconds or ms, or ISO-8601)"
    )
    where.check((out < MIN_TIME) | (out >= MAX_TIME), values, column, f"{{value!r}} is {span}")
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
