"""The built-in sample graph (``loaders/data/sample_graph.json``): a tiny, hand-written MoKG.

Three life events, the categories and items they need, brands, domains, two campaigns and eight
users, small enough to read in one sitting. ``mokg demo`` loads it; the docs query it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from graph.schema import SCHEMA
from graph.store import GraphStore, LoadReport
from graph.subgraph import EdgeKey

SAMPLE_PATH = Path(__file__).parent / "data" / "sample_graph.json"


def read_sample(
    path: Path = SAMPLE_PATH,
) -> tuple[dict[str, pd.DataFrame], dict[EdgeKey, pd.DataFrame]]:
    """The sample as node frames by label and edge frames by (head, type, tail)."""
    data: dict[str, Any] = json.loads(path.read_text())
    source = f"mokg-sample-v{data['version']}"
    nodes = {label: pd.DataFrame(rows).assign(source=source) for label, rows in data["nodes"].items()}
    edges: dict[EdgeKey, pd.DataFrame] = {}
    for block in data["edges"]:
        head, tail = SCHEMA.endpoints(block["type"], block.get("head"), block.get("tail"))
        edges[(head, block["type"], tail)] = pd.DataFrame(block["rows"]).assign(source=source)
    return nodes, edges


def load_sample(
    store: GraphStore, run_id: str, progress: Callable[[str, int], None] | None = None
) -> LoadReport:
    """Load the sample in one transaction (idempotent: a second load changes nothing)."""
    nodes, edges = read_sample()
    return store.bulk_load(run_id=run_id, nodes=nodes, edges=edges, progress=progress)
