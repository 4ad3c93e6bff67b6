"""Settings of GreenFlow's allocation (arXiv:2312.16176) and of its evaluation: the reward
estimator (:class:`RewardConfig`), the energy factors (:class:`EnergyConfig`) and one run
(:class:`AllocationConfig`, :func:`consumers.allocation.run.run`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from graph.errors import InputError

PACE_RATE_PRIOR = 30.0
"""``a`` of (D3) (:mod:`.pacing`): yesterday's arrival rate counts as this many requests (times the
dispersion of arrivals, when the plan has one)."""

PACINGS: dict[str, dict[str, float | None]] = {
    "plain": {"pace_window_prior": None, "pace_dispersion_bin_s": None},
    "bursty": {"pace_window_prior": 30.0, "pace_dispersion_bin_s": 300.0},
}
"""(D3)'s variants by name (``--pacing``): ``plain`` (a day-wide reference curve, Poisson arrivals)
and ``bursty`` (yesterday's curve per window, shrunk by 30 requests; the dispersion of 5-minute
counts), measured in docs/allocation.md."""

ESTIMATORS = ("mlp", "hgb")
COST_UNITS = ("flops", "cpu_seconds")
BUDGET_SPLITS = ("traffic", "forecast", "flat")
DUAL_RULES = ("pace", "step")


@dataclass(frozen=True)
class RewardConfig:
    """The reward estimator (:func:`consumers.allocation.reward.fit_reward`).

    Args:
        kind: ``mlp`` (one torch MLP with a head per chain) or ``hgb`` (sklearn gradient boosting).
        hidden, depth: the MLP's ReLU layers (``depth`` layers of ``hidden`` units).
        epochs, batch_size, lr, weight_decay: its AdamW training, at most ``epochs`` epochs
            (``hgb``: ``10·epochs`` trees, capped at 500).
        valid_share, patience: the MLP's early stopping: the share of the log held out, and the
            epochs without improvement on it before training stops.
        monotonic: ``hgb`` only: the reward non-decreasing in each stage's item count (the
            paper's monotonic constraint).
        threads: ``hgb``'s threads: OpenMP threads of its fit (sklearn's default, all cores,
            oversubscribes a shared machine: 30× slower on this one's 2 cores) and ONNX Runtime's
            intra-op threads when it predicts.
        seed: seeds the weights and the batches.
    """

    kind: str = "mlp"
    hidden: int = 64
    depth: int = 2
    epochs: int = 200
    batch_size: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    valid_share: float = 0.1
    patience: int = 10
    monotonic: bool = True
    threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ESTIMATORS:
            raise InputError(f"unknown reward estimator {self.kind!r}; choose from {', '.join(ESTIMATORS)}")
        if not 0.0 < self.valid_share < 0.5:
            raise InputError(f"valid_share must lie in (0, 0.5), got {self.valid_share}")
        for name in ("hidden", "depth", "epochs", "batch_size", "threads", "patience"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or self.weight_decay < 0:
            raise InputError(
                f"lr must be positive and weight_decay non-negative, got {self.lr}, {self.weight_decay}"
            )


@dataclass(frozen=True)
class EnergyConfig:
    """Factors of the energy and carbon *estimate* (:mod:`consumers.allocation.energy`).

    Args:
        watts_per_core: power of one busy CPU core; default 6.75 W = a 270 W TDP, 40-core server
            CPU (Intel Xeon Platinum 8380's datasheet figures) at full load, a rough figure.
        grid_kg_per_kwh: grid carbon intensity; default 0.5703 kg CO2/kWh, China's national grid
            average emission factor for 2022 (Ministry of Ecology and Environment, 2023); the
            paper's deployment is in China.
        requests_per_day: traffic the per-request cost is scaled to; 1e9 is an assumed order of
            magnitude for a large e-commerce feed, not a figure from the paper.
    """

    watts_per_core: float = 6.75
    grid_kg_per_kwh: float = 0.5703
    requests_per_day: float = 1e9

    def __post_init__(self) -> None:
        for name in ("watts_per_core", "grid_kg_per_kwh", "requests_per_day"):
            if not getattr(self, name) > 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")


LOGS = ("random", "every")


@dataclass(frozen=True)
class AllocationConfig:
    """One evaluation of issue 20 (:func:`consumers.allocation.run.run`).

    Args:
        budget_saving: the headline budget saves this share of the most expensive chain's cost.
        frontier_savings: the savings the revenue-computation frontier is swept over.
        cost_unit: ``flops`` or ``cpu_seconds`` (the cost ``q_j`` of (P1)).
        window_s: budget window (the budget is given, and adherence measured, per window).
        dual_rule: how GreenFlow's ``λ`` follows the budget online: ``pace`` (D3 of
            :mod:`.pacing`: before every request, from the spend curve and the window's remaining
            budget) or ``step`` (D2 of :mod:`.primal_dual`: a subgradient step every ``control_s``);
            the evaluation reports the other rule beside it.
        control_s: interval of (D2)'s update within a window (divides ``window_s``); (D3) reports
            its progress at the same steps.
        step_size: ``η`` of (D2).
        pace_prior: ``κ`` of (D3): yesterday's spend curve counts as this many of the window's
            requests.
        pace_margin: ``z`` of (D3): the lead kept, in standard deviations of the remaining
            request count.
        pace_rate_prior: ``a`` of (D3): yesterday's arrival rate for the window counts as this
            many requests (times the dispersion) against the rate seen so far.
        pace_window_prior: (D3)'s reference curve per window: yesterday's requests of the same
            window, shrunk toward the whole day's curve by this many requests (None: the day's
            curve for every window).
        pace_dispersion_bin_s: (D3) scales ``a`` and the lead's variance by the index of
            dispersion of yesterday's arrivals counted in bins of this many seconds (bursty traffic
            makes the rate seen so far a noisier forecast); None: Poisson arrivals (1).
        budget_split: the day's budget per window ∝ the window's ``traffic`` (a perfect traffic
            forecast), ∝ yesterday's traffic (``forecast``: misses today's campaign) or ``flat``.
        explore_share: when no separate "yesterday" is given, this share of the requests (drawn at
            random) forms the exploration log and yesterday's traffic.
        log: ``random`` (the paper's: each of yesterday's requests served one uniformly random
            chain, only its reward seen) or ``every`` (every chain's reward seen for every request:
            what a simulator can give and production cannot; an upper bound on what logging buys).
        seed: seeds the exploration log, the split and the random policy.
        reward, energy: the estimator's and the energy estimate's settings.
    """

    budget_saving: float = 0.4
    frontier_savings: tuple[float, ...] = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
    cost_unit: str = "flops"
    window_s: float = 3600.0
    dual_rule: str = "pace"
    control_s: float = 60.0
    step_size: float = 0.5
    pace_prior: float = 100.0
    pace_margin: float = 2.0
    pace_rate_prior: float = PACE_RATE_PRIOR
    pace_window_prior: float | None = None
    pace_dispersion_bin_s: float | None = None
    budget_split: str = "traffic"
    explore_share: float = 0.5
    log: str = "random"
    seed: int = 0
    reward: RewardConfig = field(default_factory=RewardConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    def __post_init__(self) -> None:
        for s in (self.budget_saving, *self.frontier_savings):
            if not 0.0 <= s < 1.0:
                raise InputError(f"a budget saving is a share in [0, 1), got {s}")
        if self.cost_unit not in COST_UNITS:
            raise InputError(f"unknown cost unit {self.cost_unit!r}; choose from {', '.join(COST_UNITS)}")
        if self.budget_split not in BUDGET_SPLITS:
            raise InputError(
                f"unknown budget split {self.budget_split!r}; choose from {', '.join(BUDGET_SPLITS)}"
            )
        if not 0 < self.control_s <= self.window_s:
            raise InputError(f"control_s must lie in (0, window_s], got {self.control_s} and {self.window_s}")
        if abs(self.window_s / self.control_s - round(self.window_s / self.control_s)) > 1e-9:
            raise InputError(f"control_s ({self.control_s}) must divide window_s ({self.window_s})")
        if not self.step_size > 0:
            raise InputError(f"step_size must be positive, got {self.step_size}")
        if self.dual_rule not in DUAL_RULES:
            raise InputError(f"unknown dual rule {self.dual_rule!r}; choose from {', '.join(DUAL_RULES)}")
        if not self.pace_prior > 0 or self.pace_margin < 0:
            raise InputError(
                f"pace_prior must be positive and pace_margin non-negative, got {self.pace_prior}, "
                f"{self.pace_margin}"
            )
        if self.pace_dispersion_bin_s is not None and not 0 < self.pace_dispersion_bin_s < self.window_s:
            raise InputError(
                f"pace_dispersion_bin_s must lie in (0, window_s), got {self.pace_dispersion_bin_s}"
            )
        if self.pace_rate_prior <= 0 or (self.pace_window_prior is not None and self.pace_window_prior <= 0):
            raise InputError(
                f"pace_rate_prior must be positive and pace_window_prior positive (or None), got "
                f"{self.pace_rate_prior}, {self.pace_window_prior}"
            )
        if self.log not in LOGS:
            raise InputError(f"unknown exploration log {self.log!r}; choose from {', '.join(LOGS)}")
        if not 0.0 < self.explore_share < 1.0:
            raise InputError(f"explore_share must lie in (0, 1), got {self.explore_share}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
