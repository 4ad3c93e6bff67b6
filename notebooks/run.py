"""Run the notebooks of ``notebooks/``: a jupytext percent script becomes a notebook, nbclient
executes it in a fresh kernel, nbconvert renders it with its outputs to Markdown and PNG files.

The notebooks live in git as percent scripts (``# %%`` cells), so git never holds outputs. Each one
reads its data from the environment (``MOKG_PATH``, ``MOKG_WORLD``, ``MOKG_NOTEBOOK_SCRATCH``) with
the demo's defaults; ``tests/test_notebooks.py`` runs every one on a small world.

``python -m notebooks.run [NAME ...] [--render]`` executes the notebooks (all by default) against
the store the environment names (the demo store unless ``MOKG_PATH`` says otherwise) and, with
``--render``, writes ``docs/notebooks/<name>.md`` with its images in ``docs/notebooks/<name>_files/``.
A cell that raises makes the run fail (:class:`NotebookFailed`), never pass silently.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
DOCS = ROOT / "docs" / "notebooks"
PATTERN = "[0-9][0-9]_*.py"
KERNEL = "python3"  # ipykernel's own spec: argv "python" is replaced by this interpreter (sys.executable)
CELL_TIMEOUT_S = 600
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STYLE = re.compile(r"<style scoped>.*?</style>\n", re.S)
QUIET = {  # progress bars and import notices are noise in a rendered notebook
    "TQDM_DISABLE": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "PYTHONWARNINGS": "ignore:IProgress not found",
}
USAGE = "Execute the notebooks of notebooks/ (and render them to docs/notebooks/ with --render)."


class NotebookFailed(RuntimeError):
    """A cell of a notebook raised (or timed out); the message names the notebook and the cell."""


def scripts(folder: Path = NOTEBOOKS) -> list[Path]:
    """The notebooks of ``folder`` (``NN_name.py``), in order."""
    return sorted(folder.glob(PATTERN))


def to_notebook(script: Path) -> Any:
    """The percent script as an nbformat v4 notebook (no outputs)."""
    import jupytext  # type: ignore[import-untyped]

    return jupytext.read(script, fmt="py:percent")


def execute(
    script: Path,
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: int = CELL_TIMEOUT_S,
) -> Any:
    """Execute ``script`` top to bottom in a fresh kernel started in ``cwd`` with environment
    ``env`` (default: this process's; :data:`QUIET`'s settings added where it has none);
    ``timeout_s`` bounds each cell. Returns the executed
    notebook; raises :class:`NotebookFailed` on the first cell that raises or runs too long."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = to_notebook(script)
    client = NotebookClient(
        nb,
        timeout=timeout_s,
        kernel_name=KERNEL,
        resources={"metadata": {"path": str(cwd)}},
        allow_errors=False,
    )
    try:
        client.execute(env=QUIET | dict(os.environ if env is None else env))
    except (CellExecutionError, CellTimeoutError) as exc:
        raise NotebookFailed(f"{script.name}: {ANSI.sub('', str(exc))}") from exc
    return nb


def render(nb: Any, name: str, out_dir: Path = DOCS) -> Path:
    """Write the executed notebook as ``out_dir/<name>.md`` and its images under
    ``out_dir/<name>_files/`` (each file written aside and renamed). Returns the Markdown path."""
    from nbconvert import MarkdownExporter

    from graph.files import write_file, write_text

    exporter = MarkdownExporter()  # type: ignore[no-untyped-call]
    body, resources = exporter.from_notebook_node(nb, resources={"output_files_dir": f"{name}_files"})
    body = STYLE.sub("", body)  # pandas' scoped CSS: Markdown viewers show it as text
    outputs: dict[str, bytes] = resources.get("outputs", {})
    for rel, data in sorted(outputs.items()):
        write_file(out_dir / rel, _bytes_writer(data))
    images = out_dir / f"{name}_files"
    for stale in sorted(images.glob("*")) if images.is_dir() else []:
        if f"{name}_files/{stale.name}" not in outputs:
            stale.unlink()  # an image of an earlier render whose cell has moved or gone
    return write_text(out_dir / f"{name}.md", body)


def _bytes_writer(data: bytes) -> Callable[[Path], int]:
    return lambda path: path.write_bytes(data)


def _chosen(names: Sequence[str]) -> list[Path]:
    found = scripts()
    if not names:
        return found
    picked = [p for p in found if p.stem in names or p.stem.split("_", 1)[0] in names]
    missing = set(names) - {p.stem for p in picked} - {p.stem.split("_", 1)[0] for p in picked}
    if missing:
        raise SystemExit(f"no notebook named {', '.join(sorted(missing))} in {NOTEBOOKS}")
    return picked


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m notebooks.run", description=USAGE)
    parser.add_argument("names", nargs="*", help="Notebooks to run (e.g. 01 or 01_quickstart; default all).")
    parser.add_argument("--render", action="store_true", help=f"Write Markdown and PNG files to {DOCS}.")
    parser.add_argument("--out", type=Path, default=DOCS, help="Where --render writes.")
    parser.add_argument("--timeout", type=int, default=CELL_TIMEOUT_S, help="Seconds allowed per cell.")
    args = parser.parse_args(argv)
    for script in _chosen(args.names):
        start = time.perf_counter()
        try:
            nb = execute(script, cwd=ROOT, timeout_s=args.timeout)
        except NotebookFailed as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        note = f"{script.name}: ran in {time.perf_counter() - start:.1f} s"
        if args.render:
            note += f", rendered to {render(nb, script.stem, args.out)}"
        print(note, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
