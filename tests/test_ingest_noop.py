"""Re-ingesting unchanged files is a no-op by their content hashes (loaders/hashes.py), on both
backends: nothing is written and no run made; a changed file is loaded (its changed rows applied);
deleting a run, another run's before-images or an ad-hoc write make the next ingest compare rows
again; ``force`` always does; a failed load records no hash."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pytest

from graph.base import BaseStore
from graph.store import GraphStore, LoadReport, StoreConfig, open_store
from loaders.hashes import HASH_LABEL, TableFile
from loaders.ingest import ingest_files, ingest_world

USERS = pd.DataFrame({"id": ["u1", "u2", "u3"], "name": ["Ann", "Bo", "Cy"]})
ITEMS = pd.DataFrame({"id": ["i1", "i2"], "name": ["gown", "veil"], "price": [899.0, 49.0]})
EDGES = pd.DataFrame(
    {"head": ["u1", "u2", "u3"], "tail": ["i1", "i2", "i1"], "kind": ["click", "buy", "click"]}
)
INTERACTED = ("User", "INTERACTED", "Item")


@pytest.fixture
def files(tmp_path: Path) -> list[TableFile]:
    out = []
    for target, frame in (("User", USERS), ("Item", ITEMS), (INTERACTED, EDGES)):
        path = tmp_path / f"{target if isinstance(target, str) else target[1]}.parquet"
        frame.to_parquet(path, index=False)
        out.append(TableFile(target, path))
    return out


def _state(store: GraphStore) -> dict[str, Any]:
    """What a no-op must leave as it was: rows, runs, version, before-images, hashes."""
    return {
        "stats": {k: v for k, v in store.stats().items() if k != "store"},
        "runs": store.runs()["id"].tolist(),
        "changes": len(store.node_table("Change")),
        "hashes": sorted(store.node_table(HASH_LABEL, ["target", "sha256"]).itertuples(index=False)),
        "names": _names(store),
    }


def _names(store: GraphStore) -> dict[str, str]:
    users = store.node_table("User", ["name"])
    return dict(zip(users["id"], users["name"], strict=True))


def _counts(report: LoadReport) -> dict[str, tuple[int | None, int | None, int | None]]:
    return {k: (t.created, t.updated, t.unchanged) for k, t in {**report.nodes, **report.edges}.items()}


def _set_name(store: GraphStore, user: str, name: str) -> None:
    """A write that bypasses the store's runs (as another program would)."""
    query = "MATCH (u:User {id: $id}) SET u.name = $name"
    cast(BaseStore, store)._in_write_tx(lambda ex: ex(query, {"id": user, "name": name}))


def test_an_unchanged_reingest_writes_nothing(store: GraphStore, files: list[TableFile]) -> None:
    first = ingest_files(store, files)
    assert first.run_id and _counts(first)["User"] == (3, 0, 0)
    assert len(store.node_table(HASH_LABEL)) == 3  # one hash per table, none reported as a table
    assert HASH_LABEL not in first.nodes
    before = _state(store)
    again = ingest_files(store, files)
    assert again.run_id == ""  # no run: the graph version does not move
    assert _counts(again) == {"User": (0, 0, 3), "Item": (0, 0, 2), "(User)-[:INTERACTED]->(Item)": (0, 0, 3)}
    assert _state(store) == before


def test_a_changed_file_is_loaded_and_the_others_skipped(store: GraphStore, files: list[TableFile]) -> None:
    ingest_files(store, files)
    USERS.assign(name=["Ann", "Bob", "Cy"]).to_parquet(files[0].path, index=False)
    report = ingest_files(store, files)
    assert report.run_id and _counts(report)["User"] == (0, 1, 2)
    assert _counts(report)["Item"] == (0, 0, 2)  # skipped: its file is unchanged
    assert _names(store)["u2"] == "Bob"
    assert ingest_files(store, files).run_id == ""  # the new hash is the latest one
    store.delete_run(report.run_id)  # puts Bo back, and forgets every hash
    assert _names(store)["u2"] == "Bo"
    redo = ingest_files(store, files)
    assert redo.run_id and _counts(redo)["User"] == (0, 1, 2) and _names(store)["u2"] == "Bob"


def test_deleting_the_run_that_loaded_the_files_forgets_their_hashes(
    store: GraphStore, files: list[TableFile]
) -> None:
    first = ingest_files(store, files)
    store.delete_run(first.run_id)
    assert store.stats()["total_nodes"] == 0 and store.node_table(HASH_LABEL).empty
    again = ingest_files(store, files)
    assert again.run_id and _counts(again)["User"] == (3, 0, 0)
    assert store.stats()["total_edges"] == 3


def test_another_runs_changes_and_adhoc_writes_make_it_compare_again(
    store: GraphStore, files: list[TableFile]
) -> None:
    ingest_files(store, files)
    with store.run_context("other") as run_id:  # a before-image of u1, under a later run
        store.upsert_nodes("User", [{"id": "u1", "name": "Anna"}], run_id=run_id)
    report = ingest_files(store, files)
    assert _counts(report)["User"] == (0, 1, 2) and _counts(report)["Item"] == (0, 0, 2)
    assert _names(store)["u1"] == "Ann"
    store.run("MATCH (i:Item {id: 'i2'}) SET i.price = 1.0", read_only=False)  # no before-image
    report = ingest_files(store, files)
    assert _counts(report)["Item"] == (0, 1, 1) and _counts(report)["User"] == (0, 0, 3)
    assert ingest_files(store, files).run_id == ""


def test_force_compares_every_row(store: GraphStore, files: list[TableFile]) -> None:
    ingest_files(store, files)
    _set_name(store, "u3", "Zed")  # no run, no before-image: the hashes cannot see it
    assert ingest_files(store, files).run_id == "" and _names(store)["u3"] == "Zed"
    forced = ingest_files(store, files, force=True)
    assert forced.run_id and _counts(forced)["User"] == (0, 1, 2)
    assert _names(store)["u3"] == "Cy"


def test_a_failed_load_records_no_hash(
    store: GraphStore, files: list[TableFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = store._write_batch  # type: ignore[attr-defined]
    calls: list[int] = []

    def failing(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk gone")
        real(*args)

    monkeypatch.setattr(store, "_write_batch", failing)
    with pytest.raises(RuntimeError, match="disk gone"):
        ingest_files(store, files)
    monkeypatch.undo()
    assert store.node_table(HASH_LABEL).empty and store.stats()["total_nodes"] == 0
    assert _counts(ingest_files(store, files))["User"] == (3, 0, 0)


def test_a_schema_v7_store_gains_the_hash_table(tmp_path: Path) -> None:
    config = StoreConfig(path=tmp_path / "v7")
    with open_store(config, create=True) as store:
        store._conn.execute(f"DROP TABLE {HASH_LABEL}")  # type: ignore[attr-defined]
    marker = tmp_path / "v7" / "mokg.json"
    marker.write_text(json.dumps({**json.loads(marker.read_text()), "schema_version": "7"}))
    with open_store(config) as store:
        assert store.node_table(HASH_LABEL).empty
    info = json.loads(marker.read_text())
    assert info["schema_version"] == "8" and info["migrations"][-1]["from"] == "7"


def test_mokg_ingest_of_an_unchanged_world_says_so(world_store: tuple[Path, Path]) -> None:
    """The shared small world, ingested once by the fixture: again it is a no-op; --force compares."""
    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        assert ingest_world(store, world).run_id == ""

    def mokg(*args: str) -> str:
        cmd = [sys.executable, "-m", "mokg", "--path", str(graph), "ingest", str(world), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "nothing changed" in mokg()
    assert " 0 created, 0 updated" in mokg("--force")
