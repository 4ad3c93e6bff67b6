"""Lightweight serving of PEACE (arXiv 2312.01916, "lightweight deployment"): precomputed vectors
plus a small online part, answered from saved artefacts without the training graph or the store.

Offline (:func:`export_artefacts`), per domain: every user's raw interests ``z`` (E3, ``[U, K, d]``,
one memory-mapped ``.npy`` per distinct network),
the domain's item vectors (E2, L2-normalised), the user's already-seen items (CSR), and the online
part's weights: the prototype bank ``P`` and the attention's ``W_q, W_k, W_o`` (E5–E6). Online
(:func:`top_k`), in numpy: E5–E6 on the requested users' interests, then E7 (max over interests
of the cosine) against the domain's items, seen items removed, top-k by ``argpartition``. Domains
with more than ``IVFConfig.min_items`` items also get an inverted-file index (:mod:`gnn.rec.ivf`,
k-means lists over the item vectors); ``index="ivf"`` (the default where one exists) scores only
the ``nprobe`` best lists per interest, ``index="exact"`` every item.

Layout of an artefact directory: ``manifest.json`` (model, config and its hash, graph version,
split, KG source, code version, domains), ``domain-<name>.npz`` per domain and the
``interests-<name>.npy`` files the domains point to. The directory is written aside and swapped
in whole (:func:`graph.files.write_folder`); a folder holding anything else is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from gnn.rec.ivf import IVFConfig, build_ivf, ivf_top_k, with_list_items
from graph import files
from graph.errors import InputError

if TYPE_CHECKING:
    from gnn.rec.data import RecData
    from gnn.rec.peace import Peace

MANIFEST = "manifest.json"


def export_artefacts(
    model: Peace,
    data: RecData,
    out: Path,
    extra: dict[str, Any] | None = None,
    ivf: IVFConfig | None = None,
) -> Path:
    """Write the manifest, one ``.npz`` per domain that ``model`` can score (with an IVF index when
    it has more than ``ivf.min_items`` items), and one interests ``.npy`` per distinct network (the
    source domains share the pre-trained one), written in chunks of users so the ``[U, K, d]``
    array is never held in memory."""
    files.write_folder(out, lambda tmp: _write_artefacts(model, data, tmp, extra, ivf or IVFConfig()), claim)
    return out


def _ours(rel: str) -> bool:
    if rel in (MANIFEST, "users.npz"):
        return True
    return (rel.startswith("domain-") and rel.endswith(".npz")) or (
        rel.startswith("interests-") and rel.endswith(".npy")
    )


claim = files.artefact_claim(MANIFEST, _ours, "PEACE artefact")
"""None if a folder holds PEACE artefacts and nothing else (it may be replaced), else why not."""


def _write_artefacts(
    model: Peace, data: RecData, out: Path, extra: dict[str, Any] | None, ivf: IVFConfig
) -> None:
    import importlib.metadata

    import torch

    domains: dict[str, dict[str, Any]] = {}
    written: dict[int, str] = {}
    for domain in data.domains:
        if domain not in model.nets or len(data.domain_items(domain)) == 0:
            continue
        net = model.nets[domain]
        if id(net) not in written:
            written[id(net)] = _write_interests(model, data, domain, out / f"interests-{domain}.npy")
        _, v = model.item_vectors(domain)
        arrays: dict[str, np.ndarray] = {
            "items": torch.nn.functional.normalize(v, dim=-1).numpy().astype(np.float32),
            "item_ids": np.array([data.item_ids[i] for i in data.domain_items(domain)]),
            **_seen(data, domain),
        }
        if net.attention is not None and net.prototypes is not None:
            arrays |= {
                "prototypes": net.prototypes.detach().numpy(),
                "wq": net.attention.q.weight.detach().numpy(),
                "wk": net.attention.k.weight.detach().numpy(),
                "wo": net.attention.o.weight.detach().numpy(),
            }
        if len(arrays["item_ids"]) > ivf.min_items:
            arrays |= build_ivf(arrays["items"], ivf)
        np.savez(out / f"domain-{domain}.npz", **arrays)  # type: ignore[arg-type]
        domains[domain] = {
            "file": f"domain-{domain}.npz",
            "interests": written[id(net)],
            "items": len(arrays["item_ids"]),
            "index": "ivf" if "ivf_order" in arrays else "exact",
        }
    np.savez(out / "users.npz", user_ids=np.array(data.user_ids))
    manifest = {
        "model": model.name,
        "config": model.config.as_dict(),
        "config_hash": model.config.config_hash(),
        "graph_version": data.graph_version,
        "split": data.split_info,
        "kg_source": data.kg_source,
        "code_version": importlib.metadata.version("mokg"),
        "domains": domains,
        "ivf": ivf.__dict__,
        **(extra or {}),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def _write_interests(model: Peace, data: RecData, domain: str, path: Path, chunk: int = 65536) -> str:
    """Every user's raw interests under ``domain``'s network into ``path`` (``.npy``, mmap-able)."""
    import torch

    cfg = model.config
    shape = (data.n_users, cfg.n_interests, cfg.dim)
    arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=shape)
    for lo in range(0, data.n_users, chunk):
        users = torch.arange(lo, min(lo + chunk, data.n_users))
        arr[lo : lo + len(users)] = model.user_interests(users, domain).numpy()
    arr.flush()
    del arr
    return path.name


def _seen(data: RecData, domain: str) -> dict[str, np.ndarray]:
    """CSR (``seen_ptr`` over users, ``seen_cols`` local item columns) of each user's fit items."""
    items = data.domain_items(domain)
    col = np.full(data.n_items, -1, dtype=np.int64)
    col[items] = np.arange(len(items))
    users, glob = data.fit_in([domain])
    order = np.argsort(users, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(users, minlength=data.n_users))])
    return {"seen_ptr": ptr.astype(np.int64), "seen_cols": col[glob[order]]}


@dataclass
class Artefacts:
    """Loaded artefacts: the manifest, the user index and each domain's arrays."""

    manifest: dict[str, Any]
    user_index: dict[str, int]
    domains: dict[str, dict[str, np.ndarray]]

    def domain(self, name: str) -> dict[str, np.ndarray]:
        if name not in self.domains:
            raise InputError(f"no artefacts for domain {name!r}; have {', '.join(sorted(self.domains))}")
        return self.domains[name]

    def rows(self, user_ids: list[str]) -> np.ndarray:
        missing = [u for u in user_ids if u not in self.user_index]
        if missing:
            raise InputError(f"unknown users {missing[:5]}: not in the graph these artefacts were trained on")
        return np.array([self.user_index[u] for u in user_ids], dtype=np.int64)


def load_artefacts(directory: Path) -> Artefacts:
    """Read an artefact directory written by :func:`export_artefacts` (numpy only)."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise InputError(f"{directory} holds no PEACE artefacts ({MANIFEST} missing); run `mokg train peace`")
    manifest = json.loads(path.read_text())
    with np.load(Path(directory) / "users.npz") as f:
        users = f["user_ids"].tolist()
    domains = {}
    for name, meta in manifest["domains"].items():
        with np.load(Path(directory) / meta["file"]) as f:
            domains[name] = {k: f[k] for k in f.files}
        if "ivf_order" in domains[name]:
            domains[name] = with_list_items(domains[name], domains[name]["items"])
        if "interests" in meta:  # memory-mapped: a request reads only its users' rows
            domains[name]["interests"] = np.load(Path(directory) / meta["interests"], mmap_mode="r")
    return Artefacts(manifest, {u: i for i, u in enumerate(users)}, domains)


def online_interests(arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """E5–E6 in numpy and L2 normalisation: ``[len(rows), K, d]`` interests of the users at ``rows``."""
    z = arrays["interests"][rows]  # [B, K, d]
    if "prototypes" in arrays:
        p = arrays["prototypes"]
        logits = (z @ arrays["wq"].T) @ (p @ arrays["wk"].T).T / np.sqrt(z.shape[-1])
        logits -= logits.max(axis=-1, keepdims=True)
        attn = np.exp(logits)
        attn /= attn.sum(axis=-1, keepdims=True)
        z = z + (attn @ p) @ arrays["wo"].T
    out: np.ndarray = z / np.maximum(np.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
    return out


def online_scores(arrays: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """E5–E7 in numpy: ``[len(rows), n_items]`` scores of the users at ``rows``."""
    z = online_interests(arrays, rows)
    items_t = arrays["items"].T
    out: np.ndarray = z[:, 0] @ items_t  # E7's max over interests, one BLAS product per interest
    for k in range(1, z.shape[1]):
        np.maximum(out, z[:, k] @ items_t, out=out)
    return out


INDEXES = ("auto", "exact", "ivf")


def top_k(
    arrays: dict[str, np.ndarray],
    rows: np.ndarray,
    k: int,
    exclude_seen: bool = True,
    index: str = "auto",
    nprobe: int = IVFConfig.nprobe,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` local item columns and scores per user (best first); seen items removed.

    ``index``: ``exact`` scores every item; ``ivf`` probes ``nprobe`` lists per interest (building
    the index now if the artefacts have none); ``auto`` = ``ivf`` where the artefacts have an index.
    """
    if index not in INDEXES:
        raise InputError(f"unknown index {index!r}; use one of {', '.join(INDEXES)}")
    ptr, cols = arrays["seen_ptr"], arrays["seen_cols"]
    if index == "ivf" or (index == "auto" and "ivf_order" in arrays):
        if "ivf_items" not in arrays:
            arrays |= with_list_items(build_ivf(arrays["items"]), arrays["items"])
        seen = [cols[ptr[r] : ptr[r + 1]] for r in rows] if exclude_seen else None
        return ivf_top_k(arrays, arrays["items"], online_interests(arrays, rows), k, nprobe, seen)
    s = online_scores(arrays, rows)
    if exclude_seen:
        for b, r in enumerate(rows):
            s[b, cols[ptr[r] : ptr[r + 1]]] = -np.inf
    k = min(k, s.shape[1])
    part = np.argpartition(-s, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(s, part, axis=1), axis=1, kind="stable")
    idx = np.take_along_axis(part, order, axis=1)
    return idx, np.take_along_axis(s, idx, axis=1)


def recommend(
    art: Artefacts,
    user_id: str,
    domain: str,
    k: int = 20,
    index: str = "auto",
    nprobe: int = IVFConfig.nprobe,
) -> list[tuple[str, float]]:
    """The ``k`` best unseen items of ``domain`` for ``user_id``: ``(item id, score)``, best first."""
    arrays = art.domain(domain)
    idx, scores = top_k(arrays, art.rows([user_id]), k, index=index, nprobe=nprobe)
    return [(str(arrays["item_ids"][i]), float(s)) for i, s in zip(idx[0], scores[0], strict=True) if i >= 0]
