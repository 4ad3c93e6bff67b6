"""torch-rechub's MMoE as the peer of the foundation model: gnn/foundation/peer.py."""

from __future__ import annotations

import builtins
from typing import Any

import numpy as np
import pytest
import torch

from gnn.foundation.data import FoundationData
from gnn.foundation.metrics import METRIC_COLUMNS
from gnn.foundation.ml1m import ml1m_data
from gnn.foundation.peer import PRED_COLUMNS, peer_metrics, rechub_mmoe
from graph.errors import InputError

pytest.importorskip("torch_rechub")


@pytest.fixture(scope="module")
def small() -> FoundationData:
    return ml1m_data(max_users=300)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_mmoe_peer_learns_on_ml1m_sample(small: FoundationData) -> None:
    pred = rechub_mmoe(small, seed=0, epochs=2, text=None)
    test = small.samples[small.samples["split"] == "test"]
    assert list(pred.columns) == PRED_COLUMNS
    assert len(pred) == len(test)
    assert (pred["request"].to_numpy() == test["request"].to_numpy()).all()
    assert (pred["label"].to_numpy() == test["label"].to_numpy()).all()
    assert pred["score"].between(0, 1).all()
    metrics = peer_metrics(pred)
    assert list(metrics.columns) == METRIC_COLUMNS
    assert metrics["scenario"].tolist() == small.scenarios
    assert metrics["n"].sum() == len(test)
    assert metrics["auc"].mean() > 0.55, metrics
    assert 1 <= pred.attrs["epochs_run"] <= 2 and pred.attrs["valid_auc"] > 0.55
    assert torch.get_num_threads() == 1


def test_mmoe_peer_is_seeded_and_reads_text_vectors(small: FoundationData) -> None:
    rng = np.random.default_rng(0)
    text = rng.normal(size=(len(small.items), 8)).astype(np.float32)
    a = rechub_mmoe(small, seed=3, epochs=1, text=text, embed_dim=8, expert_dims=(16,))
    b = rechub_mmoe(small, seed=3, epochs=1, text=text, embed_dim=8, expert_dims=(16,))
    np.testing.assert_allclose(a["score"].to_numpy(), b["score"].to_numpy(), rtol=1e-5)
    with pytest.raises(InputError, match="item_text"):
        rechub_mmoe(small, seed=0, epochs=1, text=text[:-1])


def test_missing_torch_rechub_names_the_pip_command(
    small: FoundationData, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_import = builtins.__import__

    def no_rechub(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("torch_rechub"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rechub)
    with pytest.raises(InputError, match=r"pip install torch-rechub==0\.9\.0"):
        rechub_mmoe(small, seed=0, epochs=1, text=None)
