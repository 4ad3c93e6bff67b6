"""The notebooks of ``notebooks/`` run top to bottom on the small world (one test each, found by
glob, so every ``NN_name.py`` added later runs too), leave the store they read unchanged, and the
runner fails loudly: a raising cell raises, the kernel is this interpreter, renders carry images."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from graph.store import StoreConfig, open_store
from notebooks.run import NOTEBOOKS, NotebookFailed, execute, render, scripts

CORE = ("01_quickstart", "02_mining", "03_recommendation", "04_audiences")
KERNEL_TIMEOUT_S = 300  # per cell; a notebook is meant to run in well under a minute here


def _env(store: Path, world: Path, scratch: Path) -> dict[str, str]:
    return {
        **os.environ,
        "MOKG_STORE": "embedded",
        "MOKG_PATH": str(store),
        "MOKG_WORLD": str(world),
        "MOKG_NOTEBOOK_SCRATCH": str(scratch),
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _version(store: Path) -> str:
    with open_store(StoreConfig(path=store)) as s:
        return str(s.version())


def test_the_core_notebooks_are_there() -> None:
    assert {p.stem for p in scripts()} >= set(CORE)


@pytest.mark.slow
@pytest.mark.parametrize("script", scripts(), ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_without_touching_the_store(
    script: Path, world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    world, graph = world_store
    store = tmp_path / "store"
    shutil.copytree(graph, store)
    before = _version(store)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    nb = execute(script, cwd=scratch, env=_env(store, world, scratch), timeout_s=KERNEL_TIMEOUT_S)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.execution_count for c in code)  # every cell ran
    assert _version(store) == before  # notebooks that write work on a copy in the scratch folder


def test_committed_notebooks_hold_no_outputs() -> None:
    import nbformat

    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} holds outputs"


def _write(path: Path, cells: list[str]) -> Path:
    path.write_text("\n\n".join(f"# %%\n{c}" for c in cells) + "\n")
    return path


def test_a_raising_cell_fails_the_run(tmp_path: Path) -> None:
    script = _write(tmp_path / "98_fails.py", ["x = 1", "x / 0", "print('never')"])
    with pytest.raises(NotebookFailed, match=r"(?s)98_fails\.py.*ZeroDivisionError: division by zero"):
        execute(script, cwd=tmp_path, timeout_s=60)


def test_the_kernel_is_this_python_in_the_given_folder_and_environment_and_renders(tmp_path: Path) -> None:
    cells = [
        "import json, os, sys\nprint(json.dumps([sys.executable, os.getcwd(), os.environ['MOKG_NB_PROBE']]))",
        "import pandas as pd\npd.DataFrame({'a': [1, 2]})",
        "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()",
    ]
    script = _write(tmp_path / "97_probe.py", cells)
    work = tmp_path / "work"
    work.mkdir()
    nb = execute(script, cwd=work, env={**os.environ, "MOKG_NB_PROBE": "seen"}, timeout_s=60)
    printed = json.loads(nb.cells[0].outputs[0]["text"])
    assert Path(printed[0]).resolve() == Path(sys.executable).resolve()
    assert Path(printed[1]).resolve() == work.resolve() and printed[2] == "seen"
    md = render(nb, "97_probe", tmp_path / "docs")
    text = md.read_text()
    images = list((tmp_path / "docs" / "97_probe_files").glob("*.png"))
    assert len(images) == 1 and f"97_probe_files/{images[0].name}" in text
    assert "<table" in text and "<style" not in text
