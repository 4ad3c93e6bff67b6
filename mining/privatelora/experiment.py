"""The PrivateLoRA experiment: traffic, throughput and tuning quality, as one table.

1. Tuning quality on the user's private feedback (:mod:`mining.privatelora.task`): PrivateLoRA
   trained through the two processes (cloud: frozen MiniLM + A, B; device: M's, head, data),
   against plain LoRA at the same rank, targets, steps, batches and seeds, and against no tuning
   (frozen encoder, head only), all trained in one process for the baselines. Accuracy and F1 of
   the test heads, mean ± std over the seeds.
2. Traffic: bytes on the wire per real token for inference and for a tuning step, PrivateLoRA
   (r values per adapted projection each way) against the hidden-state split (the device holds
   the whole adapter, so d values cross each way) and device-only inference (nothing crosses,
   but the whole model sits on the device).
3. Throughput (real tokens per second) of inference under each simulated link.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from mining.privatelora.adapter import AdapterConfig, trainable
from mining.privatelora.backbone import BackboneSpec, Classifier, load_tokenizer, make_head
from mining.privatelora.cloud import HIDDEN, LOWRANK
from mining.privatelora.device import Device, cloud_process
from mining.privatelora.task import Example, Split, judgement_examples, split_by_head
from mining.privatelora.wire import Channel, Network

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
METHODS = ("privatelora", "lora", "none")


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything a run depends on (saved beside its results).

    Args:
        rank, targets, lora_alpha: the adapters (same rank budget for both methods).
        steps, batch_size, lr: tuning, identical for every method.
        seeds: one run per seed (adapter draws, head, batch order).
        networks: simulated links for throughput (loopback is always measured too).
        throughput_batches: test batches timed per link and mode.
        wire_bits: 32 or 16 bits per float on the wire.
        data_seed, test_share: negatives and the by-head split.
    """

    rank: int = 16
    targets: tuple[str, ...] = ("query", "value")
    lora_alpha: float = 16.0
    steps: int = 150
    batch_size: int = 32
    lr: float = 3e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    networks: tuple[Network, ...] = (Network(100.0, 20.0), Network(20.0, 60.0))
    throughput_batches: int = 3
    wire_bits: int = 32
    data_seed: int = 0
    test_share: float = 0.2
    backbone: BackboneSpec = field(default_factory=BackboneSpec)

    def adapters(self, method: str, seed: int) -> AdapterConfig:
        return AdapterConfig(method, self.rank, self.targets, self.lora_alpha, seed)

    def cloud_spec(self) -> dict[str, Any]:
        return {"backbone": self.backbone.to_json(), "rank": self.rank, "targets": list(self.targets)}


def batches(examples: list[Example], tok: Any, size: int, seed: int | None) -> Iterator[Batch]:
    """Tokenised batches: shuffled without end when ``seed`` is given, else one ordered pass."""
    order = list(range(len(examples)))
    gen = torch.Generator().manual_seed(seed) if seed is not None else None
    while True:
        if gen is not None:
            order = torch.randperm(len(examples), generator=gen).tolist()
        for i in range(0, len(order), size):
            chunk = [examples[j] for j in order[i : i + size]]
            enc = tok([e.text() for e in chunk], padding=True, return_tensors="pt")
            yield enc["input_ids"], enc["attention_mask"], torch.tensor([e.label for e in chunk])
        if gen is None:
            return


Forward = Any  # (ids, mask, train) -> logits


def tune(
    forward: Forward, params: list[nn.Parameter], step_back: Any, data: Iterator[Batch], cfg: ExperimentConfig
) -> float:
    """``cfg.steps`` Adam steps of cross-entropy; returns seconds per step."""
    opt = torch.optim.Adam(params, lr=cfg.lr)
    start = time.perf_counter()
    for _ in range(cfg.steps):
        ids, mask, y = next(data)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(forward(ids, mask, True), y)
        step_back(loss)
        opt.step()
    return (time.perf_counter() - start) / max(cfg.steps, 1)


def scores(forward: Forward, test: list[Example], tok: Any, size: int) -> dict[str, float]:
    """Accuracy and F1 (class "true") on the test heads."""
    preds: list[int] = []
    with torch.no_grad():
        for ids, mask, _ in batches(test, tok, size, None):
            preds += forward(ids, mask, False).argmax(-1).tolist()
    gold = [e.label for e in test]
    tp = sum(p == g == 1 for p, g in zip(preds, gold, strict=True))
    fp, fn = (
        sum(p == 1 and g == 0 for p, g in zip(preds, gold, strict=True)),
        sum(p == 0 and g == 1 for p, g in zip(preds, gold, strict=True)),
    )
    acc = sum(p == g for p, g in zip(preds, gold, strict=True)) / len(gold)
    return {"accuracy": acc, "f1": 2 * tp / max(2 * tp + fp + fn, 1)}


def run_local(method: str, seed: int, split: Split, tok: Any, cfg: ExperimentConfig) -> dict[str, float]:
    """LoRA or no tuning (or PrivateLoRA in one process) for one seed."""
    torch.manual_seed(seed)
    model = Classifier(cfg.backbone, cfg.adapters(method, seed), head_seed=seed)

    def fwd(ids: torch.Tensor, mask: torch.Tensor, train: bool) -> torch.Tensor:
        return model(ids, mask)  # type: ignore[no-any-return]

    params = trainable(model)
    secs = tune(
        fwd, params, lambda loss: loss.backward(), batches(split.train, tok, cfg.batch_size, seed), cfg
    )
    return {
        **scores(fwd, split.test, tok, cfg.batch_size),
        "s_per_step": secs,
        "trainable": float(sum(p.numel() for p in params)),
    }


def make_device(
    ch: Channel, embed: nn.Embedding, n_adapters: int, seed: int, cfg: ExperimentConfig
) -> Device:
    return Device(ch, embed, n_adapters, cfg.rank, make_head(embed.embedding_dim, seed))


def run_split(
    ch: Channel,
    embed: nn.Embedding,
    n_adapters: int,
    seed: int,
    split: Split,
    tok: Any,
    cfg: ExperimentConfig,
) -> dict[str, float]:
    """PrivateLoRA tuned and evaluated through the cloud process, for one seed."""
    torch.manual_seed(seed)
    dev = make_device(ch, embed, n_adapters, seed, cfg)
    dev.setup(seed, LOWRANK, Network(), cfg.wire_bits)
    ch.reset_counts()
    params = trainable(dev)
    secs = tune(dev, params, dev.backward, batches(split.train, tok, cfg.batch_size, seed), cfg)
    return {
        **scores(dev, split.test, tok, cfg.batch_size),
        "s_per_step": secs,
        "trainable": float(sum(p.numel() for p in params)),
    }


def measure_link(
    dev: Device, test: list[Example], tok: Any, cfg: ExperimentConfig, mode: int, network: Network
) -> dict[str, float]:
    """Inference tokens/s and bytes/token over ``network``; bytes of one tuning step per token."""
    dev.setup(0, mode, network, cfg.wire_bits)
    data = list(zip(range(cfg.throughput_batches), batches(test, tok, cfg.batch_size, None), strict=False))
    dev.ch.reset_counts()
    tokens, start = 0, time.perf_counter()
    with torch.no_grad():
        for _, (ids, mask, _) in data:
            dev(ids, mask, False)
            tokens += int(mask.sum())
    secs = time.perf_counter() - start
    out = {
        "tokens_per_s": tokens / secs,
        "bytes_per_token": dev.ch.total() / tokens,
        "adapter_bytes_per_token": (dev.ch.sent["mid_out"] + dev.ch.received["mid"]) / tokens,
    }
    if network == Network():
        ids, mask, y = data[0][1]
        dev.ch.reset_counts()
        dev.backward(nn.functional.cross_entropy(dev(ids, mask, True), y))
        dev.zero_grad()
        out["train_bytes_per_token"] = dev.ch.total() / int(mask.sum())
    return out


def device_only(test: list[Example], tok: Any, cfg: ExperimentConfig) -> dict[str, float]:
    """The whole model (PrivateLoRA applied locally) on the device: tokens/s and parameter count."""
    model = Classifier(cfg.backbone, cfg.adapters("privatelora", 0), head_seed=0)
    tokens, start = 0, time.perf_counter()
    with torch.no_grad():
        for _, (ids, mask, _) in zip(
            range(cfg.throughput_batches), batches(test, tok, cfg.batch_size, None), strict=False
        ):
            model(ids, mask)
            tokens += int(mask.sum())
    params = sum(p.numel() for p in model.parameters())
    return {"tokens_per_s": tokens / (time.perf_counter() - start), "device_params": float(params)}


def run(cfg: ExperimentConfig, log: Any = print) -> dict[str, Any]:
    """The whole experiment; returns the JSON-able results (config, per-seed rows, traffic)."""
    torch.set_num_threads(1)
    tok = load_tokenizer()
    split = split_by_head(judgement_examples(cfg.data_seed), cfg.test_share, cfg.data_seed)
    log(f"task: {len(split.train)} train / {len(split.test)} test examples (held-out heads)")
    per_seed: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    ref = Classifier(cfg.backbone, cfg.adapters("privatelora", 0), head_seed=0)
    embed, n_adapters = ref.word_embeddings(), len(ref.private())
    links: dict[str, dict[str, float]] = {}
    with cloud_process(cfg.cloud_spec()) as ch:
        for seed in cfg.seeds:
            per_seed["privatelora"].append(run_split(ch, embed, n_adapters, seed, split, tok, cfg))
            log(f"privatelora seed {seed}: {per_seed['privatelora'][-1]}")
        dev = make_device(ch, embed, n_adapters, 0, cfg)
        for name, mode in (("privatelora", LOWRANK), ("hidden", HIDDEN)):
            for net in (Network(), *cfg.networks):
                links[f"{name}|{net.label()}"] = measure_link(dev, split.test, tok, cfg, mode, net)
                log(f"{name} over {net.label()}: {links[f'{name}|{net.label()}']}")
        dev.close()
    for method in ("lora", "none"):
        for seed in cfg.seeds:
            per_seed[method].append(run_local(method, seed, split, tok, cfg))
            log(f"{method} seed {seed}: {per_seed[method][-1]}")
    config = _jsonable(asdict(cfg))
    return {
        "config": config,
        "config_hash": hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12],
        "per_seed": per_seed,
        "summary": {m: summarise(rows) for m, rows in per_seed.items()},
        "links": links,
        "device_only": device_only(split.test, tok, cfg),
        "params": placement(ref),
        "dims": {"d": embed.embedding_dim, "r": cfg.rank, "adapters": n_adapters},
    }


def summarise(rows: list[dict[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and (sample) std of every metric over the seeds."""
    keys = rows[0].keys() if rows else []
    return {
        k: (
            statistics.fmean(r[k] for r in rows),
            statistics.stdev([r[k] for r in rows]) if len(rows) > 1 else 0.0,
        )
        for k in keys
    }


def placement(model: Classifier) -> dict[str, float]:
    """Parameter counts by place: device (word embeddings, M's, head) and cloud (the rest, A, B)."""
    word = model.word_embeddings().weight.numel()
    m = sum(a.M.numel() for a in model.private())
    ab = sum(a.A.numel() + a.B.numel() for a in model.private())
    head = sum(p.numel() for p in model.head.parameters())
    encoder = sum(p.numel() for p in model.encoder.parameters()) - m
    return {
        "device": float(word + m + head),
        "cloud": float(encoder - word + ab),
        "whole": float(encoder + m + head),
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
