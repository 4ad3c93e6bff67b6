"""Write a subgraph in one of the open export formats."""

from __future__ import annotations

from pathlib import Path

from graph.errors import InputError
from graph.subgraph import Subgraph


def export_subgraph(sub: Subgraph, fmt: str, out: Path) -> Path:
    """Write ``sub`` as ``rdf`` (Turtle), ``pyg`` (.pt), ``networkx`` (JSON) or ``parquet`` (dir)."""
    from graph import export

    if out.exists() and out.is_dir() and fmt != "parquet":
        raise InputError(f"--out {out} is a directory; give a file name for --format {fmt}")
    try:
        if fmt == "rdf":
            return export.write_turtle(sub, out)
        if fmt == "pyg":
            return export.save_heterodata(sub, out)
        if fmt == "networkx":
            return export.write_networkx(sub, out)
        if fmt == "parquet":
            export.write_parquet(sub, out)
            return out
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror}; choose a writable --out path") from None
    raise InputError(f"unknown export format {fmt!r}; choose rdf, pyg, networkx or parquet")
