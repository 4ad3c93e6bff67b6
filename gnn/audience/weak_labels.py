"""Weak user–intent labels from visible data only (the GNN's supervision).

``HAS_INTENT`` is hidden truth and never in the store, so the GNN cannot learn from real
user–intent links. What the store does show is what users did (``INTERACTED`` with items that
``BELONG_TO`` categories) and, when a KG is present, which categories an intent ``NEEDS`` or which
categories ``SERVE`` it. An intent's *footprint* is a weighted category set

.. math::

    F(i) = \\{(c', w)\\;:\\; (i \\xrightarrow{NEEDS,\\,w} c) \\text{ or } (c \\xrightarrow{SERVES,\\,w} i),
    \\; c' \\in \\mathrm{desc}(c) \\cup \\{c\\}\\}

(a need or service on a mid-level category covers its subtree). Intents with no KG footprint (no
KG at all, or intents a mined KG missed) fall back, when ``text_fallback`` is on, to the ``top_m``
categories whose text embedding (MiniLM, name + description) is closest to the intent's, weighted
by cosine: a catalogue match a marketer would make by hand, much weaker than a KG. The label
strength of (u, i) is

.. math::

    y_{ui} = \\sum_{(u, v) \\in \\text{INTERACTED}} \\; \\sum_{(c, w) \\in F(i):\\, v \\in c} w \\cdot
    2^{-(T - t_{uv}) / h}

with ``t_uv`` the last interaction time, ``T`` the latest time in the store and ``h`` the
half-life in days (recent behaviour says more about intents that are still live). Pairs with
``y > 0`` are positives. No hidden file is read anywhere here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from graph.store import GraphStore


@dataclass(frozen=True)
class WeakLabelConfig:
    """Args: half_life_days: recency half-life h (None: no decay); text_fallback: use text
    similarity for intents without a KG footprint; top_m: categories per intent in that case."""

    half_life_days: float | None = 30.0
    text_fallback: bool = True
    top_m: int = 5


def _descendants(tree: pd.DataFrame) -> dict[str, set[str]]:
    """category → itself and every category below it (SUBCATEGORY_OF: head is below tail)."""
    children: dict[str, list[str]] = {}
    for child, parent in zip(tree["head"], tree["tail"], strict=True):
        children.setdefault(str(parent), []).append(str(child))

    def walk(c: str, seen: set[str]) -> set[str]:
        seen.add(c)
        for x in children.get(c, []):
            if x not in seen:
                walk(x, seen)
        return seen

    return {c: walk(c, set()) for c in {*tree["head"].astype(str), *tree["tail"].astype(str)}}


def kg_footprint(store: GraphStore) -> pd.DataFrame:
    """``intent, category, weight`` from NEEDS and SERVES, spread over subtrees (max weight kept)."""
    needs = store.edge_table(("Intent", "NEEDS", "Category"), ["confidence"])
    serves = store.edge_table(("Category", "SERVES", "Intent"), ["confidence"])
    pairs = pd.concat(
        [
            pd.DataFrame({"intent": needs["head"], "category": needs["tail"], "weight": needs["confidence"]}),
            pd.DataFrame(
                {"intent": serves["tail"], "category": serves["head"], "weight": serves["confidence"]}
            ),
        ],
        ignore_index=True,
    )
    if not len(pairs):
        return pd.DataFrame({"intent": [], "category": [], "weight": []})
    below = _descendants(store.edge_table(("Category", "SUBCATEGORY_OF", "Category")))
    pairs["category"] = [sorted(below.get(str(c), {str(c)})) for c in pairs["category"]]
    pairs = pairs.explode("category")
    pairs["weight"] = pairs["weight"].fillna(1.0).astype(float)
    return pairs.groupby(["intent", "category"])["weight"].max().reset_index()


def text_footprint(
    intents: list[str], intent_x: np.ndarray, categories: list[str], category_x: np.ndarray, top_m: int
) -> pd.DataFrame:
    """``intent, category, weight``: each intent's ``top_m`` categories by cosine of text embeddings."""
    a = intent_x / np.maximum(np.linalg.norm(intent_x, axis=1, keepdims=True), 1e-12)
    b = category_x / np.maximum(np.linalg.norm(category_x, axis=1, keepdims=True), 1e-12)
    sim = a @ b.T
    m = min(top_m, len(categories))
    top = np.argsort(-sim, axis=1, kind="stable")[:, :m]
    rows = [
        (intents[i], categories[j], float(max(sim[i, j], 0.0))) for i in range(len(intents)) for j in top[i]
    ]
    return pd.DataFrame(rows, columns=["intent", "category", "weight"])


def weak_labels(
    interactions: pd.DataFrame,
    item_category: pd.DataFrame,
    footprint: pd.DataFrame,
    half_life_days: float | None,
) -> pd.DataFrame:
    """``user, intent, y`` with y > 0 (see the module docstring).

    ``interactions``: user, item, ts; ``item_category``: item, category; ``footprint``: intent,
    category, weight.
    """
    inter = interactions.copy()
    if half_life_days and len(inter):
        ts = pd.to_datetime(inter["ts"])
        age_days = (ts.max() - ts).dt.total_seconds().to_numpy() / 86400.0
        inter["recency"] = np.power(0.5, age_days / half_life_days)
    else:
        inter["recency"] = 1.0
    joined = inter.merge(item_category, on="item").merge(footprint, on="category")
    joined["y"] = joined["weight"] * joined["recency"]
    labels = joined.groupby(["user", "intent"])["y"].sum().reset_index()
    return pd.DataFrame(labels[labels["y"] > 0].reset_index(drop=True))
