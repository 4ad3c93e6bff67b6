"""Fixtures: a store per backend. ``neo4j`` runs against ArcadeDB's Bolt server (started here, once
per session) or, when MOKG_NEO4J_URI is set, against that real Neo4j."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest

from graph.base import BaseStore
from graph.store import GraphStore, StoreConfig, open_store

BOLT_PASSWORD = "mokg-test-pw"
BOLT_DATABASE = "kg"


@pytest.fixture(scope="session")
def bolt_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StoreConfig]:
    """Connection settings of a live Bolt server for the whole session."""
    if os.environ.get("MOKG_NEO4J_URI"):
        yield StoreConfig.from_env(backend="neo4j")
        return
    from tests.support.arcadedb_server import bolt_server

    root = tmp_path_factory.mktemp("arcadedb")
    with bolt_server(root, BOLT_PASSWORD, BOLT_DATABASE, timeout_s=120) as uri:
        yield StoreConfig(
            backend="neo4j",
            neo4j_uri=uri,
            neo4j_user="root",
            neo4j_password=BOLT_PASSWORD,
            neo4j_database=BOLT_DATABASE,
        )


def _clear(store: GraphStore) -> None:
    """Empty a shared server database, runs included (not a write of the graph: no run of its own)."""
    cast(BaseStore, store)._in_write_tx(lambda ex: ex("MATCH (n) DETACH DELETE n", {}))


@pytest.fixture(params=["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty, initialised store of each backend."""
    if request.param == "embedded":
        s = open_store(StoreConfig(path=tmp_path / "graph"), create=True)
    else:
        s = open_store(request.getfixturevalue("bolt_config"), create=True)
        _clear(s)
    try:
        yield s
    finally:
        if request.param == "neo4j":
            _clear(s)
        s.close()


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one intra-op thread for a test (tiny models: more threads only add contention on a
    shared 2-core machine, 3-30x slower), restored afterwards. Use it with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def _small_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from loaders.ingest import ingest_world
    from loaders.world.generate import generate_world
    from tests.support.worlds import SMALL_WORLD

    root = tmp_path_factory.mktemp("small-world")
    generate_world(SMALL_WORLD, root / "world")
    with open_store(StoreConfig(path=root / "graph"), create=True) as store:
        ingest_world(store, root / "world")
    return root / "world", root / "graph"


@pytest.fixture(scope="module")
def world_store(
    _small_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """(world directory, store directory) of :data:`tests.support.worlds.SMALL_WORLD`: the world is
    generated and ingested once per session; each module gets its own copy of the store (tests may
    write to it). The world directory is shared: copy it before changing it."""
    import shutil

    world, graph = _small_world
    copy = tmp_path_factory.mktemp("small-world-store") / "graph"
    shutil.copytree(graph, copy)
    return world, copy
