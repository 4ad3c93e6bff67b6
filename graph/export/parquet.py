"""A :class:`~graph.subgraph.Subgraph` as a folder of Parquet files, and back.

Layout of ``directory``
- ``nodes/{Label}.parquet``: one node table per label;
- ``edges/{HEAD}__{REL}__{TAIL}.parquet``: one edge table per (head label, relation, tail label);
- ``manifest.json``: graph version, schema version, and the file list with each file's kind, key
  and row count. It is written last, and readers go by it alone, so stale files of an older export
  in the same folder are ignored.

Every file is written to a temp name and moved into place with ``os.replace``: a reader sees a
whole file or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from graph.errors import InputError
from graph.export.atomic import write_atomic, write_text_atomic
from graph.export.props import check_name
from graph.subgraph import GraphVersion, Subgraph

MANIFEST = "manifest.json"
FORMAT = "mokg-parquet/1"


def write_parquet(sub: Subgraph, directory: str | Path) -> Path:
    """Write ``sub`` under ``directory`` (layout above); returns the manifest's path."""
    root = Path(directory)
    files: list[dict[str, Any]] = []
    for label, df in sub.nodes.items():
        rel_path = f"nodes/{check_name(label, 'label')}.parquet"
        _write_table(root / rel_path, df)
        files.append({"path": rel_path, "kind": "nodes", "label": label, "rows": len(df)})
    for (head, rel, tail), df in sub.edges.items():
        names = [check_name(n, "edge key part") for n in (head, rel, tail)]
        rel_path = f"edges/{'__'.join(names)}.parquet"
        _write_table(root / rel_path, df)
        files.append({"path": rel_path, "kind": "edges", "key": [head, rel, tail], "rows": len(df)})
    manifest = {
        "format": FORMAT,
        "graph_version": sub.version.as_dict(),
        "schema_version": sub.version.schema_version,
        "counts": {f["path"]: f["rows"] for f in files},
        "files": files,
    }
    return write_text_atomic(root / MANIFEST, json.dumps(manifest, indent=1))


def read_parquet(directory: str | Path) -> Subgraph:
    """Read a folder written by :func:`write_parquet` back into a Subgraph."""
    root = Path(directory)
    manifest_path = root / MANIFEST
    if not manifest_path.is_file():
        raise InputError(f"no {MANIFEST} in {root}; write the export with write_parquet first")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise InputError(f"{manifest_path} is not a {FORMAT} manifest; re-export with mokg")
    sub = Subgraph(version=GraphVersion(**manifest["graph_version"]))
    for entry in manifest["files"]:
        df = pd.read_parquet(root / entry["path"])
        if entry["kind"] == "nodes":
            sub.nodes[entry["label"]] = df
        else:
            head, rel, tail = entry["key"]
            sub.edges[(head, rel, tail)] = df
    return sub


def _write_table(path: Path, df: pd.DataFrame) -> None:
    write_atomic(path, lambda tmp: df.to_parquet(tmp, index=False))
