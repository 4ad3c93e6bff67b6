"""The true reward of a shown list on the world: expected clicks under the world's hidden click model.

The world (:mod:`loaders.world.impressions`) decides every click of its impression log with::

    p_click(u, i, k, t) = sigmoid(B0 + B_REL·rel(u, i, t) + B_POP·log_pop(i) − B_POS·log(1 + k))   (W1)

where ``rel(u, i, t)`` is 1 when an intent episode of user ``u`` live at time ``t``
(``start ≤ t < end``) NEEDS the leaf category of item ``i``. The reward of showing the list
``i_0 … i_{K−1}`` (in that order) to user ``u`` at ``t`` is its expected number of clicks::

    reward(u, t, [i_k]) = Σ_k p_click(u, i_k, k, t)                                            (W2)

:class:`ClickTruth` rebuilds the world's own tables (:func:`~loaders.world.impressions.build_click_model`
from the manifest's config, the episodes of ``hidden/user_intents.parquet``) and calls the world's
:func:`~loaders.world.impressions.p_click`, so nothing of the model is re-implemented here. It reads
``hidden/``: it is an evaluator, and no model input ever comes from it.

Shapes: ``R`` requests, ``K`` shown positions, ``L`` leaf categories.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from graph.errors import InputError
from loaders.world.impressions import ClickModel
from loaders.world.layout import WorldDir


@dataclass(frozen=True)
class ClickTruth:
    """The world's click model and its users' intent episodes (see the module doc)."""

    model: ClickModel
    item_index: dict[str, int]  # item id → catalogue row of ``model``
    intent_index: dict[str, int]  # intent id → row of ``model.needs``
    episodes: pd.DataFrame  # user, intent (row), start, end (datetime64), sorted by user
    start: pd.Timestamp  # the world's time origin

    def items(self, ids: np.ndarray) -> np.ndarray:
        """[n] catalogue rows of item ids (an unknown id is an error)."""
        try:
            return np.array([self.item_index[i] for i in ids], dtype=np.int64)
        except KeyError as exc:
            raise InputError(f"item {exc.args[0]!r} is not in the world's catalogue") from None

    def relevant_leaves(self, users: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """[R, L] bool: leaf l is NEEDed by an episode of ``users[r]`` live at ``ts[r]``."""
        req = pd.DataFrame({"user": users, "ts": pd.to_datetime(ts), "row": np.arange(len(users))})
        pairs = req.merge(self.episodes, on="user")
        live = pairs[(pairs["start"] <= pairs["ts"]) & (pairs["ts"] < pairs["end"])]
        out = np.zeros((len(users), self.model.needs.shape[1]), dtype=bool)
        for row, intent in zip(live["row"].to_numpy(), live["intent"].to_numpy(), strict=True):
            out[row] |= self.model.needs[intent]
        return out

    def p_click(self, leaves: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[R, K] eq. W1 for catalogue rows ``items`` [R, K] shown at positions 0…K−1, given the
        requests' :meth:`relevant_leaves` ``leaves`` [R, L]."""
        from loaders.world.impressions import p_click

        rows = np.arange(len(items))[:, None]
        rel = leaves[rows, self.model.item_leaf[items]].astype(float)
        pos = np.broadcast_to(np.arange(items.shape[1]), items.shape)
        return p_click(self.model, rel, items, pos)

    def expected_clicks(self, leaves: np.ndarray, items: np.ndarray) -> np.ndarray:
        """[R] eq. W2: expected clicks of each request's shown list ``items`` [R, K]."""
        out: np.ndarray = self.p_click(leaves, items).sum(1)
        return out


def load_click_truth(world: Path) -> ClickTruth:
    """Rebuild the hidden click model of the world folder ``world`` (evaluator only)."""
    from loaders.world.catalogue import build_catalogue
    from loaders.world.config import WorldConfig
    from loaders.world.impressions import build_click_model
    from loaders.world.ontology import load_ontology
    from loaders.world.population import build_behaviour

    wd = WorldDir(world)
    cfg = WorldConfig(**wd.manifest()["config"])
    if cfg.impression_page_size < 1:
        raise InputError(
            f"{world} has no click model (impression_page_size 0); regenerate it with impressions"
        )
    onto = load_ontology()
    cat = build_catalogue(onto, cfg.n_items, cfg.popularity_alpha, np.random.default_rng([cfg.seed, 0]))
    b = build_behaviour(onto, cat)
    model = build_click_model(onto, b, cat)
    intent_index = {x: i for i, x in enumerate(b.intent_ids)}
    eps = pd.read_parquet(
        wd.hidden_for_evaluation("user_intents.parquet"), columns=["user", "intent", "start", "end"]
    )
    eps = eps.assign(user=eps["user"].astype(str), intent=eps["intent"].map(intent_index).astype(np.int64))
    ids = model.item_ids.to_pylist()
    return ClickTruth(
        model=model,
        item_index={x: i for i, x in enumerate(ids)},
        intent_index=intent_index,
        episodes=eps.sort_values("user", kind="stable").reset_index(drop=True),
        start=pd.Timestamp(cfg.start),
    )
