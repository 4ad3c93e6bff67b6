"""The IVF index of PEACE's serving (:mod:`gnn.rec.ivf`) on seeded toy item sets."""

from __future__ import annotations

import numpy as np

from gnn.rec.ivf import IVFConfig, build_ivf, ivf_top_k, with_list_items
from gnn.rec.serve import top_k


def toy(n: int = 2000, d: int = 16, users: int = 64, k: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Clustered unit item vectors, users' raw interests near the clusters, 5 seen items each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, d))
    items = centres[rng.integers(0, 40, n)] + 0.5 * rng.normal(size=(n, d))
    items /= np.linalg.norm(items, axis=1, keepdims=True)
    z = centres[rng.integers(0, 40, (users, k))] + 0.5 * rng.normal(size=(users, k, d))
    return {
        "items": items.astype(np.float32),
        "item_ids": np.array([f"i{i}" for i in range(n)]),
        "interests": z.astype(np.float32),
        "seen_ptr": np.arange(0, 5 * users + 1, 5),
        "seen_cols": rng.integers(0, n, 5 * users),
    }


def test_index_lists_partition_the_items() -> None:
    arrays = toy()
    index = build_ivf(arrays["items"], IVFConfig(lists=20))
    assert len(index["ivf_centroids"]) == 20 and index["ivf_ptr"][-1] == len(arrays["items"])
    assert np.array_equal(np.sort(index["ivf_order"]), np.arange(len(arrays["items"])))


def test_ivf_probing_every_list_equals_exact_scoring() -> None:
    arrays = toy()
    arrays |= with_list_items(build_ivf(arrays["items"], IVFConfig(lists=30)), arrays["items"])
    rows = np.arange(64)
    exact_idx, exact_s = top_k(arrays, rows, 20, index="exact")
    ivf_idx, ivf_s = top_k(arrays, rows, 20, index="ivf", nprobe=30)
    assert np.array_equal(ivf_idx, exact_idx) and np.allclose(ivf_s, exact_s, atol=1e-5)
    seen = arrays["seen_cols"].reshape(64, 5)
    assert not any(np.isin(ivf_idx[b], seen[b]).any() for b in rows)


def test_ivf_recall_on_a_seeded_toy_set() -> None:
    arrays = toy()
    arrays |= with_list_items(build_ivf(arrays["items"], IVFConfig(lists=45)), arrays["items"])
    rows = np.arange(64)
    exact, _ = top_k(arrays, rows, 20, index="exact")
    found, scores = top_k(arrays, rows, 20, index="ivf", nprobe=8)
    recall = np.mean([len(set(f) & set(e)) / 20 for f, e in zip(found, exact, strict=True)])
    assert recall > 0.9
    assert (np.diff(scores, axis=1) <= 0).all()  # best first


def test_ivf_pads_when_fewer_items_than_k() -> None:
    arrays = toy(n=30, users=4)
    index = build_ivf(arrays["items"], IVFConfig(lists=5))
    zn = arrays["interests"] / np.linalg.norm(arrays["interests"], axis=-1, keepdims=True)
    cols, scores = ivf_top_k(with_list_items(index, arrays["items"]), arrays["items"], zn, 40, 5)
    assert cols.shape == (4, 40) and (cols[:, :30] >= 0).all() and np.isfinite(scores[:, :30]).all()
    assert (cols[:, 30:] == -1).all() and np.isneginf(scores[:, 30:]).all()
    assert all(len(set(row[:30])) == 30 for row in cols)  # each item once


def test_long_lists_are_cut_and_still_exact_when_probing_all() -> None:
    arrays = toy()
    arrays["items"][:800] = arrays["items"][0]  # many items with one vector: one huge list
    index = build_ivf(arrays["items"], IVFConfig(lists=20))
    assert np.diff(index["ivf_ptr"]).max() <= 2 * 2000 / 20
    arrays |= with_list_items(index, arrays["items"])
    rows = np.arange(64)
    _, exact_s = top_k(arrays, rows, 20, index="exact")
    _, ivf_s = top_k(arrays, rows, 20, index="ivf", nprobe=len(index["ivf_centroids"]))
    assert np.allclose(ivf_s, exact_s, atol=1e-5)  # ties: same scores, ids may differ among equals


def test_heavy_users_probed_apart_still_get_k_unseen_items_exactly() -> None:
    # users 0-5 have seen their 40 best items: probing them with the light users' depth would leave
    # fewer than k unseen candidates; they are probed as their own group (counts above the 90th pct.)
    arrays = toy()
    arrays |= with_list_items(build_ivf(arrays["items"], IVFConfig(lists=30)), arrays["items"])
    rows = np.arange(64)
    arrays |= {"seen_ptr": np.arange(0, 5 * 64 + 1, 5), "seen_cols": np.zeros(5 * 64, dtype=np.int64)}
    best, _ = top_k(arrays, rows, 40, exclude_seen=False, index="exact")
    seen = [best[b] if b < 6 else arrays["seen_cols"][5 * b : 5 * b + 5] for b in rows]
    arrays["seen_ptr"] = np.concatenate([[0], np.cumsum([len(s) for s in seen])])
    arrays["seen_cols"] = np.concatenate(seen)
    exact_idx, exact_s = top_k(arrays, rows, 20, index="exact")
    ivf_idx, ivf_s = top_k(arrays, rows, 20, index="ivf", nprobe=30)
    assert np.array_equal(ivf_idx, exact_idx) and np.allclose(ivf_s, exact_s, atol=1e-5)
    assert not any(np.isin(ivf_idx[b], seen[b]).any() for b in rows)
    assert (ivf_idx >= 0).all()
