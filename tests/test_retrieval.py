"""Retrieval around MURAL (issue 17, first increment): corpora, metrics, BM25, the faiss index and
`mokg search`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from consumers.retrieval.bm25 import bm25_run
from consumers.retrieval.config import RetrievalConfig
from consumers.retrieval.corpus import electronics_corpus, store_items, world_corpus
from consumers.retrieval.evaluate import evaluate
from consumers.retrieval.index import load_index, overlap_at_k, save_index
from consumers.retrieval.run import run
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from mokg.cli import app
from tests.support.fakes import CenteredFakeEncoder as FakeEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOKG_CACHE", str(tmp_path / "cache"))


def test_world_corpus_has_disjoint_splits_a_test_only_cold_domain_and_grades(
    world_store: tuple[Path, Path],
) -> None:
    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        c = world_corpus(store, world, seed=3)
        again = world_corpus(store, world, seed=3)
    assert c.queries.equals(again.queries)  # seeded
    q = c.queries
    assert set(q["split"]) <= {"train", "dev", "test"} and q["query"].is_unique
    assert (q.loc[q["domain"] == c.cold_domain, "split"] == "test").all()
    warm = q[q["domain"] != c.cold_domain]
    assert 0.7 < (warm["split"] == "train").mean() < 0.9
    assert set(c.qrels["relevance"]) == {1, 2}
    assert set(c.qrels["query"]) == set(q["query"])  # every query has a clicked item
    item = c.items.iloc[0]
    assert len(item["category_path"]) >= 2 and item["brand"] and item["domain"] and item["leaf"]
    leaf = c.items.set_index("item")["leaf"]
    two = c.qrels[c.qrels["relevance"] == 2].groupby("query")["item"].first()
    plain = c.qrels[c.qrels["query"].isin(q.loc[q["intent"] == "", "query"])]  # no intent grade
    one = plain[plain["relevance"] == 1].drop_duplicates("query").set_index("query")["item"]
    shared = one.index.intersection(two.index)
    assert len(shared) and (leaf[one[shared]].to_numpy() == leaf[two[shared]].to_numpy()).all()
    assert set(c.select("test")["query"]).isdisjoint(c.select("cold")["query"])


def test_metrics_from_ir_measures_match_a_hand_checked_example() -> None:
    qrels = {"q1": {"a": 2, "b": 1}, "q2": {"c": 1}}
    run_ = {"q1": {"a": 3.0, "x": 2.0, "b": 1.0}, "q2": {"x": 1.0, "c": 0.5}}
    m = evaluate(run_, qrels)
    # nDCG (linear gains): q1 = (2 + 1/log2 4) / (2 + 1/log2 3); q2 = (1/log2 3) / 1
    ndcg = ((2 + 0.5) / (2 + 1 / np.log2(3)) + 1 / np.log2(3)) / 2
    assert m["NDCG@10"] == pytest.approx(ndcg) and m["NDCG@50"] == pytest.approx(ndcg)
    assert m["MRR"] == pytest.approx((1 + 0.5) / 2)
    assert m["Recall@50"] == pytest.approx(1.0) and m["Recall@100"] == pytest.approx(1.0)
    assert evaluate({"q1": run_["q1"]}, qrels)["Recall@50"] == pytest.approx(0.5)  # a missing query scores 0


def test_bm25_beats_random_on_the_world_and_the_table_has_both_methods(
    world_store: tuple[Path, Path],
) -> None:
    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        c = world_corpus(store, world)
        res = run(store, RetrievalConfig(world=world, index_type="hnsw"), encoder=FakeEncoder())
    queries = c.queries
    ids = list(c.items["item"])
    bm = bm25_run(ids, list(c.items["text"]), list(queries["query"]), list(queries["text"]), 100)
    rng = np.random.default_rng(0)
    rand = {q: {ids[j]: float(100 - r) for r, j in enumerate(rng.permutation(len(ids))[:100])} for q in bm}
    qrels = c.qrels_dict()
    assert evaluate(bm, qrels)["NDCG@10"] > 2 * evaluate(rand, qrels)["NDCG@10"] + 0.05
    t = res.table
    assert set(t["method"].str.split().str[0]) == {"BM25", "MiniLM"}
    assert set(t["queries"]) == {"test", "cold", "intent"}
    assert 0.0 <= res.ann_recall["hnsw recall@10"] <= 1.0 and "| BM25" in res.markdown()


def test_the_index_round_trips_and_exact_search_is_brute_force(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    items = pd.DataFrame(
        {
            "item": [f"i{n}" for n in range(500)],
            "title": "t",
            "domain": ["a", "b"] * 250,
            "category_path": [["root", "leaf"]] * 500,
            "brand": "b",
        }
    )
    meta = {"graph_version": "v1", "encoder": "fake", "model_id": "fake-16", "corpus": "test"}
    q = x[:20] + 0.1 * rng.normal(size=(20, 16)).astype(np.float32)
    save_index(tmp_path / "flat", x, items, "flat", meta)
    save_index(tmp_path / "hnsw", x, items, "hnsw", meta)
    flat, hnsw = load_index(tmp_path / "flat"), load_index(tmp_path / "hnsw")
    assert flat.manifest["graph_version"] == "v1" and flat.item_ids == list(items["item"])
    exact = flat.search(q, 10)
    brute = np.argsort(-(q @ x.T), axis=1)[:, :10]
    assert [[i for i, _ in row] for row in exact] == [[f"i{j}" for j in row] for row in brute]
    recall = overlap_at_k(hnsw.search(q, 10), exact, 10)
    print(f"HNSW recall@10 vs exact: {recall:.3f}")
    assert recall >= 0.9
    in_b = flat.search(q[:3], 5, domain="b")
    assert all(int(i[1:]) % 2 == 1 for row in in_b for i, _ in row) and all(len(r) == 5 for r in in_b)
    save_index(tmp_path / "ivf", x, items, "ivf", meta)
    ivf = load_index(tmp_path / "ivf")
    assert (ivf.index.nlist, ivf.index.nprobe) == (12, 8)  # min(√500, 500 / 39) lists, 8 probed
    assert overlap_at_k(ivf.search(q, 10), exact, 10) >= 0.9
    ivf_b = ivf.search(q[:3], 5, domain="b")
    assert all(int(i[1:]) % 2 == 1 for row in ivf_b for i, _ in row)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a retrieval index folder"):
        save_index(tmp_path / "other", x, items, "flat", meta)


def test_mokg_search_answers_from_the_saved_index(
    world_store: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from loaders import features

    monkeypatch.setitem(features.ENCODERS, "fake", FakeEncoder)
    _, graph = world_store
    runner = CliRunner()
    idx = tmp_path / "idx"
    r = runner.invoke(
        app,
        [
            "--path",
            str(graph),
            "train",
            "retrieval",
            "--out",
            str(idx),
            "--encoder",
            "fake",
            "--threads",
            "1",
        ],
    )
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["search", "rugged wireless earbuds", "-k", "3", "--index", str(idx)])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if ln.strip()[:1].isdigit()]
    assert len(lines) == 3 and "brand" in lines[0] and " > " in lines[0]
    r = runner.invoke(
        app, ["search", "x", "--domain", "finance", "-k", "4", "--index", str(idx), "--format", "json"]
    )
    assert r.exit_code == 0, r.output
    assert '"domain": "finance"' in r.output and '"domain": "ecommerce"' not in r.output
    (tmp_path / "q.txt").write_text("best umbrellas\nrugged wireless earbuds\n")
    cands = tmp_path / "cands.parquet"
    r = runner.invoke(
        app,
        ["search", "--batch", str(tmp_path / "q.txt"), "--out", str(cands), "-k", "5", "--index", str(idx)],
    )
    assert r.exit_code == 0, r.output
    frame = pd.read_parquet(cands)
    assert len(frame) == 10 and {"query", "item", "score", "category_path", "brand", "domain"} <= set(frame)
    r = runner.invoke(app, ["search", "--index", str(idx)])
    assert r.exit_code != 0 and "give a query text" in str(r.exception)


def test_a_store_without_a_category_tree_is_refused(tmp_path: Path) -> None:
    with (
        open_store(StoreConfig(path=tmp_path / "g"), create=True) as store,
        pytest.raises(InputError, match="no category tree"),
    ):
        store_items(store)
    r = CliRunner().invoke(
        app, ["--path", str(tmp_path / "g"), "train", "retrieval", "--out", str(tmp_path / "i")]
    )
    assert r.exit_code != 0 and "no category tree" in str(r.exception)


def test_the_electronics_corpus_loads_from_the_installed_wheel() -> None:
    c = electronics_corpus()
    assert len(c.items) == 643 and len(c.queries) == 643
    assert (c.qrels["relevance"] == 2).sum() == 643
    assert (c.queries.loc[c.queries["domain"] == c.cold_domain, "split"] == "test").all()
    assert c.items["category_path"].map(len).eq(2).all() and (c.items["brand"] != "").mean() > 0.5
    res = run(None, RetrievalConfig(corpus="electronics", methods=("bm25",)))
    assert float(res.table["NDCG@10"].iloc[0]) > 0.3
