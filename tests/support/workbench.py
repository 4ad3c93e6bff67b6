"""The workbench served for a test: a real uvicorn server over a real store, on a free port.

Usage (a copy of the ``world_store`` fixture's store, one per test module)::

    from tests.support.workbench import running_workbench, workbench_config

    @pytest.fixture(scope="module")
    def base_url(world_store, tmp_path_factory):
        _world, graph = world_store
        config = workbench_config(graph, tmp_path_factory.mktemp("wb"), token=None)
        with running_workbench(config) as url:
            yield url          # e.g. "http://127.0.0.1:41234"; call it with httpx

``workbench_config`` puts the feedback file, the exports and the audit log under ``tmp`` (never
under ``mokg-data/``). ``running_workbench`` starts ``workbench.app.create_app(config, store)``
with uvicorn in a daemon thread on a socket bound to ``127.0.0.1:0`` (so there is no port race;
:func:`workbench.server.serving`), waits until the app has started (its lifespan opened the
store), yields the base URL and stops the server (closing the store it opened) when the block
ends. The embedded store admits one process but this is the same process: pass ``store=`` an
opened store to share it with the test (e.g. to write a run the test then deletes over HTTP).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from graph.store import GraphStore, StoreConfig
from workbench.app import WorkbenchConfig
from workbench.server import serving


def workbench_config(store: Path | StoreConfig, tmp: Path, **overrides: Any) -> WorkbenchConfig:
    """A config over ``store`` (an embedded store directory, or any StoreConfig) whose files
    (feedback, exports, audit log) live under ``tmp``; ``overrides`` set the other fields (token, world)."""
    store_config = store if isinstance(store, StoreConfig) else StoreConfig(path=Path(store))
    config = WorkbenchConfig(
        store=store_config,
        feedback=tmp / "feedback.jsonl",
        exports=tmp / "exports",
        audit_log=tmp / "audit" / "audience_exports.jsonl",
    )
    return replace(config, **overrides)


@contextmanager
def running_workbench(config: WorkbenchConfig, store: GraphStore | None = None) -> Iterator[str]:
    """The app served on ``http://127.0.0.1:PORT`` while the block runs; yields that base URL."""
    with serving(config, store) as url:
        yield url
