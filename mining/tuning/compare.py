"""LightPAIR's three tasks trained jointly with LoRA, MultiLoRA or full fine-tuning; per-task
metrics and the ΔW spectra (``mokg lightpair tune`` / ``compare-adapters``).

Every variant starts from the same pretrained MiniLM and the same head initialisation (seeded),
trains the same steps on the same batches, and adapts the same matrices (``targets``, default
W_q and W_v of every layer); the task heads train in every variant. Budgets:

- LoRA: rank ``budget``, r·(d_in + d_out) per matrix;
- MultiLoRA: n modules of rank ``budget // n`` (the same count) plus n scales per matrix;
- full: the target matrices themselves (d_in·d_out per matrix: far more; shown for reference).

Metrics are on a validation split of corpus heads, against the teacher's majority answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import pandas as pd
import torch

from mining.lightpair.calibration import calibrate_and_score
from mining.lightpair.corpus import Corpus
from mining.lightpair.model import LightPAIR, ModelConfig, build_model
from mining.lightpair.training import TrainConfig, fit, split
from mining.tuning.lora import AdapterSpec, adapters, inject, trainable_parameters

AdapterName = Literal["lora", "multilora", "full"]


@dataclass(frozen=True)
class TuneConfig:
    """Args:
    adapter: ``lora``, ``multilora`` or ``full``.
    budget: LoRA rank; MultiLoRA uses ``n`` modules of rank budget // n (same parameter count).
    n: MultiLoRA modules per matrix.
    alpha_per_rank: α = alpha_per_rank · r (so α/r is the same for every variant).
    targets: names of the adapted ``nn.Linear`` layers.
    adapter_lr: learning rate of adapter parameters; full_lr that of full fine-tuning.
    train: the shared training config (steps, batch, seed, head learning rate).
    """

    adapter: AdapterName = "lora"
    budget: int = 8
    n: int = 4
    alpha_per_rank: float = 2.0
    targets: tuple[str, ...] = ("query", "value")
    adapter_lr: float = 1e-3
    full_lr: float = 5e-5
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=1, max_steps=120))


@dataclass
class TuneResult:
    model: LightPAIR
    metrics: dict[str, float]
    thresholds: dict[str, float]
    deltas: list[torch.Tensor]
    trainable: int
    seconds: float


def prepare(model: LightPAIR, config: TuneConfig) -> dict[str, torch.Tensor]:
    """Make ``model`` trainable as the config says; returns the base target weights (for full ΔW)."""
    encoder = model.encoder
    if config.adapter == "full":
        for p in encoder.parameters():
            p.requires_grad = False
        base = {}
        for name, module in encoder.named_modules():
            if isinstance(module, torch.nn.Linear) and any(name.endswith("." + t) for t in config.targets):
                module.weight.requires_grad = True
                base[name] = module.weight.detach().clone()
        return base
    r = config.budget if config.adapter == "lora" else max(1, config.budget // config.n)
    inject(encoder, AdapterSpec(config.adapter, r, config.alpha_per_rank * r, config.targets, config.n))
    return {}


def deltas_of(model: LightPAIR, base: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    if base:
        mods = dict(model.encoder.named_modules())
        return [mods[name].weight.detach() - w0 for name, w0 in base.items()]
    return [a.delta_weight().detach() for a in adapters(model.encoder).values()]


def tune(
    corpus: Corpus,
    config: TuneConfig,
    model_config: ModelConfig,
    log: Callable[[str], None] | None = None,
    model: LightPAIR | None = None,
) -> TuneResult:
    """Train one variant on the corpus's training heads; score on its validation heads."""
    torch.manual_seed(config.train.seed)
    model = model or build_model(model_config)
    base = prepare(model, config)
    encoder_trainable = trainable_parameters(model.encoder)
    lr = config.full_lr if config.adapter == "full" else config.adapter_lr
    train, val = split(corpus, config.train.val_share, config.train.seed)
    began = time.perf_counter()
    fit(model, train, replace(config.train, lr=lr), log)
    seconds = time.perf_counter() - began
    tails = {label: _tails(model, names) for label, names in corpus.tails.items()}
    thresholds, metrics = calibrate_and_score(model, val, tails)
    return TuneResult(model, metrics, thresholds, deltas_of(model, base), encoder_trainable, seconds)


def _tails(model: LightPAIR, names: list[str]) -> torch.Tensor:
    from mining.lightpair.calibration import tail_matrix

    return tail_matrix(model, names)


def result_row(name: str, result: TuneResult) -> dict[str, float | str]:
    return {
        "method": name,
        "trainable_encoder_params": result.trainable,
        **{k: round(v, 3) for k, v in result.metrics.items()},
        "train_s": round(result.seconds, 1),
    }


def compare_adapters(
    corpus: Corpus,
    base: TuneConfig,
    model_config: ModelConfig,
    methods: tuple[AdapterName, ...] = ("lora", "multilora", "full"),
    log: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, list[torch.Tensor]]]:
    """The per-task table (one row per method) and each method's ΔW matrices."""
    rows, deltas = [], dict[str, list[torch.Tensor]]()
    for method in methods:
        if log:
            log(f"training {method}")
        result = tune(corpus, replace(base, adapter=method), model_config, log)
        rows.append(result_row(method, result))
        deltas[method] = result.deltas
    return pd.DataFrame(rows), deltas


def mean_std(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """One row per ``key``: every numeric column as "mean ± std" over the seeds."""
    numeric = [c for c in table.columns if c not in (key, "seed") and pd.api.types.is_numeric_dtype(table[c])]
    grouped = table.groupby(key, sort=False)[numeric]
    mean, std = grouped.mean(), grouped.std(ddof=1)
    out = mean.copy().astype(object)
    for c in numeric:
        if (std[c].fillna(0.0) == 0.0).all():  # the same in every seed (parameter counts, layers)
            out[c] = [f"{m:g}" for m in mean[c]]
        else:
            out[c] = [f"{m:.3f} ± {s:.3f}" for m, s in zip(mean[c], std[c], strict=True)]
    return out.reset_index()
