"""Where a world lives on disk, and who may read what.

::

    DIR/world.json            manifest: config, ontology version/hash, files with row counts
    DIR/visible/nodes/*.parquet   what models may see: catalogue, users, campaigns, queries
    DIR/visible/edges/*.parquet   {Head}__{REL}__{Tail}.parquet, columns head, tail, props
    DIR/visible/events/*.parquet  the raw event logs (interactions, searches)
    DIR/visible/documents/documents.jsonl   texts (descriptions, briefs, reviews) for `mokg build --documents`
    DIR/hidden/...            evaluator-only truth: latent intents, conversions, the full KG, and
                              what each document states and names (hidden/documents/)

Everything that feeds training goes through :meth:`WorldDir.visible`; :meth:`WorldDir.hidden`
exists for evaluators and says so in its name. A test checks that ingestion and subgraph
building never open a file under ``hidden/``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import InputError
from graph.subgraph import EdgeKey

MANIFEST = "world.json"


def edge_file(key: EdgeKey) -> str:
    return f"{key[0]}__{key[1]}__{key[2]}.parquet"


def parse_edge_file(name: str) -> EdgeKey:
    head, rel, tail = name.removesuffix(".parquet").split("__")
    return (head, rel, tail)


@dataclass(frozen=True)
class WorldDir:
    root: Path

    def manifest(self) -> dict[str, Any]:
        path = self.root / MANIFEST
        if not path.exists():
            raise InputError(
                f"{self.root} is not a world directory (no {MANIFEST}); "
                "create one with `mokg world generate --out DIR`"
            )
        data: dict[str, Any] = json.loads(path.read_text())
        return data

    def visible(self, *parts: str) -> Path:
        """A path under visible/ (what models may read)."""
        return self.root.joinpath("visible", *parts)

    def hidden_for_evaluation(self, *parts: str) -> Path:
        """A path under hidden/: ground truth for evaluators only, never for training inputs."""
        return self.root.joinpath("hidden", *parts)

    def node_files(self) -> dict[str, Path]:
        return {p.stem: p for p in sorted(self.visible("nodes").glob("*.parquet"))}

    def edge_files(self) -> dict[EdgeKey, Path]:
        return {parse_edge_file(p.name): p for p in sorted(self.visible("edges").glob("*.parquet"))}

    def documents(self) -> Path:
        """The world's documents (JSON-lines: id, title, text, domain, item)."""
        return self.visible("documents", "documents.jsonl")

    def truth_kg_files(self) -> dict[EdgeKey, Path]:
        folder = self.hidden_for_evaluation("kg")
        return {parse_edge_file(p.name): p for p in sorted(folder.glob("*.parquet"))}
