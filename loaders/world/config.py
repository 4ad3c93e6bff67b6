"""The world's knobs: one frozen config, and named scales from demo to benchmark size."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from graph.errors import InputError

DOMAIN_ACTIVITY: dict[str, float] = {
    "ecommerce": 0.9,
    "local_services": 0.5,
    "finance": 0.35,
    "travel": 0.35,
    "mini_apps": 0.45,
    "health": 0.08,  # the sparse cold-start domain
}


@dataclass(frozen=True)
class WorldConfig:
    """Everything that shapes a world. Same config and seed → the same files, byte for byte."""

    scale: str = "demo"
    seed: int = 0
    n_users: int = 2_000
    n_items: int = 1_000
    n_campaigns: int = 12
    span_days: int = 120  # observed history [start, start + span)
    horizon_days: int = 60  # campaigns run in [start + span, start + span + horizon)
    start: str = "2026-01-01"
    events_per_user: float = 12.0  # mean; per-user rates are Gamma-distributed (heavy tail)
    episodes_per_user: float = 2.5  # mean latent intent episodes (Poisson + 1)
    follow_prob: float = 0.5  # an episode spawns a PRECEDES successor
    co_occur_prob: float = 0.3  # an episode spawns a CO_OCCURS_WITH partner
    noise: float = 0.1  # share of events unrelated to any intent (popularity-driven)
    popularity_alpha: float = 1.1  # Zipf exponent of item popularity within a category
    purchase_prob: float = 0.12
    search_prob: float = 0.15  # share of events preceded by a search query
    cold_start_keep: float = 0.35  # extra thinning of events in the cold-start domain
    conversion_prob: float = 0.7  # a user with a targeted intent during the campaign converts
    chunk_users: int = 50_000  # users generated (and written) per chunk
    n_documents: int = 400  # product descriptions, campaign briefs and reviews (documents.py)
    impression_page_size: int = 5  # items shown per rec/search page (impressions.py); 0 = no impressions
    impression_hard_share: float = 0.5  # share of non-clicked candidates from the clicked item's category

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"--seed must be a non-negative integer, got {self.seed!r}")
        if self.impression_page_size < 0:
            raise InputError(f"impression_page_size must be >= 0, got {self.impression_page_size!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def total_days(self) -> int:
        return self.span_days + self.horizon_days


SCALES: dict[str, WorldConfig] = {
    "demo": WorldConfig(),
    "small": WorldConfig(scale="small", n_users=50_000, n_items=20_000, n_campaigns=40, n_documents=2_000),
    "bench": WorldConfig(
        scale="bench",
        n_users=1_000_000,
        n_items=200_000,
        n_campaigns=200,
        events_per_user=16.0,
        n_documents=10_000,
    ),
}


def world_config(scale: str, seed: int = 0, **overrides: Any) -> WorldConfig:
    """The named scale with a seed (and any field overridden)."""
    if scale not in SCALES:
        raise InputError(f"unknown world scale {scale!r}; choose one of {', '.join(SCALES)}")
    return replace(SCALES[scale], seed=seed, **overrides)
