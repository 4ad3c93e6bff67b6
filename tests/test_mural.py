"""MURAL: aspect vocabulary, unit embeddings, aspect and MLM losses, ablation switches, training stages."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
import torch

from consumers.retrieval.aspects import AspectVocab, build_vocab
from consumers.retrieval.corpus import RetrievalCorpus, item_text
from consumers.retrieval.mural import Mural, MuralConfig, contrastive_loss
from consumers.retrieval.mural_train import TrainConfig, finetune, pretrain, training_triples

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# A two-level tree with three leaves; brands; two domains.
ITEMS = [
    ("i0", "Crunchy kibble for puppies", ["Pets", "Dog food"], "Acme", "pets"),
    ("i1", "Grain free chews large breed", ["Pets", "Dog food"], "Bolt", "pets"),
    ("i2", "Salmon pate for kittens", ["Pets", "Cat food"], "Acme", "pets"),
    ("i3", "Tuna flakes in jelly", ["Pets", "Cat food"], "", "pets"),
    ("i4", "Soft cotton towel set", ["Home", "Bath towels"], "Bolt", "home"),
    ("i5", "Quick dry microfiber towel", ["Home", "Bath towels"], "Cozy", "home"),
]


def tiny_corpus() -> RetrievalCorpus:
    items = pd.DataFrame(
        [(i, t, item_text(t, p, b), d, p[-1], p, b) for i, t, p, b, d in ITEMS],
        columns=["item", "title", "text", "domain", "leaf", "category_path", "brand"],
    )
    queries = pd.DataFrame(
        {
            "query": ["q0", "q1", "q2", "q3"],
            "text": ["puppy kibble", "kitten food", "cotton towels", "tuna for cats"],
            "domain": ["pets", "pets", "home", "pets"],
            "split": ["train", "train", "train", "test"],
        }
    )
    qrels = pd.DataFrame(
        {
            "query": ["q0", "q0", "q1", "q1", "q2", "q3"],
            "item": ["i0", "i1", "i2", "i3", "i4", "i3"],
            "relevance": [2, 1, 2, 1, 2, 2],
        }
    )
    return RetrievalCorpus("tiny", items, queries, qrels, "none")


def tiny_mural(**kw: object) -> Mural:
    """MURAL over a tiny BERT (no dropout) and the tiny corpus's aspects."""
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert(dropout=0.0)
    cfg = MuralConfig(max_len=32, **kw)  # type: ignore[arg-type]
    vocab = build_vocab(tiny_corpus().items, tokenizer, cfg.granularities)
    return Mural(bert, tokenizer, vocab, cfg)


def test_vocabulary_from_the_data() -> None:
    model = tiny_mural()
    vocab: AspectVocab = model.vocab
    assert vocab.names == ("cat0", "cat1", "brand", "domain")
    assert vocab.values["cat1"] == ["Home > Bath towels", "Pets > Cat food", "Pets > Dog food"]
    assert model.n_placeholders == 4
    ids = vocab.value_ids(tiny_corpus().items)
    assert ids.shape == (6, 4) and ids[3, 2] == -1  # i3 has no brand
    word = vocab.grains["cat1"]["word"]
    dog = vocab.values["cat1"].index("Pets > Dog food")
    assert sorted(word.units[u] for u in word.members[dog]) == ["dog", "food"]
    piece = vocab.grains["cat1"]["piece"]
    assert [piece.units[u] for u in piece.members[dog]] == ["dog", "food"]
    cat = vocab.values["cat1"].index("Pets > Cat food")
    assert set(word.members[dog]) & set(word.members[cat]) == {word.units.index("food")}
    hot = vocab.multi_hot(tiny_corpus().items, "cat1", "word")
    assert hot.shape == (6, len(word.units)) and hot[0].sum() == 2 and hot[0, word.units.index("dog")] == 1


def test_unit_embedding_is_the_linear_of_the_mean_token_embedding() -> None:
    model = tiny_mural()
    emb = model.encoder.get_input_embeddings().weight
    v = model.vocab.values["cat1"].index("Home > Bath towels")
    toks = model.tokenizer("Bath towels", add_special_tokens=False)["input_ids"]
    assert len(toks) >= 2
    for g in ("value", "word", "piece"):
        got = model.unit_embeddings("cat1", g)
        assert got.shape == (len(model.vocab.grains["cat1"][g].units), 32)
    expected = model.value_proj["value"](emb[toks].mean(0))
    assert torch.allclose(model.unit_embeddings("cat1", "value")[v], expected, atol=1e-6)
    word = model.vocab.grains["cat1"]["word"]
    u = word.units.index("towels")
    wt = model.tokenizer("towels", add_special_tokens=False)["input_ids"]
    assert torch.allclose(
        model.unit_embeddings("cat1", "word")[u], model.value_proj["word"](emb[wt].mean(0)), atol=1e-6
    )


def test_inputs_carry_placeholders_after_cls() -> None:
    model = tiny_mural()
    batch = model.tokenize(["Soft cotton towel set", "a"])
    tok = model.tokenizer
    assert batch.ids[0, 0] == tok.cls_token_id
    assert batch.ids[0, 1:5].tolist() == model.placeholder_ids
    assert tok.convert_ids_to_tokens(model.placeholder_ids) == ["[ASP_1]", "[ASP_2]", "[ASP_3]", "[ASP_4]"]
    assert not batch.content[:, :5].any() and batch.content[1].sum() == 1
    out = model(batch)
    assert out.aspects.shape == (2, 4, 32) and out.fused.shape == (2, 32)
    assert model.encode(["x"]).shape == (1, 32)


def _accuracy(model: Mural, texts: list[str], ids: torch.Tensor) -> float:
    model.eval()
    with torch.no_grad():
        out = model(model.tokenize(texts))
        right = total = 0
        for a, name in enumerate(model.vocab.names):
            has = ids[:, a] >= 0
            pred = model.aspect_logits(out.aspects[has, a], name, "value").argmax(-1)
            right += int((pred == ids[has, a]).sum())
            total += int(has.sum())
    return right / total


def fit_aspects(model: Mural, steps: int) -> list[float]:
    """``steps`` of Adam on the aspect loss alone over the tiny corpus's titles → the losses."""
    corpus = tiny_corpus()
    texts = list(corpus.items["title"])
    ids = torch.from_numpy(model.vocab.value_ids(corpus.items))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(steps):
        loss = model.aspect_loss(model(model.tokenize(texts)).aspects, ids)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def test_aspect_loss_learns_the_tree() -> None:
    model = tiny_mural(mlm=False)
    losses = fit_aspects(model, 100)
    assert losses[-1] < 0.2 * losses[0]
    items = tiny_corpus().items
    assert _accuracy(model, list(items["title"]), torch.from_numpy(model.vocab.value_ids(items))) == 1.0


def test_mlm_never_masks_placeholders_or_special_tokens() -> None:
    model = tiny_mural()
    texts = [t for _, t, *_ in ITEMS] * 4
    batch = model.tokenize(texts)
    gen = torch.Generator().manual_seed(0)
    chosen = content = 0
    for _ in range(300):
        masked, labels = model.mask_tokens(batch, gen)
        picked = labels != -100
        assert not (picked & ~batch.content).any()
        assert (masked.ids[:, 1:5] == batch.ids[:, 1:5]).all()
        assert (masked.ids[:, 0] == model.tokenizer.cls_token_id).all()
        assert (labels[picked] == batch.ids[picked]).all()
        chosen += int(picked.sum())
        content += int(batch.content.sum())
    assert chosen / content == pytest.approx(0.15, abs=0.01)


@pytest.mark.parametrize(
    "kw",
    [{}, {"placement": "cls"}, {"mlm": False}, {"granularities": ("value",)}, {"granularities": ("piece",)}],
)
def test_switches_run(kw: dict[str, object]) -> None:
    model = tiny_mural(**kw)
    corpus = tiny_corpus()
    ids = torch.from_numpy(model.vocab.value_ids(corpus.items))
    loss, mlm, asp = model.pretrain_loss(list(corpus.items["title"]), ids, torch.Generator().manual_seed(1))
    loss.backward()  # type: ignore[no-untyped-call]
    assert torch.isfinite(loss) and float(asp.detach()) > 0
    assert (float(mlm.detach()) == 0.0) == (kw.get("mlm") is False)
    if kw.get("placement") == "cls":
        assert model.n_placeholders == 0 and model.gate is None
        assert model.tokenize(["a b"]).ids.shape[1] == 4  # [CLS] a b [SEP]
    assert set(model.value_proj) == set(model.config.granularities)


def test_contrastive_prefers_matching_pairs() -> None:
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    neg = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    aligned = contrastive_loss(q, q, neg, temperature=0.1)
    shuffled = contrastive_loss(q, q[torch.randperm(8)], neg, temperature=0.1)
    assert float(aligned) < float(shuffled)
    same = torch.zeros(8, 16, dtype=torch.bool)
    same[0, 1] = True  # candidate 1 also relevant to query 0: dropped from its softmax
    assert float(contrastive_loss(q, q, neg, 0.1, same)) <= float(aligned) + 1e-6


def test_training_stages_run_and_report_progress() -> None:
    model = tiny_mural()
    corpus = tiny_corpus()
    ticks: dict[str, int] = {}

    def progress(name: str, total: int) -> Callable[[], None]:
        ticks[name] = 0

        def tick() -> None:
            ticks[name] += 1

        return tick

    triples = training_triples(corpus, TrainConfig())
    assert [(t, p) for t, p, _ in triples] == [("puppy kibble", 0), ("kitten food", 2), ("cotton towels", 4)]
    rel = corpus.qrels_dict()
    for (_, _, n), q in zip(triples, ["q0", "q1", "q2"], strict=True):
        assert str(corpus.items["item"][n]) not in rel[q]
    cfg = TrainConfig(batch_size=4, lr=1e-3, with_queries=True, pretrain_epochs=2, finetune_epochs=2)
    pre = pretrain(model, corpus, cfg, progress)
    fine = finetune(model, corpus, cfg, progress)
    assert len(pre["loss"]) == 6 and len(fine["loss"]) == 2  # ⌈(6 items + 3 queries) / 4⌉ × 2; ⌈3 / 4⌉ × 2
    assert ticks == {"mural pretrain": 6, "mural finetune": 2}
    assert all(map(torch.isfinite, map(torch.tensor, pre["loss"] + fine["loss"])))
    again = tiny_mural()
    assert pretrain(again, corpus, cfg)["loss"] == pre["loss"]  # seeded


def test_mural_is_a_method_asked_for_by_name() -> None:
    from consumers.retrieval.config import RetrievalConfig
    from graph.errors import InputError
    from mokg.commands.retrieval import _epochs

    assert "mural" not in RetrievalConfig(corpus="electronics").methods
    assert RetrievalConfig(corpus="electronics", methods=("mural",), mural_epochs=(0, 2)).mural_epochs == (
        0,
        2,
    )
    with pytest.raises(InputError):
        RetrievalConfig(corpus="electronics", mural_epochs=(1, -1))
    assert _epochs("1, 3") == (1, 3)
    with pytest.raises(InputError):
        _epochs("2")
