"""LightPAIR: corpus from a transcript, the model's shapes and losses, the client's answers."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest
import torch

from graph.errors import InputError
from graph.schema import SCHEMA
from mining.lightpair import checkpoint
from mining.lightpair.calibration import _pick, best_threshold
from mining.lightpair.corpus import Corpus, PromptView, build_corpus, read_transcript
from mining.lightpair.losses import expansion_loss, listwise_loss, pool_expansions
from mining.lightpair.model import LightPAIR, ModelConfig
from mining.lightpair.training import V2, TrainConfig, fit
from mining.llm.base import Request
from mining.prompts import (
    EntityContext,
    ExpansionAnswer,
    JudgementAnswer,
    RelationFilterAnswer,
    build_entity_expansion,
    build_judgement,
    build_relation_filter,
    parse_answer,
)

TAILS = {
    "Category": ["Cat food", "Cat litter", "Dog food", "Wedding dresses"],
    "Intent": ["adopting a cat", "moving house"],
}
CAT = EntityContext("adopting a cat", "Intent", "A household adopts a cat.")


def tiny_model(seed: int = 0, per_relation: bool = False, evidence: bool = False) -> LightPAIR:
    """LightPAIR over a tiny BERT (tests/support/tiny_bert.py)."""
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert(seed)
    return LightPAIR(
        bert,
        tokenizer,
        ModelConfig(
            tuple(r.name for r in SCHEMA.mined_relations()),
            max_len=48,
            per_relation=per_relation,
            evidence=evidence,
        ),
    )


def rows() -> list[dict[str, Any]]:
    rf = build_relation_filter(CAT)
    ex = build_entity_expansion(CAT, SCHEMA.rel("NEEDS"), "Category", found=["Cat food"], round_=2)
    jd = build_judgement(CAT, SCHEMA.rel("NEEDS"), "Cat litter", "Category")

    def row(task: str, messages: Any, responses: list[str], pid: str) -> dict[str, Any]:
        return {"task": task, "prompt_id": pid, "messages": messages, "responses": responses}

    return [
        row(
            "relation_filter",
            rf,
            ['{"relations": [{"relation": "NEEDS"}]}', "not json", '{"relations": []}'],
            "a",
        ),
        row(
            "entity_expansion",
            ex,
            [
                '{"tails": [{"name": "cat litter"}, {"name": "Cat food"}]}',
                '{"tails": [{"name": "Cat Litter"}, {"name": "Unicorn chow"}]}',
            ],
            "b",
        ),
        row(
            "judge_triple",
            jd,
            ['{"valid": true, "confidence": 0.8}', '{"valid": false, "confidence": 0.6}'],
            "c",
        ),
    ]


def test_prompt_view_reads_facts_description_found_and_k() -> None:
    ex = build_entity_expansion(
        CAT, SCHEMA.rel("NEEDS"), "Category", found=["Cat food", "Cat litter"], round_=2, k=7
    )
    view = PromptView.of(ex)
    assert (view.task, view.head, view.head_type, view.relation, view.tail_type) == (
        "entity_expansion",
        "adopting a cat",
        "Intent",
        "NEEDS",
        "Category",
    )
    assert view.description == "A household adopts a cat."
    assert view.found == ("Cat food", "Cat litter") and view.k == 7
    assert PromptView.of(build_entity_expansion(CAT, SCHEMA.rel("NEEDS"), "Category")).found == ()


def test_corpus_targets_are_the_teachers_vote_shares() -> None:
    corpus = build_corpus(rows(), TAILS)
    (rel,) = corpus.relations
    assert rel.targets["NEEDS"] == pytest.approx(0.5) and rel.targets["PRECEDES"] == 0.0  # 2 parsed samples
    assert corpus.stats["relation_filter: malformed"] == 1
    (exp,) = corpus.expansions
    assert exp.targets == {"Cat litter": 1.0}  # found tail and unknown name dropped, case folded
    assert corpus.stats["expansion: unknown tail dropped"] == 1
    (jd,) = corpus.judgements
    assert jd.target == pytest.approx((0.8 + 0.4) / 2)
    assert Corpus.from_json(corpus.to_json()).sha256() == corpus.sha256()


def test_held_out_heads_never_enter_the_corpus(tmp_path: Path) -> None:
    path = tmp_path / "transcript.jsonl"
    lines = [json.dumps(r) for r in rows()]
    path.write_text("\n".join(lines + lines[:1]) + "\n")  # a resumed run repeats a line
    read = read_transcript(path)
    assert len(read) == 3 and len(read[0]["responses"]) == 3
    corpus = build_corpus(read, TAILS, hold_out=["Adopting a cat"])
    assert not corpus.heads() and corpus.stats["held-out head"] == 3


def test_model_shapes_and_identity_query_projection() -> None:
    model = tiny_model()
    assert torch.equal(model.query_proj.weight, torch.eye(32))
    e = model.embed(["a", "b c d"])
    assert e.shape == (2, 32) and torch.allclose(e.norm(dim=-1), torch.ones(2))
    assert model.relation_logits(e).shape == (2, len(SCHEMA.mined_relations()))
    assert model.expansion_logits(e, model.embed(["x", "y", "z"]), ["NEEDS", "SERVES"]).shape == (2, 3)
    assert model.judge_logits(e).shape == (2,)


def test_listwise_loss_matches_hand_computation() -> None:
    logits = torch.tensor([[0.0, math.log(3.0), 5.0]])
    target = torch.tensor([[1.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third candidate is masked (a found tail)
    # softmax over the first two = (1/4, 3/4); target distribution (1/2, 1/2)
    expected = -(0.5 * math.log(0.25) + 0.5 * math.log(0.75))
    assert listwise_loss(logits, target, mask).item() == pytest.approx(expected, rel=1e-5)
    assert listwise_loss(logits, torch.zeros_like(target), mask).item() == 0.0


def test_expansion_loss_is_finite_and_only_trainable_parameters_get_gradients() -> None:
    model = tiny_model()
    for p in model.encoder.parameters():
        p.requires_grad = False
    corpus = build_corpus(rows(), TAILS)
    loss = expansion_loss(model, corpus.expansions, TAILS["Category"], 2, random.Random(0))
    loss.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(loss)
    assert all(p.grad is None for p in model.encoder.parameters())
    assert model.query_proj.weight.grad is not None and model.expansion_bias.grad is not None


def test_best_threshold_picks_the_f1_optimum() -> None:
    ranked = [("a", 0.9), ("b", 0.6), ("c", 0.3)]
    tau, f1 = best_threshold([(ranked, {"a", "b"})])
    assert 0.3 < tau <= 0.6 and f1 == 1.0


def test_client_answers_every_task_in_its_schema(tmp_path: Path) -> None:
    from mining.lightpair.client import LightPAIRClient
    from mining.lightpair.distill import tails_of

    model = tiny_model()
    corpus = build_corpus(rows(), TAILS)
    fit(model, corpus, TrainConfig(epochs=1, batch_size=2, negatives=2))
    thresholds = {"relation_filter": 0.0, "expansion:NEEDS": 0.0}
    meta = checkpoint.CheckpointMeta(model.config, {}, thresholds, {}, corpus.sha256(), {}, [], [], TAILS)
    checkpoint.save(tmp_path, model, meta, tails_of(model, corpus), corpus.to_json())
    client = LightPAIRClient(tmp_path)
    answers = client.complete_many([Request(r["messages"], n=2) for r in rows()])
    rf = parse_answer("relation_filter", answers[0][0])
    ex = parse_answer("entity_expansion", answers[1][0])
    jd = parse_answer("judge_triple", answers[2][0])
    assert isinstance(rf, RelationFilterAnswer) and isinstance(ex, ExpansionAnswer)
    assert isinstance(jd, JudgementAnswer)
    assert {c.relation for c in rf.relations} == {
        "NEEDS",
        "CO_OCCURS_WITH",
        "PRECEDES",
        "RELATED_TO",
    }  # τ = 0
    names = [t.name for t in ex.tails]
    assert "Cat food" not in names and len(names) == 3  # found in an earlier round: excluded
    assert 0.5 <= jd.confidence <= 1.0
    assert len(answers[0]) == 2 and client.usage.calls == 3
    half = LightPAIRClient(tmp_path, precision="bf16")  # another model name, so other cache keys
    assert half.model == client.model + "-bf16"
    again = half.complete_many([Request(r["messages"], n=1) for r in rows()])
    assert isinstance(parse_answer("entity_expansion", again[1][0]), ExpansionAnswer)


def test_a_checkpoint_never_replaces_a_folder_of_other_files(tmp_path: Path) -> None:
    """Issue 15: `--out` naming a user's folder moved it aside and deleted it."""
    from mining.lightpair.distill import tails_of

    model = tiny_model(1)
    corpus = build_corpus(rows(), TAILS)
    meta = checkpoint.CheckpointMeta(model.config, {}, {}, {}, corpus.sha256(), {}, [], [], TAILS)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(InputError, match=r"refusing to replace .*mine: it is not a LightPAIR checkpoint"):
        checkpoint.save(tmp_path / "mine", model, meta, tails_of(model, corpus), corpus.to_json())
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    checkpoint.save(tmp_path / "ckpt", model, meta, tails_of(model, corpus), corpus.to_json())
    checkpoint.save(tmp_path / "ckpt", model, meta, tails_of(model, corpus), corpus.to_json())  # replaced
    assert checkpoint.read_meta(tmp_path / "ckpt").corpus_sha256 == corpus.sha256()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt", "mine"]


def test_sampled_answers_are_seeded_draws_and_greedy_ones_repeat(tmp_path: Path) -> None:
    from mining.lightpair.client import LightPAIRClient
    from mining.lightpair.distill import tails_of

    model = tiny_model(1)
    corpus = build_corpus(rows(), TAILS)
    meta = checkpoint.CheckpointMeta(model.config, {}, {}, {}, corpus.sha256(), {}, [], [], TAILS)
    checkpoint.save(tmp_path, model, meta, tails_of(model, corpus), corpus.to_json())
    messages = rows()[0]["messages"]  # relation filter: p(r) ≈ 0.5 for an untrained head
    greedy = LightPAIRClient(tmp_path).complete(messages, n=6, temperature=0.0)
    assert len(set(greedy)) == 1
    assert len(set(LightPAIRClient(tmp_path).complete(messages, n=6, temperature=0.8))) == 1  # default
    sampled = LightPAIRClient(tmp_path, sample=True).complete(messages, n=6, temperature=0.8)
    assert len(set(sampled)) > 1  # Bernoulli(p) draws differ across samples
    assert LightPAIRClient(tmp_path, sample=True).complete(messages, n=6, temperature=0.8) == sampled


def test_pooled_expansion_targets_take_the_best_round_and_the_teachers_rejections() -> None:
    from mining.lightpair.corpus import ExpansionExample, JudgeExample, judge_text

    def ex(found: tuple[str, ...], targets: dict[str, float]) -> ExpansionExample:
        return ExpansionExample("adopting a cat", "Intent", "NEEDS", "Category", "q", found, targets)

    rejected = judge_text("adopting a cat", "Intent", "NEEDS", "Dog food")
    corpus = Corpus(
        expansions=[ex((), {"Cat food": 0.6, "Dog food": 0.8}), ex(("Cat food",), {"Cat litter": 1.0})],
        judgements=[JudgeExample("adopting a cat", rejected, 0.2)],
    )
    (row,) = pool_expansions(corpus)
    assert row.found == () and row.targets == {"Cat food": 0.6, "Dog food": 0.0, "Cat litter": 1.0}


def test_joint_calibration_switches_off_a_relation_that_only_costs_precision() -> None:
    good = {(0.5, 2): (8, 10, 10), (0.5, 0): (0, 0, 10)}
    bad = {(0.5, 2): (1, 10, 2), (0.5, 0): (0, 0, 2)}  # alone, K = 2 is its best (F1 > 0)
    assert _pick({"NEEDS": good, "PRECEDES": bad}) == {"NEEDS": (0.5, 2), "PRECEDES": (0.5, 0)}


def test_v2_trains_heads_on_a_frozen_encoder_with_per_relation_projections() -> None:
    model = tiny_model(per_relation=True)
    assert model.relation_proj is not None and torch.equal(model.relation_proj[0], torch.eye(32))
    e = model.embed(["a", "b"])
    shared = tiny_model()
    shared.load_state_dict({k: v for k, v in model.state_dict().items() if k != "relation_proj"})
    tails = model.embed(["x", "y"])
    assert torch.allclose(
        model.expansion_logits(e, tails, ["NEEDS", "SERVES"]),
        shared.expansion_logits(e, tails, ["NEEDS", "SERVES"]),
    )  # identity at initialisation
    for p in model.encoder.parameters():
        p.requires_grad = False
    before = [p.clone() for p in model.encoder.parameters()]
    start = model.relation_proj.detach().clone()
    fit(model, build_corpus(rows(), TAILS), V2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.encoder.parameters(), strict=True))
    assert not torch.equal(start, model.relation_proj) and model.frozen_memo is None


def test_v2_client_caps_tails_and_judges_with_the_expansion_head(tmp_path: Path) -> None:
    from mining.lightpair.client import LightPAIRClient
    from mining.lightpair.distill import tails_of

    model = tiny_model()
    corpus = build_corpus(rows(), TAILS)
    thresholds = {"expansion:NEEDS": 0.0, "expansion_cap:NEEDS": 2.0}  # τ = 0: any tail is valid
    meta = checkpoint.CheckpointMeta(model.config, {}, thresholds, {}, corpus.sha256(), {}, [], [], TAILS)
    checkpoint.save(tmp_path, model, meta, tails_of(model, corpus), corpus.to_json())
    client = LightPAIRClient(tmp_path)
    answers = client.complete_many([Request(r["messages"], n=1) for r in rows()[1:]])
    ex = parse_answer("entity_expansion", answers[0][0])
    jd = parse_answer("judge_triple", answers[1][0])
    assert isinstance(ex, ExpansionAnswer) and isinstance(jd, JudgementAnswer)
    assert len(ex.tails) == 1  # K = 2 in all, one found already
    assert jd.valid and jd.confidence >= 0.5


def test_v2_judgement_reuses_the_expansion_query_and_the_heads_evidence(tmp_path: Path) -> None:
    from mining.lightpair.distill import tails_of
    from mining.lightpair.serve import Engine

    model = tiny_model(evidence=True)
    assert model.evidence_weight is not None
    with torch.no_grad():
        model.evidence_weight[model.rel_index["NEEDS"]] = torch.tensor([0.0, 0.0, 0.0, 50.0])  # listed: sure
    corpus = build_corpus(rows(), TAILS)
    thresholds = {"expansion:NEEDS": 0.5, "expansion_cap:NEEDS": 3.0}
    meta = checkpoint.CheckpointMeta(model.config, {}, thresholds, {}, corpus.sha256(), {}, [], [], TAILS)
    checkpoint.save(tmp_path, model, meta, tails_of(model, corpus), corpus.to_json())
    engine = Engine.load(tmp_path)
    ctx = EntityContext(
        CAT.name, CAT.type, CAT.description, (), (("engaged categories", "Dog food", 0.4, 7, 3.0),)
    )
    expansion = build_entity_expansion(ctx, SCHEMA.rel("NEEDS"), "Category")
    with torch.inference_mode():
        answer = engine.answer([expansion])[0][0]
    assert [t["name"] for t in answer["tails"]][:1] == ["Dog food"]  # the listed tail wins
    encoded = len(engine.memo)
    with torch.inference_mode():
        judged = engine.answer(
            [
                build_judgement(CAT, SCHEMA.rel("NEEDS"), n, "Category")
                for n in ("Dog food", "Wedding dresses")
            ]
        )
    assert len(engine.memo) == encoded  # no encoder pass: the (head, NEEDS) query is memoised
    assert judged[0][0]["valid"] is True  # judged with the evidence the expansion prompt carried
    assert judged[1][0]["valid"] is ("Wedding dresses" in [t["name"] for t in answer["tails"]])


@pytest.mark.slow
def test_real_minilm_lightpair_fits_the_budget_and_embeds_offline() -> None:
    from mining.lightpair.model import build_model, parameter_count

    model = build_model(ModelConfig(tuple(r.name for r in SCHEMA.mined_relations())))
    assert parameter_count(model) <= 100_000_000
    with torch.no_grad():
        e = model.embed(["Intent: adopting a cat.", "Cat food"])
    assert e.shape == (2, 384)


def test_replay_times_each_request_at_the_given_concurrency() -> None:
    import asyncio

    from mining.lightpair.evaluate import replay
    from mining.llm.base import ClientBase, Completion, Usage

    class Slow(ClientBase):
        """Answers after 50 ms; records the most requests ever in flight."""

        def __init__(self) -> None:
            self.calls, self.in_flight, self.most = 0, 0, 0
            self.usage = Usage()

        async def agenerate(self, request: Request) -> Completion:
            self.calls += 1
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
            await asyncio.sleep(0.05)
            self.in_flight -= 1
            return Completion(["{}"])

    client = Slow()
    requests = [Request([{"role": "user", "content": f"q{i}"}]) for i in range(8)]
    out = replay(client, requests, concurrency=2)
    assert client.calls == 9 and client.most == 2  # one untimed warm-up call, then 2 at a time
    assert 45 <= out["replay_ms_mean"] < 500 and out["replay_ms_p95"] >= out["replay_ms_mean"] - 1


def test_cross_fit_scores_every_head_once_out_of_fold_and_restores_the_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dataclasses import replace

    from mining.lightpair import calibration

    lines = []
    for i in range(6):
        ctx = EntityContext(f"intent {i}", "Intent", f"Intent number {i}.")
        tail = TAILS["Category"][i % 4]
        ex = build_entity_expansion(ctx, SCHEMA.rel("NEEDS"), "Category", round_=1)
        lines.append(
            {
                "task": "entity_expansion",
                "prompt_id": f"e{i}",
                "messages": ex,
                "responses": [f'{{"tails": [{{"name": "{tail}"}}]}}'],
            }
        )
    corpus = build_corpus(lines, TAILS)
    model = tiny_model(per_relation=True)
    for p in model.encoder.parameters():
        p.requires_grad = False
    start = {k: v.clone() for k, v in model.state_dict().items()}
    trained_on: list[set[str]] = []
    real_fit = fit

    def recording_fit(m: LightPAIR, part: Corpus, *args: Any, **kw: Any) -> list[float]:
        trained_on.append(part.heads())
        return real_fit(m, part, *args, **kw)

    seen: list[Any] = []

    def capture(scored: Any, pool: bool) -> tuple[dict[str, float], dict[str, float]]:
        seen.append(scored)
        return {}, {}

    monkeypatch.setattr(calibration, "fit", recording_fit)
    monkeypatch.setattr(calibration, "calibrate_from", capture)
    calibration.cross_fit(model, corpus, replace(V2, epochs=1), folds=3)
    (scored,) = seen
    scored_heads = [e.head for e in scored.expansions]
    assert sorted(scored_heads) == sorted(corpus.heads())  # every head scored exactly once
    assert len(trained_on) == 3 and all(len(t) == 4 for t in trained_on)
    for fold, heads in enumerate(trained_on):  # never scored by a model that trained on it
        assert not heads & set(scored_heads[2 * fold : 2 * fold + 2])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in start.items())  # back to the start


def test_bf16_serving_keeps_embeddings_close_and_fp32_out() -> None:
    model = tiny_model()
    model.eval()
    texts = ["adopting a cat", "moving house with two children and a dog"]
    with torch.inference_mode():
        full = model.embed(texts)
        model.serve_in("bf16")
        half = model.embed(texts)
    assert half.dtype == torch.float32 and half.shape == full.shape
    assert torch.nn.functional.cosine_similarity(full, half).min() > 0.99
    assert next(model.encoder.parameters()).dtype == torch.bfloat16
    assert model.query_proj.weight.dtype == torch.float32  # heads stay fp32
    with pytest.raises(ValueError, match="precision"):
        model.serve_in("int4")


def test_the_serving_bench_parses_its_configurations() -> None:
    from bench.lightpair import _configs

    assert _configs("fp32:1, bf16:2") == [("fp32", 1), ("bf16", 2)]
    for bad in ("fp16:1", "fp32", "bf16:0"):
        with pytest.raises(SystemExit, match="PRECISION:THREADS"):
            _configs(bad)


def test_an_interrupted_checkpoint_save_leaves_the_previous_checkpoint_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mining.lightpair.distill import tails_of

    model = tiny_model()
    corpus = build_corpus(rows(), TAILS)
    meta = checkpoint.CheckpointMeta(model.config, {}, {"relation_filter": 0.3}, {}, "a", {}, [], [], TAILS)
    out = tmp_path / "ckpt"
    checkpoint.save(out, model, meta, tails_of(model, corpus), corpus.to_json())
    before = (out / "model.pt").read_bytes()
    calls = {"n": 0}
    real = torch.save

    def failing(obj: Any, path: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 2:  # model.pt written, tails.pt fails
            raise OSError("disk full")
        real(obj, path)

    monkeypatch.setattr(torch, "save", failing)
    with torch.no_grad():
        model.query_proj.weight.add_(1.0)
    newer = checkpoint.CheckpointMeta(model.config, {}, {"relation_filter": 0.9}, {}, "b", {}, [], [], TAILS)
    with pytest.raises(InputError, match="disk full"):
        checkpoint.save(out, model, newer, tails_of(model, corpus), corpus.to_json())
    assert (out / "model.pt").read_bytes() == before
    assert checkpoint.read_meta(out).thresholds == {"relation_filter": 0.3}
    monkeypatch.setattr(torch, "save", real)
    checkpoint.save(out, model, newer, tails_of(model, corpus), corpus.to_json())  # then it goes through
    assert checkpoint.read_meta(out).thresholds == {"relation_filter": 0.9}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no partial or old copy left
