"""The seeded world as :class:`~gnn.foundation.data.FoundationData`: search and recommendation
scenarios per domain, with real negatives from the world's impression log.

Samples come from ``visible/events/impressions.parquet`` (pages of shown items, one clicked; the
non-clicked rows were drawn by the world's hidden click model). A page with a query is a *search*
sample (request = the query), one without is a *recommendation* sample (request = the user). The
side features are read from the graph store, so a mined or loaded KG reaches the model:

- item text: its title (or name); sparse tokens: every level of its category path
  (``BELONGS_TO`` then ``SUBCATEGORY_OF`` up to the root, ``cat0:`` = the root), its brand
  (``MADE_BY``), its domain (``IN_DOMAIN``) and its KG neighbours (``kg:`` the intents its item or
  categories ``SERVES``, when a KG is in the store);
- user requests: no text of their own (the model gives them the mean text of their training
  clicks); sparse tokens: the domains they are active in (``ACTIVE_IN``);
- query requests: the query text; sparse token ``kind:query``.

Split: by time over the whole log (the first ``train`` share of timestamps trains, the next
``valid`` share validates, the rest tests), so no model sees the future.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gnn.foundation.data import FoundationData, validate
from graph.errors import InputError
from graph.store import GraphStore
from loaders.world.layout import WorldDir

COLD_DOMAIN = "health"  # the world's sparse cold-start domain (loaders/world/config.py)


def world_data(
    store: GraphStore, world: Path, *, train: float = 0.8, valid: float = 0.1, max_pages: int | None = None
) -> FoundationData:
    """The world's impressions as samples, side features from ``store`` (see the module doc).

    max_pages: keep the last ``max_pages`` pages of the log (quick runs); None keeps all.
    """
    path = WorldDir(world).visible("events", "impressions.parquet")
    if not path.exists():
        raise InputError(
            f"{world} has no impression log ({path.name}); regenerate the world with "
            "`mokg world generate --out DIR` (impressions are written since mokg 0.1 wave 2)"
        )
    imp = _latest(path, max_pages)
    search = imp["query"].fillna("") != ""
    cut_train, cut_valid = np.quantile(imp["ts"].astype("int64"), [train, train + valid])
    t = imp["ts"].astype("int64").to_numpy()
    samples = pd.DataFrame(
        {
            "domain": imp["domain"].astype(str).to_numpy(),
            "task": np.where(search, "search", "rec"),
            "request": np.where(search, imp["query"], imp["user"]),
            "user": imp["user"].to_numpy(),
            "item": imp["item"].to_numpy(),
            "label": imp["clicked"].astype("int8").to_numpy(),
            "ts": imp["ts"].to_numpy(),
            "split": np.where(t <= cut_train, "train", np.where(t <= cut_valid, "valid", "test")),
        }
    )
    items = _items(store, samples["item"].unique())
    requests = pd.concat(
        [_users(store, samples.loc[~search.to_numpy(), "request"].unique()), _queries(store, imp[search])],
        ignore_index=True,
    )
    return validate(FoundationData("world", samples, requests, items, cold_domain=COLD_DOMAIN))


def _latest(path: Path, max_pages: int | None) -> pd.DataFrame:
    """The impression log, or the rows of its latest ``max_pages`` pages (every row of a page has
    the page's timestamp), read with a filter so a 63M-row log is never loaded whole."""
    import pyarrow.parquet as pq

    if max_pages is None:
        return pd.read_parquet(path)
    if max_pages < 1:
        raise InputError(f"--max-pages must be >= 1, got {max_pages}")
    clicked = pq.read_table(path, columns=["ts"], filters=[("clicked", "==", True)])  # one row a page
    pages = clicked.column("ts").to_numpy()
    if len(pages) <= max_pages:
        return pd.read_parquet(path)
    cut = np.partition(pages, len(pages) - max_pages)[len(pages) - max_pages]
    return pd.read_parquet(path, filters=[("ts", ">=", pd.Timestamp(cut).to_pydatetime())])


def _tokens(frame: pd.DataFrame, prefix: str) -> pd.Series:
    """head → list of ``prefix:tail`` tokens."""
    return (prefix + frame["tail"].astype(str)).groupby(frame["head"]).agg(list)


def _items(store: GraphStore, ids: np.ndarray) -> pd.DataFrame:
    nodes = store.node_table("Item", ["title", "name"]).set_index("id")
    text = nodes["title"].fillna(nodes["name"]).fillna("").reindex(ids).fillna("")
    parent = store.edge_table(("Category", "SUBCATEGORY_OF", "Category")).set_index("head")["tail"].to_dict()
    leaf = store.edge_table(("Item", "BELONGS_TO", "Category"))
    paths: dict[str, list[str]] = {}
    for item, cat in zip(leaf["head"], leaf["tail"], strict=True):
        chain = [cat]
        while chain[-1] in parent and len(chain) < 16:
            chain.append(parent[chain[-1]])
        paths.setdefault(item, []).extend(f"cat{lvl}:{c}" for lvl, c in enumerate(reversed(chain)))
    sparse: dict[str, list[str]] = {i: list(paths.get(i, [])) for i in ids}
    for key, prefix in (
        (("Item", "MADE_BY", "Brand"), "brand:"),
        (("Item", "IN_DOMAIN", "Domain"), "domain:"),
    ):
        for item, toks in _tokens(store.edge_table(key), prefix).items():
            if item in sparse:
                sparse[item].extend(toks)
    served = pd.concat([_served(store, "Item"), _served(store, "Category")], ignore_index=True)
    if len(served):
        cats = leaf.rename(columns={"tail": "cat"})
        by_item = pd.concat(
            [
                served.rename(columns={"head": "item"}),
                cats.merge(served, left_on="cat", right_on="head")[["head_x", "tail"]].set_axis(
                    ["item", "tail"], axis=1
                ),
            ]
        ).drop_duplicates()
        for item, toks in ("kg:" + by_item["tail"].astype(str)).groupby(by_item["item"]).agg(list).items():
            if item in sparse:
                sparse[item].extend(sorted(toks))
    return pd.DataFrame(
        {"item": ids, "text": text.to_numpy(), "sparse": [sparse[i] or ["item:none"] for i in ids]}
    )


def _served(store: GraphStore, label: str) -> pd.DataFrame:
    return store.edge_table((label, "SERVES", "Intent"))[["head", "tail"]]


def _users(store: GraphStore, ids: np.ndarray) -> pd.DataFrame:
    active = _tokens(store.edge_table(("User", "ACTIVE_IN", "Domain")), "active:")
    sparse = [active.get(u, ["active:none"]) for u in ids]
    return pd.DataFrame({"request": ids, "kind": "user", "text": "", "sparse": sparse})


def _queries(store: GraphStore, pages: pd.DataFrame) -> pd.DataFrame:
    ids = pages["query"].unique()
    nodes = store.node_table("Query", ["text", "name"]).set_index("id")
    text = nodes["text"].fillna(nodes["name"]).reindex(ids).fillna("")
    return pd.DataFrame(
        {"request": ids, "kind": "query", "text": text.to_numpy(), "sparse": [["kind:query"]] * len(ids)}
    )
