"""What the allocator works on: the cascade's action chains, their costs, and per request the
reward each chain would earn.

The cascade (:mod:`consumers.allocation.cascade`) produces a :class:`ChainOutcomes` for a stream
of requests: for every request the *true* reward of every chain (from the world's hidden click
model, or from the user's next real ratings on MovieLens-1M) and the features an allocator may
look at when the request arrives. The allocator (:mod:`consumers.allocation.primal_dual`) and its
baselines only ever read this object, so they are tested on a synthetic one and run unchanged on
either source.

Shapes: ``R`` requests, ``C`` chains, ``F`` request features.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError


@dataclass(frozen=True)
class Stage:
    """One stage choice of a chain: the stage (``recall``, ``prerank``, ``rank``), the model
    instance that runs it, and how many items it passes on."""

    stage: str
    instance: str
    n_items: int

    @property
    def name(self) -> str:
        return f"{self.stage}:{self.instance}/{self.n_items}"


@dataclass(frozen=True)
class Chain:
    """An action chain: one :class:`Stage` choice per stage of the cascade, in order."""

    stages: tuple[Stage, ...]

    @property
    def name(self) -> str:
        return ">".join(s.name for s in self.stages)

    @classmethod
    def parse(cls, name: str) -> Chain:
        """The inverse of :attr:`name` (``recall:peace/500>prerank:mf/100>rank:srf/20``)."""
        stages = []
        for part in name.split(">"):
            try:
                stage, rest = part.split(":", 1)
                instance, n = rest.rsplit("/", 1)
                stages.append(Stage(stage, instance, int(n)))
            except ValueError:
                raise InputError(f"cannot read the chain {name!r}: write stage:instance/n>…") from None
        return cls(tuple(stages))


@dataclass(frozen=True)
class ChainOutcomes:
    """Per request and chain, the true reward; per chain, its cost.

    Args:
        chains: the ``C`` action chains, in a fixed order.
        flops: [C] floating-point operations per request, counted from the models' shapes.
        cpu_seconds: [C] measured CPU seconds per request on this machine (mean over a sample).
        rewards: [R, C] the reward request r would earn under chain c (ground truth: the
            allocator never sees it; the reward estimator learns it from an exploration log).
        features: [R, F] what is known when the request arrives (user features, context, hour).
        feature_names: the ``F`` column names.
        times: [R] arrival time of each request in seconds, non-decreasing.
        request_ids: [R] request identifiers.
        source: where the requests came from (``world``, ``movielens``, ``synthetic``).
    """

    chains: tuple[Chain, ...]
    flops: np.ndarray
    cpu_seconds: np.ndarray
    rewards: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    times: np.ndarray
    request_ids: np.ndarray
    source: str

    def __post_init__(self) -> None:
        c, r = len(self.chains), len(self.times)
        checks = {
            "flops": (self.flops.shape, (c,)),
            "cpu_seconds": (self.cpu_seconds.shape, (c,)),
            "rewards": (self.rewards.shape, (r, c)),
            "features": (self.features.shape[:1], (r,)),
            "request_ids": (self.request_ids.shape, (r,)),
        }
        for name, (got, want) in checks.items():
            if tuple(got) != want:
                raise InputError(f"ChainOutcomes.{name} has shape {tuple(got)}, expected {want}")
        if self.features.ndim != 2 or self.features.shape[1] != len(self.feature_names):
            raise InputError("ChainOutcomes.features must be [R, F] with one name per column")
        if r and np.any(np.diff(self.times) < 0):
            raise InputError("ChainOutcomes.times must be non-decreasing (requests in arrival order)")

    @property
    def n_requests(self) -> int:
        return len(self.times)

    @property
    def chain_names(self) -> list[str]:
        return [c.name for c in self.chains]

    def cost(self, unit: str = "flops") -> np.ndarray:
        """[C] the cost of each chain in ``flops`` or ``cpu_seconds``."""
        if unit not in ("flops", "cpu_seconds"):
            raise InputError(f"unknown cost unit {unit!r}; choose flops or cpu_seconds")
        return np.asarray(getattr(self, unit), dtype=float)

    def subset(self, rows: np.ndarray) -> ChainOutcomes:
        """The requests ``rows`` (a boolean mask or sorted indices), everything else unchanged."""
        return ChainOutcomes(
            self.chains,
            self.flops,
            self.cpu_seconds,
            self.rewards[rows],
            self.features[rows],
            self.feature_names,
            self.times[rows],
            self.request_ids[rows],
            self.source,
        )

    def retimed(self, times: np.ndarray) -> ChainOutcomes:
        """The same requests at new arrival ``times`` [R], re-sorted by them (stable)."""
        times = np.asarray(times, dtype=float)
        order = np.argsort(times, kind="stable")
        return ChainOutcomes(
            self.chains,
            self.flops,
            self.cpu_seconds,
            self.rewards[order],
            self.features[order],
            self.feature_names,
            times[order],
            self.request_ids[order],
            self.source,
        )

    def save(self, folder: Path) -> None:
        """``requests.parquet`` (id, time, features, one reward column per chain) and
        ``chains.json`` (names, flops, cpu seconds, source), each written aside and renamed."""
        from graph.files import write_text

        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame(self.features, columns=list(self.feature_names))
        frame.insert(0, "time", self.times)
        frame.insert(0, "request", self.request_ids.astype(str))
        rewards = pd.DataFrame(self.rewards, columns=[f"reward[{i}]" for i in range(len(self.chains))])
        tmp = folder / "requests.parquet.tmp"
        pd.concat([frame, rewards], axis=1).to_parquet(tmp, index=False)
        tmp.replace(folder / "requests.parquet")
        meta = {
            "source": self.source,
            "chains": self.chain_names,
            "flops": self.flops.tolist(),
            "cpu_seconds": self.cpu_seconds.tolist(),
            "feature_names": list(self.feature_names),
        }
        write_text(folder / "chains.json", json.dumps(meta, indent=2))

    @classmethod
    def load(cls, folder: Path) -> ChainOutcomes:
        """Read what :meth:`save` wrote; a missing or foreign folder is a one-line error."""
        try:
            meta = json.loads((folder / "chains.json").read_text())
            frame = pd.read_parquet(folder / "requests.parquet")
        except (OSError, ValueError) as exc:
            hint = "write them with ChainOutcomes.save"
            raise InputError(f"no chain outcomes in {folder}: {exc} ({hint})") from None
        names = meta["feature_names"]
        reward_cols = [f"reward[{i}]" for i in range(len(meta["chains"]))]
        return cls(
            tuple(Chain.parse(n) for n in meta["chains"]),
            np.asarray(meta["flops"], float),
            np.asarray(meta["cpu_seconds"], float),
            frame[reward_cols].to_numpy(float),
            frame[names].to_numpy(float),
            tuple(names),
            frame["time"].to_numpy(float),
            frame["request"].to_numpy(object),
            str(meta["source"]),
        )
