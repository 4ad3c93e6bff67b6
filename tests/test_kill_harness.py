"""The kill -9 harness: every long write the CLI offers, killed at several points, then run again
to completion, must end exactly where an uninterrupted run ends.

Operations: `mokg ingest`, `mokg build` (seeds), `mokg build --documents`, `mokg runs delete`,
`mokg export -f parquet` and `mokg audience export`. Each runs once uninterrupted (the reference),
then, for each kill point (a share of the reference's wall time), in a fresh copy of the same
store: started, SIGKILLed, re-run with the same command. Stores are compared by their content
(a canonical dump without run ids, timestamps and run bookkeeping, which differ between any two
runs), export folders by manifest tables and row counts, audiences by their rows. A kill that
lands after the work is done is fine too: the re-run must then change nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from graph.schema import SCHEMA
from graph.store import StoreConfig, open_store

pytestmark = pytest.mark.slow
KILL_AT = (0.35, 0.7)  # shares of the uninterrupted run's wall time
RUN_ID = re.compile(r"^'?[a-z_-]+-\d{8}T\d{6}-\d+'?$")
BOOKKEEPING = {"run_id", "created_at"}


def content(path: Path) -> dict[str, list[tuple[str, ...]]]:
    """Every data node and edge with its properties, run ids and timestamps left out."""
    with open_store(StoreConfig(path=path)) as store:
        out: dict[str, list[tuple[str, ...]]] = {}
        for label in SCHEMA.labels.values():
            if label.system:
                continue
            cols = [p.name for p in label.props if p.name not in BOOKKEEPING]
            out[label.name] = _rows(store.node_table(label.name, cols))
        for rel in SCHEMA.rel_types.values():
            cols = [p.name for p in rel.props if p.name not in BOOKKEEPING]
            for h, t in rel.endpoints:
                out[f"{h}-{rel.name}-{t}"] = _rows(store.edge_table((h, rel.name, t), cols))
        return out


def _rows(df: pd.DataFrame) -> list[tuple[str, ...]]:
    cells = [
        [("<run>" if RUN_ID.match(repr(v)) else repr(v)) for v in row] for row in df.itertuples(index=False)
    ]
    return sorted(tuple(c) for c in cells)


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOKG_")}
    return {**env, "MOKG_CACHE": str(cache), "COLUMNS": "200", "MOKG_WAIT": "30"}


def _mokg(store: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "mokg", "--path", str(store), *args]


@dataclass(frozen=True)
class Operation:
    name: str
    args: Callable[[Path, Path], list[str]]  # (store, scratch dir) -> the command's arguments
    setup: str  # which prepared store it starts from: "empty", "world" or "mined"
    result: Callable[[Path, Path], object]  # (store, scratch) -> what must match the reference
    rerun_ok: Callable[[subprocess.CompletedProcess[str]], bool] = lambda done: done.returncode == 0


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A demo world, an empty store, the world ingested, the world ingested and mined once."""
    from loaders.ingest import ingest_world
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world

    root = tmp_path_factory.mktemp("kill")
    generate_world(world_config("demo", 0, n_documents=60), root / "world")
    open_store(StoreConfig(path=root / "empty"), create=True).close()
    store = open_store(StoreConfig(path=root / "ingested"), create=True)
    ingest_world(store, root / "world")
    store.close()
    shutil.copytree(root / "ingested", root / "mined")
    args = [
        "build",
        "--limit",
        "4",
        "--rounds",
        "2",
        "--samples",
        "2",
        "--workdir",
        str(root / "mined-build"),
    ]
    done = subprocess.run(
        _mokg(root / "mined", args), env=_env(root / "cache"), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    docs = (root / "world/visible/documents/documents.jsonl").read_text().splitlines()
    (root / "docs.jsonl").write_text("\n".join(docs[:25]) + "\n")
    return {"root": root, "world": root / "world", "empty": root / "empty", "world_store": root / "ingested",
            "mined": root / "mined", "docs": root / "docs.jsonl", "cache": root / "cache"}  # fmt: skip


def _mine_run(store: Path) -> str:
    with open_store(StoreConfig(path=store)) as s:
        runs = s.runs()
        return str(runs[runs["kind"] == "mine"]["id"].iloc[-1])


def _export_result(_store: Path, scratch: Path) -> object:
    manifest = json.loads((scratch / "export" / "manifest.json").read_text())
    folder = scratch / "export"
    tables = {str(p.relative_to(folder)): len(pd.read_parquet(p)) for p in sorted(folder.rglob("*.parquet"))}
    assert tables == manifest["counts"]  # no table of another export beside the manifest
    return manifest["counts"], manifest["graph_version"]


def _audience_result(_store: Path, scratch: Path) -> object:
    frame = pd.read_parquet(scratch / "audience.parquet")
    audit = [json.loads(x)["status"] for x in (scratch / "audit.jsonl").read_text().splitlines()]
    assert audit[0] == "started" and "written" in audit  # every attempt, the killed one too, audited
    return frame.sort_values("user_id").reset_index(drop=True).to_dict("records")


def _store_content(store: Path, _scratch: Path) -> object:
    return content(store)


OPERATIONS = [
    Operation("ingest", lambda s, w: ["ingest", str(w.parent / "world")], "empty", _store_content),
    Operation(
        "build",
        lambda s, w: ["build", "--limit", "4", "--rounds", "3", "--samples", "2", "--workdir", str(w / "b")],
        "world_store",
        _store_content,
    ),
    Operation(
        "build --documents",
        lambda s, w: [
            "build",
            "--documents",
            str(w.parent / "docs.jsonl"),
            "--world",
            str(w.parent / "world"),
            "--rounds",
            "2",
            "--samples",
            "2",
            "--workdir",
            str(w / "b"),
        ],
        "world_store",
        _store_content,
    ),
    Operation(
        "runs delete",
        lambda s, w: ["runs", "delete", _mine_run(s), "--yes"],
        "mined",
        _store_content,
        # killed after its transaction committed, the re-run finds no such run: that is the end state
        lambda done: done.returncode == 0 or "unknown run id" in done.stderr,
    ),
    Operation(
        "export", lambda s, w: ["export", "-f", "parquet", "-o", str(w / "export")], "mined", _export_result
    ),
    Operation(
        "audience export",
        lambda s, w: [
            "audience",
            "export",
            "--campaign",
            "camp_0007",
            "--size",
            "150",
            "--method",
            "ppr",
            "--out",
            str(w / "audience.parquet"),
            "--audit-log",
            str(w / "audit.jsonl"),
        ],
        "world_store",
        _audience_result,
        # killed after the file was renamed into place, the re-run refuses to replace it
        lambda done: done.returncode == 0 or "--overwrite" in done.stderr,
    ),
]


def _fresh(prepared: dict[str, Path], op: Operation, name: str) -> tuple[Path, Path]:
    scratch = prepared["root"] / f"{op.name.replace(' ', '_')}-{name}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    store = scratch / "graph"
    shutil.copytree(prepared[op.setup], store)
    return store, scratch


@pytest.mark.parametrize("op", OPERATIONS, ids=[o.name for o in OPERATIONS])
def test_a_killed_operation_ends_where_an_uninterrupted_one_does(
    prepared: dict[str, Path], op: Operation
) -> None:
    env = _env(prepared["cache"])
    store, scratch = _fresh(prepared, op, "reference")
    began = time.monotonic()
    ref = subprocess.run(
        _mokg(store, op.args(store, scratch)), env=env, capture_output=True, text=True, timeout=600
    )
    wall = time.monotonic() - began
    assert ref.returncode == 0, ref.stderr
    expected = op.result(store, scratch)
    for share in KILL_AT:
        store, scratch = _fresh(prepared, op, f"kill{share}")
        args = op.args(store, scratch)
        proc = subprocess.Popen(
            _mokg(store, args), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(wall * share)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        again = subprocess.run(_mokg(store, args), env=env, capture_output=True, text=True, timeout=600)
        assert op.rerun_ok(again), f"{op.name} re-run after a kill at {share:.0%}: {again.stderr[-800:]}"
        assert op.result(store, scratch) == expected, f"{op.name} killed at {share:.0%} ends elsewhere"
