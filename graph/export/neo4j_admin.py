"""A :class:`~graph.subgraph.Subgraph` as the CSV files of Neo4j's offline bulk importer.

``neo4j-admin database import full`` builds a new Neo4j database from CSV files in minutes where
transactional ``MERGE`` s take hours, which is how a store of 10M users and 1B interactions is
first loaded (``docs/scaling.md``). The files follow the importer's header format
(https://neo4j.com/docs/operations-manual/current/tools/neo4j-admin/neo4j-admin-import/):

- ``nodes/{Label}.csv``: header ``id:ID({Label}),prop:type,...``; one ID space per label, since a
  MoKG node id is unique within its label (the store's own key);
- ``relationships/{HEAD}__{REL}__{TAIL}.csv``: header ``:START_ID({HEAD}),:END_ID({TAIL}),prop:type``;
  the relation type is given on the command line, as for labels;
- ``import.sh``: the exact ``neo4j-admin`` command, with every file named;
- ``manifest.json``: graph version and row counts, as the Parquet export has.

Types map from the schema's declared types (INT64 → ``long``, DOUBLE → ``double``, BOOL →
``boolean``, TIMESTAMP → ``datetime`` in UTC ISO 8601, STRING → ``string``); nulls are empty cells,
which the importer leaves unset. Text is RFC 4180 quoted (quotes doubled), and the command passes
``--multiline-fields=true`` because mined evidence may hold line breaks.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pandas as pd

from graph import files
from graph.export.props import EDGE_ENDS, check_name, declared_types, infer_type, is_null, iso_utc
from graph.schema import PropType
from graph.subgraph import Subgraph

MANIFEST = "manifest.json"
FORMAT = "mokg-neo4j-admin/1"
SCRIPT = "import.sh"
_TYPES = {
    PropType.INT64: "long",
    PropType.DOUBLE: "double",
    PropType.BOOL: "boolean",
    PropType.TIMESTAMP: "datetime",
    PropType.STRING: "string",
}


def write_neo4j_admin(sub: Subgraph, directory: str | Path, database: str = "neo4j") -> Path:
    """Write ``sub`` as importer files in ``directory`` (written aside, renamed into place);
    returns the path of ``import.sh``."""
    files.write_folder(directory, lambda tmp: _write(sub, tmp, database), _claim)
    return Path(directory) / SCRIPT


def _claim(root: Path) -> str | None:
    try:
        fmt = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("format")
    except (OSError, ValueError, AttributeError):
        fmt = None
    return None if fmt == FORMAT else f"it is not a mokg neo4j-admin export (no {FORMAT} {MANIFEST})"


def _column_type(name: str, df: pd.DataFrame, declared: dict[str, PropType]) -> PropType:
    if name in declared:
        return declared[name]
    values = df[name].dropna()
    return infer_type(values.iloc[0]) if len(values) else PropType.STRING


def _cells(series: pd.Series, kind: PropType) -> pd.Series:
    """One column as the importer reads it: empty for null, ISO UTC for time, lower-case booleans."""

    def cell(value: object) -> str:
        if is_null(value):
            return ""
        if kind is PropType.TIMESTAMP:
            return iso_utc(value)
        if kind is PropType.BOOL:
            return "true" if value else "false"
        return str(value)

    return series.map(cell)


def _table(df: pd.DataFrame, ends: dict[str, str], declared: dict[str, PropType]) -> pd.DataFrame:
    """``df`` with importer headers: ``ends`` renames the key columns, the rest get ``name:type``."""
    out = pd.DataFrame({header: df[col].astype(str) for col, header in ends.items()})
    for col in df.columns:
        if col in ends:
            continue
        kind = _column_type(str(col), df, declared)
        out[f"{check_name(str(col), 'property')}:{_TYPES[kind]}"] = _cells(df[col], kind)
    return out


def _write(sub: Subgraph, root: Path, database: str) -> None:
    counts: dict[str, int] = {}
    args = ["neo4j-admin", "database", "import", "full", check_name(database, "database")]
    (root / "nodes").mkdir()
    (root / "relationships").mkdir()
    for label, df in sorted(sub.nodes.items()):
        rel_path = f"nodes/{check_name(label, 'label')}.csv"
        table = _table(df, {"id": f"id:ID({label})"}, declared_types(label, edge=False))
        table.to_csv(root / rel_path, index=False)
        counts[rel_path] = len(df)
        args.append(f"--nodes={label}={rel_path}")
    for (head, rel, tail), df in sorted(sub.edges.items()):
        names = [check_name(n, "edge key part") for n in (head, rel, tail)]
        rel_path = f"relationships/{'__'.join(names)}.csv"
        ends = dict(zip(EDGE_ENDS, (f":START_ID({head})", f":END_ID({tail})"), strict=True))
        _table(df, ends, declared_types(rel, edge=True)).to_csv(root / rel_path, index=False)
        counts[rel_path] = len(df)
        args.append(f"--relationships={rel}={rel_path}")
    args += ["--id-type=string", "--multiline-fields=true", "--overwrite-destination=true"]
    script = "\n".join(
        [
            "#!/bin/sh",
            f"# Graph version {sub.version}: {sub.num_nodes()} nodes, {sub.num_edges()} relationships.",
            "# Run from this folder on a stopped Neo4j server (or a fresh one), then start the database.",
            'cd "$(dirname "$0")"',
            " \\\n  ".join(shlex.quote(a) for a in args),
            "",
        ]
    )
    (root / SCRIPT).write_text(script, encoding="utf-8")
    (root / SCRIPT).chmod(0o755)
    manifest = {
        "format": FORMAT,
        "graph_version": sub.version.as_dict(),
        "database": database,
        "counts": counts,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
