"""FastScorer: the full model's logits, one request or a micro-batch of them, in fp32 and bf16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gnn.foundation.fastscore import FastScorer
from gnn.foundation.features import Encoded, encode
from gnn.foundation.model import FoundationConfig, SRFoundation
from gnn.foundation.serve import Artefacts, full_logits, load_artefacts, save_artefacts
from gnn.foundation.train import TrainConfig, fit
from graph.errors import InputError
from loaders.precision import cpu_has_fast_bf16, resolve
from tests.support.fakes import FakeEncoder
from tests.support.foundation_toy import toy_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Artefacts, Encoded]:
    root = tmp_path_factory.mktemp("fast")
    enc = encode(toy_data(n_requests=120, pages=60), text_encoder=FakeEncoder(), cache_dir=root / "cache")
    torch.manual_seed(0)
    model = SRFoundation(enc, FoundationConfig(dim=8))
    fit(model, enc, enc.rows("train"), enc.rows("valid"), TrainConfig(epochs=3, batch_size=256))
    kinds = np.where(pd.Series(enc.request_ids).str.startswith("q"), "query", "user")
    save_artefacts(model, enc, kinds, root / "art", {"graph_version": "v-test"})
    return load_artefacts(root / "art"), enc


def _requests(art: Artefacts, n: int, seed: int = 0) -> tuple[list[tuple[str, str]], list[np.ndarray]]:
    """``n`` (request, domain) pairs over every domain and both kinds, with candidate lists of
    different lengths (repeats included)."""
    rng = np.random.default_rng(seed)
    pairs: list[tuple[str, str]] = []
    for name in rng.permutation(list(art.request_index)):
        domain = art.enc.domains[len(pairs) % len(art.enc.domains)]
        pairs.append((str(name), domain))
        if len(pairs) == n:
            break
    cands = [rng.integers(len(art.enc.item_ids), size=int(rng.integers(1, 60))) for _ in pairs]
    return pairs, cands


def test_a_micro_batch_gives_each_request_the_full_models_logits(trained: tuple[Artefacts, Encoded]) -> None:
    art, _ = trained
    pairs, cands = _requests(art, 12)
    fast = FastScorer(art)
    batched = fast.logits_many(pairs, cands)
    for (request, domain), cand, got in zip(pairs, cands, batched, strict=True):
        want = full_logits(art, request, domain, cand)
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(fast.logits(request, domain, cand), got, atol=1e-6)  # one at a time
    tops = fast.score_many(pairs, k=3, candidates=cands)
    assert tops[0] == fast.score(*pairs[0], k=3, candidates=cands[0])


def test_bf16_stays_close_to_fp32_and_keeps_the_held_out_auc(trained: tuple[Artefacts, Encoded]) -> None:
    from sklearn.metrics import roc_auc_score

    art, enc = trained
    fast, fast16 = FastScorer(art), FastScorer(art, precision="bf16")
    assert fast16.precision == "bf16" and fast16._experts[0][0][0].dtype == torch.bfloat16
    rows = enc.rows("test")
    args = (enc.request_ids[enc.req[rows].numpy()], enc.item[rows].numpy())
    doms = np.array(enc.domains, dtype=object)[enc.domain[rows].numpy()]
    l32, l16 = fast.sample_logits(*args, doms, batch=7), fast16.sample_logits(*args, doms, batch=7)
    first = int(rows[0])
    request, domain = enc.request_ids[enc.req[first]], enc.domains[int(enc.domain[first])]
    direct = full_logits(art, request, domain, enc.item[first : first + 1].numpy())
    assert torch.allclose(l32[:1], direct, atol=1e-5)  # samples land in their rows
    assert float((l32 - l16).abs().max()) < 0.05 * float(l32.std()) + 0.01
    y = enc.label[rows].numpy()
    assert abs(roc_auc_score(y, l16.numpy()) - roc_auc_score(y, l32.numpy())) < 0.01


def test_bf16_without_onednns_fused_op_gives_the_same_scores(
    trained: tuple[Artefacts, Encoded], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CPUs without native bf16 take eager bf16 products (the fused op is refused there)."""
    from gnn.foundation import fastscore

    art, _ = trained
    pairs, cands = _requests(art, 4)
    fused = FastScorer(art, precision="bf16").logits_many(pairs, cands)
    monkeypatch.setattr(fastscore, "_FUSED", None)
    eager = FastScorer(art, precision="bf16").logits_many(pairs, cands)
    for a, b in zip(fused, eager, strict=True):
        assert torch.allclose(a, b, atol=2e-2)


def test_bad_requests_and_precisions_are_refused(trained: tuple[Artefacts, Encoded], tmp_path: Path) -> None:
    art, _ = trained
    with pytest.raises(InputError, match="--precision must be one of fp32, bf16, auto"):
        FastScorer(art, precision="fp8")
    fast = FastScorer(art, domains=[])
    pairs, cands = _requests(art, 2)
    with pytest.raises(InputError, match="2 requests but 1 candidate lists"):
        fast.logits_many(pairs, cands[:1])
    with pytest.raises(InputError, match="unknown user or query"):
        fast.logits_many([("nobody", art.enc.domains[0])], cands[:1])


def test_auto_precision_follows_the_cpu_flags(tmp_path: Path) -> None:
    plain, amx = tmp_path / "plain", tmp_path / "amx"
    plain.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f amx_bf16 amx_tile\n")
    assert not cpu_has_fast_bf16(plain) and cpu_has_fast_bf16(amx)
    assert not cpu_has_fast_bf16(tmp_path / "missing")
    assert resolve("auto") == ("bf16" if cpu_has_fast_bf16() else "fp32") and resolve("fp32") == "fp32"
