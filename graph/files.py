"""Files mokg writes for people (every ``--out``): written aside, then renamed into place.

- A file is written to a temp name beside its target and renamed over it with ``os.replace``:
  a reader sees the old file or the new one, never half of one.
- A folder (a Parquet export, a world) is written into a temp folder beside it and swapped in:
  the old folder is renamed aside, the new one into place, the old one removed. An existing folder
  is replaced only when it is empty or its ``claim`` says it holds nothing but an earlier output of
  the same kind; otherwise the write is refused before it starts.
- A symlink is written through: the temp file goes beside the link's final target and is renamed
  over that target, so the link stays. A FIFO, device or socket is refused (never renamed over),
  and so is a path below a regular file (``notes.txt/out.csv``).

Every refusal and every operating-system error is an :class:`~graph.errors.InputError` naming the
path and what to do, so the CLI prints one line.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Claim = Callable[[Path], str | None]  # None: the folder may be replaced; else why it may not
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _kind(mode: int) -> str | None:
    """What a special file is, or None for a regular file, folder or symlink."""
    return _KINDS.get(stat.S_IFMT(mode))


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def target(path: str | Path, *, folder: bool = False) -> Path:
    """The path that writing ``path`` replaces: ``path`` itself or, for a symlink, its final target.

    Refuses a FIFO, device or socket, a folder where a file is wanted (and a file where a folder
    is wanted), and a path below a regular file; nothing is created.
    """
    given = Path(path)
    real = Path(os.path.realpath(given))
    above = _first_existing(real.parent)
    if not above.is_dir():
        raise InputError(f"cannot write {given}: {above} is a file, not a folder; choose another path")
    if not os.path.lexists(real):
        return real
    try:
        mode = os.stat(real).st_mode
    except OSError as exc:
        raise _os_error(given, exc) from None
    special = _kind(mode)
    if special is not None:
        raise InputError(f"refusing to write {given}: it is {special}, not a regular file; give another path")
    if folder and not stat.S_ISDIR(mode):
        raise InputError(f"cannot write the folder {given}: it is a file; choose a folder path")
    if not folder and stat.S_ISDIR(mode):
        raise InputError(f"cannot write {given}: it is a folder; give a file name")
    return real


def _aside(real: Path, tag: str) -> Path:
    return real.with_name(f".{real.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _os_error(given: Path, exc: OSError) -> InputError:
    return InputError(f"cannot write {given}: {exc.strerror or exc}; choose a writable path")


def write_file(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp file beside the target, then rename it over the target.

    Parent folders are created as needed; the temp file is removed if ``write`` fails. Returns
    ``path`` as given.
    """
    given = Path(path)
    real = target(given)
    tmp = _aside(real, "tmp")
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        os.replace(tmp, real)
    except OSError as exc:
        raise _os_error(given, exc) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return given


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` as :func:`write_file` does."""
    return write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: str | Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as CSV (no index) to ``path`` as :func:`write_file` does."""
    return write_file(path, lambda tmp: frame.to_csv(tmp, index=False))


def write_folder(path: str | Path, write: Callable[[Path], object], claim: Claim) -> Path:
    """Call ``write(tmp)`` on a new temp folder beside ``path``, then swap it in for ``path``.

    An existing non-empty folder is replaced only if ``claim(folder)`` returns None; its reason
    otherwise ends up in the error. Returns ``path`` as given.
    """
    given = Path(path)
    real = check_folder(given, claim)
    tmp, old = _aside(real, "tmp"), _aside(real, "old")
    try:
        tmp.mkdir(parents=True)
        write(tmp)
        _swap(tmp, real, old)
    except OSError as exc:
        raise _os_error(given, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return given


def check_folder(path: str | Path, claim: Claim) -> Path:
    """The real folder :func:`write_folder` would replace, or the InputError it would raise."""
    real = target(path, folder=True)
    if real.is_dir() and any(real.iterdir()) and (reason := claim(real)) is not None:
        raise InputError(f"refusing to replace {path}: {reason}; choose an empty or new folder")
    return real


def _swap(new: Path, real: Path, old: Path) -> None:
    """Rename ``real`` aside to ``old`` (if it exists), then ``new`` to ``real``; undo on failure."""
    had = real.exists()
    if had:
        os.rename(real, old)
    try:
        os.rename(new, real)
    except OSError:
        if had:
            os.rename(old, real)
        raise


def foreign_files(root: Path, ours: Callable[[str], bool]) -> list[str]:
    """Files under ``root`` (relative POSIX paths, sorted) that ``ours`` does not recognise."""
    found = (p.relative_to(root).as_posix() for p in root.rglob("*") if not p.is_dir())
    return sorted(rel for rel in found if not ours(rel))


def artefact_claim(marker: str, ours: Callable[[str], bool], kind: str) -> Claim:
    """The :data:`Claim` of an artefact folder: it may be replaced when it holds ``marker`` and only
    files ``ours`` recognises (``kind`` names the artefact in the reasons, e.g. "PEACE artefact")."""

    def claim(root: Path) -> str | None:
        if not (root / marker).is_file():
            return f"it is not a {kind} folder (no {marker})"
        foreign = foreign_files(root, ours)
        return f"it holds {foreign[0]!r}, which is not a {kind}" if foreign else None

    return claim


def array_digest(head: bytes, arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 of ``head`` and of every array's name, dtype, shape and bytes (names sorted): the
    check a saved model carries so that a changed or corrupted file is refused on loading."""
    import hashlib

    import numpy as np

    h = hashlib.sha256(head)
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()
