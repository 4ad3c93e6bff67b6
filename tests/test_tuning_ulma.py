"""ULMA / point-wise DPO / pair-wise DPO losses on hand-computed cases, and gradient directions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mining.tuning.ulma import pairwise_dpo, pointwise_dpo, sft, ulma


def _logp(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, requires_grad=True)


def test_pointwise_dpo_is_log2_when_policy_equals_reference() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5])
    z = torch.tensor([1.0, 0.0, 1.0])
    assert pointwise_dpo(logp, logp.clone(), z).item() == pytest.approx(math.log(2))
    assert pointwise_dpo(logp, logp.clone(), torch.tensor([0.3, 0.5, 1.0]), continuous=True).item() == (
        pytest.approx((0.09 + 0.25 + 1.0) / 3)
    )


def test_pointwise_dpo_binary_hand_computed() -> None:
    logp, ref = torch.tensor([-1.0]), torch.tensor([-3.0])  # r̂ = 2, β·r̂ = 0.2
    assert pointwise_dpo(logp, ref, torch.tensor([1.0])).item() == pytest.approx(
        -math.log(1 / (1 + math.exp(-0.2)))
    )
    assert pointwise_dpo(logp, ref, torch.tensor([0.0]), c=0.1).item() == pytest.approx(
        math.log(1 + math.exp(0.3))
    )


def test_ulma_splits_demonstrations_from_negatives() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5])
    ref = torch.tensor([-1.5, -1.0, -0.5])
    z = torch.tensor([1.0, 0.0, 0.0])
    sft_term = 1.0  # −log πθ of the one demonstration
    neg = [-math.log(1 / (1 + math.exp(0.1 * r))) for r in (-1.0, 0.0)]  # −log σ(−β r̂)
    assert ulma(logp, ref, z).item() == pytest.approx(sft_term + sum(neg) / 2)
    # the demonstration term does not depend on the reference
    other_ref = torch.tensor([-9.0, -1.0, -0.5])
    assert ulma(logp, other_ref, z).item() == pytest.approx(ulma(logp, ref, z).item())


def test_ulma_with_one_class_absent_is_finite() -> None:
    logp = torch.tensor([-1.0, -2.0])
    assert ulma(logp, logp, torch.tensor([1.0, 1.0])).item() == pytest.approx(1.5)
    assert ulma(logp, logp, torch.tensor([0.0, 0.0])).item() == pytest.approx(math.log(2))
    assert sft(logp, torch.tensor([0.0, 0.0])).item() == 0.0
    cont = ulma(logp, logp, torch.tensor([1.0, 0.2]), continuous=True)
    assert cont.item() == pytest.approx(1.0 + 0.04)


def test_gradients_raise_accepted_and_lower_rejected_and_never_reach_the_reference() -> None:
    for loss_fn in (pointwise_dpo, ulma):
        logp = _logp([-1.0, -1.0])
        ref = torch.tensor([-1.0, -1.0], requires_grad=True)
        loss = loss_fn(logp, ref, torch.tensor([1.0, 0.0]))
        loss.backward()  # type: ignore[no-untyped-call]
        assert logp.grad is not None
        assert logp.grad[0] < 0 < logp.grad[1]  # descent raises log π(accepted), lowers rejected
        assert ref.grad is None


def test_pairwise_dpo_pairs_only_within_a_prompt() -> None:
    logp = torch.tensor([-1.0, -2.0, -0.5, -3.0])
    ref = torch.zeros(4)
    z = torch.tensor([1.0, 0.0, 1.0, 0.0])
    prompt = torch.tensor([0, 0, 1, 2])  # prompt 1 has no negative, prompt 2 no positive
    expected = -math.log(1 / (1 + math.exp(-0.1 * (-1.0 + 2.0))))
    assert pairwise_dpo(logp, ref, z, prompt).item() == pytest.approx(expected)
    assert pairwise_dpo(logp, ref, z, torch.tensor([0, 1, 2, 3])).item() == 0.0


def test_reference_model_is_frozen_copy() -> None:
    from mining.tuning.align import frozen_copy

    policy = nn.Linear(3, 2)
    ref = frozen_copy(policy)
    assert all(not p.requires_grad for p in ref.parameters()) and not ref.training
    assert all(torch.equal(a, b) for a, b in zip(policy.parameters(), ref.parameters(), strict=True))


def test_feedback_import_reads_user_labels(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mokg.cli import app

    src = tmp_path / "fb.csv"
    src.write_text(
        "head,relation,tail,label\nadopting a cat,NEEDS,Cat food,accepted\nadopting a cat,NEEDS,Sunscreen,0\n"
    )
    store = tmp_path / "feedback.jsonl"
    result = CliRunner().invoke(app, ["feedback", "import", str(src), "--into", str(store)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in store.read_text().splitlines()]
    assert [(r["tail"], r["z"]) for r in rows] == [("Cat food", 1.0), ("Sunscreen", 0.0)]
    bad = tmp_path / "bad.csv"
    bad.write_text("head,relation,tail,label\nnobody,NEEDS,Cat food,1\n")
    assert CliRunner().invoke(app, ["feedback", "import", str(bad), "--into", str(store)]).exit_code != 0
