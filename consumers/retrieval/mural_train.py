"""MURAL's two training stages on a :class:`RetrievalCorpus` (the model: :mod:`.mural`).

* :func:`pretrain` — the items (and, with ``with_queries``, the queries, MLM only: they have no
  aspect labels) under ``L_mlm + λ L_asp`` (Eqs. M, A).
* :func:`finetune` — every train-split query with each of its grade-2 items as the positive and one
  hard negative: the best-ranked BM25 item (over the items' indexed text) that is not relevant to the
  query at any grade, else a random non-relevant item of the positive's top category, else any
  random non-relevant item. Loss: in-batch contrastive (Eq. C; candidates that are grade-2 items of
  the same query are left out of its softmax) plus, with ``finetune_aspect``, ``λ L_asp`` on the
  batch's positive items.

The model reads the item's ``item_field`` (default ``title``: the aspect values are *not* written
into MURAL's input; ``text`` adds the category path and brand as the baselines index them). Seeded
(torch, the shuffles, the masking); AdamW; gradients clipped at 1. Both return loss histories, one
value per step.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from consumers.retrieval.corpus import RetrievalCorpus
from consumers.retrieval.mural import Mural, contrastive_loss
from graph.progress import StageProgress


@dataclass(frozen=True)
class TrainConfig:
    """Epochs, batch size and learning rate of each stage; ``max_steps`` caps a stage (None: no cap)."""

    pretrain_epochs: int = 1
    finetune_epochs: int = 1
    batch_size: int = 32
    lr: float = 5e-5
    seed: int = 0
    item_field: str = "title"
    with_queries: bool = False
    finetune_aspect: bool = True
    bm25_depth: int = 50
    max_steps: int | None = None


def _noop(name: str, total: int) -> Callable[[], None]:
    return lambda: None


def _batches(n: int, size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(n))
    rng.shuffle(order)
    return [order[i : i + size] for i in range(0, n, size)]


def _steps(batches_per_epoch: int, epochs: int, cap: int | None) -> int:
    total = batches_per_epoch * epochs
    return total if cap is None else min(total, cap)


def pretrain(
    model: Mural,
    corpus: RetrievalCorpus,
    cfg: TrainConfig,
    progress: StageProgress | None = None,
    stage: str = "mural pretrain",
) -> dict[str, list[float]]:
    """Pre-train ``model`` in place (module doc) → {"loss", "mlm", "aspect"} per step; ``stage``: the
    progress bar's name."""
    torch.manual_seed(cfg.seed)
    rng, gen = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    texts = [str(t) for t in corpus.items[cfg.item_field]]
    values = model.vocab.value_ids(corpus.items)
    if cfg.with_queries:
        texts += [str(t) for t in corpus.select("train")["text"]]
        values = np.concatenate([values, np.full((len(texts) - len(values), values.shape[1]), -1)])
    ids = torch.from_numpy(values)
    per_epoch = -(-len(texts) // cfg.batch_size)
    total = _steps(per_epoch, cfg.pretrain_epochs, cfg.max_steps)
    tick = (progress or _noop)(stage, total)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    history: dict[str, list[float]] = {"loss": [], "mlm": [], "aspect": []}
    model.train()
    for _ in range(cfg.pretrain_epochs):
        for rows in _batches(len(texts), cfg.batch_size, rng):
            if len(history["loss"]) >= total:
                return history
            loss, mlm, asp = model.pretrain_loss([texts[r] for r in rows], ids[rows], gen)
            _step(model, opt, loss)
            for key, v in zip(history, (loss, mlm, asp), strict=True):
                history[key].append(float(v.detach()))
            tick()
    return history


def training_triples(corpus: RetrievalCorpus, cfg: TrainConfig) -> list[tuple[str, int, int]]:
    """(query text, positive item row, hard negative item row) for each train query and grade-2 item."""
    from consumers.retrieval.bm25 import BM25

    rng = random.Random(cfg.seed)
    items = corpus.items.reset_index(drop=True)
    row_of = {str(i): n for n, i in enumerate(items["item"])}
    train = corpus.select("train")
    rel = corpus.qrels_dict(train)
    found = BM25(list(items["item"]), list(items["text"])).search(list(train["text"]), cfg.bm25_depth)
    top = pd.Series([str(p[0]) if len(p) else "" for p in items["category_path"]])
    by_top = {k: list(v) for k, v in top.groupby(top).groups.items()}
    out = []
    for n, (q, text) in enumerate(zip(train["query"].astype(str), train["text"].astype(str), strict=True)):
        relevant = rel.get(q, {})
        positives = [row_of[i] for i, g in sorted(relevant.items()) if g >= 2 and i in row_of]
        for pos in positives:
            neg = next((row_of[i] for i in found.get(n, {}) if i not in relevant and i in row_of), None)
            if neg is None:
                pool = [r for r in by_top.get(top[pos], []) if str(items["item"][r]) not in relevant]
                pool = pool or [r for r in range(len(items)) if str(items["item"][r]) not in relevant]
                neg = rng.choice(pool) if pool else pos
            out.append((text, pos, int(neg)))
    return out


def finetune(
    model: Mural,
    corpus: RetrievalCorpus,
    cfg: TrainConfig,
    progress: StageProgress | None = None,
    stage: str = "mural finetune",
) -> dict[str, list[float]]:
    """Fine-tune ``model`` in place (module doc) → {"loss", "contrastive", "aspect"} per step;
    ``stage``: the progress bar's name."""
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    triples = training_triples(corpus, cfg)
    texts = [str(t) for t in corpus.items[cfg.item_field]]
    ids = torch.from_numpy(model.vocab.value_ids(corpus.items))
    queries_of: dict[int, set[str]] = {}
    for text, pos, _ in triples:
        queries_of.setdefault(pos, set()).add(text)
    per_epoch = -(-len(triples) // cfg.batch_size)
    total = _steps(per_epoch, cfg.finetune_epochs, cfg.max_steps)
    tick = (progress or _noop)(stage, total)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
    history: dict[str, list[float]] = {"loss": [], "contrastive": [], "aspect": []}
    model.train()
    for _ in range(cfg.finetune_epochs):
        for rows in _batches(len(triples), cfg.batch_size, rng):
            if len(history["loss"]) >= total:
                return history
            batch = [triples[r] for r in rows]
            q = model.encode([t for t, _, _ in batch])
            pos_out = model(model.tokenize([texts[p] for _, p, _ in batch]))
            neg = model.encode([texts[m] for _, _, m in batch])
            cands = [p for _, p, _ in batch] + [m for _, _, m in batch]
            exclude = torch.tensor([[t in queries_of.get(c, ()) for c in cands] for t, _, _ in batch])
            rel = contrastive_loss(q, pos_out.fused, neg, model.config.temperature, exclude.to(q.device))
            asp = rel.new_zeros(())
            if cfg.finetune_aspect:
                asp = model.aspect_loss(pos_out.aspects, ids[[p for _, p, _ in batch]].to(q.device))
            loss = rel + model.config.aspect_weight * asp
            _step(model, opt, loss)
            for key, v in zip(history, (loss, rel, asp), strict=True):
                history[key].append(float(v.detach()))
            tick()
    return history


def _step(model: Mural, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad()
    loss.backward()  # type: ignore[no-untyped-call]
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
