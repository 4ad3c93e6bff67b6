"""ULMA / point-wise DPO / pair-wise DPO losses on hand-computed cases, and gradient directions."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from mining.lightpair.model import LightPAIR
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


def _tiny_lightpair(evidence: bool) -> LightPAIR:
    from mining.lightpair.model import ModelConfig

    class _Enc(nn.Module):
        config = type("C", (), {"hidden_size": 4})()

    config = ModelConfig(("NEEDS", "CO_OCCURS_WITH"), per_relation=True, evidence=evidence, evidence_slots=2)
    model = LightPAIR(_Enc(), None, config)
    with torch.no_grad():  # move every expansion parameter off its initial value
        for p in (model.query_proj.weight, model.relation_proj, model.expansion_bias, model.evidence_weight):
            if p is not None:
                p.add_(0.3 * torch.randn_like(p))
    return model


def test_the_aligned_head_is_the_models_expansion_head_with_evidence_and_installs_back() -> None:
    from mining.lightpair.model import evidence_matrix
    from mining.tuning.align import ExpansionHead

    torch.manual_seed(0)
    model = _tiny_lightpair(evidence=True)
    head = ExpansionHead(model)
    queries, tails = torch.randn(2, 4), torch.randn(3, 4)
    phi = evidence_matrix([[("b", 0.5, 3.0, 2.0, 1)], [("a", 0.2, 1.0, 1.5)]], ["a", "b", "c"], slots=2)
    relations = ["CO_OCCURS_WITH", "NEEDS"]
    expected = model.expansion_logits(queries, tails, relations, phi)
    assert torch.allclose(head(queries, tails, relations, phi), expected)
    # the evidence weights train: a push on a listed tail reaches v_r of its relation and slot only
    head(queries, tails, relations, phi)[0, 1].backward()
    assert head.evidence_weight is not None
    grad = head.evidence_weight.grad
    assert grad is not None and grad[1, 4:].abs().sum() > 0
    assert grad[1, :4].abs().sum() == 0 and grad[0].abs().sum() == 0
    assert all(p.grad is None for p in model.parameters())  # the source model is untouched
    with torch.no_grad():
        head.evidence_weight.add_(1.0)
        head.expansion_bias.add_(0.5)
    moved = head(queries, tails, relations, phi)
    head.install(model)
    assert torch.allclose(model.expansion_logits(queries, tails, relations, phi), moved)


def test_policy_features_come_from_the_builds_evidence_by_head_name() -> None:
    from mining.tuning.align import ExpansionPolicy

    model = _tiny_lightpair(evidence=True)
    names = {"Intent": ["Back to school", "Rainy season"]}
    items = {
        "back to school": [("intents whose categories its searchers engage", "Rainy season", 0.4, 7, 2.5)]
    }
    policy = ExpansionPolicy(model, {"Intent": torch.randn(2, 4)}, names, items)
    phi = policy.phi("Back to School", "CO_OCCURS_WITH", "Intent")
    assert phi is not None and phi.shape == (1, 2, 8)
    assert phi[0, 0].abs().sum() == 0 and phi[0, 1, :4].abs().sum() == 0  # slot 1: shared engagement
    assert phi[0, 1, 4:].tolist() == pytest.approx([0.4, math.log1p(7) / 5, math.log(2.5) / 3, 1.0])
    other = policy.phi("Back to school", "NEEDS", "Intent")
    assert other is not None and other.abs().sum() == 0  # other relation: nothing
    plain = ExpansionPolicy(_tiny_lightpair(evidence=False), {"Intent": torch.randn(2, 4)}, names, items)
    assert plain.phi("Back to school", "CO_OCCURS_WITH", "Intent") is None  # the model reads none


def test_feedback_calibration_picks_tau_and_cap_that_keep_the_accepted_tails() -> None:
    from mining.tuning.align import (
        ExpansionHead,
        ExpansionPolicy,
        Feedback,
        calibrate_on_feedback,
        split_heads,
    )

    model = _tiny_lightpair(evidence=False)
    names = {"Category": ["Cat food", "Cat litter", "Dog food", "Wedding dresses"]}
    tails = torch.eye(4)  # tail j's embedding is e_j: the logit of tail j reads the query's j-th coordinate
    policy = ExpansionPolicy(model, {"Category": tails}, names)
    head = ExpansionHead(model)
    with torch.no_grad():  # a head that passes the query straight through
        head.query_proj.weight.copy_(torch.eye(4))
        head.query_proj.bias.zero_()
        assert head.relation_proj is not None
        head.relation_proj.copy_(torch.eye(4).repeat(2, 1, 1))
        head.log_scale.fill_(math.log(10.0))
        head.expansion_bias.fill_(-3.0)
    # two heads whose queries point at their accepted tails: cat food + litter, dog food
    from mining.lightpair.corpus import query_text
    from mining.tuning.align import _names

    descriptions = {n: d for n, _, d in _names().values()}
    heads = {
        "adopting a cat": torch.tensor([1.0, 1.0, 0.1, 0.0]),
        "getting a dog": torch.tensor([0.1, 0.0, 1.0, 0.0]),
    }
    for name, q in heads.items():
        policy.queries[query_text(name, "Intent", descriptions.get(name, ""), "NEEDS")] = q
    rows = [
        Feedback("adopting a cat", "Intent", "NEEDS", "Category", "Cat food", 1.0),
        Feedback("adopting a cat", "Intent", "NEEDS", "Category", "Cat litter", 1.0),
        Feedback("adopting a cat", "Intent", "NEEDS", "Category", "Dog food", 0.0),
        Feedback("getting a dog", "Intent", "NEEDS", "Category", "Dog food", 1.0),
    ]
    chosen = calibrate_on_feedback(policy, head, rows)
    # p(accepted) = σ(10 · 0.70 − 3) ≈ 0.98 or σ(10 · 0.99 − 3) ≈ 1.0; the rest ≤ σ(10 · 0.07 − 3) ≈ 0.09
    assert 0.1 <= chosen["expansion:NEEDS"] <= 0.95 and chosen["expansion_cap:NEEDS"] >= 2
    assert set(chosen) == {"expansion:NEEDS", "expansion_cap:NEEDS"}
    keep, aside = split_heads(rows, 0.5, seed=0)
    assert {f.head for f in keep}.isdisjoint({f.head for f in aside}) and len(keep) + len(aside) == 4
