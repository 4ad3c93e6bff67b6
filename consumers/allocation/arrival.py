"""What an allocator may know when a request arrives: the features of :class:`ChainOutcomes`.

GreenFlow (arXiv 2312.16176) estimates each chain's reward from the request's features (user
profile, context, time) before any stage runs. On the world these come from its visible log only
(``visible/events/interactions.parquet``) and the store's ``User -ACTIVE_IN-> Domain`` edges,
counted strictly before the request's time, never from ``hidden/``:

- ``hour`` (0–24, fractional) and ``weekday`` (0–6) of the arrival;
- ``log_clicks``: log(1 + the user's interactions so far); ``log_hours_since``: log(1 + hours since
  the user's last one; a year when there is none);
- ``active_domains``: how many domains the user is active in;
- ``share:<domain>``: the share of the user's interactions so far in each domain (0 when none).

Shape: ``[R, F]`` with ``F = 5 + domains``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from graph.store import GraphStore
from loaders.world.layout import WorldDir

NO_HISTORY_HOURS = 24.0 * 365


def history(
    ev_user: np.ndarray, ev_sec: np.ndarray, rq_user: np.ndarray, rq_sec: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For requests (user index, seconds ≥ 0) against events sorted by (user, seconds): (first event
    of the user [R], first event at or after the request [R], hours since the user's last earlier
    event [R], capped at :data:`NO_HISTORY_HOURS`). Events strictly before a request are
    ``first … at − 1``."""
    span = (
        float(max(ev_sec.max(initial=0.0), rq_sec.max(initial=0.0)) - min(ev_sec.min(initial=0.0), 0.0)) + 1.0
    )
    at = np.searchsorted(ev_user * span + ev_sec, rq_user * span + rq_sec, side="left")
    first = np.searchsorted(ev_user, rq_user, side="left")
    last = np.where(at > first, ev_sec[np.maximum(at - 1, 0)], -np.inf)
    return first, at, np.minimum((rq_sec - last) / 3600.0, NO_HISTORY_HOURS)


def clock(stamp: pd.DatetimeIndex) -> list[np.ndarray]:
    """``hour`` (fractional) and ``weekday`` of arrival times."""
    return [np.asarray(stamp.hour + stamp.minute / 60.0, float), np.asarray(stamp.day_of_week, float)]


def arrival_features(
    store: GraphStore, world: Path, users: np.ndarray, ts: np.ndarray
) -> tuple[np.ndarray, tuple[str, ...]]:
    """([R, F] features, their names) of requests (``users`` [R], ``ts`` [R] datetime64)."""
    ev = pd.read_parquet(
        WorldDir(world).visible("events", "interactions.parquet"), columns=["user", "domain", "ts"]
    )
    domains = sorted(ev["domain"].astype(str).unique())
    user_ids = np.union1d(ev["user"].astype(str).unique(), users.astype(str))
    ev = ev.assign(
        u=np.searchsorted(user_ids, ev["user"].astype(str)), d=np.searchsorted(domains, ev["domain"])
    )
    ev = ev.sort_values(["u", "ts"], kind="stable")
    t0 = min(ev["ts"].min(), pd.Timestamp(np.min(ts))) if len(ev) else pd.Timestamp(np.min(ts))
    sec_ev = (ev["ts"] - t0).dt.total_seconds().to_numpy()
    sec_rq = (pd.to_datetime(ts) - t0).total_seconds().to_numpy()
    first, at, hours = history(
        ev["u"].to_numpy(), sec_ev, np.searchsorted(user_ids, users.astype(str)), sec_rq
    )
    n = at - first
    cum = np.vstack([np.zeros(len(domains)), np.cumsum(np.eye(len(domains))[ev["d"].to_numpy()], 0)])
    share = (cum[at] - cum[first]) / np.maximum(n, 1)[:, None]
    active = store.edge_table(("User", "ACTIVE_IN", "Domain")).groupby("head")["tail"].nunique()
    cols = [
        *clock(pd.to_datetime(ts)),
        np.log1p(n),
        np.log1p(hours),
        active.reindex(users.astype(str)).fillna(0).to_numpy(float),
    ]
    features = np.column_stack([*cols, share])
    names = (
        "hour",
        "weekday",
        "log_clicks",
        "log_hours_since",
        "active_domains",
        *(f"share:{d}" for d in domains),
    )
    return features, names
