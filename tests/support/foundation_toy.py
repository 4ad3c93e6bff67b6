"""A small multi-domain click dataset with a known rule, for the foundation model's tests.

Each item has a colour token; a request likes one colour. The click probability is high when the
colours match, but in domain ``d1`` the rule is reversed, so a model that ignores the domain cannot
fit both. Search requests are queries whose text names the colour they like.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gnn.foundation.data import FoundationData, validate

COLOURS = ("red", "green", "blue", "yellow")


def toy_data(n_requests: int = 120, n_items: int = 60, pages: int = 30, seed: int = 0) -> FoundationData:
    rng = np.random.default_rng(seed)
    domains = ("d0", "d1", "cold")
    item_colour = rng.integers(0, len(COLOURS), n_items)
    item_domain = rng.integers(0, len(domains), n_items)
    items = pd.DataFrame(
        {
            "item": [f"i{i}" for i in range(n_items)],
            "text": [f"a {COLOURS[c]} thing" for c in item_colour],
            "sparse": [
                [f"colour:{COLOURS[c]}", f"domain:{domains[d]}"]
                for c, d in zip(item_colour, item_domain, strict=True)
            ],
        }
    )
    req_colour = rng.integers(0, len(COLOURS), n_requests)
    is_query = np.arange(n_requests) % 3 == 0
    requests = pd.DataFrame(
        {
            "request": [f"{'q' if q else 'u'}{r}" for r, q in enumerate(is_query)],
            "kind": np.where(is_query, "query", "user"),
            "text": [f"{COLOURS[c]} please" if q else "" for c, q in zip(req_colour, is_query, strict=True)],
            "sparse": [[f"likes:{COLOURS[c]}"] for c in req_colour],
        }
    )
    rows = []
    for p in range(n_requests * pages // 10):
        r = int(rng.integers(n_requests))
        d = int(rng.integers(len(domains)))
        shown = rng.choice(np.flatnonzero(item_domain == d), size=5)
        for i in shown:
            match = item_colour[i] == req_colour[r]
            like = (not match) if domains[d] == "d1" else match
            y = rng.random() < (0.8 if like else 0.1)
            rows.append(
                (
                    domains[d],
                    "search" if is_query[r] else "rec",
                    requests["request"][r],
                    f"u{r}",
                    f"i{i}",
                    int(y),
                    p,
                )
            )
    s = pd.DataFrame(rows, columns=["domain", "task", "request", "user", "item", "label", "t"])
    s["ts"] = pd.Timestamp("2026-01-01") + pd.to_timedelta(s.pop("t"), unit="h")
    q = s["ts"].rank(pct=True)
    s["split"] = np.where(q <= 0.7, "train", np.where(q <= 0.85, "valid", "test"))
    s["label"] = s["label"].astype("int8")
    return validate(FoundationData("toy", s, requests, items, cold_domain="cold"))
