"""`mokg allocate cascade` and `--traffic world` of `mokg eval allocation` / `mokg allocate simulate`
(consumers/allocation/build.py): the cascade's chain outcomes built on the small world, saved,
cached per config and reused, and the one-line refusals of a missing or foreign world."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from consumers.allocation.build import PRESETS, cascade_config, traffic_outcomes
from consumers.allocation.cascade import CascadeConfig
from consumers.allocation.outcomes import ChainOutcomes
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from mokg.cli import app

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = PRESETS["tiny"]


def _cascade(world_store: tuple[Path, Path], out: Path, *extra: str) -> list[str]:
    world, graph = world_store
    base = ["--path", str(graph), "allocate", "cascade", "--traffic", "world", "--world", str(world)]
    return [*base, "--cascade", "tiny", "--out", str(out), *extra]


def test_cascade_writes_outcomes_and_prints_the_chain_table(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "outcomes"
    done = CliRunner().invoke(app, _cascade(world_store, out))
    assert done.exit_code == 0, done.output
    o = ChainOutcomes.load(out)
    assert o.source == "world" and o.n_requests == TINY.max_requests
    assert o.chain_names == [c.name for c in TINY.chains()] and len(o.chains) == 8
    assert np.all(o.cpu_seconds > 0) and np.all(o.flops > 0) and o.rewards.shape == (150, 8)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("world: 150 requests, 8 chains, built in")
    assert lines[1].split() == ["chain", "mflops", "cpu_us", "mean_reward"]
    rows = {line.split()[0]: [float(v) for v in line.split()[1:]] for line in lines[2:10]}
    assert set(rows) == set(o.chain_names)
    for name, flops, reward in zip(o.chain_names, o.flops, o.rewards.mean(0), strict=True):
        assert rows[name][0] == pytest.approx(flops / 1e6, rel=1e-3)
        assert rows[name][2] == pytest.approx(reward, rel=1e-3)
    mflops = [rows[line.split()[0]][0] for line in lines[2:10]]
    assert mflops == sorted(mflops, reverse=True)  # most expensive first
    assert lines[10].startswith("Spearman(FLOPs, CPU) over the chains: ")
    assert -1 <= float(lines[10].rsplit(" ", 1)[1]) <= 1 and lines[11].startswith(f"wrote {out}")
    assert not list(tmp_path.glob(".outcomes*"))  # nothing left aside
    # the folder is replaced whole by a second build; a folder of anything else is refused
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    refused = CliRunner().invoke(app, _cascade(world_store, tmp_path / "notes", "--requests", "20"))
    assert refused.exit_code != 0 and "refusing to replace" in str(refused.exception)
    assert (tmp_path / "notes" / "todo.txt").read_text() == "mine"


def test_eval_and_simulate_build_the_world_traffic_once_and_reuse_it(
    world_store: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the cache lives under ./mokg-data
    world, graph = world_store
    args = ["--traffic", "world", "--world", str(world), "--cascade", "tiny"]
    evaluate = ["--path", str(graph), "eval", "allocation", *args, "--out", str(tmp_path / "e")]
    first = CliRunner().invoke(app, evaluate)
    assert first.exit_code == 0, first.output
    assert (
        "building the world cascade's chain outcomes into mokg-data/allocation/outcomes/world-"
        in first.stderr
    )
    (folder,) = (tmp_path / "mokg-data" / "allocation" / "outcomes").iterdir()
    saved = ChainOutcomes.load(folder)
    assert saved.n_requests == 150 and folder.name.startswith("world-")
    second = CliRunner().invoke(app, evaluate)
    assert second.exit_code == 0, second.output
    assert f"reusing the world chain outcomes in mokg-data/allocation/outcomes/{folder.name}" in second.stderr
    tables = [d.stdout[d.stdout.index("`mokg eval") :] for d in (first, second)]  # past the progress
    assert tables[0] == tables[1] and "## Policies at the budget" in tables[1]
    report = (tmp_path / "e" / "allocation_world.md").read_text()
    assert report.startswith(f"`mokg eval allocation --traffic world --world {world} --cascade tiny")
    sim = ["--path", str(graph), "allocate", "simulate", "--budget", "0.6", *args]
    done = CliRunner().invoke(app, [*sim, "--out", str(tmp_path / "s")])
    assert done.exit_code == 0, done.output
    assert "reusing the world chain outcomes" in done.stderr
    summary = json.loads((tmp_path / "s" / "simulate_world.json").read_text())
    assert summary["requests"] + summary["yesterday_requests"] == 150
    # another config is another folder; --outcomes still wins over --traffic world
    other = CliRunner().invoke(app, [*evaluate, "--requests", "120", "--estimator", "hgb"])
    assert other.exit_code == 0, other.output
    assert len(list(folder.parent.iterdir())) == 2
    wins = CliRunner().invoke(app, [*evaluate, "--outcomes", str(folder)])
    assert wins.exit_code == 0 and "reusing" not in wins.stderr and "building" not in wins.stderr


def test_a_missing_or_foreign_world_is_a_one_line_error(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    world, graph = world_store
    blind = tmp_path / "blind"  # the world without its hidden/ truth
    shutil.copytree(world, blind, ignore=shutil.ignore_patterns("hidden"))
    with open_store(StoreConfig(path=tmp_path / "empty"), create=True):
        pass
    other = tmp_path / "other"  # another world: the same item ids, other generated titles
    shutil.copytree(world, other)
    items = pd.read_parquet(other / "visible" / "nodes" / "Item.parquet")
    items.assign(title=items["title"].iloc[::-1].to_numpy()).to_parquet(
        other / "visible" / "nodes" / "Item.parquet"
    )
    cases = [
        (["--path", str(graph), "allocate", "cascade", "--traffic", "world"], "needs --world DIR"),
        (_cascade((blind, graph), tmp_path / "o"), "has no hidden/ folder"),
        (_cascade((tmp_path, graph), tmp_path / "o"), "is not a world directory"),
        (_cascade((world, tmp_path / "empty"), tmp_path / "o"), "0% of its items match by id and title"),
        (_cascade((other, graph), tmp_path / "o"), "the store was not ingested from"),
        (
            ["--path", str(graph), "eval", "allocation", "--traffic", "world", "--world", str(blind)],
            "has no hidden/ folder",
        ),
        (["allocate", "simulate", "--budget", "0.6", "--traffic", "world"], "needs --world DIR"),
        (_cascade(world_store, tmp_path / "o", "--cascade", "huge"), "--cascade 'huge': name a preset"),
        (["allocate", "cascade", "--traffic", "synthetic", "--out", "x"], "runs on world or movielens"),
    ]
    for args, message in cases:
        done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "o")] if "--out" not in args else args)
        assert done.exit_code != 0 and isinstance(done.exception, InputError), (args, done.output)
        assert message in str(done.exception) and "\n" not in str(done.exception), args
    assert not (tmp_path / "o").exists()


def test_a_cascade_config_comes_from_a_preset_or_a_json_file(tmp_path: Path) -> None:
    assert cascade_config("full") == CascadeConfig()
    assert cascade_config("tiny", max_requests=None, dot_epochs=5).dot_epochs == 5
    assert cascade_config("tiny", max_requests=None).max_requests == TINY.max_requests
    assert cascade_config("quick", "movielens").dot_batch == 8192 > cascade_config("quick").dot_batch
    assert cascade_config("full", "movielens") == CascadeConfig()
    ivf = cascade_config("quick-ivf", "movielens")  # docs/allocation.md's IVF table on MovieLens-1M
    assert len(ivf.chains()) == 84 and ivf.dot_batch == 8192 and "ivf16" in ivf.recall
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"recall": ["bpr4"], "recall_n": [50], "prerank_n": [20], "shown": [5]}))
    config = cascade_config(str(path), seed=3)
    assert config.recall == ("bpr4",) and config.recall_n == (50,) and config.seed == 3
    path.write_text(
        json.dumps({"recall": ["bpr4"], "recall_n": [50], "prerank_n": [20], "shown": [5], "seed": 7})
    )
    assert cascade_config(str(path), seed=None).seed == 7  # the CLI's --seed left out keeps the file's
    path.write_text(json.dumps({"recall_n": [10], "prerank_n": [30]}))
    with pytest.raises(InputError, match="no chain"):
        cascade_config(str(path))
    with pytest.raises(InputError, match="unknown cascade source"):
        traffic_outcomes("mars", TINY, None, None, tmp_path)


def test_ivf_recall_scores_fewer_items_than_exact_recall_at_the_same_n() -> None:
    import torch

    from consumers.allocation.cascade import Cascade, chain_flops, serve
    from consumers.allocation.outcomes import Chain, Stage
    from consumers.allocation.stages import stage_flops, train_dot, train_ivf

    rng = np.random.default_rng(0)
    n_users, n_items, d = 200, 1500, 16
    users = rng.integers(0, n_users, 15_000)
    items = (users * 7 + rng.zipf(1.3, 15_000)) % n_items  # every user near their own items
    exact = train_dot(f"bpr{d}", n_users, n_items, users, items, 3, 0)
    u = torch.arange(0, n_users, 5)
    with torch.no_grad():
        for n in (50, 200):
            ivf = train_ivf(exact, 2 * n)
            flops = stage_flops(ivf, None)
            assert flops < stage_flops(exact, None) == 2 * d * n_items
            probed = torch.isfinite(ivf.scores(u[:1]))[0]  # user 0's lists: counted the same way
            assert flops == 2 * d * len(ivf.sizes) + 2 * d * int(probed.sum()) and probed.sum() >= 2 * n
            top = torch.topk(ivf.scores(u), n)
            assert torch.isfinite(top.values).all()
            truth = torch.topk(exact.scores(u), n).indices
            overlap = np.mean(
                [len(set(a.tolist()) & set(b.tolist())) / n for a, b in zip(top.indices, truth, strict=True)]
            )
            assert overlap > 2 * n / n_items  # far above a random list of n items
        whole = train_ivf(exact, n_items)  # every list probed: exact recall
        torch.testing.assert_close(whole.scores(u), exact.scores(u))
        cand = torch.topk(exact.scores(u), 30).indices
        assert torch.equal(ivf.scores(u, cand), exact.scores(u, cand))  # pre-ranking stays exact
        cascade = Cascade(
            {"bpr16": exact, ivf.name: ivf},
            {"bpr16": exact},
            {"bpr16": exact},
            np.arange(n_users),
            np.arange(n_items),
        )
        chains = [
            Chain((Stage("recall", r, 200), Stage("prerank", "bpr16", 30), Stage("rank", "bpr16", 10)))
            for r in ("bpr16", "ivf-bpr16")
        ]
        assert chain_flops(cascade, chains[1]) < chain_flops(cascade, chains[0])
        shown = serve(cascade, chains[1], u[:1])[0]
        assert len(set(shown.tolist())) == 10 and bool(probed[shown].all())
    with pytest.raises(InputError, match="target must be between 1"):
        train_ivf(exact, n_items + 1)
