"""The trained retrievers beside MURAL (MTBERT, MADRAL, the ablations), seeded models, the seeds'
mean ± std table and the Recall@K curves."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from consumers.retrieval.config import METHODS, RetrievalConfig
from consumers.retrieval.evaluate import recall_curve
from consumers.retrieval.methods import ABLATIONS, TRAINED
from consumers.retrieval.mural import MuralConfig, load_mural
from consumers.retrieval.report import RetrievalResults, write_results
from consumers.retrieval.run import run_seeds
from mokg.cli import app
from tests.test_mural import fit_aspects, tiny_corpus, tiny_mural

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_trained_method_is_a_config_method_and_the_baselines_are_what_the_paper_compares() -> None:
    assert set(METHODS) == {"bm25", "minilm", *TRAINED}
    assert set(ABLATIONS) <= set(TRAINED)
    mtbert, madral, mural = TRAINED["mtbert"].model, TRAINED["madral"].model, TRAINED["mural"].model
    assert (mtbert.placement, mtbert.granularities, mtbert.value_embedding) == ("cls", ("value",), "ids")
    assert (madral.placement, madral.granularities, madral.value_embedding) == (
        "placeholders",
        ("value",),
        "ids",
    )
    assert mural == MuralConfig() and not TRAINED["bibert"].aspects
    with pytest.raises(ValueError, match="value_embedding"):
        MuralConfig(value_embedding="words")


@pytest.mark.parametrize("placement", ["cls", "placeholders"])  # MTBERT, MADRAL
def test_value_ids_are_free_tables_that_learn_the_tree(placement: str) -> None:
    model = tiny_mural(placement=placement, granularities=("value",), value_embedding="ids")
    assert not model.value_proj and set(model.value_table) == {f"{a}_value" for a in range(4)}
    table = model.unit_embeddings("cat1", "value")
    assert table.shape == (3, 32) and table.requires_grad
    assert table is model.value_table["1_value"]  # no tie to the value's words
    losses = fit_aspects(model, 80)
    assert losses[-1] < 0.3 * losses[0]


def test_a_loaded_model_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert()
    bert.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    items = tiny_corpus().items

    def weights(seed: int, cfg: MuralConfig) -> dict[str, torch.Tensor]:
        torch.manual_seed(seed + 100)  # the global state must not matter
        return {k: v.clone() for k, v in load_mural(items, cfg, tmp_path, seed=seed).state_dict().items()}

    for cfg in (MuralConfig(max_len=32), TRAINED["madral"].model):
        a, b, c = weights(0, cfg), weights(0, cfg), weights(1, cfg)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
        assert not torch.equal(a["gate.weight"], c["gate.weight"])


def test_seeds_give_mean_and_std_and_recall_curves_rise_with_k(tmp_path: Path) -> None:
    config = RetrievalConfig(corpus="electronics", methods=("bm25",))
    results = run_seeds(None, config, (0, 1))
    assert results.seeds == [0, 1] and set(results.table["queries"]) == {"test", "cold"}
    summary = results.summary()
    assert len(summary) == 2 and (summary["NDCG@10_std"] >= 0).all()
    per_seed = results.table[results.table["queries"] == "test"]["NDCG@10"]
    assert summary.loc[summary["queries"] == "test", "NDCG@10"].item() == pytest.approx(per_seed.mean())
    assert "±" in results.markdown() and "seed: 0, 1" in results.markdown()
    curve = results.curves[(results.curves["seed"] == 0) & (results.curves["queries"] == "test")]
    assert curve["recall"].is_monotonic_increasing and curve["recall"].iloc[-1] > curve["recall"].iloc[0]
    written = write_results(results, tmp_path)
    assert {p.name for p in written} == {
        "retrieval_electronics.csv",
        "retrieval_electronics.md",
        "retrieval_electronics_recall.csv",
        "retrieval_electronics_recall.png",
    }
    assert (tmp_path / "retrieval_electronics_recall.png").read_bytes()[:4] == b"\x89PNG"
    assert len(pd.read_csv(tmp_path / "retrieval_electronics.csv")) == 4


def test_one_seed_prints_no_std() -> None:
    table = pd.DataFrame(
        [{"seed": 0, "method": "m", "queries": "test", "n_queries": 3, **dict.fromkeys(_measures(), 0.5)}]
    )
    assert "±" not in RetrievalResults("x", table).markdown()


def _measures() -> list[str]:
    from consumers.retrieval.evaluate import MEASURES

    return list(MEASURES)


def test_recall_curve_by_hand() -> None:
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    found = {"q1": {"a": 3.0, "x": 2.0, "b": 1.0}, "q2": {"x": 1.0, "c": 0.5}}
    assert recall_curve(found, qrels, (1, 2, 3)) == {1: 0.25, 2: 0.75, 3: 1.0}


def test_bad_seeds_and_unknown_methods_are_one_line_errors() -> None:
    runner = CliRunner()
    bad = runner.invoke(app, ["eval", "retrieval", "--corpus", "electronics", "--seeds", "0,x"])
    assert bad.exit_code != 0 and "--seeds must be comma-separated integers" in str(bad.exception)
    unknown = runner.invoke(app, ["eval", "retrieval", "--corpus", "electronics", "--methods", "colbert"])
    assert unknown.exit_code != 0 and "colbert" in str(unknown.exception)
    helped = runner.invoke(app, ["eval", "retrieval", "--help"])
    assert all(m in helped.output for m in ("mtbert", "madral", "--ablations", "--seeds"))


def test_fusion_cls_keeps_the_placeholders_but_represents_by_cls() -> None:
    model = tiny_mural(fusion="cls")
    assert model.n_placeholders == 4 and model.gate is None
    out = model(model.tokenize(["Soft cotton towel set"]))
    assert torch.equal(out.fused, out.cls) and not torch.equal(out.aspects[:, 0], out.cls)
    with pytest.raises(ValueError, match="fusion"):
        MuralConfig(fusion="mean")


def test_scaled_fusion_starts_at_the_cls_vector_and_learns_its_scale() -> None:
    model = tiny_mural(fusion="scaled")
    assert model.fusion_scale is not None and float(model.fusion_scale.detach()) == 0.0
    out = model(model.tokenize(["Soft cotton towel set", "Tuna flakes"]))
    assert torch.equal(out.fused, out.cls)
    (out.fused * torch.randn_like(out.fused)).sum().backward()
    assert model.fusion_scale.grad is not None and float(model.fusion_scale.grad) != 0.0


def test_train_method_runs_each_stage_it_needs_and_says_what_it_did(tmp_path: Path) -> None:
    from consumers.retrieval.methods import train_method
    from consumers.retrieval.mural_train import TrainConfig
    from graph.errors import InputError
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert()
    bert.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    cfg = TrainConfig(pretrain_epochs=1, finetune_epochs=1, batch_size=4, max_steps=1, item_field="title")
    scaled, used, note = train_method("mural-scaled", tiny_corpus(), cfg, base_model=tmp_path)
    assert not scaled.training and used.pretrain_epochs == 1 and "(1+1 steps" in note and "γ" in note
    bibert, used, note = train_method("bibert", tiny_corpus(), cfg, base_model=tmp_path)
    assert bibert.gate is None and bibert.n_placeholders == 0
    assert used.pretrain_epochs == 0 and not used.finetune_aspect and note.startswith("no aspects")
    with pytest.raises(InputError, match="unknown trained method"):
        train_method("colbert", tiny_corpus(), cfg, base_model=tmp_path)
