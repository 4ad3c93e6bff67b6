"""Bad input to the store gets one clear error (issue 15): over-long keys on every write path, a
damaged store marker, a Neo4j URI the driver cannot use."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from graph.errors import InputError, StoreError, StoreUnavailable
from graph.store import GraphStore, StoreConfig, open_store

LONG = "k" * 1025  # one past the cap (graph.validate.MAX_KEY_LENGTH)
FITS = "k" * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[GraphStore]:
    with open_store(StoreConfig(path=tmp_path / "g"), create=True) as s:
        yield s


def _nodes(s: GraphStore, run: str, key: str) -> Any:
    return s.upsert_nodes("User", [{"id": "u0"}, {"id": key}], run_id=run)


def _edges(s: GraphStore, run: str, key: str) -> Any:
    rows = [{"head": "u0", "tail": "i0"}, {"head": "u0", "tail": key}]
    return s.upsert_edges("INTERACTED", rows, run_id=run, tail="Item")


def _bulk_nodes(s: GraphStore, run: str, key: str) -> Any:
    return s.bulk_load(run_id=run, nodes={"Item": pd.DataFrame({"id": ["i0", key]})})


def _bulk_edges(s: GraphStore, run: str, key: str) -> Any:
    return s.bulk_load(
        run_id=run,
        nodes={"User": pd.DataFrame({"id": ["u0"]}), "Item": pd.DataFrame({"id": ["i0"]})},
        edges={("User", "INTERACTED", "Item"): pd.DataFrame({"head": ["u0", "u0"], "tail": ["i0", key]})},
    )


WRITES: dict[str, Callable[[GraphStore, str, str], Any]] = {
    "upsert_nodes": _nodes,
    "upsert_edges": _edges,
    "bulk_load nodes": _bulk_nodes,
    "bulk_load edges": _bulk_edges,
}


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
def test_every_write_refuses_a_key_longer_than_the_cap(
    store: GraphStore, write: Callable[[GraphStore, str, str], Any]
) -> None:
    too_long = r"row 1.*is 1,025 characters long; keys may have at most 1,024"
    with store.run_context("test") as run, pytest.raises(InputError, match=too_long):
        write(store, run, LONG)
    stats = store.stats()
    assert stats["total_edges"] == 0 and sum(n for label, n in stats["nodes"].items() if label != "Run") == 0


def test_a_key_of_exactly_the_cap_is_stored(store: GraphStore) -> None:
    with store.run_context("test") as run:
        store.upsert_nodes("User", [{"id": FITS}], run_id=run)
    assert store.node_table("User")["id"].tolist() == [FITS]


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '"v2"', ""])
def test_a_damaged_store_marker_is_one_clear_error(tmp_path: Path, damage: str) -> None:
    open_store(StoreConfig(path=tmp_path / "g"), create=True).close()
    (tmp_path / "g" / "mokg.json").write_text(damage)
    with pytest.raises(
        StoreError, match=r"the store marker .*mokg\.json is damaged .*restore it from a backup"
    ):
        open_store(StoreConfig(path=tmp_path / "g"))


@pytest.mark.parametrize("uri", ["notauri", "ftp://host:21", "bolt//localhost"])
def test_a_neo4j_uri_the_driver_cannot_use_is_one_clear_error(uri: str) -> None:
    config = StoreConfig(backend="neo4j", neo4j_uri=uri, connect_timeout_s=1.0)
    with pytest.raises(StoreError, match=r"MOKG_NEO4J_URI '.*' is not a URI the driver can use") as info:
        open_store(config)
    assert not isinstance(info.value, StoreUnavailable) and "\n" not in str(info.value)
