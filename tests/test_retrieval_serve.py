"""Serving retrieval (consumers/retrieval/serve.py, search.py): MURAL and BIBERT indexes, matched aspects and
`mokg search --explain`, on the tiny world of tests/test_retrieval.py and a tiny BERT."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from consumers.retrieval.index import WEIGHTS, load_index
from consumers.retrieval.mural import MuralConfig
from consumers.retrieval.mural_train import TrainConfig
from consumers.retrieval.search import Searcher, matched_aspects
from consumers.retrieval.serve import build_index, training_corpus
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from mokg.cli import app
from tests.support.fakes import CenteredFakeEncoder as FakeEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")
QUICK = TrainConfig(batch_size=8, max_steps=2, lr=1e-3)


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOKG_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny BERT saved as a local BERT folder (what --base-model takes)."""
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert(dropout=0.0)
    root = tmp_path_factory.mktemp("tiny-bert")
    bert.save_pretrained(root)
    tokenizer.save_pretrained(root)
    return root


@pytest.fixture(scope="module")
def mural_index(
    world_store: tuple[Path, Path],
    bert_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    world, graph = world_store
    out = tmp_path_factory.mktemp("mural") / "idx"
    with open_store(StoreConfig(path=graph)) as store:
        meta = build_index(
            store,
            out,
            method="mural",
            world=world,
            index_type="flat",
            train=QUICK,
            mural=MuralConfig(max_len=32),
            base_model=bert_dir,
        )
    assert meta["model"] == "mural" and meta["n_items"] == 400 and "2+2 steps" in meta["training"]
    return out


def test_a_mural_index_holds_its_model_and_hash(mural_index: Path) -> None:
    idx = load_index(mural_index)
    m = idx.manifest
    assert m["model"] == "mural" and m["graph_version"] and m["aspects"][-2:] == ["brand", "domain"]
    assert m["model_hash"] == hashlib.sha256((mural_index / WEIGHTS).read_bytes()).hexdigest()
    assert (mural_index / "model.json").is_file() and (mural_index / "encoder" / "config.json").is_file()


def test_a_mural_index_reloads_to_the_same_vectors(mural_index: Path) -> None:
    one, two = Searcher(mural_index), Searcher(mural_index)
    texts = ["waterproof hiking boots", "a gift for my sister"]
    assert np.array_equal(one.encoder.encode(texts), two.encoder.encode(texts))
    model = one.encoder.model
    assert model is not None and not model.training
    stored = one.index.index.reconstruct_n(0, one.index.index.ntotal)  # the vectors indexed at training
    again = model.embed(one._texts(one.index.item_ids))
    assert np.allclose(stored, again, atol=1e-5)


def test_explain_decomposes_the_score_over_the_aspects(
    mural_index: Path,
    world_store: tuple[Path, Path],
) -> None:
    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        query = str(training_corpus(store, world).queries["text"].iloc[0])
    searcher = Searcher(mural_index)
    aspects = searcher.manifest["aspects"]
    [answer] = searcher.search([query], k=5, explain=True)
    assert len(answer.hits) == 5 and answer.note == ""
    assert answer.query_aspects is not None and list(answer.query_aspects) == aspects
    assert all(0.0 < v["p"] <= 1.0 for v in answer.query_aspects.values())
    for hit in answer.hits:
        e = hit.explanation
        assert e is not None and set(e["parts"]) == {"cls", *aspects}
        assert abs(sum(e["parts"].values()) - hit.score) < 1e-4
        assert sum(e["weights"].values()) == pytest.approx(1.0, abs=1e-6)
        assert set(e["drivers"]) <= set(aspects) and all(e["parts"][a] > 0 for a in e["drivers"])
        assert e["values"]["domain"] == hit.domain and e["values"]["brand"] == hit.brand
    [plain] = searcher.search([query], k=5)
    assert [h.item for h in plain.hits] == [h.item for h in answer.hits]
    assert all(h.explanation is None for h in plain.hits) and plain.query_aspects is None


def test_matched_aspects_are_the_values_sharing_a_word_with_the_query() -> None:
    values = [("cat0", "Pets"), ("cat1", "Dog food"), ("brand", "Acme"), ("domain", "ecommerce")]
    got = matched_aspects("dry food for dogs by acme", values)
    assert got == [
        {"aspect": "cat1", "value": "Dog food", "words": ["dog", "food"]},
        {"aspect": "brand", "value": "Acme", "words": ["acme"]},
    ]
    assert matched_aspects("the and of", [("cat0", "Bath and body")]) == []


def test_mokg_search_explains_a_mural_index_and_writes_batches(mural_index: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["search", "home kitchen", "-k", "3", "--index", str(mural_index), "--explain"])
    assert r.exit_code == 0, r.output
    assert r.output.count("explain: driven by") == 3 and r.output.count("matched:") == 3
    assert "query's predicted aspects: cat0" in r.output
    r = runner.invoke(
        app, ["search", "home", "-k", "2", "--index", str(mural_index), "--explain", "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output)
    assert doc["model"] == "mural" and len(doc["hits"]) == 2 and set(doc["query_aspects"]) >= {"brand"}
    assert all("parts" in h["explanation"] and "matched" in h for h in doc["hits"])
    (tmp_path / "q.txt").write_text("home kitchen\nrunning shoes\n")
    cands = tmp_path / "c.parquet"
    args = ["search", "--batch", str(tmp_path / "q.txt"), "--out", str(cands), "-k", "4"]
    r = runner.invoke(app, [*args, "--index", str(mural_index)])
    assert r.exit_code == 0, r.output
    frame = pd.read_parquet(cands)
    assert len(frame) == 8 and {"query", "item", "score", "matched_aspects"} <= set(frame)


def test_bibert_and_minilm_indexes_explain_lexically(
    world_store: tuple[Path, Path],
    bert_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from loaders import features

    monkeypatch.setitem(features.ENCODERS, "fake", FakeEncoder)
    world, graph = world_store
    runner = CliRunner()
    common = ["--path", str(graph), "train", "retrieval", "--threads", "1"]
    bibert, minilm = tmp_path / "bibert", tmp_path / "minilm"
    r = runner.invoke(
        app,
        [
            *common,
            *("--method", "bibert", "--world", str(world), "--out", str(bibert)),
            *("--base-model", str(bert_dir), "--max-steps", "1", "--epochs", "0,1"),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "BIBERT from" in r.output and "0+1 steps" in r.output
    r = runner.invoke(app, [*common, "--encoder", "fake", "--out", str(minilm)])
    assert r.exit_code == 0, r.output
    for idx, kind in ((bibert, "BIBERT"), (minilm, "MINILM")):
        r = runner.invoke(app, ["search", "home kitchen", "-k", "3", "--index", str(idx), "--explain"])
        assert r.exit_code == 0, r.output
        assert f"a {kind} index" in r.output and "needs a MURAL index" in r.output
        assert r.output.count("matched:") == 3 and "explain: driven" not in r.output


def test_bad_inputs_are_refused(
    mural_index: Path,
    world_store: tuple[Path, Path],
    bert_dir: Path,
    tmp_path: Path,
) -> None:
    import shutil

    world, graph = world_store
    with pytest.raises(InputError, match="holds no retrieval index"):
        Searcher(tmp_path / "missing")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "manifest.json").write_text(json.dumps({"kind": "something-else"}))
    with pytest.raises(InputError, match="is not a retrieval index"):
        Searcher(foreign)
    with open_store(StoreConfig(path=graph)) as store:
        with pytest.raises(InputError, match="not a retrieval index folder"):  # before any training
            build_index(store, foreign, method="mural", world=world, train=QUICK, base_model=bert_dir)
        with pytest.raises(InputError, match="unknown retrieval method"):
            build_index(store, tmp_path / "x", method="nope")
        with pytest.raises(InputError, match="not a BERT folder"):
            build_index(store, tmp_path / "x", method="mural", world=world, base_model=tmp_path)
    tampered = tmp_path / "tampered"
    shutil.copytree(mural_index, tampered)
    (tampered / WEIGHTS).write_bytes((tampered / WEIGHTS).read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(InputError, match="model hash"):
        Searcher(tampered)
    r = CliRunner().invoke(app, ["search", "x", "--index", str(mural_index), "--format", "xml"])
    assert r.exit_code != 0 and "--format is table or json" in str(r.exception)
    (tmp_path / "q.txt").write_text("home\n")
    args = ["search", "--batch", str(tmp_path / "q.txt"), "--out", str(tmp_path / "c.parquet"), "--explain"]
    r = CliRunner().invoke(app, [*args, "--index", str(mural_index)])
    assert r.exit_code != 0 and "drop it with --batch" in str(r.exception)


def test_without_a_world_the_store_s_clicked_queries_train(world_store: tuple[Path, Path]) -> None:
    _, graph = world_store

    class NoClicks:
        """The store, less its Query-CLICKED->Item edges."""

        def __init__(self, store: object) -> None:
            self.store = store

        def __getattr__(self, name: str) -> object:
            return getattr(self.store, name)

        def edge_table(self, key: tuple[str, str, str], columns: tuple[str, ...] = ()) -> pd.DataFrame:
            if key[1] == "CLICKED":
                return pd.DataFrame(columns=["head", "tail"])
            return self.store.edge_table(key, columns)  # type: ignore[attr-defined, no-any-return]

    with open_store(StoreConfig(path=graph)) as store:
        corpus = training_corpus(store, None)
        with pytest.raises(InputError, match="--world DIR"):
            training_corpus(NoClicks(store), None)  # type: ignore[arg-type]
    q = corpus.queries
    assert corpus.name == "store" and len(q) > 20 and (q["split"] == "train").all()
    assert (q["text"].str.len() > 0).all() and set(corpus.qrels["relevance"]) == {1, 2}
    assert set(corpus.qrels["query"]) == set(q["query"])
