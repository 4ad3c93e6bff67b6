"""Behavioural evidence in PAIR's prompts, and LightPAIR reading it: tiny stores built inline."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import torch

from graph.store import GraphStore, StoreConfig, open_store
from mining.lightpair.corpus import PromptView
from mining.lightpair.model import LightPAIR, ModelConfig, evidence_matrix
from mining.pipeline.config import MiningConfig
from mining.pipeline.evidence import SHARED, BehaviourEvidence, EvidenceConfig
from mining.prompts import EntityContext, build_entity_expansion, build_judgement, build_relation_filter

T0 = datetime(2026, 3, 1, 12, 0, 0)


def _store(path: Path) -> GraphStore:
    """7 users. Intent "rainy season": u1, u2, u3 search for it; u1 and u2 then buy umbrellas, u3
    buys one 30 days later (outside the window). Intent "school run": u1 searches it after rain,
    u2 before. Intent "cheap phones": u4-u7 (the searchers the lifts compare against)."""
    store = open_store(StoreConfig(backend="embedded", path=path), create=True)
    with store.run_context("setup") as run:
        intents = [("i_rain", "rainy season"), ("i_school", "School run"), ("i_phone", "cheap phones")]
        store.upsert_nodes("Intent", [{"id": i, "name": n} for i, n in intents], run_id=run)
        cats = [("c_umb", "Umbrellas"), ("c_bag", "Bags"), ("c_phone", "Phones")]
        store.upsert_nodes("Category", [{"id": i, "name": n} for i, n in cats], run_id=run)
        store.upsert_nodes("Item", [{"id": "it1"}, {"id": "it2"}, {"id": "it3"}], run_id=run)
        store.upsert_nodes("User", [{"id": f"u{k}"} for k in range(1, 8)], run_id=run)
        queries = {
            "q1": "Rainy season checklist",
            "q2": "best rainy season boots",
            "q3": "school run snacks",
            "q4": "cheap phones",
        }
        store.upsert_nodes("Query", [{"id": q, "text": t} for q, t in queries.items()], run_id=run)
        store.upsert_edges(
            "BELONGS_TO",
            [
                {"head": "it1", "tail": "c_umb"},
                {"head": "it2", "tail": "c_bag"},
                {"head": "it3", "tail": "c_phone"},
            ],
            run_id=run,
            head="Item",
            tail="Category",
        )
        day = timedelta(days=1)
        searched = [
            ("u1", "q1", T0),
            ("u1", "q3", T0 + 3 * day),
            ("u2", "q2", T0 + 2 * day),
            ("u2", "q3", T0),
            ("u3", "q1", T0),
            *((f"u{k}", "q4", T0) for k in range(4, 8)),
        ]
        store.upsert_edges(
            "SEARCHED", [{"head": u, "tail": q, "ts": ts} for u, q, ts in searched], run_id=run
        )
        interacted = [
            ("u1", "it1", T0 + 2 * day),
            ("u2", "it1", T0 + 5 * day),
            ("u3", "it1", T0 + 30 * day),
            ("u2", "it2", T0 + day / 2),
            ("u4", "it3", T0),
        ]
        store.upsert_edges(
            "INTERACTED",
            [
                {"head": u, "tail": i, "ts": ts, "kind": "purchase", "domain": "ecommerce"}
                for u, i, ts in interacted
            ],
            run_id=run,
        )
    return store


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> BehaviourEvidence:
    with _store(tmp_path_factory.mktemp("evidence") / "graph") as store:
        return BehaviourEvidence.from_store(store, EvidenceConfig(before_days=1, after_days=14))


def test_sessions_count_users_whose_searches_name_the_intent_within_the_window(
    evidence: BehaviourEvidence,
) -> None:
    rain = {(k, n): (s, c) for k, n, s, c, _ in evidence.of(("Intent", "i_rain"))}
    # u1, u2, u3 searched for rain; u1 and u2 bought umbrellas within 14 days, u3 after 30: 2 of 3.
    # u2 bought a bag 1.5 days before their rain search (at T0 + 2): outside before_days = 1.
    assert rain[("engaged categories", "Umbrellas")] == (0.667, 2)
    assert ("engaged categories", "Bags") not in rain
    # u1 and u2 searched both intents: 2 of rain's 3 sessions; only u1 searched school after rain
    assert rain[("co-searched intents", "School run")] == (0.667, 2)
    assert rain[("searched next", "School run")] == (0.333, 1)
    school = {(k, n): (s, c) for k, n, s, c, _ in evidence.of(("Intent", "i_school"))}
    assert school[("searched next", "rainy season")] == (0.5, 1)  # u2: school at T0, rain at T0 + 2
    assert school[("engaged categories", "Bags")] == (0.5, 1)  # u2's bag, half a day after school
    umbrellas = {(k, n): (s, c) for k, n, s, c, _ in evidence.of(("Category", "c_umb"))}
    assert umbrellas[("searched by intents", "rainy season")] == (0.667, 2)
    assert evidence.of(("Intent", "nobody")) == ()
    # lifts against the 7 searchers: umbrellas engaged by 2 of 7, bags by 1 of 7, rain searched by
    # 3 of 7, school by 2 of 7
    lifts = {(k, n): x for k, n, _, _, x in evidence.of(("Intent", "i_rain"))}
    assert lifts[("engaged categories", "Umbrellas")] == pytest.approx((2 / 3) / (2 / 7), abs=0.01)
    assert lifts[("co-searched intents", "School run")] == pytest.approx((2 / 3) / (2 / 7), abs=0.01)
    assert lifts[("searched next", "School run")] == pytest.approx((1 / 3) / (2 / 7), abs=0.01)
    lifts = {(k, n): x for k, n, _, _, x in evidence.of(("Intent", "i_school"))}
    assert lifts[("engaged categories", "Bags")] == pytest.approx(0.5 / (1 / 7), abs=0.01)
    assert evidence.of(("Intent", "i_phone")) == (("engaged categories", "Phones", 0.25, 1, 1.75),)
    assert all(x > 1 for items in evidence.items.values() for *_, x in items)  # lift ≤ 1: not listed


def test_evidence_survives_the_checkpoint_round_trip(evidence: BehaviourEvidence) -> None:
    again = BehaviourEvidence.from_json(evidence.to_json())
    assert again.items == evidence.items


def test_prompts_carry_the_evidence_and_lightpair_reads_it_back(evidence: BehaviourEvidence) -> None:
    from graph.schema import SCHEMA

    ctx = EntityContext("rainy season", "Intent", "Wet weeks.", (), evidence.of(("Intent", "i_rain")))
    for messages in (
        build_relation_filter(ctx),
        build_entity_expansion(ctx, SCHEMA.rel("NEEDS"), "Category"),
    ):
        view = PromptView.of(messages)
        assert view.description == "Wet weeks."
        assert {(k, n, c) for k, n, _, c, _ in view.evidence} == {(k, n, c) for k, n, _, c, _ in ctx.evidence}
    view = PromptView.of(build_entity_expansion(ctx, SCHEMA.rel("NEEDS"), "Category"))
    assert view.evidence_for("NEEDS") == (("umbrellas", 0.67, 2.0, 2.3),)  # 2 decimals, 1 for lift
    assert [n for n, *_ in view.evidence_for("CO_OCCURS_WITH")] == ["school run"] * 2  # two kinds
    assert view.evidence_for("SERVES") == ()
    # a judgement prompt carries none (LightPAIR's engine reuses what the head's earlier prompts said)
    assert PromptView.of(build_judgement(ctx, SCHEMA.rel("NEEDS"), "Umbrellas", "Category")).evidence == ()
    # without evidence the prompt is unchanged (caches and hashes of evidence-free runs stay valid)
    plain = EntityContext("rainy season", "Intent", "Wet weeks.")
    assert "Platform evidence" not in build_relation_filter(plain)[1]["content"]


def test_evidence_off_keeps_the_config_hash_and_on_changes_it() -> None:
    base = MiningConfig()
    assert "evidence" not in base.as_dict()
    assert MiningConfig(evidence=True).config_hash() != base.config_hash()


def test_evidence_matrix_and_the_evidence_term_by_hand() -> None:
    phi = evidence_matrix([[("umbrellas", 0.5, 4.0, 2.0)], []], ["bags", "umbrellas"])
    assert phi.shape == (2, 2, 4)
    assert torch.allclose(phi[0, 1], torch.tensor([0.5, math.log1p(4.0) / 5.0, math.log(2.0) / 3.0, 1.0]))
    assert phi[0, 0].abs().sum() == 0 and phi[1].abs().sum() == 0

    class _Enc(torch.nn.Module):
        config = type("C", (), {"hidden_size": 4})()

    model = LightPAIR(_Enc(), None, ModelConfig(("NEEDS", "SERVES"), evidence=True))
    queries, tails = torch.nn.functional.normalize(torch.randn(2, 4), dim=-1), torch.randn(2, 4)
    plain = model.expansion_logits(queries, tails, ["NEEDS", "SERVES"])
    # v_r starts at 0: the evidence-aware model starts as the evidence-free one
    assert torch.allclose(model.expansion_logits(queries, tails, ["NEEDS", "SERVES"], phi), plain)
    with torch.no_grad():
        assert model.evidence_weight is not None
        model.evidence_weight[0] = torch.tensor([2.0, 1.0, -1.0, 3.0])
    out = model.expansion_logits(queries, tails, ["NEEDS", "SERVES"], phi)
    assert torch.allclose(out[0, 1] - plain[0, 1], (phi[0, 1] * torch.tensor([2.0, 1.0, -1.0, 3.0])).sum())
    assert torch.allclose(out[0, 0], plain[0, 0]) and torch.allclose(out[1], plain[1])
    out.sum().backward()  # type: ignore[no-untyped-call]
    assert model.evidence_weight.grad is not None and model.evidence_weight.grad[0].abs().sum() > 0
    assert model.evidence_weight.grad[1].abs().sum() == 0  # row 1 (SERVES) had no listed tail


def test_shared_engagement_lists_intents_whose_top_categories_the_searchers_engaged(
    evidence: BehaviourEvidence,
) -> None:
    # Umbrellas is the top category of rain and of school (2 sessions each, u1's umbrella came a day
    # before their school search); Bags (1 session) is not. School's searchers u1, u2 engaged with
    # Umbrellas (at any time), as did u3: 3 of the 7 session users, so the lift is 1 / (3 / 7).
    school = {(k, n): (s, c, x) for k, n, s, c, x in evidence.of(("Intent", "i_school"))}
    assert school[(SHARED, "rainy season")][:2] == (1.0, 2)
    assert school[(SHARED, "rainy season")][2] == pytest.approx(7 / 3, abs=0.01)
    rain = {(k, n): (s, c) for k, n, s, c, _ in evidence.of(("Intent", "i_rain"))}
    assert rain[(SHARED, "School run")] == (1.0, 3)  # u3's umbrella, 30 days on, counts here
    assert all(n != "rainy season" for k, n, *_ in evidence.of(("Intent", "i_rain")) if k == SHARED)
    assert all(k != SHARED for k, *_ in evidence.of(("Intent", "i_phone")))  # phone users: no umbrellas
    off = _store_evidence_without_shared(evidence)
    assert all(k != SHARED for items in off.items.values() for k, *_ in items)


def _store_evidence_without_shared(evidence: BehaviourEvidence) -> BehaviourEvidence:
    return BehaviourEvidence(
        {ref: [x for x in items if x[0] != SHARED] for ref, items in evidence.items.items()}
    )


def test_a_relation_with_two_kinds_gets_one_slot_of_phi_per_kind(evidence: BehaviourEvidence) -> None:
    from graph.schema import SCHEMA

    ctx = EntityContext("School run", "Intent", "", (), evidence.of(("Intent", "i_school")))
    view = PromptView.of(build_entity_expansion(ctx, SCHEMA.rel("CO_OCCURS_WITH"), "Intent"))
    items = view.evidence_for("CO_OCCURS_WITH")
    # u1, u2 co-searched both (2 of 2; lift 1 / (3 / 7)), and engaged with Umbrellas (the same
    # numbers by another route). The co-search item has no slot field (slot 0: earlier corpora keep
    # their hash); the shared-engagement item carries slot 1.
    assert set(items) == {("rainy season", 1.0, 2.0, 2.3), ("rainy season", 1.0, 2.0, 2.3, 1)}
    phi = evidence_matrix([[items[0], ("bags", 0.5, 1.0, 1.8, 1)]], ["bags", "rainy season"], slots=2)
    assert phi.shape == (1, 2, 8)
    assert phi[0, 0, :4].abs().sum() == 0 and phi[0, 1, 4:].abs().sum() == 0
    assert torch.allclose(phi[0, 0, 4:], torch.tensor([0.5, math.log1p(1) / 5, math.log(1.8) / 3, 1.0]))
    assert torch.allclose(phi[0, 1, :4], torch.tensor([1.0, math.log1p(2) / 5, math.log(2.3) / 3, 1.0]))
    # a one-slot model (checkpoints from before) ignores the second kind
    one = evidence_matrix([[items[0], ("bags", 0.5, 1.0, 1.8, 1)]], ["bags", "rainy season"])
    assert one.shape == (1, 2, 4) and one[0, 0].abs().sum() == 0 and torch.equal(one[0, 1], phi[0, 1, :4])
