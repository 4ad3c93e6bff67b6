"""End to end on a tiny world: `mokg train peace`, `mokg eval rec`, `mokg recommend`, the demo run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from graph.store import StoreConfig, open_store
from loaders.ingest import ingest_world
from loaders.world.config import world_config
from loaders.world.generate import generate_world
from mokg.cli import app
from tests.support.fakes import FakeEncoder

pytestmark = pytest.mark.slow
TINY = world_config("demo", seed=7, n_users=300, n_items=400, n_campaigns=4, chunk_users=120)


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("rec")
    generate_world(TINY, root / "world")
    with open_store(StoreConfig(path=root / "graph"), create=True) as store:
        ingest_world(store, root / "world", with_truth_kg=True)
    return root / "graph"


def invoke(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, f"{args}: {result.output}\n{result.exception!r}"
    return result.output


def test_train_refuses_a_folder_of_other_files_before_training(store_path: Path, tmp_path: Path) -> None:
    """Issue 15: artefacts are swapped in whole, and never over a folder the user keeps files in."""
    from graph.errors import InputError

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(
        app, ["--path", str(store_path), "train", "peace", "--out", str(tmp_path / "mine")]
    )
    assert isinstance(r.exception, InputError) and "is not a PEACE artefact folder" in str(r.exception)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["notes.txt"]


def test_train_eval_recommend_from_artefacts(store_path: Path, tmp_path: Path) -> None:
    art = tmp_path / "art"
    fast = ["--pretrain-epochs", "1", "--finetune-epochs", "1", "--no-features", "--dim", "16"]
    out = invoke(
        ["--path", str(store_path), "train", "peace", "--out", str(art), "--targets", "finance,travel", *fast]
    )
    assert "artefacts:" in out
    manifest = json.loads((art / "manifest.json").read_text())
    assert (
        manifest["config_hash"] and manifest["graph_version"]["run_id"] and "finance" in manifest["domains"]
    )

    # serving needs only the artefacts: point the store somewhere that does not exist
    user = next(iter(np.load(art / "users.npz")["user_ids"].tolist()))
    rec = invoke(
        [
            "--path",
            str(tmp_path / "no-store"),
            "recommend",
            "--user",
            user,
            "--domain",
            "finance",
            "-k",
            "5",
            "--artefacts",
            str(art),
            "--format",
            "json",
        ]
    )
    items = json.loads(rec)
    assert len(items) == 5 and items[0]["score"] >= items[-1]["score"]
    assert manifest["domains"]["finance"]["index"] == "exact"  # small domain: no IVF at export
    args = ["recommend", "--user", user, "--domain", "finance", "-k", "5", "--artefacts", str(art)]
    probed = invoke([*args, "--format", "json", "--index", "ivf", "--nprobe", "1000"])
    assert [i["item"] for i in json.loads(probed)] == [i["item"] for i in items]  # every list = exact
    bad = CliRunner().invoke(
        app, ["recommend", "--user", "nobody", "--domain", "finance", "--artefacts", str(art)]
    )
    assert bad.exit_code != 0

    res = tmp_path / "eval"
    out = invoke(
        [
            "--path",
            str(store_path),
            "eval",
            "rec",
            "--split",
            "leave_last_out",
            "--split",
            "cold_start",
            "--seeds",
            "0,1",
            "--targets",
            "finance,travel,health",
            "--kg",
            "none",
            "--kg",
            "store",
            "--model",
            "PEACE",
            "--model",
            "MostPop",
            "--model",
            "LightGCN",
            "--model",
            "EMCDR",
            "--baseline-epochs",
            "2",
            "--out",
            str(res),
            *fast,
        ]
    )
    assert "command: mokg" in out and "seeds: [0, 1]" in out and "| PEACE | none |" in out
    summary = json.loads((res / "rec_summary.json").read_text())
    rows = summary["rows"]
    assert {r["split"] for r in rows} == {"leave_last_out", "cold_start"}
    assert {r["kg"] for r in rows if r["model"] == "PEACE"} == {"none", "store"}
    assert all(r["seeds"] == 2 and 0 <= r["AUC"] <= 1 for r in rows)
    assert {r["domain"] for r in rows if r["split"] == "cold_start"} == {"health"}


def test_run_demo_peace(store_path: Path, tmp_path: Path) -> None:
    from gnn.rec.train import run_demo_peace

    with open_store(StoreConfig(path=store_path)) as store:
        summary = run_demo_peace(store, tmp_path, encoder=FakeEncoder())
    assert set(summary["ndcg@10"]) == {"PEACE", "MostPop", "LightGCN-joint"}
    assert (tmp_path / "peace" / "manifest.json").exists() and (tmp_path / "peace-demo.json").exists()
