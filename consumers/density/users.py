"""The store's users as rows of numbers: the data the density estimator of issue 19 (Liu et al.,
"Diffusion-Model-Assisted Supervised Learning of Generative Models for Density Estimation",
arXiv:2310.14458) fits when it synthesises users (:mod:`.synthesize`).

:func:`user_features` reads every ``User`` through the :class:`~graph.store.GraphStore` API and
gives one row [d] per user (float64, original units, not standardised):

- ``attr_<key>``: every numeric field of ``User.attributes`` (the dataset's own fields as a JSON
  object, e.g. a RecBole ``.user`` file's ``age``); a user without the field gets the column's
  median. Text fields are left out. Generated worlds carry no attributes.
- activity, from the user's edges:
  ``domains`` (``ACTIVE_IN`` edges), ``items_<domain>`` (distinct items ``INTERACTED`` with, per
  the edge's ``domain``; one ``items`` column when there is a single or no domain), ``events``
  (the interactions' ``count`` summed, 1 where missing), ``purchases`` (interactions of kind
  ``purchase``), ``rating_mean`` (the mean ``rating``, the column's median for users without one),
  ``searches`` (``SEARCHED`` queries), ``categories`` (distinct categories the items the user
  interacted with ``BELONGS_TO``), ``intents`` (``HAS_INTENT`` edges);
- ``vec_<k>`` (with ``vector_components = k > 0``): the first ``k`` principal components of the
  user vectors the foundation model wrote back (:func:`gnn.foundation.serve.read_representations`;
  of the model that covers the most users), where the store holds any; users without a vector
  get 0 (the mean).

Columns that take a single value over all users are dropped (nothing to model).
"""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from graph.errors import InputError
from graph.store import GraphStore

Array = NDArray[np.float64]
INTERACTED = ("User", "INTERACTED", "Item")


class UserFeatures(NamedTuple):
    """``ids`` [n], ``X`` [n, d] float64 in original units, ``names`` [d]."""

    ids: list[str]
    X: Array
    names: list[str]


def _numbers(text: object) -> dict[str, float]:
    """The numeric (not boolean) fields of one ``attributes`` JSON object."""
    if not isinstance(text, str) or not text.strip():
        return {}
    try:
        obj = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(obj, dict):
        return {}
    return {
        str(k): float(v) for k, v in obj.items() if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _attributes(users: pd.DataFrame) -> pd.DataFrame:
    """``attr_<key>`` per numeric attribute, missing values filled with the column's median."""
    frame = pd.DataFrame([_numbers(a) for a in users["attributes"]], index=users.index)
    frame = frame.add_prefix("attr_")
    return frame.fillna(frame.median())


def _per_user(index: pd.Index, heads: pd.Series, values: pd.Series | None = None) -> pd.Series:
    """Per user of ``index``: how many rows (or the sum of ``values``), 0 for users without any."""
    series = pd.Series(1.0 if values is None else values.to_numpy(float), index=heads.to_numpy())
    return series.groupby(level=0).sum().reindex(index, fill_value=0.0)


def _interactions(store: GraphStore, index: pd.Index) -> dict[str, pd.Series]:
    inter = store.edge_table(INTERACTED, ["kind", "domain", "count", "rating"])
    inter = inter[inter["head"].isin(index)]
    distinct = inter.drop_duplicates(["head", "tail"])
    domains = sorted(distinct["domain"].dropna().astype(str).unique())
    cols: dict[str, pd.Series] = {}
    if len(domains) > 1:
        for d in domains:
            cols[f"items_{d}"] = _per_user(index, distinct.loc[distinct["domain"].astype(str) == d, "head"])
    else:
        cols["items"] = _per_user(index, distinct["head"])
    cols["events"] = _per_user(index, inter["head"], pd.to_numeric(inter["count"]).fillna(1.0))
    cols["purchases"] = _per_user(index, inter.loc[inter["kind"] == "purchase", "head"])
    rated = inter.dropna(subset=["rating"])
    if len(rated):
        mean = pd.to_numeric(rated["rating"]).groupby(rated["head"].to_numpy()).mean().reindex(index)
        cols["rating_mean"] = mean.fillna(mean.median())
    belongs = store.edge_table(("Item", "BELONGS_TO", "Category"))
    pairs = inter[["head", "tail"]].merge(belongs.rename(columns={"head": "tail", "tail": "category"}))
    cols["categories"] = _per_user(index, pairs.drop_duplicates(["head", "category"])["head"])
    return cols


def _vectors(store: GraphStore, index: pd.Index, components: int, seed: int) -> dict[str, pd.Series]:
    """``vec_<k>``: principal components of one foundation model's user vectors, if any."""
    from sklearn.decomposition import PCA

    from gnn.foundation.serve import read_representations

    reps = read_representations(store, kind="user")
    if reps.empty:
        return {}
    reps = reps[reps["id"].isin(index)]
    covered = reps.groupby("model_hash")["id"].nunique().sort_index()
    if covered.empty:
        return {}
    reps = reps[reps["model_hash"] == covered.idxmax()].drop_duplicates("id")
    if len(reps) < 2:
        return {}
    k = min(components, len(reps), len(reps["vector"].iloc[0]))
    scores = PCA(k, random_state=seed).fit_transform(np.stack(list(reps["vector"])).astype(np.float64))
    frame = pd.DataFrame(scores, index=reps["id"].to_numpy()).reindex(index, fill_value=0.0)
    return {f"vec_{j}": frame[j] for j in range(k)}


def user_features(
    store: GraphStore,
    *,
    attributes: bool = True,
    activity: bool = True,
    vector_components: int = 0,
    seed: int = 0,
) -> UserFeatures:
    """Every user of ``store`` as a row of the columns of the module doc (ids sorted); constant
    columns dropped. ``seed`` seeds the PCA of the user vectors."""
    if vector_components < 0:
        raise InputError(f"vector_components must be ≥ 0, got {vector_components}")
    users = store.node_table("User", ["attributes"])
    if users.empty:
        raise InputError("the store has no users; load some first (mokg load recbole DIR, or ingest a world)")
    users = users.assign(id=users["id"].astype(str)).sort_values("id").set_index("id", drop=False)
    index = pd.Index(users["id"])
    cols: dict[str, pd.Series] = {}
    if attributes:
        cols |= {str(k): v for k, v in _attributes(users).items()}
    if activity:
        cols["domains"] = _per_user(index, store.edge_table(("User", "ACTIVE_IN", "Domain"))["head"])
        cols |= _interactions(store, index)
        cols["searches"] = _per_user(index, store.edge_table(("User", "SEARCHED", "Query"))["head"])
        cols["intents"] = _per_user(index, store.edge_table(("User", "HAS_INTENT", "Intent"))["head"])
    if vector_components:
        cols |= _vectors(store, index, vector_components, seed)
    frame = pd.DataFrame(cols, index=index, dtype=np.float64)
    frame = frame.loc[:, frame.nunique(dropna=False) > 1]
    if frame.shape[1] == 0:
        raise InputError(
            f"the store's {len(index)} users do not differ in any feature (no numeric attributes, no "
            "activity); load their interactions or attributes first"
        )
    return UserFeatures(list(index), frame.to_numpy(np.float64), [str(c) for c in frame.columns])
