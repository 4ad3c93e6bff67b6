"""GreenFlow's dynamic primal-dual allocation ("GreenFlow: A Computation Allocation Framework for
Building Environmentally Sound Recommendation System", IJCAI 2023, arXiv:2312.16176).

The day's allocation is a multiple-choice knapsack: with ``Q_ij`` the reward of request ``i``
under chain ``j`` and ``q_j`` the chain's cost,

    max Σ_i Σ_j x_ij Q_ij   s.t.  Σ_i Σ_j x_ij q_j ≤ B,  Σ_j x_ij = 1,  x_ij ∈ {0, 1}.      (P1)

Relaxing the budget with a multiplier ``λ ≥ 0`` decouples the requests: each takes

    j*(i) = argmax_j (Q̂_ij − λ q_j)                                                       (D1)

with ``Q̂`` the estimated rewards (:mod:`.reward`). The dynamic version updates ``λ`` online.
The paper's exact update is not reproduced here (not verified against its text); ours, a
projected subgradient step on the dual with budget pacing, every ``control_s`` seconds ``k``
inside a budget window ``w`` of length ``T`` with budget ``B_w``:

    b_k = (B_w − S_w,<k) · τ_k / T_w,<k   (the window's remaining budget over its remaining time)
    λ ← max(0, λ + η · λ_ref · (s_k − b_k) / (B_w τ_k / T))                                 (D2)

where ``s_k`` is the step's spend, ``τ_k`` its length, ``S_w,<k`` and ``T_w,<k`` what the window
has spent and has left before step ``k``, and ``λ_ref`` the static ``λ`` solved on yesterday's
traffic (it sets the scale of ``λ`` in the units of reward per cost; it is also the day's start
value ``λ_0``). DCAF-style static allocation keeps ``λ = λ_ref`` all day.
Shapes: ``pred`` [R, C], ``cost`` [C], ``times`` [R], window budgets [W].
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from consumers.allocation.outcomes import Chain
from consumers.allocation.reward import RewardModel
from consumers.allocation.traffic import DAY_S, window_index
from graph.errors import InputError

if TYPE_CHECKING:
    from consumers.allocation.pacing import Pacer, PacingPlan

F64 = NDArray[np.float64]
StepHook = Callable[[int, int, float, F64], None]
"""Called after each control step ``k`` of :func:`dynamic_run` with ``(k, requests done so far, λ
after the update (D2), spend [W] per window so far)``; the spend array is live, copy it to keep it."""


def best_response(pred: F64, cost: F64, lam: float) -> NDArray[np.int64]:
    """[R] (D1): per request the chain maximising estimated reward minus ``λ`` times its cost."""
    return np.asarray(np.argmax(pred - lam * cost[None, :], axis=1), dtype=np.int64)


def solve_lambda(pred: F64, cost: F64, budget: float, iters: int = 60) -> float:
    """The smallest ``λ ≥ 0`` whose best responses (D1) spend at most ``budget`` in all, by
    bisection (spend is non-increasing in ``λ``); the cheapest-chain ``λ`` when none does."""
    if float(cost[best_response(pred, cost, 0.0)].sum()) <= budget:
        return 0.0
    hi = max(
        float(np.ptp(pred)) / max(float(np.min(np.diff(np.unique(cost)), initial=np.inf)), 1e-300), 1e-300
    )
    hi = min(hi, 1e300)
    lo = 0.0
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if float(cost[best_response(pred, cost, mid)].sum()) <= budget:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True)
class StreamRun:
    """A day under the dynamic (or static) policy: ``choices`` [R], ``lam`` [R] (the λ each request
    saw), per window ``budget`` and ``spend`` [W]."""

    choices: NDArray[np.int64]
    lam: F64
    budget: F64
    spend: F64


def static_run(pred: F64, cost: F64, times: F64, budgets: F64, lam: float, window_s: float) -> StreamRun:
    """DCAF-style: (D1) with one fixed ``λ`` all day; spend reported per window."""
    choices = best_response(pred, cost, lam)
    w = window_index(times, window_s)
    spend = np.bincount(w, weights=cost[choices], minlength=len(budgets))[: len(budgets)].astype(float)
    return StreamRun(choices, np.full(len(choices), lam), np.asarray(budgets, float), spend)


def dynamic_run(
    pred: F64,
    cost: F64,
    times: F64,
    budgets: F64,
    lam_ref: float,
    window_s: float,
    control_s: float,
    step_size: float,
    lam0: float | None = None,
    on_step: StepHook | None = None,
) -> StreamRun:
    """GreenFlow's dynamic primal-dual over a day: (D1) per request with ``λ`` updated by (D2),
    starting from ``lam0`` (default ``λ_ref``); ``on_step`` watches the replay (:data:`StepHook`)."""
    if lam_ref <= 0:
        lam_ref = float(np.mean(pred)) / float(np.mean(cost))  # budget not binding yesterday: a scale
    steps = round(window_s / control_s)
    start = float(np.floor(times[0] / DAY_S) * DAY_S) if len(times) else 0.0
    step_of = np.floor((times - start) / control_s).astype(np.int64)
    n_steps = len(budgets) * steps
    if len(times) and step_of[-1] >= n_steps:
        raise InputError(f"requests run past the {len(budgets)} budget windows; give a budget per window")
    bounds = np.searchsorted(step_of, np.arange(n_steps + 1))
    choices, lams, spend = np.zeros(len(times), dtype=np.int64), np.zeros(len(times)), np.zeros(len(budgets))
    lam = lam_ref if lam0 is None else float(lam0)
    for k in range(n_steps):
        a, b = int(bounds[k]), int(bounds[k + 1])
        w, pos = divmod(k, steps)
        choices[a:b] = best_response(pred[a:b], cost, lam)
        lams[a:b] = lam
        s = float(cost[choices[a:b]].sum())
        target = max(budgets[w] - spend[w], 0.0) / (steps - pos)
        spend[w] += s
        if budgets[w] > 0:
            lam = max(0.0, lam + step_size * lam_ref * (s - target) / (budgets[w] / steps))
        if on_step is not None:
            on_step(k, b, lam, spend)
    return StreamRun(choices, lams, np.asarray(budgets, float), spend)


class Allocator:
    """Serving: ``choose(features_row) -> chain index`` by (D1) with the current ``λ`` (set it with
    :meth:`set_lambda` after each control step), or :meth:`choose_at` with ``λ`` set by the pacing
    rule (D3) before each request (after :meth:`pace`). The estimator's MLP weights are held as
    arrays, so a decision is a few small matrix products.

    ``chains`` [C] and ``feature_names`` [F] (optional) name what the indices and the columns of a
    features row mean; they travel with :meth:`save` (:mod:`.persist`), as does the pacing plan,
    and :meth:`chain` needs ``chains``. :meth:`choose_batch` decides ``[R, F]`` rows at once (the
    same (D1), vectorised)."""

    def __init__(
        self,
        model: RewardModel,
        cost: F64,
        lam: float,
        chains: tuple[Chain, ...] | None = None,
        feature_names: tuple[str, ...] | None = None,
    ) -> None:
        self.model, self.cost = model, np.asarray(cost, float)
        if chains is not None and len(chains) != len(self.cost):
            raise InputError(f"{len(chains)} chains for {len(self.cost)} costs; give one cost per chain")
        self.chains, self.feature_names = chains, feature_names
        self.plan: PacingPlan | None = None
        self.pacer: Pacer | None = None
        self.set_lambda(lam)
        if model.kind == "mlp":
            st = model.state
            self._mean, self._std = st["mean"], st["std"]
            self._layers = [(np.ascontiguousarray(w), b) for w, b in st["layers"]]
            self._scale, self._shift = st["scale"], st["shift"]

    def set_lambda(self, lam: float) -> None:
        self.lam = float(lam)
        self._penalty = self.lam * self.cost

    def predict_row(self, features_row: F64) -> F64:
        """[C] the estimated reward of every chain for one request."""
        if self.model.kind != "mlp":
            return np.asarray(self.model.predict_row(features_row), float)
        h = (features_row - self._mean) / self._std
        for w, b in self._layers[:-1]:
            h = np.maximum(h @ w + b, 0.0)
        w, b = self._layers[-1]
        return np.asarray((h @ w + b) * self._scale + self._shift)

    def choose(self, features_row: F64) -> int:
        return int(np.argmax(self.predict_row(features_row) - self._penalty))

    def pace(self, plan: PacingPlan) -> None:
        """Serve by (D3) from now on: a fresh :class:`~.pacing.Pacer` of ``plan`` (nothing spent)."""
        from consumers.allocation.pacing import Pacer

        self.plan, self.pacer = plan, Pacer(plan, self.cost)

    def choose_at(self, features_row: F64, offset: float) -> int:
        """(D1) at the ``λ`` that (D3) sets for a request ``offset`` seconds after the day's
        midnight (requests in time order); the choice is charged to the window's budget."""
        if self.pacer is None:
            raise InputError("this allocator has no pacing plan; save it with mokg allocate simulate (D3)")
        pred = self.predict_row(features_row)
        self.set_lambda(self.pacer.price(offset))
        j = int(np.argmax(pred - self._penalty))
        self.pacer.record(j, self.pacer.grid_choices(pred))
        return j

    def choose_batch(self, features: F64) -> NDArray[np.int64]:
        """[R] (D1) for the rows of ``features`` [R, F] at the current ``λ``."""
        return best_response(self.model.predict(np.asarray(features, float)), self.cost, self.lam)

    def chain(self, features_row: F64) -> Chain:
        """The chain :meth:`choose` picks, by name (needs ``chains``)."""
        if self.chains is None:
            raise InputError("this allocator was built without its chains; pass chains= to name them")
        return self.chains[self.choose(features_row)]

    def save(self, path: str | Path, info: dict[str, Any] | None = None) -> Path:
        """Write the allocator to ``path`` (:func:`.persist.save_allocator`)."""
        from consumers.allocation.persist import save_allocator

        return save_allocator(path, self, info)
