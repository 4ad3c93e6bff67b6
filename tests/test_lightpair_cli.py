"""`mokg lightpair distill` then `mokg lightpair align` end to end, on a tiny mined build: the
aligned checkpoints load, carry their provenance and differ from the distilled head only where
alignment trains; bad options are one-line errors before any work."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from graph.errors import InputError
from mokg.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A demo world ingested, mined once (4 intents), distilled into a checkpoint (5 steps)."""
    from loaders.world.config import world_config
    from loaders.world.generate import generate_world

    root = tmp_path_factory.mktemp("lightpair")
    generate_world(world_config("demo", 0, n_documents=60), root / "world")
    runner, store = CliRunner(), ["--path", str(root / "graph")]
    steps = [
        ["ingest", str(root / "world")],
        ["build", "--limit", "4", "--rounds", "2", "--samples", "2", "--workdir", str(root / "build")],
        ["lightpair", "distill", "--workdir", str(root / "build"), "--out", str(root / "ckpt"),
         "--hold-out", "2", "--epochs", "1", "--max-steps", "5", "--folds", "0"],
    ]  # fmt: skip
    for args in steps:
        done = runner.invoke(app, [*store, *args])
        assert done.exit_code == 0, (args[0], done.output)
    return {"root": root, "world": root / "world", "build": root / "build", "ckpt": root / "ckpt"}


def _align(paths: dict[str, Path], *extra: str) -> list[str]:
    return ["lightpair", "align", "--model", str(paths["ckpt"]), "--workdir", str(paths["build"]),
            "--world", str(paths["world"]), "--steps", "20", "--seed", "0", *extra]  # fmt: skip


def test_align_writes_loadable_checkpoints_that_changed_only_what_trains(distilled: dict[str, Path]) -> None:
    from mining.lightpair import checkpoint

    out = distilled["root"] / "aligned"
    done = CliRunner().invoke(app, _align(distilled, "--methods", "sft,ulma", "--out", str(out)))
    assert done.exit_code == 0, done.output
    first = done.stdout.splitlines()[0]
    assert first.startswith("command: mokg lightpair align") and "feedback rows" in first
    assert "2 held-out seeds" in first
    table = "\n".join(done.stdout.splitlines()[1:])
    assert all(w in table for w in ("distilled", "(before)", "sft", "ulma", "hallucina"))
    net, meta, _ = checkpoint.load(distilled["ckpt"])
    before = dict(net.named_parameters())
    for method in ("sft", "ulma"):
        aligned, ameta, _ = checkpoint.load(out / method)
        assert ameta.source["aligned"] == method and ameta.source["feedback_rows"] > 0
        assert ameta.extra["distilled_thresholds"] == meta.thresholds
        changed = {n for n, p in aligned.named_parameters() if not torch.equal(p, before[n])}
        assert changed, f"{method}: alignment changed nothing"
        assert all("encoder" not in n for n in changed), changed  # calibration: the encoder stays


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--methods", "rlhf"], "--methods takes sft, dpo and/or ulma"),
        (["--trainable", "all"], "--trainable must be head or calibration"),
        (["--calibrate-share", "1.0"], "--calibrate-share must be in [0, 1)"),
    ],
)
def test_align_refuses_bad_options_in_one_line(
    distilled: dict[str, Path], extra: list[str], words: str
) -> None:
    out = distilled["root"] / "refused"
    done = CliRunner().invoke(app, _align(distilled, *extra, "--out", str(out)))
    assert done.exit_code != 0 and isinstance(done.exception, InputError)
    assert words in str(done.exception) and "\n" not in str(done.exception)
    assert not out.exists()


def test_an_aligned_checkpoint_is_evaluated_against_the_teacher(distilled: dict[str, Path]) -> None:
    out = distilled["root"] / "aligned-eval"
    done = CliRunner().invoke(app, _align(distilled, "--methods", "ulma", "--steps", "5", "--out", str(out)))
    assert done.exit_code == 0, done.output
    args = ["--path", str(distilled["root"] / "graph"), "eval", "lightpair", "--model", str(out / "ulma"),
            "--world", str(distilled["world"]), "--rounds", "1", "--latency", "0", "--per-relation",
            "--out", str(distilled["root"] / "eval.csv")]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    assert done.stdout.startswith("command: mokg eval lightpair") and "2 held-out seed intents" in done.stdout
    table = pd.read_csv(distilled["root"] / "eval.csv")
    assert {"precision", "recall", "f1"} <= set(table.columns) and len(table) == 2  # LightPAIR, teacher
    relations = pd.read_csv(distilled["root"] / "eval-relations.csv")
    assert "relation" in relations.columns and len(relations) > 0
