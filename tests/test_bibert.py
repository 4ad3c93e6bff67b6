"""BIBERT: MURAL's fine-tuning on a plain ``[CLS] text [SEP]`` bi-encoder, no aspects."""

from __future__ import annotations

import pytest
import torch

from consumers.retrieval.bibert import BIBERT_CONFIG, finetune_bibert
from consumers.retrieval.mural import Mural, contrastive_loss
from consumers.retrieval.mural_train import TrainConfig, training_triples
from tests.test_mural import tiny_corpus, tiny_mural

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_bibert() -> Mural:
    from consumers.retrieval.aspects import build_vocab
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert(dropout=0.0)
    vocab = build_vocab(tiny_corpus().items, tokenizer, BIBERT_CONFIG.granularities)
    return Mural(bert, tokenizer, vocab, BIBERT_CONFIG)


def _loss(model: Mural, cfg: TrainConfig) -> float:
    """The contrastive loss over all the tiny corpus's triples in one batch, eval mode."""
    corpus = tiny_corpus()
    triples = training_triples(corpus, cfg)
    texts = [str(t) for t in corpus.items[cfg.item_field]]
    model.eval()
    with torch.no_grad():
        q = model.encode([t for t, _, _ in triples])
        pos = model.encode([texts[p] for _, p, _ in triples])
        neg = model.encode([texts[n] for _, _, n in triples])
        return float(contrastive_loss(q, pos, neg, model.config.temperature))


def test_bibert_input_is_cls_text_sep_and_its_vector_is_cls() -> None:
    model = tiny_bibert()
    assert model.n_placeholders == 0 and model.placeholder_ids == [] and model.gate is None
    assert not any(t.startswith("[ASP_") for t in model.tokenizer.get_vocab())
    tok = model.tokenizer
    batch = model.tokenize(["Soft cotton towel set"])
    body = tok("Soft cotton towel set", add_special_tokens=False)["input_ids"]
    assert batch.ids[0].tolist() == [tok.cls_token_id, *body, tok.sep_token_id]
    hidden = model.encoder(input_ids=batch.ids, attention_mask=batch.mask).last_hidden_state
    assert torch.allclose(model.encode(["Soft cotton towel set"]), hidden[:, 0])
    assert len(tiny_mural().tokenize(["Soft cotton towel set"]).ids[0]) == len(body) + 2 + 4  # MURAL: 4


def test_bibert_finetuning_lowers_the_contrastive_loss_without_aspect_loss() -> None:
    model = tiny_bibert()
    cfg = TrainConfig(finetune_epochs=30, batch_size=4, lr=1e-3, item_field="text")
    before = _loss(model, cfg)
    history = finetune_bibert(model, tiny_corpus(), cfg)
    assert len(history["loss"]) == 30 and set(history["aspect"]) == {0.0}
    assert history["loss"] == history["contrastive"]
    assert _loss(model, cfg) < 0.5 * before
    with pytest.raises(ValueError):
        finetune_bibert(tiny_mural(), tiny_corpus(), cfg)


def test_bibert_is_a_method_asked_for_by_name() -> None:
    from typer.testing import CliRunner

    from consumers.retrieval.config import RetrievalConfig
    from consumers.retrieval.run import METHOD_NAMES
    from graph.errors import InputError
    from mokg.cli import app

    assert "bibert" not in RetrievalConfig(corpus="electronics").methods
    cfg = RetrievalConfig(corpus="electronics", methods=("bm25", "bibert"))
    assert cfg.methods == ("bm25", "bibert") and METHOD_NAMES["bibert"] == "BIBERT (MiniLM fine-tuned)"
    with pytest.raises(InputError, match="bibert"):
        RetrievalConfig(corpus="electronics", methods=("nope",))
    result = CliRunner().invoke(app, ["eval", "retrieval", "--help"])
    assert result.exit_code == 0 and "bibert" in result.output
