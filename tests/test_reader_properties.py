"""Property-based inputs for every reader (issue 15): files of any encoding, cell types, sizes and
ids with any characters either load cleanly or are refused with one InputError that names the file
(and, for a row's problem, the row or line), never another exception, and never a partial write.

hypothesis runs derandomized (a fixed seed per test) with a modest number of examples; one small
embedded store is shared by the module and every example is written to it in a run of its own.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from graph.errors import InputError
from graph.store import GraphStore, StoreConfig, open_store
from loaders.readers import AmazonReader, Dataset, MovieLensReader, Reader, TriplesReader, ingest_dataset

FAST = settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: a failure shows its input as drawn
)
WHOLE_FILE = ("no such file", "no data rows", "no JSON objects", "not a readable", "missing required")
ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16")
LOW, HIGH = datetime(1970, 1, 1), datetime(2100, 12, 31, 23, 59, 59)

# Values a reader must accept: ids of any characters (commas, quotes, newlines, NUL, emoji; not
# only whitespace), ratings in range, times in 1970..2100 as unix seconds or ISO-8601.
ids = st.text(min_size=1, max_size=12).filter(lambda t: bool(t.strip()))
ratings = st.one_of(st.integers(0, 5).map(str), st.floats(0, 5).map(repr))
times = st.one_of(
    st.integers(0, int(HIGH.timestamp())).map(str),
    st.datetimes(min_value=LOW, max_value=HIGH).map(datetime.isoformat),
)
# ... and anything at all in one cell: junk text, numbers out of range, ids around the 1,024 cap,
# times thousands of years off.
junk_text = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        ["", " ", "true", "five", "1e400", "NaN", "-1", "99999999999", "5138-01-01", "1969-12-31"]
    ),
    st.integers(min_value=1015, max_value=1030).map(lambda n: "i" * n),
    st.integers(min_value=-(10**13), max_value=10**13).map(str),
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
# A file is written in UTF-8 (most often) or another encoding, sometimes with a stray byte in it.
encodings = st.one_of(st.just("utf-8"), st.sampled_from(ENCODINGS))
stray = st.one_of(st.just(b""), st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\xe9"]))
spoil = st.none() | st.tuples(st.integers(0, 9), st.integers(0, 9))  # (row, column) to spoil


def _spoiled(rows: list[list[Any]], where: tuple[int, int] | None, value: Any) -> list[list[Any]]:
    if where is None or not rows:
        return rows
    r, c = where[0] % len(rows), where[1] % len(rows[0])
    rows[r][c] = value
    return rows


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("files")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=tmp_path_factory.mktemp("store") / "g"), create=True) as s:
        yield s


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _write(path: Path, text: str, encoding: str, junk: bytes) -> Path:
    data = text.encode(encoding, errors="replace")
    path.write_bytes(data[: len(data) // 2] + junk + data[len(data) // 2 :] if junk else data)
    return path


def _counts(store: GraphStore) -> tuple[int, int]:
    stats = store.stats()
    return sum(n for label, n in stats["nodes"].items() if label != "Run"), stats["total_edges"]


def _check(store: GraphStore, reader: Reader, path: Path, *others: Path) -> None:
    """A clean load, or one InputError naming the file (and the row or line); nothing half-written."""
    before = _counts(store)
    try:
        dataset: Dataset = reader.read(path)
    except InputError as exc:
        _assert_names_a_file(str(exc), (path, *others))
        return
    try:
        with store.run_context("property") as run_id:
            ingest_dataset(store, dataset, run_id)
    except InputError as exc:  # the store's own validation: one line, and nothing written
        assert "\n" not in str(exc) and _counts(store) == before, str(exc)
        pytest.fail(f"the reader passed input that the store refused: {exc}")


def _assert_names_a_file(message: str, paths: tuple[Path, ...]) -> None:
    culprit = next((p for p in paths if message.startswith(f"{p}: ")), None)
    assert culprit is not None, message
    rest = message[len(f"{culprit}: ") :]
    assert rest.startswith(("line ", "data row ", "header ")) or any(w in rest for w in WHOLE_FILE), message


@FAST
@given(
    rows=st.lists(st.tuples(ids, ids, ratings, times).map(list), max_size=5),
    where=spoil,
    value=junk_text,
    encoding=encodings,
    junk=stray,
)
def test_movielens_loads_or_names_the_problem(
    store: GraphStore,
    place: Path,
    rows: list[list[str]],
    where: tuple[int, int] | None,
    value: str,
    encoding: str,
    junk: bytes,
) -> None:
    text = _csv(["user", "item", "rating", "ts"], _spoiled(rows, where, value))
    _check(store, MovieLensReader(), _write(place / "ratings.csv", text, encoding, junk))


relations = st.sampled_from(["PRECEDES", "precedes", "co occurs with", "SUBCATEGORY_OF"])
confidences = st.one_of(st.just(""), st.floats(0, 1).map(repr))


@FAST
@given(
    rows=st.lists(st.tuples(ids, relations, ids, confidences).map(list), max_size=5),
    where=spoil,
    value=st.one_of(junk_text, st.sampled_from(["likes", "BELONGS_TO", "NEEDS", "Mood", "2"])),
    encoding=encodings,
    junk=stray,
)
def test_triples_load_or_name_the_problem(
    store: GraphStore,
    place: Path,
    rows: list[list[str]],
    where: tuple[int, int] | None,
    value: str,
    encoding: str,
    junk: bytes,
) -> None:
    text = _csv(["head", "relation", "tail", "confidence"], _spoiled(rows, where, value))
    _check(store, TriplesReader(), _write(place / "triples.csv", text, encoding, junk))


REVIEW_KEYS = ("reviewerID", "asin", "overall", "unixReviewTime")
META_KEYS = ("asin", "title", "description", "brand", "category", "price")
reviews = st.tuples(ids, ids, st.integers(0, 5), st.integers(0, int(HIGH.timestamp()))).map(
    lambda r: dict(zip(REVIEW_KEYS, r, strict=True))
)
metas = st.fixed_dictionaries(
    {"asin": ids},
    optional={
        "title": st.text(max_size=10),
        "description": st.lists(st.text(max_size=5), max_size=2),
        "brand": ids,
        "category": st.lists(ids, max_size=3),
        "price": st.sampled_from([3, 12.5, "$12.99", "$5 - $9"]),
    },
)


@FAST
@given(
    rows=st.lists(reviews, max_size=4),
    meta=st.none() | st.lists(metas, max_size=3),
    where=spoil,
    key=st.sampled_from(REVIEW_KEYS + META_KEYS),
    value=json_values,
    junk=st.one_of(st.just(b""), st.sampled_from([b"\xe9", b"[[[[", b"{"])),
)
def test_amazon_loads_or_names_the_problem(
    store: GraphStore,
    place: Path,
    rows: list[dict[str, Any]],
    meta: list[dict[str, Any]] | None,
    where: tuple[int, int] | None,
    key: str,
    value: Any,
    junk: bytes,
) -> None:
    target = meta if key in META_KEYS and meta else rows
    if where is not None and target:
        target[where[0] % len(target)][key] = value
    path = _write(place / "reviews.jsonl", "".join(json.dumps(r) + "\n" for r in rows), "utf-8", junk)
    meta_path = place / "meta.jsonl"
    if meta is not None:
        meta_path.write_text("".join(json.dumps(m) + "\n" for m in meta), encoding="utf-8")
    _check(store, AmazonReader(metadata=meta_path if meta is not None else None), path, meta_path)
