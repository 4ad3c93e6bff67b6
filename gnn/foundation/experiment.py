"""The evaluation of ``mokg eval foundation``: methods × seeds, the cold-start table, the ablations.

- Main table: every method trains on the training split of every scenario (validation split for
  early stopping) and is scored on the test split: AUC and GAUC per scenario, 3 seeds.
- Cold start (the paper's transfer claim): the foundation model pre-trains on every domain but the
  cold-start one, then fine-tunes on 1 %, 10 % or 100 % of the cold domain's training requests with
  the encoding and fusion frozen (``foundation fine-tune``), or with everything trainable
  (``fine-tune all``), against the same model trained from scratch on that share alone; scored on
  the cold domain's test split.
- Ablations: the foundation model with one switch changed (:data:`~gnn.foundation.model.ABLATIONS`).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from torch import nn

from gnn.foundation.data import FoundationData
from gnn.foundation.features import Encoded
from gnn.foundation.metrics import scenario_metrics
from gnn.foundation.model import (
    ABLATIONS,
    BASELINE_NAMES,
    FoundationConfig,
    SRFoundation,
    ablation_config,
    make_ranker,
)
from gnn.foundation.train import TrainConfig, fit, predict
from graph.errors import InputError
from graph.progress import StageProgress

METHODS = ("foundation", *BASELINE_NAMES)
COLD_MODES = ("foundation fine-tune", "fine-tune all", "from scratch")


@dataclass(frozen=True)
class EvalRequest:
    seeds: tuple[int, ...] = (0, 1, 2)
    methods: tuple[str, ...] = METHODS
    ablations: tuple[str, ...] = tuple(ABLATIONS)
    cold_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)
    peer: bool = True  # torch-rechub's MMoE on the same samples (gnn.foundation.peer)
    train: TrainConfig = field(default_factory=TrainConfig)
    model: FoundationConfig = field(default_factory=FoundationConfig)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise InputError("give at least one seed")
        bad = [f for f in self.cold_fractions if not 0 < f <= 1]
        if bad:
            raise InputError(f"cold-start fractions must be in (0, 1], got {bad}")


def score_rows(model: nn.Module, enc: Encoded, rows: np.ndarray) -> pd.DataFrame:
    """Per-scenario AUC/GAUC of ``model`` on samples ``rows``."""
    return scenario_metrics(
        enc.scenario_names(rows), enc.request_names(rows), enc.label[rows].numpy(), predict(model, enc, rows)
    )


def _train_and_score(
    enc: Encoded, model: nn.Module, seed: int, req: EvalRequest, progress: StageProgress | None, name: str
) -> pd.DataFrame:
    report = fit(
        model, enc, enc.rows("train"), enc.rows("valid"), replace(req.train, seed=seed), progress, name
    )
    table = score_rows(model, enc, enc.rows("test"))
    return table.assign(seed=seed, epochs=report.best_epoch, samples_per_s=report.samples_per_s)


def main_table(enc: Encoded, req: EvalRequest, progress: StageProgress | None = None) -> pd.DataFrame:
    """Long frame: method, seed, scenario, n, pos_rate, auc, gauc, epochs, samples_per_s."""
    parts = []
    runs = [(m, None) for m in req.methods] + [("foundation", a) for a in req.ablations]
    for method, ablation in runs:
        label = method if ablation is None else f"foundation: {ablation}"
        config = req.model if ablation is None else ablation_config(ablation, req.model)
        for seed in req.seeds:
            _seed_all(seed)
            model = make_ranker(enc, method, config)
            parts.append(
                _train_and_score(enc, model, seed, req, progress, f"{label} s{seed}").assign(method=label)
            )
    return pd.concat(parts, ignore_index=True)


PEER = "mmoe (torch-rechub)"


def peer_table(data: FoundationData, enc: Encoded, req: EvalRequest) -> pd.DataFrame:
    """torch-rechub's MMoE on the same samples, inputs (ids, tokens, the same text vectors) and
    widths as ours, scored by the same evaluator: rows like :func:`main_table`'s."""
    from gnn.foundation.peer import peer_metrics, rechub_mmoe

    parts = []
    for seed in req.seeds:
        pred = rechub_mmoe(
            data,
            seed=seed,
            epochs=req.train.epochs,
            text=enc.item_text.numpy(),
            request_text=enc.req_text.numpy(),
            embed_dim=req.model.dim,
            batch_size=req.train.batch_size,
            lr=req.train.lr,
            patience=req.train.patience,
        )
        n = int((data.samples["split"] == "train").sum()) * int(pred.attrs["epochs_run"])
        parts.append(
            peer_metrics(pred).assign(
                seed=seed,
                epochs=pred.attrs["best_epoch"],
                samples_per_s=n / max(pred.attrs["train_seconds"], 1e-9),
                method=PEER,
            )
        )
    return pd.concat(parts, ignore_index=True)


def cold_start(
    enc: Encoded, cold: str, req: EvalRequest, progress: StageProgress | None = None
) -> pd.DataFrame:
    """Long frame: mode, fraction, seed, scenario, n, auc, gauc (the cold domain's test scenarios)."""
    if cold not in enc.domains:
        raise InputError(f"cold-start domain {cold!r} is not among the data's domains {enc.domains}")
    warm = [d for d in enc.domains if d != cold]
    cold_row = enc.domains.index(cold)
    test = enc.rows("test", [cold])
    parts = []
    for seed in req.seeds:
        _seed_all(seed)
        base = SRFoundation(enc, req.model)
        cfg = replace(req.train, seed=seed)
        fit(base, enc, enc.rows("train", warm), enc.rows("valid", warm), cfg, progress, f"pre-train s{seed}")
        for frac in req.cold_fractions:
            train = _share_of_requests(enc, enc.rows("train", [cold]), frac, seed)
            valid = enc.rows("valid", [cold])
            for mode in COLD_MODES:
                _seed_all(seed)
                if mode == "from scratch":
                    model = SRFoundation(enc, req.model)
                else:
                    model = copy.deepcopy(base)
                    model.reset_domains([cold_row])
                    if mode == "foundation fine-tune":
                        model.freeze_encoding()
                fit(model, enc, train, valid, cfg, progress, f"{mode} {frac:g} s{seed}")
                parts.append(score_rows(model, enc, test).assign(mode=mode, fraction=frac, seed=seed))
    return pd.concat(parts, ignore_index=True)


def _share_of_requests(enc: Encoded, rows: np.ndarray, frac: float, seed: int) -> np.ndarray:
    """The samples of a random ``frac`` of the requests among ``rows`` (at least one request)."""
    reqs = np.unique(enc.req[rows].numpy())
    n = max(1, round(frac * len(reqs)))
    keep = np.random.default_rng([seed, 11]).choice(reqs, size=n, replace=False)
    return rows[np.isin(enc.req[rows].numpy(), keep)]


def _seed_all(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed)


def mean_std(long: pd.DataFrame, by: list[str], metrics: tuple[str, ...] = ("auc", "gauc")) -> pd.DataFrame:
    """Mean over scenarios per (by…, seed), then mean ± std over seeds: columns ``{m}_mean, {m}_std``;
    ``auc_w`` is the AUC averaged with each scenario weighted by its test samples (the mean over
    scenarios weighs a 10-sample scenario like a 20,000-sample one)."""
    frame = long.assign(_w=long["auc"] * long["n"], _n=long["n"].where(long["auc"].notna(), 0))
    per_seed = frame.groupby([*by, "seed"], sort=False).agg(
        **{m: (m, "mean") for m in metrics}, _w=("_w", "sum"), _n=("_n", "sum")
    )
    per_seed["auc_w"] = per_seed.pop("_w") / per_seed.pop("_n")
    per_seed = per_seed.reset_index()
    agg = per_seed.groupby(by, sort=False)[[*metrics, "auc_w"]].agg(["mean", "std"])
    agg.columns = [f"{col[0]}_{col[1]}" for col in agg.columns]
    return agg.reset_index()
