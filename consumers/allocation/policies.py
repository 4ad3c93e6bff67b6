"""The policies GreenFlow (arXiv:2312.16176) is measured against, and the offline optimum.

- fixed chain ``j``: every request gets ``j`` (spend ``R·q_j``, reward ``Σ_i Q_ij``);
- random at a budget: each request draws chain ``j`` with ``p_j ∝ exp(−θ q_j / max q)``, ``θ``
  solved so that the expected cost per request is the budget's (max-entropy random spending);
- DCAF-style static (Jiang et al., "DCAF: A Dynamic Computation Allocation Framework for Online
  Serving System", 2020): ``λ`` solved once on yesterday's traffic and estimated rewards
  (:func:`.primal_dual.solve_lambda`) and kept all day (:func:`.primal_dual.static_run`);
- the offline optimum: the LP relaxation of (P1) over the whole day with the *true* rewards and
  hindsight (one pooled budget ``B``, no per-window limit), an upper bound on every policy that
  spends at most ``B``. Solved exactly by scipy's HiGHS (:func:`optimum_lp`, small instances) or
  through its dual (:func:`optimum`):

      LP(B) = min_{λ≥0} D(λ),   D(λ) = Σ_i max_j (Q_ij − λ q_j) + λ B                       (O1)

  ``D`` is convex and piecewise linear, its subgradient ``B − spend(λ)``; bisection on ``λ``
  finds the minimiser, and ``D(λ)`` there is the LP value (strong duality; every ``D(λ)`` is an
  upper bound). The best responses at the feasible end are an integer solution (≤ LP).
Shapes: ``rewards`` [R, C], ``cost`` [C].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from consumers.allocation.primal_dual import best_response
from graph.errors import InputError

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class Optimum:
    """``value``: the LP optimum (O1); ``integer_value``, ``choices`` [R] and ``spend`` of the integer
    solution at ``lam``."""

    value: float
    integer_value: float
    choices: NDArray[np.int64]
    spend: float
    lam: float


def dual_value(rewards: F64, cost: F64, budget: float, lam: float) -> float:
    """``D(λ)`` of (O1), an upper bound on the LP for every ``λ ≥ 0``."""
    return float(np.max(rewards - lam * cost[None, :], axis=1).sum() + lam * budget)


def optimum(rewards: F64, cost: F64, budget: float, iters: int = 100) -> Optimum:
    """The offline optimum (O1) by bisection on ``λ``; large instances."""
    if budget < float(cost.min()) * len(rewards) - 1e-9 * abs(budget):
        raise InputError(f"budget {budget:.4g} is below the cheapest chain for every request; raise it")

    def spend(lam: float) -> float:
        return float(cost[best_response(rewards, cost, lam)].sum())

    lo, hi = 0.0, 1.0
    if spend(0.0) > budget:
        hi = (
            float(np.ptp(rewards)) / max(float(np.min(np.diff(np.unique(cost)), initial=np.inf)), 1e-300)
            + 1e-300
        )
        for _ in range(iters):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if spend(mid) <= budget else (mid, hi)
    else:
        hi = 0.0
    value = min(dual_value(rewards, cost, budget, hi), dual_value(rewards, cost, budget, lo))
    choices = best_response(rewards, cost, hi)
    rows = np.arange(len(rewards))
    return Optimum(value, float(rewards[rows, choices].sum()), choices, float(cost[choices].sum()), hi)


def optimum_lp(rewards: F64, cost: F64, budget: float) -> float:
    """The LP relaxation of (P1) solved by scipy's HiGHS; ``R·C`` variables, small instances only."""
    from scipy.optimize import linprog
    from scipy.sparse import csr_matrix, kron

    r, c = rewards.shape
    a_eq = kron(csr_matrix(np.eye(r)), csr_matrix(np.ones((1, c))))
    a_ub = csr_matrix(np.tile(cost, r)[None, :])
    res = linprog(
        -rewards.ravel(), A_ub=a_ub, b_ub=[budget], A_eq=a_eq, b_eq=np.ones(r), bounds=(0, 1), method="highs"
    )
    if not res.success:
        raise InputError(f"the LP of the offline optimum failed: {res.message}")
    return float(-res.fun)


def random_choices(cost: F64, budget_per_request: float, n: int, seed: int) -> NDArray[np.int64]:
    """[n] chains drawn with ``p_j ∝ exp(−θ q_j / max q)``, expected cost ``budget_per_request``."""
    q = cost / cost.max()
    target = float(np.clip(budget_per_request / cost.max(), q.min(), q.max()))

    def mean_cost(theta: float) -> float:
        p = np.exp(-theta * (q - q.min()))
        return float((p * q).sum() / p.sum())

    lo, hi = -500.0, 500.0
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if mean_cost(mid) > target else (lo, mid)
    p = np.exp(-hi * (q - q.min()))
    rng = np.random.default_rng(seed)
    return np.asarray(rng.choice(len(cost), size=n, p=p / p.sum()), dtype=np.int64)


def best_fixed(rewards: F64, cost: F64, budget_per_request: float) -> int:
    """The fixed chain with the highest total reward among those costing at most the budget per
    request (hindsight: true rewards); the cheapest chain when none fits."""
    fits = np.flatnonzero(cost <= budget_per_request * (1 + 1e-12))
    if not len(fits):
        return int(np.argmin(cost))
    return int(fits[np.argmax(rewards[:, fits].sum(0))])
