"""From :class:`FoundationData` to tensors: ids, frozen text features, sparse-token bags.

Domain-invariant text features (S&R Multi-Domain Foundation, arXiv 2309.08939, §3.1): every item
and query text goes once through a frozen language model (the shipped all-MiniLM-L6-v2 by default)
and is cached on disk per text (:func:`loaders.features.cached_embeddings`), so a second run and
every epoch read vectors, never the model. A user has no text of its own: it gets the mean text
vector of the items it clicked in the *training* split (no test leakage).

Sparse tokens (category path, brand, domain, KG neighbours, user attributes) become a padded index
matrix over one vocabulary of every request's and item's tokens (index 0 = padding): tokens are
attributes known before any exposure, not labels, so test rows may share them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gnn.foundation.data import FoundationData
from graph.errors import InputError
from loaders.features import TextEncoder, cached_embeddings, make_encoder

MAX_TOKENS = 32  # sparse tokens kept per row (a row with more keeps its first 32)


class LightPAIREncoder:
    """The second text model: LightPAIR's distilled encoder (``mokg lightpair distill``), its
    e(x) = mean-pooled, L2-normalised output. ``model_id`` names the checkpoint by the hash of its
    weights, so a retrained checkpoint never reads another's cached vectors."""

    def __init__(self, path: Path, batch_size: int = 128) -> None:
        self.path, self.batch_size = Path(path), batch_size
        self._model: Any = None
        self._id: str | None = None

    def _load(self) -> Any:
        if self._model is None:
            from mining.lightpair.checkpoint import load

            self._model = load(self.path)[0]
        return self._model

    @property
    def model_id(self) -> str:
        if self._id is None:
            from mining.lightpair.checkpoint import read_meta

            read_meta(self.path)  # a clear error when the folder is no checkpoint
            digest = hashlib.sha256()
            with open(self.path / "model.pt", "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
            self._id = f"lightpair@{digest.hexdigest()[:16]}"
        return self._id

    @property
    def dim(self) -> int:
        return int(self._load().encoder.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        with torch.no_grad():
            parts = [
                model.embed(list(texts[i : i + self.batch_size]))
                for i in range(0, len(texts), self.batch_size)
            ]
        return torch.cat(parts).float().numpy() if parts else np.zeros((0, self.dim), np.float32)


def make_text_encoder(spec: str) -> TextEncoder:
    """``minilm`` (the shipped all-MiniLM-L6-v2) or ``lightpair:PATH`` (a LightPAIR checkpoint)."""
    if spec.startswith("lightpair:"):
        return LightPAIREncoder(Path(spec.removeprefix("lightpair:")))
    try:
        return make_encoder(spec)
    except InputError:
        raise InputError(f"unknown text encoder {spec!r}; use minilm or lightpair:PATH") from None


@dataclass(frozen=True)
class Encoded:
    """Everything a model reads, as tensors; rows align with ``data.requests`` / ``data.items``.

    Shapes: ``req_text [Nr, T]``, ``item_text [Ni, T]`` (float32, frozen); ``req_tokens [Nr, L]``,
    ``item_tokens [Ni, L']`` (long, 0 = padding); per sample ``req, item, scenario, domain`` [N]
    (long) and ``label`` [N] (float32); ``split`` [N] (str).
    """

    name: str
    scenarios: list[str]
    domains: list[str]
    request_ids: np.ndarray
    item_ids: np.ndarray
    vocab: list[str]
    req_text: torch.Tensor
    item_text: torch.Tensor
    req_tokens: torch.Tensor
    item_tokens: torch.Tensor
    req: torch.Tensor
    item: torch.Tensor
    scenario: torch.Tensor
    domain: torch.Tensor
    label: torch.Tensor
    split: np.ndarray
    text_model: str

    @property
    def text_dim(self) -> int:
        return int(self.item_text.shape[1])

    def rows(self, split: str, domains: list[str] | None = None) -> np.ndarray:
        """Sample indices of ``split`` (restricted to ``domains`` when given)."""
        mask = self.split == split
        if domains is not None:
            allowed = torch.tensor([self.domains.index(d) for d in domains])
            mask &= np.isin(self.domain.numpy(), allowed.numpy())
        return np.flatnonzero(mask)

    def scenario_names(self, rows: np.ndarray) -> np.ndarray:
        names: np.ndarray = np.array(self.scenarios, dtype=object)[self.scenario[rows].numpy()]
        return names

    def request_names(self, rows: np.ndarray) -> np.ndarray:
        names: np.ndarray = self.request_ids[self.req[rows].numpy()]
        return names


def encode(
    data: FoundationData,
    *,
    text_encoder: str | TextEncoder = "minilm",
    cache_dir: Path | None = None,
    with_text: bool = True,
) -> Encoded:
    """Index ``data`` and attach its text features (zeros when ``with_text`` is False)."""
    s = data.samples
    request_ids = data.requests["request"].to_numpy()
    item_ids = data.items["item"].to_numpy()
    r_index = {r: i for i, r in enumerate(request_ids)}
    i_index = {r: i for i, r in enumerate(item_ids)}
    scen = (s["domain"] + "/" + s["task"]).to_numpy()
    scenarios, domains = data.scenarios, data.domains
    req = np.array([r_index[r] for r in s["request"]], dtype=np.int64)
    item = np.array([i_index[i] for i in s["item"]], dtype=np.int64)
    split = s["split"].to_numpy()

    encoder = make_text_encoder(text_encoder) if isinstance(text_encoder, str) else text_encoder
    if with_text:
        item_text = cached_embeddings(data.items["text"].tolist(), encoder, cache_dir)
        req_text = cached_embeddings(data.requests["text"].tolist(), encoder, cache_dir)
    else:
        item_text = np.zeros((len(item_ids), encoder.dim), np.float32)
        req_text = np.zeros((len(request_ids), encoder.dim), np.float32)
    _user_text(req_text, data, req, item, split, item_text, s["label"].to_numpy())

    vocab = [
        "<pad>",
        *sorted({t for col in (data.requests, data.items) for row in col["sparse"] for t in row}),
    ]
    v_index = {t: i for i, t in enumerate(vocab)}
    return Encoded(
        name=data.name,
        scenarios=scenarios,
        domains=domains,
        request_ids=request_ids,
        item_ids=item_ids,
        vocab=vocab,
        req_text=torch.from_numpy(req_text),
        item_text=torch.from_numpy(item_text),
        req_tokens=_padded(data.requests["sparse"], v_index),
        item_tokens=_padded(data.items["sparse"], v_index),
        req=torch.from_numpy(req),
        item=torch.from_numpy(item),
        scenario=torch.from_numpy(np.searchsorted(np.array(scenarios), scen).astype(np.int64)),
        domain=torch.from_numpy(np.searchsorted(np.array(domains), s["domain"].to_numpy()).astype(np.int64)),
        label=torch.from_numpy(s["label"].to_numpy().astype(np.float32)),
        split=split,
        text_model=encoder.model_id if with_text else "none",
    )


def _user_text(
    req_text: np.ndarray,
    data: FoundationData,
    req: np.ndarray,
    item: np.ndarray,
    split: np.ndarray,
    item_text: np.ndarray,
    label: np.ndarray,
) -> None:
    """Users (requests of kind ``user``) get the mean text of their training clicks, in place."""
    users = data.requests["kind"].to_numpy() == "user"
    m = (split == "train") & (label == 1) & users[req]
    if not m.any():
        return
    sums = np.zeros_like(req_text)
    np.add.at(sums, req[m], item_text[item[m]])
    counts = np.bincount(req[m], minlength=len(req_text)).astype(np.float32)
    has = (counts > 0) & users
    req_text[has] = sums[has] / counts[has, None]


def _padded(rows: object, v_index: dict[str, int]) -> torch.Tensor:
    seqs = [[v_index[t] for t in row][:MAX_TOKENS] for row in rows]  # type: ignore[attr-defined]
    width = max(1, max((len(q) for q in seqs), default=1))
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for i, q in enumerate(seqs):
        out[i, : len(q)] = q
    return torch.from_numpy(out)
