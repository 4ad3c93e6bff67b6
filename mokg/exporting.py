"""Write a subgraph in one of the open export formats."""

from __future__ import annotations

from pathlib import Path

from graph import files
from graph.errors import InputError
from graph.subgraph import Subgraph

FORMATS = ("rdf", "pyg", "networkx", "parquet", "neo4j-admin")
FOLDERS = ("parquet", "neo4j-admin")


def check_export_target(fmt: str, out: Path) -> None:
    """Refuse a format or ``--out`` that cannot be written, before the (slow) subgraph is read."""
    if fmt not in FORMATS:
        raise InputError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    files.target(out, folder=fmt in FOLDERS)


def export_subgraph(sub: Subgraph, fmt: str, out: Path) -> Path:
    """Write ``sub`` as ``rdf`` (Turtle), ``pyg`` (.pt), ``networkx`` (JSON), ``parquet`` (a folder)
    or ``neo4j-admin`` (a folder of the bulk importer's CSVs and its command).

    Each is written aside and renamed into place (:mod:`graph.files`); errors are one-line
    :class:`InputError` s.
    """
    from graph import export

    check_export_target(fmt, out)
    if fmt == "rdf":
        return export.write_turtle(sub, out)
    if fmt == "pyg":
        return export.save_heterodata(sub, out)
    if fmt == "networkx":
        return export.write_networkx(sub, out)
    if fmt == "neo4j-admin":
        return export.write_neo4j_admin(sub, out)
    export.write_parquet(sub, out)
    return out
