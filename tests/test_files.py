"""Every `--out` writer goes through graph/files.py: files written aside and renamed into place,
folders swapped in whole, symlinks written through, FIFOs / devices / sockets and paths below a
regular file refused with one line (issue 15: special files, corrupt exports)."""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest

from graph import files
from graph.errors import InputError
from graph.subgraph import GraphVersion, Subgraph
from mokg.exporting import export_subgraph
from mokg.output import write_result

DF = pd.DataFrame({"id": ["a", "b"], "n": [1, 2]})
FORMATS = ("csv", "json", "jsonl", "parquet")


def _fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _device(tmp_path: Path) -> Path:
    """A character device like /dev/null, made here (never the machine's own /dev)."""
    path = tmp_path / "null"
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("making a device node needs root")
    return path


@pytest.fixture
def unix_socket(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        yield path


def _kind(path: Path) -> int:
    return stat.S_IFMT(os.lstat(path).st_mode)


def _sub() -> Subgraph:
    return Subgraph(
        GraphVersion(backend="ladybug", schema_version="2", seq=1, run_id="r1"),
        nodes={"User": pd.DataFrame({"id": ["u1", "u2"]}), "Intent": pd.DataFrame({"id": ["i1"]})},
        edges={("User", "HAS_INTENT", "Intent"): pd.DataFrame({"head": ["u1"], "tail": ["i1"]})},
    )


@pytest.mark.parametrize("make", [_fifo, _device], ids=["fifo", "device"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_query_results_never_replace_a_fifo_or_a_device(
    tmp_path: Path, make: Callable[[Path], Path], fmt: str
) -> None:
    special = make(tmp_path)
    kind = _kind(special)
    with pytest.raises(InputError, match=r"refusing to write .*: it is a (FIFO|character device)"):
        write_result(DF, fmt, special)
    assert _kind(special) == kind


def test_a_socket_is_refused(unix_socket: Path) -> None:
    with pytest.raises(InputError, match="it is a socket"):
        write_result(DF, "csv", unix_socket)
    assert stat.S_ISSOCK(os.lstat(unix_socket).st_mode)


@pytest.mark.parametrize("fmt", ["rdf", "pyg", "networkx", "parquet"])
def test_exports_never_replace_a_fifo(tmp_path: Path, fmt: str) -> None:
    fifo = _fifo(tmp_path)
    with pytest.raises(InputError, match="FIFO"):
        export_subgraph(_sub(), fmt, fifo)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_writing_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    real = tmp_path / "real" / "result.csv"
    real.write_text("old\n")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_result(DF, "csv", link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert pd.read_csv(real)["id"].tolist() == ["a", "b"]
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["result.csv"]  # no temp file left


def test_a_dangling_symlink_is_written_through_to_its_target(tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "made.json")
    files.write_text(link, "{}")
    assert link.is_symlink() and (tmp_path / "made.json").read_text() == "{}"


def test_a_path_below_a_regular_file_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file.txt").write_text("mine")
    for write in (
        lambda: write_result(DF, "csv", tmp_path / "file.txt" / "x.csv"),
        lambda: export_subgraph(_sub(), "parquet", tmp_path / "file.txt" / "deeper" / "pq"),
    ):
        with pytest.raises(InputError, match=r"file\.txt is a file, not a folder"):
            write()
    assert (tmp_path / "file.txt").read_text() == "mine"


def test_an_empty_timestamp_column_writes_as_csv(tmp_path: Path) -> None:
    empty = pd.DataFrame({"id": pd.Series([], dtype=str), "at": pd.Series([], dtype="datetime64[us]")})
    write_result(empty, "csv", tmp_path / "runs.csv")
    assert (tmp_path / "runs.csv").read_text().strip() == "id,at"


def test_a_folder_is_swapped_in_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"

    def write(names: list[str]) -> Callable[[Path], None]:
        def into(tmp: Path) -> None:
            for n in names:
                (tmp / n).write_text(n)

        return into

    files.write_folder(out, write(["a", "b"]), lambda _root: None)
    files.write_folder(out, write(["c"]), lambda _root: None)
    assert sorted(p.name for p in out.iterdir()) == ["c"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]  # no temp or old folder left


def test_an_interrupted_folder_write_leaves_the_old_folder_whole(tmp_path: Path) -> None:
    out = tmp_path / "out"
    files.write_folder(out, lambda tmp: (tmp / "a").write_text("old"), lambda _root: None)

    def half(tmp: Path) -> None:
        (tmp / "a").write_text("new")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        files.write_folder(out, half, lambda _root: None)
    assert (out / "a").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_folder_that_is_not_claimed_is_refused_not_replaced(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match=r"refusing to replace .*: not mine; choose an empty or new folder"):
        files.write_folder(out, lambda tmp: None, lambda _root: "not mine")
    assert (out / "notes.txt").read_text() == "mine"
    (tmp_path / "plain").write_text("x")
    with pytest.raises(InputError, match="it is a file"):
        files.write_folder(tmp_path / "plain", lambda tmp: None, lambda _root: None)


def test_foreign_files_lists_what_the_layout_does_not_name(tmp_path: Path) -> None:
    (tmp_path / "nodes").mkdir()
    (tmp_path / "nodes" / "User.parquet").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert files.foreign_files(tmp_path, lambda rel: rel.startswith("nodes/")) == ["notes.txt"]
