"""The cascade's chain outcomes built on demand: trained, scored, saved, and cached per config.

GreenFlow (Zhou et al., IJCAI 2023, arXiv 2312.16176) allocates computation over the action
chains of a cascade; what it works on is a :class:`~consumers.allocation.outcomes.ChainOutcomes`
(per request ``r`` and chain ``c`` the true reward ``[R, C]``, per chain the FLOPs and CPU seconds
``[C]``). This module builds one from a traffic source for the CLI and the benchmark:

- ``world``: the cascade trained on a world's visible past, the later rec pages as requests, the
  reward eq. W2 of :mod:`consumers.allocation.world_reward` (needs the store the world was ingested
  into and the world directory with its ``hidden/`` truth);
- ``movielens``: MovieLens-1M replayed, the reward eq. M1 of :mod:`consumers.allocation.movielens`.

:func:`run_cascade` builds and saves one (``mokg allocate cascade``); :func:`traffic_outcomes`
returns the outcomes for a traffic name from a cache folder ``<root>/<source>-<key>`` keyed by the
cascade config, the source and (world) the world's manifest and the store's version, building and
saving them first when the folder does not exist (``--traffic world|movielens`` of ``mokg eval
allocation`` and ``mokg allocate simulate``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from consumers.allocation.cascade import (
    Cascade,
    CascadeConfig,
    cost_table,
    flops_cpu_correlation,
)
from consumers.allocation.outcomes import ChainOutcomes
from graph.errors import InputError
from graph.store import GraphStore

SOURCES = ("world", "movielens")
CACHE = Path("mokg-data/allocation/outcomes")

PRESETS: dict[str, CascadeConfig] = {
    # the default: 2 recall × 3 N, 2 pre-ranking × 3 M, 2 ranking instances → 56 chains
    "full": CascadeConfig(),
    # the same chains, fewer epochs and requests (seconds on the demo world)
    "quick": CascadeConfig(dot_epochs=8, max_requests=3000, timing_requests=20),
    # 8 chains on the small test world (seconds)
    "tiny": CascadeConfig(
        recall=("bpr4", "bpr32"),
        recall_n=(40, 80),
        prerank=("bpr4",),
        prerank_n=(20,),
        rank=("bpr8", "lightgcn32"),
        dot_epochs=2,
        max_requests=150,
        timing_requests=5,
    ),
    # "full" plus 8 principal components of each recall instance's user vector as request
    # features (eq. U1 of consumers.allocation.user_features); pair it with --estimator hgb
    "full-user": CascadeConfig(user_dims=8),
    # "quick" with the IVF over a BPR-16 beside the exact recall instances: 84 chains
    "quick-ivf": CascadeConfig(
        recall=("bpr16", "ivf16", "lightgcn64"), dot_epochs=8, max_requests=3000, timing_requests=20
    ),
}


# MovieLens-1M has ~575k liked ratings to train on: batches of 8,192 (4 minutes instead of 30+)
MOVIELENS_BATCH = 8192


def cascade_config(spec: str, source: str = "world", **overrides: int | None) -> CascadeConfig:
    """A preset of :data:`PRESETS` (on ``movielens``, ``quick`` and ``tiny`` train in batches of
    :data:`MOVIELENS_BATCH`) or a JSON file of :class:`CascadeConfig` fields (lists for the
    tuples), with the ``overrides`` that are not None (e.g. ``max_requests``, ``dot_epochs``)."""
    if spec in PRESETS:
        base = PRESETS[spec]
        if source == "movielens" and spec != "full":
            base = dataclasses.replace(base, dot_batch=MOVIELENS_BATCH)
    else:
        try:
            fields: dict[str, Any] = json.loads(Path(spec).read_text())
            kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
            base = CascadeConfig(**kwargs)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(
                f"--cascade {spec!r}: name a preset ({', '.join(PRESETS)}) or a JSON file of "
                f"CascadeConfig fields ({exc})"
            ) from None
    given: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(base, **given)


@dataclass(frozen=True)
class Built:
    """A trained cascade and its outcomes; ``users`` [R]: the user row of each request."""

    cascade: Cascade
    outcomes: ChainOutcomes
    users: np.ndarray
    seconds: float


def check_world(store: GraphStore, world: Path | None) -> Path:
    """The world directory, or a one-line error: none given, not a world, no ``hidden/``, or not
    the world the store was ingested from (under 90% of its items in the store by id and title)."""
    from loaders.world.layout import WorldDir

    if world is None:
        raise InputError("--traffic world needs --world DIR: the world directory the store was ingested from")
    wd = WorldDir(Path(world))
    wd.manifest()
    if not wd.hidden_for_evaluation().is_dir():
        raise InputError(
            f"{world} has no hidden/ folder (the click model the reward needs); pass the full world "
            "directory written by `mokg world generate`"
        )
    items = pd.read_parquet(wd.visible("nodes", "Item.parquet"), columns=["id", "title"])
    stored = store.node_table("Item", ["title"]).set_index("id")["title"]
    same = float(np.mean(items["title"].astype(str).to_numpy() == stored.reindex(items["id"]).astype(str)))
    if same < 0.9:  # world ids repeat across worlds (it_0000000, …): compare the generated titles
        raise InputError(
            f"the store was not ingested from {world} ({same:.0%} of its items match by id and title); "
            "pass the store it was ingested into (--path) or ingest it first (`mokg ingest WORLD`)"
        )
    return Path(world)


def _train_world(
    store: GraphStore, world: Path | None, config: CascadeConfig
) -> tuple[Cascade, pd.DataFrame, Path]:
    """(the cascade trained on the world's visible past, its requests: the later rec pages, the world)."""
    from consumers.allocation.world_cascade import later_rec_pages, train_cascade

    folder = check_world(store, world)
    cascade, cut = train_cascade(store, folder, config)
    req = later_rec_pages(folder, cut)
    return cascade, req if config.max_requests is None else req.iloc[: config.max_requests], folder


def build_world(store: GraphStore, world: Path | None, config: CascadeConfig) -> Built:
    """Train the cascade on the world's visible past and score its later rec pages."""
    from consumers.allocation.world_cascade import cascade_outcomes

    start = time.perf_counter()
    cascade, req, folder = _train_world(store, world, config)
    outcomes = cascade_outcomes(cascade, store, folder, req, config)
    users = cascade.users(req["user"].to_numpy(str))
    return Built(cascade, outcomes, users, time.perf_counter() - start)


def trained_world(
    store: GraphStore,
    world: Path | None,
    config: CascadeConfig,
    cache: Path = CACHE,
    say: Callable[[str], None] = print,
) -> Built:
    """The world's cascade trained afresh (a cascade is not saved) with its outcomes from the cache
    folder of :func:`traffic_outcomes`, scored and saved there first when missing (the benchmark
    serves the trained cascade for the cached requests)."""
    from consumers.allocation.world_cascade import cascade_outcomes

    start = time.perf_counter()
    cascade, req, folder = _train_world(store, world, config)
    saved = cache / f"world-{cache_key('world', config, store, folder)}"
    if (saved / "chains.json").is_file():
        say(f"reusing the world chain outcomes in {saved}")
        outcomes = ChainOutcomes.load(saved)
        if list(outcomes.request_ids) != req["request"].tolist():
            raise InputError(f"{saved} holds other requests than this cascade's; delete it and rerun")
    else:
        outcomes = cascade_outcomes(cascade, store, folder, req, config)
        save_outcomes(outcomes, saved)
    return Built(cascade, outcomes, cascade.users(req["user"].to_numpy(str)), time.perf_counter() - start)


def build_movielens(config: CascadeConfig, horizon: int = 10) -> Built:
    """Train the cascade on MovieLens-1M up to the cut and replay the later ratings."""
    from consumers.allocation.movielens import movielens_replay, replay_outcomes

    start = time.perf_counter()
    replay = movielens_replay(config)
    outcomes = replay_outcomes(replay, config, horizon)
    users = replay.ratings["user_row"].to_numpy()[replay.requests]
    return Built(replay.cascade, outcomes, users, time.perf_counter() - start)


def build(source: str, config: CascadeConfig, store: GraphStore | None, world: Path | None) -> Built:
    """:func:`build_world` or :func:`build_movielens` by ``source``."""
    if source == "movielens":
        return build_movielens(config)
    if source != "world":
        raise InputError(f"unknown cascade source {source!r}; choose from {', '.join(SOURCES)}")
    if store is None:
        raise InputError(
            "--traffic world reads the store's side features: open the store it was ingested into"
        )
    return build_world(store, world, config)


@dataclass(frozen=True)
class CascadeResult:
    """What ``mokg allocate cascade`` prints: the built cascade, its chain table (chain, MFLOPs,
    CPU µs per request, mean reward) and Spearman(FLOPs, CPU) over the chains."""

    built: Built
    table: pd.DataFrame
    spearman: float
    out: Path

    def lines(self) -> list[str]:
        o, took = self.built.outcomes, self.built.seconds
        return [
            f"{o.source}: {o.n_requests:,} requests, {len(o.chains)} chains, built in {took:.1f} s",
            self.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
            f"Spearman(FLOPs, CPU) over the chains: {self.spearman:.3f}",
            f"wrote {self.out} (read it with ChainOutcomes.load, or pass --outcomes {self.out})",
        ]


def save_outcomes(outcomes: ChainOutcomes, out: Path) -> Path:
    """Write ``outcomes`` into a temp folder beside ``out`` and swap it in (an existing ``out`` is
    replaced only when it holds nothing but chain outcomes)."""
    from graph.files import artefact_claim, write_folder

    ours = {"chains.json", "requests.parquet"}
    claim = artefact_claim("chains.json", lambda rel: rel in ours, "chain outcomes")
    return write_folder(out, outcomes.save, claim)


def run_cascade(
    store: GraphStore | None, source: str, config: CascadeConfig, world: Path | None, out: Path
) -> CascadeResult:
    """Build the cascade's outcomes on ``source``, save them to ``out`` and tabulate the chains."""
    built = build(source, config, store, world)
    save_outcomes(built.outcomes, out)
    return CascadeResult(built, cost_table(built.outcomes), flops_cpu_correlation(built.outcomes), out)


def cache_key(source: str, config: CascadeConfig, store: GraphStore | None, world: Path | None) -> str:
    """12 hex digits of the config, the source and (world) the manifest and the store's version."""
    fields = dataclasses.asdict(config)
    if not fields["user_dims"]:  # off: the key of the folders built before the field existed
        del fields["user_dims"]
    what: dict[str, object] = {"source": source, "config": fields}
    if source == "world" and world is not None:
        what["world"] = hashlib.sha256((Path(world) / "world.json").read_bytes()).hexdigest()
        what["store"] = store.version().as_dict() if store is not None else None
    text = json.dumps(what, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def traffic_outcomes(
    source: str,
    config: CascadeConfig,
    store: GraphStore | None,
    world: Path | None,
    cache: Path = CACHE,
    say: Callable[[str], None] = print,
) -> tuple[ChainOutcomes, Path]:
    """(the outcomes of ``source``, their cache folder): loaded when the folder exists (``say``
    tells so), else built, saved there and returned."""
    if source not in SOURCES:
        raise InputError(f"unknown cascade source {source!r}; choose from {', '.join(SOURCES)}")
    if source == "world" and store is not None:
        world = check_world(store, world)
    folder = cache / f"{source}-{cache_key(source, config, store, world)}"
    if (folder / "chains.json").is_file():
        say(f"reusing the {source} chain outcomes in {folder}")
        return ChainOutcomes.load(folder), folder
    say(f"building the {source} cascade's chain outcomes into {folder} (once per config)")
    result = run_cascade(store, source, config, world, folder)
    return result.built.outcomes, folder
