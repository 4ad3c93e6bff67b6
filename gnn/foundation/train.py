"""Training and scoring for every ranker of :mod:`gnn.foundation.model`: mini-batch Adam on
BCE (+ the model's auxiliary loss), early stopping on the validation log loss (pooled over every
scenario: a per-scenario mean AUC swings with the scenarios that have a handful of samples).
Under torchrun each rank trains on its slice of every batch (:func:`shared_step`, :mod:`gnn.distributed`)."""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from gnn import distributed
from gnn.foundation.features import Encoded
from gnn.foundation.metrics import auc
from graph.errors import InputError
from graph.progress import StageProgress


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch_size: int = 1024
    lr: float = 2e-3
    weight_decay: float = 1e-6
    patience: int = 2  # epochs without a better validation AUC before stopping
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.patience < 1:
            raise InputError("epochs, batch size and patience must be >= 1 and lr > 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FitReport:
    epochs_run: int
    best_epoch: int
    best_valid_logloss: float
    best_valid_auc: float  # mean over scenarios, at the best epoch
    seconds: float
    samples_per_s: float


def _batch(enc: Encoded, rows: np.ndarray) -> tuple[torch.Tensor, ...]:
    idx = torch.from_numpy(rows)
    return enc.req[idx], enc.item[idx], enc.domain[idx], enc.scenario[idx]


def train_step(model: nn.Module, enc: Encoded, rows: np.ndarray, opt: torch.optim.Optimizer) -> float:
    """One Adam step on samples ``rows``: BCE on the logits plus the model's auxiliary loss."""
    logits, aux = model(*_batch(enc, rows))
    loss = nn.functional.binary_cross_entropy_with_logits(logits, enc.label[torch.from_numpy(rows)]) + aux
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach())


def shared_step(model: nn.Module, enc: Encoded, rows: np.ndarray, opt: torch.optim.Optimizer) -> float:
    """:func:`train_step` for this rank's slice of the batch ``rows`` (``model`` in DDP): the BCE
    as this rank's share of the batch mean (:func:`gnn.distributed.part`), so DDP's average is
    the 1-process gradient. The auxiliary loss is this rank's own (an MMD over its slice: not the
    batch's, so the replicas equal the 1-process run only with ``align_weight = 0``), and each
    rank draws its own dropout masks (equal only with ``dropout = 0``). Returns the rank's share
    of the loss (the ranks' sum is the batch's loss)."""
    share, factor = distributed.part(len(rows))
    mine = rows[share]
    logits, aux = model(*_batch(enc, mine))
    bce = nn.functional.binary_cross_entropy_with_logits(
        logits, enc.label[torch.from_numpy(mine)], reduction="sum"
    )
    loss = bce * factor + aux
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss.detach()) / distributed.world()[1]


@torch.no_grad()
def predict(model: nn.Module, enc: Encoded, rows: np.ndarray, batch_size: int = 8192) -> np.ndarray:
    """Logits of samples ``rows`` ([N] float32)."""
    model.eval()
    out = [model(*_batch(enc, rows[i : i + batch_size]))[0] for i in range(0, len(rows), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0, np.float32)


def mean_auc(model: nn.Module, enc: Encoded, rows: np.ndarray) -> float:
    """Mean AUC over the scenarios of ``rows`` (NaN scenarios, one class only, left out)."""
    names, labels, scores = enc.scenario_names(rows), enc.label[rows].numpy(), predict(model, enc, rows)
    per = [auc(labels[names == s], scores[names == s]) for s in np.unique(names)]
    return float(np.nanmean(per)) if per else float("nan")


def valid_logloss(model: nn.Module, enc: Encoded, rows: np.ndarray) -> float:
    """Mean binary cross-entropy of ``model`` on samples ``rows``."""
    logits = torch.from_numpy(predict(model, enc, rows))
    return float(nn.functional.binary_cross_entropy_with_logits(logits, enc.label[torch.from_numpy(rows)]))


def fit(
    model: nn.Module,
    enc: Encoded,
    train_rows: np.ndarray,
    valid_rows: np.ndarray,
    config: TrainConfig,
    progress: StageProgress | None = None,
    name: str = "train",
) -> FitReport:
    """Train ``model`` in place on ``train_rows``; keep the weights of the best validation epoch."""
    if len(train_rows) == 0:
        raise InputError("no training samples (check the split and the domains asked for)")
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    best, best_auc, best_state, best_epoch, waited = float("inf"), float("nan"), None, 0, 0
    t0, seen = time.perf_counter(), 0
    n_batches = -(-len(train_rows) // config.batch_size)
    ddp = distributed.wrap(model) if distributed.world()[1] > 1 else None  # every rank: the same order
    progress = progress if distributed.is_main() else None
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        tick = progress(f"{name} epoch {epoch}", n_batches) if progress else None  # one stage per epoch
        model.train()
        order = rng.permutation(train_rows)
        for i in range(0, len(order), config.batch_size):
            rows = order[i : i + config.batch_size]
            if ddp is None:
                train_step(model, enc, rows, opt)
            else:
                shared_step(ddp, enc, rows, opt)
            seen += len(rows)
            if tick:
                tick()
        loss_now = valid_logloss(model, enc, valid_rows) if len(valid_rows) else -float(epoch)
        if loss_now < best:
            best, best_epoch, waited = loss_now, epoch, 0
            best_auc = mean_auc(model, enc, valid_rows) if len(valid_rows) else float("nan")
            best_state = copy.deepcopy(model.state_dict())
        else:
            waited += 1
            if waited >= config.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - t0
    return FitReport(epoch, best_epoch, best, best_auc, seconds, seen / max(seconds, 1e-9))
