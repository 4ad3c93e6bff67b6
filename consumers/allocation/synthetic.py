"""A synthetic cascade with a known structure, for the tests of GreenFlow's allocator and as the
``synthetic`` traffic source ("GreenFlow: A Computation Allocation Framework for Building
Environmentally Sound Recommendation System", IJCAI 2023, arXiv:2312.16176).

Chains (``C = 24``): recall ``ivf`` passing 100, 300 or 1000 items; pre-ranking ``mf`` (cheap) or
``mlp`` (dearer, more accurate) passing 50 or 150; ranking ``small`` or ``large`` showing 10.
FLOPs per request follow the shapes: recall ``2·64·n_recall``, pre-ranking ``f_pre·n_recall``,
ranking ``f_rank·n_pre`` (``f_pre`` = 128 / 20,000, ``f_rank`` = 200,000 / 2,000,000 FLOPs per
item); CPU seconds = FLOPs / 5 GFLOP/s + 50 µs overhead (nominal, not measured).

Chain quality (in [0, 1], increasing with every stage's effort, with diminishing returns):

    q_c = (1 − e^(−n_recall/300)) · (1 − e^(−a_pre · n_pre/50)) · a_rank                 (S1)

(the middle factor is 1 when pre-ranking passes all it gets) with ``a_pre`` = 0.7 (mf) / 1.4
(mlp) and ``a_rank`` = 0.6 (small) / 1.0 (large). Reward of
request ``r`` under chain ``c`` (expected clicks; concave in ``q``):

    Q_rc = v_r · (1 − e^(−κ_r q_c)) / (1 − e^(−κ_r)) · ε_rc,                              (S2)
    v_r = 0.1 · e^(0.5·activity_r) · (1 + 0.2 sin(2π hour_r / 24)),  κ_r = 2 · e^(depth_r)

so active users are worth more and shallow users (large ``κ``) saturate on cheap chains:
heterogeneity the reward estimator can see in the features. ``ε_rc`` ~ LogNormal(0, ``noise``)
is what no estimator can predict. Features ``[R, 6]``: activity, depth, hour sin/cos and two
pure-noise columns. Arrivals: :func:`.traffic.arrival_times` with (T1) (a 3× campaign hour).
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from consumers.allocation.outcomes import Chain, ChainOutcomes, Stage
from consumers.allocation.traffic import DAY_S, arrival_times, diurnal_profile
from graph.errors import InputError

RECALL = (100, 300, 1000)
PRERANK = {"mf": (128.0, 0.7), "mlp": (20_000.0, 1.4)}  # FLOPs per item, sharpness
PRERANK_N = (50, 150)
RANK = {"small": (200_000.0, 0.6), "large": (2_000_000.0, 1.0)}
RANK_N = 10
FLOPS_PER_S = 5e9
OVERHEAD_S = 5e-5
FEATURES = ("activity", "depth", "hour_sin", "hour_cos", "noise_0", "noise_1")


def synthetic_chains() -> tuple[tuple[Chain, ...], NDArray[np.float64], NDArray[np.float64]]:
    """The 24 chains, their FLOPs [C] and their quality ``q`` [C] of (S1)."""
    chains, flops, quality = [], [], []
    for n_rec, (pre, n_pre), rank in itertools.product(RECALL, itertools.product(PRERANK, PRERANK_N), RANK):
        f_pre, a_pre = PRERANK[pre]
        f_rank, a_rank = RANK[rank]
        passed = min(n_pre, n_rec)
        chains.append(
            Chain((Stage("recall", "ivf", n_rec), Stage("prerank", pre, passed), Stage("rank", rank, RANK_N)))
        )
        flops.append(2 * 64 * n_rec + f_pre * n_rec + f_rank * passed)
        keep = 1.0 if n_pre >= n_rec else 1 - np.exp(-a_pre * n_pre / 50)
        quality.append((1 - np.exp(-n_rec / 300)) * keep * a_rank)
    return tuple(chains), np.asarray(flops), np.asarray(quality)


def synthetic_outcomes(
    n_requests: int,
    seed: int,
    campaign_hour: int | None = 21,
    campaign_factor: float = 3.0,
    amplitude: float = 0.6,
    noise: float = 0.03,
    day: int = 0,
) -> ChainOutcomes:
    """``n_requests`` requests of day ``day`` with the rewards (S2) of the 24 chains (S1), seeded.

    ``campaign_hour=None``: a day without the campaign peak (e.g. "yesterday").
    """
    if n_requests < 1:
        raise InputError(f"n_requests must be at least 1, got {n_requests}")
    if noise < 0:
        raise InputError(f"noise must be non-negative, got {noise}")
    chains, flops, quality = synthetic_chains()
    rng = np.random.default_rng(seed)
    profile = diurnal_profile(amplitude, campaign_hour=campaign_hour, campaign_factor=campaign_factor)
    times = arrival_times(n_requests, seed + 7919, profile, day)
    hour = (times % DAY_S) / 3600.0
    activity, depth = rng.normal(size=n_requests), rng.normal(size=n_requests)
    features = np.column_stack(
        [
            activity,
            depth,
            np.sin(2 * np.pi * hour / 24),
            np.cos(2 * np.pi * hour / 24),
            rng.normal(size=(n_requests, 2)),
        ]
    )
    value = 0.1 * np.exp(0.5 * activity) * (1 + 0.2 * np.sin(2 * np.pi * hour / 24))
    kappa = 2.0 * np.exp(depth)[:, None]
    shape = -np.expm1(-kappa * quality[None, :]) / -np.expm1(-kappa)
    rewards = value[:, None] * shape * rng.lognormal(0.0, noise, size=(n_requests, len(chains)))
    ids = np.asarray([f"syn:{day}:{i}" for i in range(n_requests)], dtype=object)
    return ChainOutcomes(
        chains, flops, flops / FLOPS_PER_S + OVERHEAD_S, rewards, features, FEATURES, times, ids, "synthetic"
    )
