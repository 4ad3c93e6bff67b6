"""A :class:`~graph.subgraph.Subgraph` as a folder of Parquet files, and back.

Layout of ``directory``
- ``nodes/{Label}.parquet``: one node table per label;
- ``edges/{HEAD}__{REL}__{TAIL}.parquet``: one edge table per (head label, relation, tail label);
- ``manifest.json``: graph version, schema version, and the file list with each file's kind, key
  and row count. Readers go by it alone.

The whole folder is written aside and swapped in (:func:`graph.files.write_folder`): a reader, or a
re-export killed half-way, sees the old export whole or the new one whole, never a manifest beside
tables of another graph. A non-empty folder that is not a mokg Parquet export (or holds files of
its own beside one) is refused, not replaced.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from graph import files
from graph.errors import InputError
from graph.export.props import check_name
from graph.subgraph import GraphVersion, Subgraph

MANIFEST = "manifest.json"
FORMAT = "mokg-parquet/1"


def write_parquet(sub: Subgraph, directory: str | Path) -> Path:
    """Write ``sub`` as the folder ``directory`` (layout above); returns the manifest's path."""
    files.write_folder(directory, lambda tmp: _write_export(sub, tmp), claim_export)
    return Path(directory) / MANIFEST


def claim_export(root: Path) -> str | None:
    """None if ``root`` holds only a mokg Parquet export (which may be replaced), else why not."""
    try:
        fmt = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    if fmt != FORMAT:
        return f"it is not a mokg Parquet export (no {FORMAT} {MANIFEST})"
    foreign = files.foreign_files(root, _ours)
    if foreign:
        return f"it holds {foreign[0]!r}, which is not part of a mokg Parquet export"
    return None


def _ours(rel: str) -> bool:
    top, _, name = rel.partition("/")
    return rel == MANIFEST or (top in ("nodes", "edges") and "/" not in name and name.endswith(".parquet"))


def _write_export(sub: Subgraph, root: Path) -> None:
    entries: list[dict[str, Any]] = []
    for label, df in sub.nodes.items():
        rel_path = f"nodes/{check_name(label, 'label')}.parquet"
        _write_table(root / rel_path, df)
        entries.append({"path": rel_path, "kind": "nodes", "label": label, "rows": len(df)})
    for (head, rel, tail), df in sub.edges.items():
        names = [check_name(n, "edge key part") for n in (head, rel, tail)]
        rel_path = f"edges/{'__'.join(names)}.parquet"
        _write_table(root / rel_path, df)
        entries.append({"path": rel_path, "kind": "edges", "key": [head, rel, tail], "rows": len(df)})
    manifest = {
        "format": FORMAT,
        "graph_version": sub.version.as_dict(),
        "schema_version": sub.version.schema_version,
        "counts": {f["path"]: f["rows"] for f in entries},
        "files": entries,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")


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
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(path, index=False)
