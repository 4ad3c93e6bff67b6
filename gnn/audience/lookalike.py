"""Lookalike audiences: expand a seed of past converters by similarity in the GNN's user space.

The seed is the advertiser's own past conversion log: the users who converted on the
advertiser's *earlier* campaigns, which an advertiser legitimately has (its own attribution
data). Only campaigns whose window ended before the scored campaign starts are used, and never
the scored campaign itself (:meth:`ConversionLog.seed_for`). In the simulated world that log is cut
out of the hidden conversion table by the evaluator under exactly that rule.

With :math:`\\hat z_u = z_u / \\lVert z_u \\rVert` the GNN's final user embeddings
(:mod:`gnn.audience.gnn`), :math:`S_{c'}` the converters of a past campaign c', and
:math:`q_c` the weighted mean intent embedding of a campaign, the seed centroid for campaign c is

.. math::

    \\mu_c = \\sum_{c'} a_{cc'} \\frac{1}{|S_{c'}|} \\sum_{s \\in S_{c'}} \\hat z_s, \\qquad
    a_{cc'} = \\max(0, \\cos(q_c, q_{c'})) + \\epsilon

(past campaigns about related intents count more; ε keeps unrelated ones as a weak prior), and
:math:`s(u, c) = \\cos(\\hat z_u, \\mu_c)`. A campaign with no earlier finished campaign has no
seed: ``score`` raises an :class:`AudienceError` that says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gnn.audience.base import AudienceError, GraphPath, positions, score_frame
from gnn.audience.gnn import GNNConfig, GNNTargeter
from graph.store import GraphStore


@dataclass(frozen=True)
class ConversionLog:
    """The advertiser's past conversions (campaign, user) and its campaigns' windows (id, start, end)."""

    conversions: pd.DataFrame
    windows: pd.DataFrame

    @classmethod
    def read(cls, conversions: Path, windows: Path) -> ConversionLog:
        try:
            return cls(pd.read_parquet(conversions), pd.read_parquet(windows))
        except (OSError, ValueError) as exc:
            raise AudienceError(f"cannot read the conversion log: {exc}") from None

    def seed_for(self, campaign: str) -> pd.DataFrame:
        """Conversions of campaigns that ended before ``campaign`` started (never ``campaign``'s own)."""
        win = self.windows.set_index("id")
        if campaign not in win.index:
            raise AudienceError(f"campaign {campaign!r} is not in the advertiser's campaign schedule")
        start = pd.to_datetime(win["start"])[campaign]
        past = win.index[(pd.to_datetime(win["end"]) < start) & (win.index != campaign)]
        seed = self.conversions[self.conversions["campaign"].isin(past)]
        return seed[seed["campaign"] != campaign].reset_index(drop=True)


def read_seed(
    method: str, log: ConversionLog | None, conversions: Path | None, windows: Path | None
) -> ConversionLog:
    """``log`` when given, else the conversion log read from its two files (a one-line
    :class:`AudienceError` naming the CLI options when they are missing)."""
    if log is not None:
        return log
    if conversions is None or windows is None:
        raise AudienceError(
            f"{method} needs the advertiser's past conversion log: give conversions and "
            "windows files (CLI: --conversion-log FILE --campaign-windows FILE)"
        )
    return ConversionLog.read(conversions, windows)


@dataclass(frozen=True)
class LookalikeConfig:
    """Args: gnn: the embedding model; conversions, windows: the advertiser's past conversion log
    and campaign schedule (Parquet: campaign, user / id, start, end); epsilon: ε."""

    gnn: GNNConfig = field(default_factory=GNNConfig)
    conversions: Path | None = None
    windows: Path | None = None
    epsilon: float = 0.1


class LookalikeTargeter:
    """Seed expansion in the GNN's embedding space (see the module docstring)."""

    name = "lookalike"
    config_type = LookalikeConfig

    def __init__(self, log: ConversionLog | None = None, gnn: GNNTargeter | None = None) -> None:
        self.log, self.gnn = log, gnn
        self.config = LookalikeConfig()

    def fit(self, store: GraphStore, config: LookalikeConfig | None = None) -> LookalikeTargeter:
        """Train the GNN (unless a fitted one was given) and read the conversion log."""
        self.config = c = config or LookalikeConfig()
        self.log = read_seed(self.name, self.log, c.conversions, c.windows)
        if self.gnn is None:
            self.gnn = GNNTargeter().fit(store, c.gnn)
        return self

    def _ready(self) -> tuple[ConversionLog, GNNTargeter]:
        if self.log is None or self.gnn is None:
            raise AudienceError("the lookalike targeter is not fitted; call fit(store, config) first")
        return self.log, self.gnn

    def centroid(self, campaign: str) -> np.ndarray:
        log, gnn = self._ready()
        seed = log.seed_for(campaign)
        if not len(seed):
            raise AudienceError(
                f"no seed for {campaign!r}: no campaign in the conversion log ended before it started"
            )
        users, z = gnn.embeddings("User")
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        q = unit(campaign_vector(gnn, campaign))
        mu = np.zeros(z.shape[1])
        for past, group in seed.groupby("campaign"):
            rows = positions(users, group["user"])
            rows = rows[rows >= 0]
            if len(rows):
                a = self._relatedness(q, str(past))
                mu += a * zn[rows].mean(axis=0)
        return mu

    def _relatedness(self, q: np.ndarray, past: str) -> float:
        _, gnn = self._ready()
        return relatedness(gnn, q, past, self.config.epsilon)

    def score(self, campaign: str) -> pd.DataFrame:
        _, gnn = self._ready()
        users, z = gnn.embeddings("User")
        mu = unit(self.centroid(campaign))
        zn = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return score_frame(users, zn @ mu)

    def explain(self, user: str, campaign: str) -> list[GraphPath]:
        """The seed users closest to ``user`` (paths of one hop in embedding space, weight = cosine)."""
        log, gnn = self._ready()
        users, z = gnn.embeddings("User")
        index = pd.Index(users)
        me = index.get_loc(user) if user in index else None
        if me is None:
            raise AudienceError(f"unknown user {user!r}")
        seed = log.seed_for(campaign)
        rows = positions(users, seed["user"])
        keep = rows >= 0
        sims = np.array([float(unit(z[me]) @ unit(z[r])) for r in rows[keep]])
        pairs = seed[keep].assign(sim=sims).sort_values("sim", ascending=False).head(5)
        return [
            GraphPath(
                (user, str(s), str(c)), ("User", "User", "Campaign"), ("LOOKS_LIKE", "CONVERTED_ON"), float(w)
            )
            for s, c, w in zip(pairs["user"], pairs["campaign"], pairs["sim"], strict=True)
        ]


def unit(v: np.ndarray) -> np.ndarray:
    """``v / ‖v‖`` (0 stays 0)."""
    return v / max(float(np.linalg.norm(v)), 1e-12)


def campaign_vector(gnn: GNNTargeter, campaign: str) -> np.ndarray:
    """q_c: the campaign's intents' GNN embeddings, weighted by TARGETS confidence."""
    zi, w = gnn.intent_vector(campaign)
    return np.asarray(w @ zi)


def relatedness(gnn: GNNTargeter, q: np.ndarray, past: str, epsilon: float) -> float:
    """a_cc' = max(0, cos(q_c, q_c')) + ε for the unit campaign vector ``q`` = q_c; ε alone for a
    past campaign no longer in the store."""
    try:
        return max(0.0, float(q @ unit(campaign_vector(gnn, past)))) + epsilon
    except AudienceError:
        return epsilon
