"""TiM's LSH (F(x) = argmax([xR; −xR]), arXiv 2311.08719) and the exact baseline.

Buckets, search within buckets, multi-probe, remove, re-add, recall against exact search."""

from __future__ import annotations

import numpy as np
import pytest

from consumers.memory.lsh import ExactIndex, LSHIndex, VectorIndex, buckets_for
from graph.errors import InputError

D = 16


def unit(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return out


def clustered(n: int, centres: int = 40, noise: float = 0.6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = unit(rng.standard_normal((centres, D)))
    return unit(c[rng.integers(centres, size=n)] + noise / np.sqrt(D) * rng.standard_normal((n, D)))


def ids(n: int, prefix: str = "t") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_bucket_is_argmax_over_x_r_and_minus_x_r() -> None:
    index = LSHIndex(2, buckets=4)
    index.R = np.array([[[1.0, 0.0], [0.0, 1.0]]], np.float32)  # [T=1, d=2, b/2=2]: xR = x
    x = np.array([[1.0, 0.2], [0.1, 0.9], [-1.0, 0.3], [0.2, -0.8]], np.float32)
    # [xR; -xR] = [x0, x1, -x0, -x1]: the largest entry's index
    assert index.bucket(x).tolist() == [0, 1, 2, 3]
    assert index.bucket(x).dtype == np.int64


def test_opposite_vectors_land_in_opposite_buckets() -> None:
    index = LSHIndex(D, buckets=32, seed=3)
    x = clustered(200)
    b, nb = index.bucket(x), index.bucket(-x)
    assert ((b + 16) % 32 == nb).all()
    spread = set(index.bucket(clustered(3000, centres=3000, noise=0)).tolist())
    assert spread <= set(range(32)) and len(spread) > 24  # b buckets, nearly all used


def test_tables_hash_independently() -> None:
    index = LSHIndex(D, buckets=8, tables=3)
    x = clustered(100)
    b = index.bucket(x)
    assert b.shape == (3, 100)
    assert not (b[0] == b[1]).all()
    assert (b == index.scores(x).argmax(axis=2)).all()  # the chunked (H) equals the plain argmax


def test_single_probe_returns_only_the_query_bucket() -> None:
    x = clustered(2000)
    index = LSHIndex(D, buckets=16)
    index.add(ids(2000), x)
    q = clustered(50, seed=1)
    qb, xb = index.bucket(q), index.bucket(x)
    for bucket, hits in zip(qb, index.search(q, 10), strict=True):
        assert hits
        assert all(xb[int(i[1:])] == bucket for i, _ in hits)
        scores = [s for _, s in hits]
        assert scores == sorted(scores, reverse=True)


def test_multi_probe_finds_at_least_the_single_probe_hits() -> None:
    x = clustered(3000)
    index = LSHIndex(D, buckets=32, probes=1)
    index.add(ids(3000), x)
    q = clustered(40, seed=2)
    one, four = index.search(q, 10), index.search(q, 10, probes=4)
    for a, b in zip(one, four, strict=True):
        assert min(s for _, s in b) >= min(s for _, s in a) - 1e-6  # a wider scan only improves
        assert {i for i, _ in a} <= {i for i, _ in b} | {i for i, s in a if s < min(s for _, s in b)}
    assert (index.scanned(q, 4) >= index.scanned(q, 1)).all()
    assert index.probe(q, 4)[0, :, 0].tolist() == index.bucket(q).tolist()


@pytest.mark.parametrize("make", [lambda: LSHIndex(D, buckets=8), lambda: ExactIndex(D)])
def test_remove_really_removes_and_readd_replaces(make: object) -> None:
    index = make()  # type: ignore[operator]
    x = clustered(500)
    index.add(ids(500), x)
    assert len(index) == 500
    assert index.remove(["t7", "t8", "nobody", "t7"]) == 2
    assert len(index) == 498
    found = (
        index.search(x[[7, 8]], 500)
        if not isinstance(index, LSHIndex)
        else index.search(x[[7, 8]], 500, probes=8)
    )
    assert all(i not in ("t7", "t8") for hits in found for i, _ in hits)
    assert all(len(hits) == 498 for hits in found)
    index.add(["t9"], -x[[9]])  # replaced: the old vector is gone
    assert len(index) == 498
    (best,) = index.search(-x[[9]], 1)
    assert best[0][0] == "t9" and best[0][1] == pytest.approx(1.0, abs=1e-5)
    (hits,) = (
        index.search(x[[9]], 498) if not isinstance(index, LSHIndex) else index.search(x[[9]], 498, probes=8)
    )
    assert dict(hits)["t9"] == pytest.approx(-1.0, abs=1e-5)


def test_lsh_storage_drops_removed_vectors() -> None:
    index = LSHIndex(D, buckets=4)
    x = clustered(100)
    index.add(ids(100), x)
    index.remove(ids(100)[:60])
    stored = np.concatenate([b.vecs[: b.n] for b in index.blocks[0]])
    assert len(stored) == 40
    assert not any(np.allclose(v, x[i]) for v in stored for i in range(60))
    kept = {index._ids[k] for b in index.blocks[0] for k in b.keys[: b.n]}
    assert kept == set(ids(100)[60:])
    assert not set(index._ids) & set(ids(100)[:60])  # not even the ids are kept
    for i in range(100):  # small adds one by one (a chat's inserts) keep every row findable
        index.add([f"n{i}"], x[[i]])
    assert len(index) == 140
    assert all(index.search(x[[i]], 1, probes=4)[0][0][1] == pytest.approx(1.0, abs=1e-5) for i in range(100))


def test_exact_equals_brute_force() -> None:
    x, q = clustered(1500), clustered(30, seed=5)
    index = ExactIndex(D)
    index.add(ids(1500), x)
    scores = q @ x.T
    for row, hits in zip(scores, index.search(q, 10), strict=True):
        assert [int(i[1:]) for i, _ in hits] == np.argsort(-row, kind="stable")[:10].tolist()
        assert np.allclose([s for _, s in hits], np.sort(row)[::-1][:10], atol=1e-5)


def test_lsh_recall_against_exact_is_high_on_clustered_data() -> None:
    x, q = clustered(20_000, centres=200, noise=0.4), clustered(200, centres=200, noise=0.4, seed=9)
    exact, lsh = ExactIndex(D), LSHIndex(D, buckets=16, probes=3, tables=2)
    for index in (exact, lsh):
        index.add(ids(len(x)), x)
    truth = exact.search(q, 10)
    recall = np.mean(
        [
            len({i for i, _ in a} & {i for i, _ in e}) / 10
            for a, e in zip(lsh.search(q, 10), truth, strict=True)
        ]
    )
    assert recall >= 0.9
    assert lsh.scanned(q).mean() < 0.7 * len(x)  # while scanning a fraction of the memory


def test_bad_input_is_refused() -> None:
    index = LSHIndex(D, buckets=4)
    with pytest.raises(InputError, match="shape"):
        index.add(["a"], np.ones((1, D + 1), np.float32))
    with pytest.raises(InputError, match="NaN"):
        index.add(["a"], np.full((1, D), np.nan, np.float32))
    with pytest.raises(InputError, match="unit length"):
        index.add(["a"], np.ones((1, D), np.float32))
    with pytest.raises(InputError, match="at least 1"):
        ExactIndex(D).search(clustered(1), 0)
    with pytest.raises(InputError, match="even bucket count"):
        LSHIndex(D, buckets=5)
    assert buckets_for(1_000_000) == 1024 and buckets_for(10) == 16


def test_both_indexes_share_one_api() -> None:
    x = clustered(300)
    indexes: list[VectorIndex] = [LSHIndex(D, buckets=4, probes=4), ExactIndex(D)]  # all probed: exact
    answers = []
    for index in indexes:
        index.add(ids(300), x)
        assert len(index) == 300 and index.nbytes >= 300 * D * 4
        answers.append(index.search(x[:5], 3))
    for a, e in zip(*answers, strict=True):
        assert [i for i, _ in a] == [i for i, _ in e]
