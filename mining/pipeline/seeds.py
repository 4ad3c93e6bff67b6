"""Stage 0: the entities mining starts from: the store's intents, or a file of names."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd

from graph.errors import InputError
from graph.schema import SCHEMA
from graph.store import GraphStore
from mining.pipeline.types import Entity

SEED_LABELS = ("Intent", "Category")


def store_entities(store: GraphStore, label: str) -> list[Entity]:
    """Every node of ``label`` in the store, with its name and description if it has them."""
    has_desc = any(p.name == "description" for p in SCHEMA.label(label).props)
    table = store.node_table(label, ["name", "description"] if has_desc else ["name"])
    if not len(table):
        return []
    desc = table["description"] if has_desc else pd.Series([""] * len(table))
    names = table["name"].fillna(table["id"])
    return [
        Entity(str(i), str(n), label, "" if pd.isna(d) else str(d))
        for i, n, d in zip(table["id"], names, desc, strict=True)
    ]


def load_seeds(store: GraphStore, spec: str, limit: int | None = None, seed: int = 0) -> list[Entity]:
    """Seeds from ``spec``: ``intents`` (every Intent in the store) or a JSON-lines / CSV file with
    ``name`` and ``type`` columns (Intent or Category), each matched to a store node by name.

    ``limit`` keeps a seeded random sample of that many.
    """
    if spec == "intents":
        seeds = store_entities(store, "Intent")
        if not seeds:
            raise InputError(
                "the store has no Intent nodes to start from; run `mokg demo` or `mokg ingest` first"
            )
    else:
        seeds = _from_file(store, Path(spec))
    seeds.sort(key=lambda e: e.ref)
    if limit is not None and limit < len(seeds):
        seeds = sorted(random.Random(seed).sample(seeds, limit), key=lambda e: e.ref)
    return seeds


def _from_file(store: GraphStore, path: Path) -> list[Entity]:
    if not path.exists():
        raise InputError(f"seed file {path} does not exist; pass `intents` or a .jsonl/.csv with name,type")
    if path.suffix == ".csv":
        rows = pd.read_csv(path).to_dict("records")
    else:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    known = {(e.type, e.name.casefold()): e for label in SEED_LABELS for e in store_entities(store, label)}
    out = []
    for number, row in enumerate(rows, start=1):
        name, label = str(row.get("name", "")).strip(), str(row.get("type", "Intent"))
        if label not in SEED_LABELS or not name:
            raise InputError(f"{path} row {number}: needs a name and a type of {' or '.join(SEED_LABELS)}")
        if (label, name.casefold()) not in known:
            raise InputError(f"{path} row {number}: no {label} named {name!r} in the store")
        out.append(known[label, name.casefold()])
    return out
