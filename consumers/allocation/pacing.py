"""GreenFlow's online dual variable by budget pacing ("GreenFlow: A Computation Allocation
Framework for Building Environmentally Sound Recommendation System", IJCAI 2023,
arXiv:2312.16176): the rule (D3) that sets ``λ`` of (D1) before every request so that each budget
window spends its budget, the default beside the subgradient step (D2) of :mod:`.primal_dual`.

Why (D2) misses quiet hours: with ~200 requests an hour (the worlds) a 60-s step sees ~3 requests
whose chains cost 0.3–1.6× the per-request budget, so ``λ`` random-walks; its scale ``λ_ref`` is
yesterday's, so in an hour whose budget barely binds (or does not bind at all) ``λ`` stays above 0
and the hour underspends by 8–20 %; and at the window's end nothing can recover what was cut early.

(D3) inverts the spend curve instead of stepping. With ``q_j`` the chain costs and ``j*(i, λ)``
the best response (D1), before each request at ``t`` seconds into window ``w`` (length ``T``,
budget ``B_w``, spent ``S_w``, ``n_w`` requests seen):

    ρ_ref(λ) = (1/R_y) Σ_{i ∈ yesterday} q_{j*(i, λ)}                   (spend per request at λ)
    ρ_w(λ)   = (κ ρ_ref(λ) + Σ_{i ∈ w, seen} q_{j*(i, λ)}) / (κ + n_w)      (this window's requests)
    r̂_w      = (n_w + a) / (t + a T / c_w)                     (arrival rate; c_w: yesterday's count)
    n̂        = max(r̂_w (T − t), 1)                             (requests expected before w closes)
    b        = (B_w − S_w) / n̂ · (1 + z / √n̂)                               (per-request target)
    λ        = ρ_w⁻¹(b) = min {λ ≥ 0 : ρ_w(λ) ≤ b}                                          (D3)

``ρ`` is kept on a fixed log grid of ``λ`` (linear between points; 0 first, a price at which
every request takes the cheapest chain last). ``κ`` (``prior``, in requests) weighs yesterday's
curve against this window's requests, ``a`` (:data:`RATE_PRIOR`) yesterday's arrival rate against
today's, and ``z`` (``margin``) paces ahead by ``z`` standard deviations of the remaining
(Poisson) request count: cutting late is always possible (down to the cheapest chain) but catching
up is not (nothing above ``λ = 0``), so the controller keeps a lead that shrinks as the window
closes. A window whose requests want less than ``B_w`` at ``λ = 0`` gets ``λ = 0`` once ``ρ_w``
shows it (b ≥ ρ_w(0)).
Shapes: ``pred`` [R, C], ``cost`` [C], ``times`` [R], budgets and expected counts [W], grid [G].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from consumers.allocation.primal_dual import F64, StepHook, StreamRun, best_response
from consumers.allocation.traffic import DAY_S, window_index
from graph.errors import InputError

GRID = 64
"""Points of the log grid of ``λ`` (8 decades around the reference scale, 35 % apart; 320 points
held every hour within the same ±2 % on the worlds and synthetic traffic at 5× the table's cost)."""
RATE_PRIOR = 30.0
"""``a`` of (D3): yesterday's arrival rate counts as this many requests."""
CHUNK = 512


@dataclass(frozen=True)
class SpendCurve:
    """``ρ_ref`` of (D3): ``grid`` [G] prices (0 first) and ``rho`` [G] the mean cost per request of
    the reference requests' best responses at each (non-increasing)."""

    grid: F64
    rho: F64

    @classmethod
    def build(cls, pred_ref: F64, cost: F64) -> SpendCurve:
        """The curve of the reference predictions ``pred_ref`` [R_y, C] (yesterday's)."""
        if not len(pred_ref):
            raise InputError("no reference requests to build the spend curve from; give yesterday's")
        scale = float(np.mean(np.abs(pred_ref))) / max(float(np.mean(cost)), 1e-300)
        gap = float(np.min(np.diff(np.unique(cost)), initial=np.inf))
        top = max(2 * float(np.ptp(pred_ref)) / gap if np.isfinite(gap) else 0.0, scale * 1e4)
        grid = np.concatenate([[0.0], np.geomspace(scale * 1e-4, scale * 1e4, GRID - 2), [top]])
        rho = cost[choice_table(pred_ref, cost, grid)].mean(axis=0)
        return cls(grid, np.minimum.accumulate(rho))

    def price(self, b: float, seen: F64 | None = None, n_seen: int = 0, prior: float = 0.0) -> float:
        """``λ = ρ_w⁻¹(b)`` (D3) with ``seen`` [G] this window's summed costs at each price."""
        rho = self.rho if seen is None or n_seen == 0 else (prior * self.rho + seen) / (prior + n_seen)
        if b >= rho[0]:
            return 0.0
        i = int(np.searchsorted(-rho, -b, side="left"))
        if i >= len(rho):
            return float(self.grid[-1])
        r0, r1 = float(rho[i - 1]), float(rho[i])
        f = (r0 - b) / (r0 - r1) if r0 > r1 else 1.0
        return float(self.grid[i - 1] + f * (self.grid[i] - self.grid[i - 1]))


def choice_table(pred: F64, cost: F64, grid: F64) -> NDArray[np.int16]:
    """[R, G] the best response (D1) of every request at every price of ``grid`` (in chunks)."""
    if len(cost) > np.iinfo(np.int16).max:
        raise InputError(f"{len(cost)} chains are more than the pacing table holds; use at most 32,767")
    out = np.empty((len(pred), len(grid)), dtype=np.int16)
    penalty = grid[None, :, None] * cost[None, None, :]
    for a in range(0, len(pred), CHUNK):
        out[a : a + CHUNK] = np.argmax(pred[a : a + CHUNK, None, :] - penalty, axis=2)
    return out


def paced_run(
    pred: F64,
    cost: F64,
    times: F64,
    budgets: F64,
    curve: SpendCurve,
    expected: F64,
    window_s: float,
    control_s: float,
    prior: float = 100.0,
    margin: float = 2.0,
    table: NDArray[np.int16] | None = None,
    on_step: StepHook | None = None,
) -> StreamRun:
    """A day under (D1) with ``λ`` set by (D3) before every request; ``expected`` [W]: requests
    forecast per window (yesterday's counts); ``table``: :func:`choice_table` of ``pred`` on
    ``curve.grid`` (computed when not given; pass it to reuse over budgets); ``on_step`` is called
    at the end of every ``control_s`` step, as by :func:`.primal_dual.dynamic_run`."""
    if len(expected) != len(budgets):
        raise InputError(f"{len(expected)} expected counts for {len(budgets)} windows; give one per window")
    table = choice_table(pred, cost, curve.grid) if table is None else table
    steps = round(window_s / control_s)
    start = float(np.floor(times[0] / DAY_S) * DAY_S) if len(times) else 0.0
    offset = np.asarray(times, float) - start
    step_of = np.floor(offset / control_s).astype(np.int64)
    n_steps = len(budgets) * steps
    if len(times) and step_of[-1] >= n_steps:
        raise InputError(f"requests run past the {len(budgets)} budget windows; give a budget per window")
    bounds = np.searchsorted(step_of, np.arange(n_steps + 1))
    choices, lams, spend = np.zeros(len(times), dtype=np.int64), np.zeros(len(times)), np.zeros(len(budgets))
    seen, n_seen, lam = np.zeros(len(curve.grid)), 0, 0.0
    for k in range(n_steps):
        w, pos = divmod(k, steps)
        if pos == 0:
            seen[:], n_seen = 0.0, 0
        rate_t = RATE_PRIOR * window_s / max(float(expected[w]), 1.0)
        for i in range(int(bounds[k]), int(bounds[k + 1])):
            t = offset[i] - w * window_s
            left = max((n_seen + RATE_PRIOR) / (t + rate_t) * (window_s - t), 1.0)
            b = (budgets[w] - spend[w]) / left * (1.0 + margin / np.sqrt(left))
            lam = curve.price(b, seen, n_seen, prior)
            j = int(np.argmax(pred[i] - lam * cost))
            choices[i], lams[i] = j, lam
            spend[w] += cost[j]
            seen += cost[table[i]]
            n_seen += 1
        if on_step is not None:
            on_step(k, int(bounds[k + 1]), lam, spend)
    return StreamRun(choices, lams, np.asarray(budgets, float), spend)


def window_demand(pred: F64, cost: F64, times: F64, n_windows: int, window_s: float) -> F64:
    """[W] what each window's requests would spend at ``λ = 0`` (every request its estimated best
    chain): the most a (D1) policy can spend there; a budget above it does not bind."""
    spend = cost[best_response(pred, cost, 0.0)]
    w = window_index(times, window_s)
    keep = (w >= 0) & (w < n_windows)
    return np.bincount(w[keep], weights=spend[keep], minlength=n_windows).astype(float)
