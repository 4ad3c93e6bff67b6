"""Data-parallel training (gnn/distributed.py, issue 21 §3): PEACE, the foundation model and the
audience GNN trained by 2 gloo processes under ``torchrun`` end with the parameters (embeddings) of
the 1-process run; ``--nproc 2`` on `mokg train peace` trains and writes its artefacts once.

One ``torchrun --standalone --nproc-per-node 2`` run of this module (``python -m
tests.test_distributed OUT``) trains the three tiny models on both ranks; the test trains them in
this process (the 1-process path) and compares.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-4  # float rounding of sums split across ranks, amplified by a few Adam steps


def _rec_data() -> Any:
    """30 users, 24 items in 3 domains, categories per domain under one root."""
    from gnn.rec.data import RecData

    rng = np.random.default_rng(1)
    n_users, n_items, n = 30, 24, 160
    item_domain = np.arange(n_items) % 3
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    cats = 1 + item_domain * 2 + rng.integers(0, 2, n_items)  # 6 leaves under entity 0
    return RecData(
        user_ids=[f"u{i}" for i in range(n_users)],
        item_ids=[f"i{i}" for i in range(n_items)],
        domains=["a", "b", "c"],
        item_domain=item_domain,
        fit_user=users,
        fit_item=items,
        fit_ts=np.arange(n),
        test_user=np.arange(6),
        test_item=np.arange(6),
        item_x=rng.normal(size=(n_items, 5)).astype(np.float32),
        entity_ids=["Category:root", *[f"Category:c{i}" for i in range(6)]],
        entity_x=rng.normal(size=(7, 5)).astype(np.float32),
        item_entity=np.stack([np.arange(n_items), cats]),
        kg_edges=np.stack([np.arange(1, 7), np.zeros(6, np.int64), np.zeros(6, np.int64)]),
        relations=["SUBCATEGORY_OF", "NEEDS", "SERVES", "CO_OCCURS_WITH", "PRECEDES"],
    )


def train_peace() -> dict[str, np.ndarray]:
    """PEACE pre-trained on a, b (114 interactions) and fine-tuned on c (46) in batches of 9: slices
    of 4 and 5 on 2 ranks, and fine-tuning's last batch of 1 row, which every rank takes whole."""
    from gnn.rec.peace import Peace, PeaceConfig

    cfg = PeaceConfig(
        dim=8, interests=2, prototypes=4, pretrain_epochs=2, finetune_epochs=2, batch_size=9, negatives=5
    )
    model = Peace(cfg)
    model.fit(_rec_data(), ["c"])
    out = {
        f"{d}.{k}": v.detach().numpy().copy()
        for d, net in model.nets.items()
        for k, v in net.state_dict().items()
    }
    return out | {f"loss.{k}": np.asarray(v) for k, v in model.losses.items()}


def train_foundation(cache: Path) -> dict[str, np.ndarray]:
    """The foundation model on the toy clicks, batches of 37; no dropout and no alignment penalty
    (each rank would draw its own masks and measure the MMD on its own slice)."""
    import torch

    from gnn.foundation.features import encode
    from gnn.foundation.model import FoundationConfig, SRFoundation
    from gnn.foundation.train import TrainConfig, fit
    from tests.support.fakes import FakeEncoder
    from tests.support.foundation_toy import toy_data

    enc = encode(toy_data(n_requests=120, pages=40), text_encoder=FakeEncoder(), cache_dir=cache)
    torch.manual_seed(0)
    model = SRFoundation(
        enc, FoundationConfig(dim=8, shared_dim=16, expert_dim=8, dropout=0.0, align_weight=0.0)
    )
    fit(model, enc, enc.rows("train"), enc.rows("valid"), TrainConfig(epochs=2, batch_size=37, patience=5))
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _audience_store(path: Path) -> Any:
    """12 users over 6 items in 3 categories; intents i_a (needs c0) and i_b (needs c1)."""
    from graph.store import StoreConfig, open_store

    users, items = [f"u{i}" for i in range(12)], [f"it{i}" for i in range(6)]
    t0 = pd.Timestamp("2026-04-30")
    heads = [u for k, u in enumerate(users) for _ in range(1 + k % 3)]
    tails = [items[(k * 5 + 1) % 6] for k in range(len(heads))]
    nodes = {
        "User": pd.DataFrame({"id": users}),
        "Item": pd.DataFrame({"id": items}),
        "Category": pd.DataFrame({"id": ["c0", "c1", "c2"], "level": [1, 1, 1]}),
        "Intent": pd.DataFrame({"id": ["i_a", "i_b"], "name": ["wedding", "honeymoon"]}),
        "Campaign": pd.DataFrame({"id": ["camp1"], "budget": [2]}),
    }
    edges = {
        ("User", "INTERACTED", "Item"): pd.DataFrame({"head": heads, "tail": tails, "ts": [t0] * len(heads)}),
        ("Item", "BELONGS_TO", "Category"): pd.DataFrame(
            {"head": items, "tail": [f"c{i % 3}" for i in range(6)]}
        ),
        ("Intent", "NEEDS", "Category"): pd.DataFrame(
            {"head": ["i_a", "i_b"], "tail": ["c0", "c1"], "confidence": [0.5, 1.0]}
        ),
        ("Campaign", "TARGETS", "Intent"): pd.DataFrame({"head": ["camp1"], "tail": ["i_a"]}),
    }
    store = open_store(StoreConfig(path=path), create=True)
    with store.run_context("test") as run_id:
        store.bulk_load(run_id=run_id, nodes=nodes, edges=edges)
    return store


def train_audience(path: Path) -> dict[str, np.ndarray]:
    """The audience GNN full-batch and on user-sampled graphs of 5 users (every rank its own copy of
    the store: the embedded store admits one process)."""
    from gnn.audience.gnn import GNNConfig, GNNTargeter

    out: dict[str, np.ndarray] = {}
    with _audience_store(path) as store:
        for mode, batch_users in (("full", 20_000), ("sampled", 5)):
            cfg = GNNConfig(dim=8, epochs=12, features=False, seed=3, batch_users=batch_users)
            fitted = GNNTargeter().fit(store, cfg)
            out |= {f"{mode}.{t}": z for t, z in fitted.z.items()}
            out[f"{mode}.final_loss"] = np.asarray(fitted.info["final_loss"])
    return out


def train_all(out: Path) -> dict[str, dict[str, np.ndarray]]:
    import torch

    from gnn import distributed

    torch.set_num_threads(1)
    rank = distributed.world()[0]
    return {
        "peace": train_peace(),
        "foundation": train_foundation(out / f"cache-{rank}"),
        "audience": train_audience(out / f"store-{rank}"),
    }


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[k].astype(np.float64) - b[k]).max(initial=0.0)) for k in a)


def _env() -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("MOKG_") and k not in ("RANK", "WORLD_SIZE")
    }
    return {**env, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}


@pytest.mark.usefixtures("one_torch_thread")
def test_two_processes_end_with_the_one_process_parameters(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    run = subprocess.Popen(
        [*cmd, "-m", "tests.test_distributed", str(tmp_path)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    one = train_all(tmp_path / "one")  # meanwhile, the 1-process run here
    _, err = run.communicate(timeout=300)
    assert run.returncode == 0, err[-3000:]
    ranks = [pickle.loads((tmp_path / f"rank-{r}.pkl").read_bytes()) for r in (0, 1)]
    diffs = {}
    for name, want in one.items():
        assert _max_diff(ranks[0][name], ranks[1][name]) == 0.0, f"{name}: the replicas drifted apart"
        diffs[name] = _max_diff(ranks[0][name], want)
    assert all(d < TOL for d in diffs.values()), diffs
    assert not np.allclose(one["peace"]["c.item_id.weight"], 0), "fine-tuning moved the id embeddings"
    print("max |2-process - 1-process|:", diffs)


@pytest.mark.slow
def test_nproc_2_on_train_peace_trains_and_writes_the_artefacts_once(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    _, graph = world_store
    args = ["--path", str(graph), "train", "peace", "--out", str(tmp_path / "peace"), "--no-features"]
    small = [
        "--dim",
        "8",
        "--pretrain-epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--max-batches",
        "2",
        "--nproc",
        "2",
    ]
    run = subprocess.run(
        [sys.executable, "-m", "mokg", *args, *small],
        cwd=tmp_path,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.count("artefacts:") == 1, run.stdout
    assert (tmp_path / "peace" / "manifest.json").is_file(), sorted(
        p.name for p in (tmp_path / "peace").iterdir()
    )


if __name__ == "__main__":  # a torchrun worker of the first test
    from gnn import distributed

    folder = Path(sys.argv[1])
    result = train_all(folder)
    (folder / f"rank-{distributed.world()[0]}.pkl").write_bytes(pickle.dumps(result))
