"""Synthetic interactions shared by the benchmarks (unique user-item pairs, power-law items)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def interactions(rng: np.random.Generator, n_users: int, n_items: int, n_edges: int) -> pd.DataFrame:
    """``n_edges`` unique (user, item) INTERACTED rows: head, tail, kind, ts, domain, confidence."""
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    draws = int(n_edges * 1.3) + 1000
    pairs = np.unique(
        rng.integers(0, n_users, draws).astype(np.int64) * n_items
        + rng.choice(n_items, draws, p=pop / pop.sum())
    )
    pairs = rng.permutation(pairs)[:n_edges]
    ts = pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 90, len(pairs)), unit="s")
    return pd.DataFrame(
        {
            "head": [f"u{x}" for x in pairs // n_items],
            "tail": [f"i{x}" for x in pairs % n_items],
            "kind": rng.choice(["click", "purchase"], len(pairs), p=[0.9, 0.1]),
            "ts": ts.astype("datetime64[us]"),
            "domain": rng.choice(["retail", "travel", "health"], len(pairs), p=[0.6, 0.3, 0.1]),
            "confidence": 1.0,
        }
    )
