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
    ρ_ref,w  = (Σ_{i ∈ yesterday, w} q_{j*(i, λ)} + s ρ_ref(λ)) / (c_w + s)   (yesterday's window w)
    ρ_w(λ)   = (κ ρ_ref,w(λ) + Σ_{i ∈ w, seen} q_{j*(i, λ)}) / (κ + n_w)    (this window's requests)
    r̂_w      = (n_w + a D) / (t + a D T / c_w)                 (arrival rate; c_w: yesterday's count)
    n̂        = max(r̂_w (T − t), 1)                             (requests expected before w closes)
    b        = (B_w − S_w) / n̂ · (1 + z √(D / n̂))                            (per-request target)
    λ        = ρ_w⁻¹(b) = min {λ ≥ 0 : ρ_w(λ) ≤ b}                                          (D3)

``ρ`` is kept on a fixed log grid of ``λ`` (linear between points; 0 first, a price at which
every request takes the cheapest chain last). ``κ`` (``prior``, in requests) weighs yesterday's
curve against this window's requests, ``a`` (``config.PACE_RATE_PRIOR``) yesterday's arrival
rate against today's, and ``z`` (``margin``) paces ahead by ``z`` standard deviations of the remaining
(Poisson) request count: cutting late is always possible (down to the cheapest chain) but catching
up is not (nothing above ``λ = 0``), so the controller keeps a lead that shrinks as the window
closes. A window whose requests want less than ``B_w`` at ``λ = 0`` gets ``λ = 0`` once ``ρ_w``
shows it (b ≥ ρ_w(0)).

Two optional refinements (``--pacing bursty``, session 32) for MovieLens-1M's replay (its hours
have 90–1,000 requests that come in bursts: a user rates dozens of films within minutes), where the
plain rule keeps 71–96 % of the hours within ±2 % (worst 21 %) and these 83–96 % (worst 18 %;
docs/allocation.md, with why it stays short): ``ρ_ref,w``, yesterday's curve for the same
window shrunk toward the day's by ``s`` requests (requests differ by hour when the hour is a
feature, and a day-wide prior priced quiet hours as if they were busy), and ``D`` ≥ 1, the index of
dispersion of yesterday's arrivals (variance over mean of 5-minute counts; 1 for Poisson traffic,
3.7 on MovieLens-1M's folded day): bursts make the count seen so far a noisier forecast, so
yesterday's rate weighs ``D`` times more and the lead covers ``D`` times the variance. With
``D = 1`` and no ``ρ_ref,w`` (the default) the rule is the plain one.

:class:`Pacer` holds a day's state (spend, ``ρ_w``'s running sums) and prices one request at a
time; :func:`run_plan` replays a day through it, and serving uses the same object
(:meth:`.primal_dual.Allocator.choose_at`, with the :class:`PacingPlan` saved beside the
allocator), so what the evaluation measures is what serving does.
Shapes: ``pred`` [R, C], ``cost`` [C], ``times`` [R], budgets and expected counts [W], grid [G].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from consumers.allocation.config import PACE_RATE_PRIOR
from consumers.allocation.primal_dual import F64, StepHook, StreamRun, best_response
from consumers.allocation.traffic import DAY_S, window_index
from graph.errors import InputError

GRID = 64
"""Points of the log grid of ``λ`` (8 decades around the reference scale, 35 % apart; 320 points
held every hour within the same ±2 % on the worlds and synthetic traffic at 5× the table's cost)."""
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
        return self.invert(window_rho(self.rho, seen, n_seen, prior), b)

    def invert(self, rho: F64, b: float) -> float:
        """The smallest price of the grid's linear interpolation at which ``rho`` [G] (non-increasing)
        falls to ``b``; 0 when ``b`` is at least ``rho[0]``."""
        if b >= rho[0]:
            return 0.0
        i = int(np.count_nonzero(rho > b))  # rho is non-increasing: the first index with rho <= b
        if i >= len(rho):
            return float(self.grid[-1])
        r0, r1 = float(rho[i - 1]), float(rho[i])
        f = (r0 - b) / (r0 - r1) if r0 > r1 else 1.0
        return float(self.grid[i - 1] + f * (self.grid[i] - self.grid[i - 1]))


def window_rho(ref: F64, seen: F64 | None, n_seen: int, prior: float, out: F64 | None = None) -> F64:
    """``ρ_w`` [G] of (D3): the reference curve ``ref`` weighted as ``prior`` requests, blended with
    this window's ``n_seen`` requests (``seen``: their summed costs at each price); ``ref`` itself
    while none has been seen. ``out``: a [G] buffer to write into."""
    if seen is None or n_seen == 0:
        return ref
    rho = np.multiply(ref, prior, out=out)
    rho += seen
    rho /= prior + n_seen
    return rho


def choice_table(pred: F64, cost: F64, grid: F64) -> NDArray[np.int16]:
    """[R, G] the best response (D1) of every request at every price of ``grid`` (in chunks)."""
    if len(cost) > np.iinfo(np.int16).max:
        raise InputError(f"{len(cost)} chains are more than the pacing table holds; use at most 32,767")
    out = np.empty((len(pred), len(grid)), dtype=np.int16)
    penalty = grid[None, :, None] * cost[None, None, :]
    for a in range(0, len(pred), CHUNK):
        out[a : a + CHUNK] = np.argmax(pred[a : a + CHUNK, None, :] - penalty, axis=2)
    return out


@dataclass(frozen=True)
class PacingPlan:
    """What (D3) needs besides the predictions: ``curve`` (yesterday's ``ρ_ref``), per window
    ``budgets`` and ``expected`` [W] (yesterday's request counts), ``window_s`` the window length,
    ``prior`` (``κ``), ``margin`` (``z``), ``window_rho`` [W, G] (``ρ_ref,w``; None: ``ρ_ref`` for
    every window), ``rate_prior`` (``a``) and ``dispersion`` (``D``). Windows tile the UTC day
    from midnight."""

    curve: SpendCurve
    budgets: F64
    expected: F64
    window_s: float
    prior: float = 100.0
    margin: float = 2.0
    window_rho: F64 | None = None
    rate_prior: float = PACE_RATE_PRIOR
    dispersion: float = 1.0

    def __post_init__(self) -> None:
        if len(self.expected) != len(self.budgets):
            raise InputError(
                f"{len(self.expected)} expected counts for {len(self.budgets)} windows; give one per window"
            )
        if self.window_rho is not None and self.window_rho.shape != (len(self.budgets), len(self.curve.grid)):
            raise InputError("window_rho is [W, G]: one spend curve per window on the curve's grid")

    def reference(self, w: int) -> F64:
        """``ρ_ref`` for window ``w``: yesterday's curve for the same window when the plan has one."""
        return self.curve.rho if self.window_rho is None else self.window_rho[w]


def window_curves(
    curve: SpendCurve,
    pred_ref: F64,
    cost: F64,
    times_ref: F64,
    n_windows: int,
    window_s: float,
    shrink: float,
) -> F64:
    """[W, G] yesterday's spend per request at each price of ``curve.grid``, per window: the mean over
    the window's reference requests, shrunk toward the whole day's curve by ``shrink`` requests
    (a window yesterday left empty gets the day's curve), kept non-increasing."""
    spent = cost[choice_table(pred_ref, cost, curve.grid)]  # [R_y, G]
    w = window_index(times_ref, window_s)
    keep = (w >= 0) & (w < n_windows)
    sums = np.zeros((n_windows, len(curve.grid)))
    np.add.at(sums, w[keep], spent[keep])
    counts = np.bincount(w[keep], minlength=n_windows)[:, None].astype(float)
    rho = (sums + shrink * curve.rho[None, :]) / (counts + shrink)
    return np.asarray(np.minimum.accumulate(rho, axis=1))


class Pacer:
    """(D3) online, one request at a time, for serving: :meth:`price` before a request arriving at
    ``offset`` seconds after the day's midnight, then :meth:`record` of the chain it was served and
    of its best responses at every price of the grid (``[G]``, a row of :func:`choice_table`).
    A window's spend and its requests' curve ``ρ_w`` start afresh when the first request of a later
    window arrives; :func:`run_plan` replays a day through it."""

    def __init__(self, plan: PacingPlan, cost: F64) -> None:
        self.plan, self.cost = plan, np.asarray(cost, float)
        self.spend = np.zeros(len(plan.budgets))
        self.requests = np.zeros(len(plan.budgets), dtype=np.int64)
        self.window, self.n_seen = -1, 0
        self.seen = np.zeros(len(plan.curve.grid))
        self._penalty = plan.curve.grid[:, None] * self.cost[None, :]  # [G, C]
        self._gain, self._rho = np.empty_like(self._penalty), np.empty(len(plan.curve.grid))

    def price(self, offset: float) -> float:
        """``λ`` of (D3) for a request ``offset`` seconds into the day (module doc)."""
        plan = self.plan
        w = int(offset // plan.window_s)
        if not 0 <= w < len(plan.budgets):
            raise InputError(
                f"a request at {offset:.0f} s is outside the {len(plan.budgets)} budget windows; "
                "give a budget per window"
            )
        if w != self.window:
            self.window, self.n_seen = w, 0
            self.seen[:] = 0.0
        t = offset - w * plan.window_s
        a, d = plan.rate_prior * plan.dispersion, plan.dispersion
        rate_t = a * plan.window_s / max(float(plan.expected[w]), 1.0)
        left = max((self.n_seen + a) / (t + rate_t) * (plan.window_s - t), 1.0)
        b = (plan.budgets[w] - self.spend[w]) / left * (1.0 + plan.margin * np.sqrt(d / left))
        rho = window_rho(plan.reference(w), self.seen, self.n_seen, plan.prior, out=self._rho)
        return plan.curve.invert(rho, b)

    def record(self, chain: int, grid_choices: NDArray[np.int64] | NDArray[np.int16]) -> None:
        """Charge the current window the cost of ``chain`` and add the request to ``ρ_w``."""
        self.spend[self.window] += self.cost[chain]
        self.requests[self.window] += 1
        self.seen += self.cost.take(grid_choices)
        self.n_seen += 1

    def grid_choices(self, pred_row: F64) -> NDArray[np.int64]:
        """[G] the best response (D1) of one request's predictions [C] at every price of the grid."""
        return np.asarray(np.subtract(pred_row, self._penalty, out=self._gain).argmax(axis=1))


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
    """A day under (D1) with ``λ`` set by (D3) before every request, with the day's curve for every
    window and Poisson arrivals (:func:`run_plan` with a :class:`PacingPlan` of these arguments);
    ``expected`` [W]: requests forecast per window (yesterday's counts)."""
    plan = PacingPlan(curve, np.asarray(budgets, float), expected, window_s, prior, margin)
    return run_plan(pred, cost, times, plan, control_s, table, on_step)


def run_plan(
    pred: F64,
    cost: F64,
    times: F64,
    plan: PacingPlan,
    control_s: float,
    table: NDArray[np.int16] | None = None,
    on_step: StepHook | None = None,
) -> StreamRun:
    """A day under (D1) with ``λ`` set by (D3) (a :class:`Pacer` of ``plan``) before every request;
    ``table``: :func:`choice_table` of ``pred`` on ``plan.curve.grid`` (computed when not given;
    pass it to reuse over budgets); ``on_step`` is called at the end of every ``control_s`` step,
    as by :func:`.primal_dual.dynamic_run`."""
    pacer, budgets = Pacer(plan, cost), plan.budgets
    table = choice_table(pred, cost, plan.curve.grid) if table is None else table
    steps = round(plan.window_s / control_s)
    start = float(np.floor(times[0] / DAY_S) * DAY_S) if len(times) else 0.0
    offset = np.asarray(times, float) - start
    step_of = np.floor(offset / control_s).astype(np.int64)
    n_steps = len(budgets) * steps
    if len(times) and step_of[-1] >= n_steps:
        raise InputError(f"requests run past the {len(budgets)} budget windows; give a budget per window")
    bounds = np.searchsorted(step_of, np.arange(n_steps + 1))
    choices, lams = np.zeros(len(times), dtype=np.int64), np.zeros(len(times))
    lam = 0.0
    for k in range(n_steps):
        for i in range(int(bounds[k]), int(bounds[k + 1])):
            lam = pacer.price(offset[i])
            j = int(np.argmax(pred[i] - lam * cost))
            choices[i], lams[i] = j, lam
            pacer.record(j, table[i])
        if on_step is not None:
            on_step(k, int(bounds[k + 1]), lam, pacer.spend)
    return StreamRun(choices, lams, budgets, pacer.spend)


def window_demand(pred: F64, cost: F64, times: F64, n_windows: int, window_s: float) -> F64:
    """[W] what each window's requests would spend at ``λ = 0`` (every request its estimated best
    chain): the most a (D1) policy can spend there; a budget above it does not bind."""
    spend = cost[best_response(pred, cost, 0.0)]
    w = window_index(times, window_s)
    keep = (w >= 0) & (w < n_windows)
    return np.bincount(w[keep], weights=spend[keep], minlength=n_windows).astype(float)


def dispersion(times: F64, window_s: float, bin_s: float = 300.0) -> float:
    """The index of dispersion of arrivals (variance over mean of the counts in ``bin_s`` bins,
    pooled within each window; 1 for Poisson arrivals, more when requests come in bursts), at
    least 1."""
    t = np.asarray(times, float) % DAY_S
    per = max(round(window_s / bin_s), 2)
    n_bins = int(np.ceil(DAY_S / (per * bin_s))) * per
    counts = np.bincount((t // bin_s).astype(np.int64), minlength=n_bins)[:n_bins].reshape(-1, per)
    mean, var = counts.mean(1), counts.var(1, ddof=1)
    busy = mean > 0
    return max(float(var[busy].sum() / mean[busy].sum()), 1.0) if busy.any() else 1.0
