"""The S&R Multi-Domain Foundation model: gating, alignment penalty, the freeze switch, the world's
samples, artefacts and the CLI (issue 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from gnn.foundation.adaptation import alignment_penalty
from gnn.foundation.data import FoundationData, validate
from gnn.foundation.features import Encoded, encode
from gnn.foundation.fusion import AspectGatingFusion
from gnn.foundation.model import FoundationConfig, SRFoundation, make_ranker
from gnn.foundation.serve import load_artefacts, read_representations, save_artefacts, score
from gnn.foundation.train import TrainConfig, fit, mean_auc, predict
from graph.errors import InputError
from graph.store import StoreConfig, open_store
from mokg.cli import app
from tests.support.fakes import FakeEncoder
from tests.support.foundation_toy import toy_data
from tests.support.worlds import SMALL_WORLD

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Encoded:
    cache = tmp_path_factory.mktemp("cache")
    return encode(toy_data(n_requests=200, pages=80), text_encoder=FakeEncoder(), cache_dir=cache)


def test_gate_weights_sum_to_one_and_follow_their_input() -> None:
    torch.manual_seed(0)
    aspects, domain = torch.randn(6, 3, 4), torch.tensor([0, 0, 0, 1, 1, 1])
    by_domain = AspectGatingFusion(4, 3, 2, "domain")
    out = by_domain(aspects, domain)
    alpha = by_domain.last_alpha
    assert out.shape == (6, 4) and alpha is not None
    assert torch.allclose(alpha.sum(1), torch.ones(6))
    assert torch.allclose(alpha[0], alpha[2]) and not torch.allclose(alpha[0], alpha[3])  # domain only
    expected = (alpha.unsqueeze(-1) * aspects).sum(1)  # eq. 3
    assert torch.allclose(out, expected)
    by_mean = AspectGatingFusion(4, 3, 2, "mean")
    by_mean(aspects, domain)
    assert by_mean.last_alpha is not None and not torch.allclose(by_mean.last_alpha[0], by_mean.last_alpha[2])
    concat = AspectGatingFusion(4, 3, 2, "concat")
    assert concat(aspects, domain).shape == (6, 4) and concat.last_alpha is None
    with pytest.raises(ValueError, match="unknown gate"):
        AspectGatingFusion(4, 3, 2, "median")


def test_alignment_penalty_sees_a_domain_shift_and_training_shrinks_it() -> None:
    torch.manual_seed(0)
    domain = torch.arange(400) % 2
    same = torch.randn(400, 8)
    shifted = same + 2.0 * domain.unsqueeze(1)
    assert alignment_penalty(same, domain) < 0.05 < alignment_penalty(shifted, domain)
    offset = torch.zeros(2, 8, requires_grad=True)  # learn a per-domain offset that undoes the shift
    opt = torch.optim.Adam([offset], lr=0.1)
    start = float(alignment_penalty(shifted + offset[domain], domain).detach())
    for _ in range(60):
        loss = alignment_penalty(shifted + offset[domain], domain)
        opt.zero_grad()
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()
    assert float(alignment_penalty(shifted + offset[domain], domain).detach()) < 0.2 * start
    small = torch.tensor([0] * 3 + [1] * 100)
    assert float(alignment_penalty(torch.randn(103, 8), small)) == 0.0  # too few rows of domain 0


def test_the_foundation_model_learns_the_domain_specific_rule(toy: Encoded) -> None:
    torch.manual_seed(0)
    model = SRFoundation(toy, FoundationConfig(dim=16))
    fit(model, toy, toy.rows("train"), toy.rows("valid"), TrainConfig(epochs=12, batch_size=256, patience=3))
    assert mean_auc(model, toy, toy.rows("test")) > 0.75


def test_freeze_encoding_keeps_the_pretrained_parts_and_trains_the_rest(toy: Encoded) -> None:
    torch.manual_seed(0)
    model = SRFoundation(toy, FoundationConfig(dim=8))
    cold = toy.domains.index("cold")
    model.reset_domains([cold])
    w = model.fuse_item.domain_emb.weight
    others = [i for i in range(len(toy.domains)) if i != cold]
    assert torch.allclose(w[cold], w[others].mean(0))
    model.freeze_encoding()
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    assert {"inputs.text.weight", "inputs.tokens.weight", "fuse_req.w_g.weight"} <= set(frozen)
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert "inputs.item_id.weight" in trainable and "dam.delta" in trainable
    rows = toy.rows("train", ["cold"])
    fit(model, toy, rows, toy.rows("valid", ["cold"]), TrainConfig(epochs=2, batch_size=128))
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], v) for n, v in frozen.items())
    assert not torch.equal(after["dam.delta"], trainable["dam.delta"])


def test_every_baseline_trains_on_the_same_samples(toy: Encoded) -> None:
    for name in ("shared_bottom", "mmoe", "ple", "star"):
        torch.manual_seed(0)
        model = make_ranker(toy, name, FoundationConfig(dim=8))
        fit(model, toy, toy.rows("train"), toy.rows("valid"), TrainConfig(epochs=1, batch_size=256))
        scores = predict(model, toy, toy.rows("test"))
        assert scores.shape == (len(toy.rows("test")),) and np.isfinite(scores).all()
    with pytest.raises(InputError, match="unknown method"):
        make_ranker(toy, "deepfm")


def test_bad_samples_are_refused_with_the_reason() -> None:
    data = toy_data(n_requests=20, pages=5)
    with pytest.raises(InputError, match="have no row in items"):
        first = data.samples["item"].iloc[0]
        validate(FoundationData("x", data.samples, data.requests, data.items[data.items["item"] != first]))
    bad = data.samples.assign(task="browse")
    with pytest.raises(InputError, match="unknown task"):
        validate(FoundationData("x", bad, data.requests, data.items))


def test_the_world_gives_search_and_rec_scenarios_with_real_negatives(world_store: tuple[Path, Path]) -> None:
    from gnn.foundation.world import world_data

    world, graph = world_store
    with open_store(StoreConfig(path=graph)) as store:
        data = world_data(store, world)
    s = data.samples
    assert set(s["task"]) == {"search", "rec"} and data.cold_domain == "health"
    assert 0.1 < s["label"].mean() < 0.5  # one click per page of shown items
    assert s.loc[s["split"] == "train", "ts"].max() <= s.loc[s["split"] == "test", "ts"].min()
    item = data.items.set_index("item")["sparse"]
    tokens = item.iloc[0]
    assert any(t.startswith("cat0:") for t in tokens) and any(t.startswith("brand:") for t in tokens)
    queries = data.requests[data.requests["kind"] == "query"]
    assert (queries["text"] != "").all()
    with open_store(StoreConfig(path=graph)) as store:
        latest = world_data(store, world, max_pages=50)  # read through a filter, not whole
    assert len(latest.samples) == 50 * SMALL_WORLD.impression_page_size
    assert latest.samples["ts"].min() >= s["ts"].sort_values().iloc[-50 * SMALL_WORLD.impression_page_size]


def test_artefacts_score_without_the_data_and_carry_the_representations(toy: Encoded, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = SRFoundation(toy, FoundationConfig(dim=8))
    kinds = np.where(pd.Series(toy.request_ids).str.startswith("q"), "query", "user")
    save_artefacts(model, toy, kinds, tmp_path / "art", {"graph_version": "v-test"})
    art = load_artefacts(tmp_path / "art")
    user = next(r for r, k in zip(toy.request_ids, kinds, strict=True) if k == "user")
    top = score(art, user, "d0", k=5)
    assert len(top) == 5 and [p for _, p in top] == sorted((p for _, p in top), reverse=True)
    reps = read_representations(tmp_path / "art")
    assert set(reps["kind"]) == {"item", "query"} and (reps["graph_version"] == "v-test").all()
    assert len(reps.loc[reps["kind"] == "item", "vector"].iloc[0]) == 8
    with pytest.raises(InputError, match="unknown user or query"):
        score(art, "nobody", "d0")
    with pytest.raises(InputError, match="unknown domain"):
        score(art, user, "atlantis")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a foundation artefact folder"):
        save_artefacts(model, toy, kinds, tmp_path / "mine", {"graph_version": "v"})


@pytest.mark.slow
def test_cli_trains_scores_and_evaluates_on_a_tiny_world(
    world_store: tuple[Path, Path], tmp_path: Path
) -> None:
    world, graph = world_store
    base = ["--path", str(graph)]
    runner = CliRunner()
    r = runner.invoke(
        app,
        [*base, "train", "foundation", "--world", str(world), "--out", str(tmp_path / "a"), "--epochs", "2"],
    )
    assert r.exit_code == 0, r.output
    in_folder = read_representations(tmp_path / "a")
    with open_store(StoreConfig(path=graph)) as store:
        in_store = read_representations(store, model_hash=in_folder["model_hash"].iloc[0])
    assert len(in_store) == len(in_folder) and set(in_store["kind"]) == {"item", "query"}
    got = in_store.set_index(["kind", "id"])["vector"]
    want = in_folder.set_index(["kind", "id"])["vector"]
    assert all(np.array_equal(got[k], want[k]) for k in want.index[:50])  # base64 round trip
    user = read_representations(tmp_path / "a", "query")["id"].iloc[0]
    r = runner.invoke(
        app,
        ["score", "--query", user, "--domain", "ecommerce", "-k", "3", "--artefacts", str(tmp_path / "a")],
    )
    assert r.exit_code == 0 and r.output.count("\n") == 4, r.output
    same = ["score", "--query", user, "--domain", "ecommerce", "-k", "3", "--artefacts", str(tmp_path / "a")]
    r16 = runner.invoke(app, [*same, "--precision", "bf16", "--format", "json"])
    assert r16.exit_code == 0 and len(json.loads(r16.output)) == 3, r16.output
    r = runner.invoke(app, [*same, "--precision", "fp4"])
    assert r.exit_code != 0 and "--precision must be one of" in str(r.exception)
    r = runner.invoke(
        app, ["score", "--user", "u1", "--query", "q", "--domain", "x", "--artefacts", str(tmp_path / "a")]
    )
    assert r.exit_code != 0 and "exactly one of --user" in str(r.exception)
    args = [*base, "eval", "foundation", "--world", str(world), "--out", str(tmp_path / "e"), "--seeds", "0"]
    r = runner.invoke(app, [*args, "--epochs", "1", "--methods", "foundation,mmoe", "--no-ablations"])
    assert r.exit_code == 0, r.output
    main = pd.read_csv(tmp_path / "e" / "foundation_main.csv")
    assert set(main["method"]) == {"foundation", "mmoe", "mmoe (torch-rechub)"}  # the peer, same command
    assert main["auc"].dropna().between(0, 1).all()
    cold = pd.read_csv(tmp_path / "e" / "foundation_cold.csv")
    assert set(cold["mode"]) == {"foundation fine-tune", "fine-tune all", "from scratch"}
    assert set(cold["fraction"]) == {0.01, 0.1, 1.0} and set(cold["scenario"]) <= {
        "health/rec",
        "health/search",
    }
    assert (tmp_path / "e" / "foundation.png").stat().st_size > 10_000


def test_lightpair_is_the_second_text_model_and_its_vectors_are_cached_apart(tmp_path: Path) -> None:
    """`--text-encoder lightpair:PATH`: LightPAIR's e(x) from a checkpoint, cached under its own id."""
    from gnn.foundation.features import LightPAIREncoder, make_text_encoder
    from mining.lightpair import checkpoint
    from mining.lightpair.corpus import build_corpus
    from mining.lightpair.distill import tails_of
    from tests.test_lightpair import TAILS, rows, tiny_model

    model = tiny_model()
    corpus = build_corpus(rows(), TAILS)
    meta = checkpoint.CheckpointMeta(model.config, {}, {}, {}, corpus.sha256(), {}, [], [], TAILS)
    checkpoint.save(tmp_path / "ckpt", model, meta, tails_of(model, corpus), corpus.to_json())
    encoder = make_text_encoder(f"lightpair:{tmp_path / 'ckpt'}")
    assert isinstance(encoder, LightPAIREncoder) and encoder.model_id.startswith("lightpair@")
    data = toy_data(n_requests=12, pages=5)
    enc = encode(data, text_encoder=encoder, cache_dir=tmp_path / "cache")
    want = model.embed(data.items["text"].tolist()[:3]).detach().numpy()
    assert enc.text_dim == 32 and np.allclose(enc.item_text[:3].numpy(), want, atol=1e-5)
    assert enc.text_model == encoder.model_id
    with pytest.raises(InputError, match="unknown text encoder"):
        make_text_encoder("word2vec")
    with pytest.raises(InputError, match="not a LightPAIR checkpoint"):
        _ = make_text_encoder(f"lightpair:{tmp_path}").model_id
