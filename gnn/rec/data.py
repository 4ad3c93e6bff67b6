"""The recommendation view of the store: users, items, entities and the knowledge edges between them.

:func:`load_rec_data` reads the training graph through :func:`loaders.pyg.build_graph_data`
(never the store's files) and flattens it into the arrays every recommender in :mod:`gnn.rec`
shares (:class:`RecData`):

- ``fit`` interactions: what a model may train on before the test stage (train ∪ val edges of the
  split, i.e. the edges of ``GraphData.message_passing_graph("test")``), and ``test`` interactions;
- the domain of every item (``IN_DOMAIN``) and of every interaction;
- *entities* = categories, brands and intents (one index space) with their text features, the
  item → entity links (the item's category path: leaf and every ancestor, and its brand) and the
  typed entity → entity knowledge edges (``SUBCATEGORY_OF`` always; ``NEEDS``, ``SERVES``,
  ``CO_OCCURS_WITH``, ``PRECEDES`` only when a KG is loaded).

The KG may come from another store (:func:`attach_kg`): that is the hook for ``--kg mined``,
whose edges are mapped onto this graph's entities by id.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from graph.errors import InputError

if TYPE_CHECKING:
    from graph.store import GraphStore
    from loaders.features import TextEncoder
    from loaders.pyg import GraphData, SplitKind

ENTITY_LABELS = ("Category", "Brand", "Intent")
BASE_EDGES = ("INTERACTED", "BELONGS_TO", "MADE_BY", "SUBCATEGORY_OF", "IN_DOMAIN")
KG_RELATIONS = ("NEEDS", "SERVES", "CO_OCCURS_WITH", "PRECEDES")


@dataclass(frozen=True)
class RecDataConfig:
    """How to read the recommendation graph.

    Args:
        split: leave_last_out, temporal or cold_start (of the INTERACTED edges).
        cold_domain: the domain held out by the cold_start split (the world's cold-start domain).
        kg: read the knowledge edges (NEEDS, SERVES, CO_OCCURS_WITH, PRECEDES) of the store.
        features: MiniLM text features for items and entities (zeros of width 1 when off).
        val_frac, test_frac: temporal cut-offs; ``val_frac`` is the share of val users for cold_start.
        seed: seed of the cold_start user split.
    """

    split: SplitKind = "leave_last_out"
    cold_domain: str = "health"
    kg: bool = True
    features: bool = True
    val_frac: float = 0.1
    test_frac: float = 0.1
    seed: int = 0


@dataclass
class RecData:
    """Flat arrays over one graph build (indices are rows of the id lists)."""

    user_ids: list[str]
    item_ids: list[str]
    domains: list[str]
    item_domain: np.ndarray  # [n_items] domain index (-1: none)
    fit_user: np.ndarray  # interactions a model may train on (train ∪ val)
    fit_item: np.ndarray
    fit_ts: np.ndarray  # int64 (ns or the store's numbers): orders each user's history
    test_user: np.ndarray
    test_item: np.ndarray
    item_x: np.ndarray  # [n_items, f]
    entity_ids: list[str]  # "Label:id"
    entity_x: np.ndarray  # [n_entities, f]
    item_entity: np.ndarray  # [2, m] (item, entity): category path and brand
    kg_edges: np.ndarray  # [3, k] (head entity, tail entity, relation index)
    relations: list[str]
    graph_version: dict[str, Any] = field(default_factory=dict)
    split_info: dict[str, Any] = field(default_factory=dict)
    kg_source: str = "none"

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_entities(self) -> int:
        return len(self.entity_ids)

    def domain_index(self, domain: str) -> int:
        if domain not in self.domains:
            raise InputError(f"unknown domain {domain!r}; the graph has {', '.join(self.domains)}")
        return self.domains.index(domain)

    def domain_items(self, domain: str) -> np.ndarray:
        """Item rows of ``domain`` (sorted)."""
        return np.flatnonzero(self.item_domain == self.domain_index(domain))

    def fit_in(self, domains: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The fit interactions whose item is in one of ``domains``."""
        keep = np.isin(self.item_domain[self.fit_item], [self.domain_index(d) for d in domains])
        return self.fit_user[keep], self.fit_item[keep]

    def test_in(self, domain: str) -> tuple[np.ndarray, np.ndarray]:
        keep = self.item_domain[self.test_item] == self.domain_index(domain)
        return self.test_user[keep], self.test_item[keep]

    def without_kg(self) -> RecData:
        """The same graph with only the category tree among entities (the "no KG" arm)."""
        tree = self.relations.index("SUBCATEGORY_OF")
        return replace(self, kg_edges=self.kg_edges[:, self.kg_edges[2] == tree], kg_source="none")


def load_rec_data(store: GraphStore, config: RecDataConfig, *, encoder: TextEncoder | None = None) -> RecData:
    """Read the recommendation graph of ``store`` (see the module docstring)."""
    from loaders.pyg import GraphDataConfig, build_graph_data

    edges = BASE_EDGES + (KG_RELATIONS if config.kg else ())
    graph = build_graph_data(
        store,
        GraphDataConfig(
            node_types=("User", "Item", "Domain", *ENTITY_LABELS),
            edge_types=edges,
            features=config.features,
            split=config.split,
            cold_domain=config.cold_domain if config.split == "cold_start" else None,
            val_frac=config.val_frac,
            test_frac=config.test_frac,
            seed=config.seed,
        ),
        encoder=encoder,
    )
    return from_graph_data(graph, kg_source="store" if config.kg else "none")


def from_graph_data(graph: GraphData, kg_source: str = "store") -> RecData:
    """Flatten a :class:`~loaders.pyg.GraphData` built with a split into :class:`RecData`."""
    data, ids = graph.data, graph.id_maps.to_id
    inter = data["User", "INTERACTED", "Item"]
    if "train_mask" not in inter:
        raise InputError("the graph has no split of INTERACTED; build it with a split")
    ei = inter.edge_index.numpy()
    fit = (inter.train_mask | inter.val_mask).numpy()
    test = inter.test_mask.numpy()
    domains = list(ids["Domain"])
    item_domain = np.full(len(ids["Item"]), -1, dtype=np.int64)
    in_dom = _edges(data, ("Item", "IN_DOMAIN", "Domain"))
    item_domain[in_dom[0]] = in_dom[1]
    offsets = np.cumsum([0] + [len(ids[label]) for label in ENTITY_LABELS])
    off = dict(zip(ENTITY_LABELS, offsets[:-1].tolist(), strict=True))
    entity_ids = [f"{label}:{i}" for label in ENTITY_LABELS for i in ids[label]]
    relations, kg = _knowledge_edges(data, off)
    return RecData(
        user_ids=list(ids["User"]),
        item_ids=list(ids["Item"]),
        domains=domains,
        item_domain=item_domain,
        fit_user=ei[0, fit],
        fit_item=ei[1, fit],
        fit_ts=_timestamps(graph)[fit],
        test_user=ei[0, test],
        test_item=ei[1, test],
        item_x=_x(data, "Item"),
        entity_ids=entity_ids,
        entity_x=np.concatenate([_x(data, label) for label in ENTITY_LABELS]),
        item_entity=_item_entities(data, off),
        kg_edges=kg,
        relations=relations,
        graph_version=graph.graph_version.as_dict(),
        split_info=graph.split.info() if graph.split is not None else {},
        kg_source=kg_source,
    )


def attach_kg(data: RecData, kg_store: GraphStore, source: str) -> RecData:
    """``data`` with its knowledge edges replaced by those read from ``kg_store`` (e.g. a store the
    PAIR miner wrote, or one ingested with the truth KG). Edges whose endpoints are not entities of
    ``data`` (e.g. mined Concepts) are dropped."""
    from loaders.pyg import GraphDataConfig, build_graph_data

    graph = build_graph_data(
        kg_store,
        GraphDataConfig(node_types=ENTITY_LABELS, edge_types=KG_RELATIONS, features=False),
    )
    index = {e: i for i, e in enumerate(data.entity_ids)}
    base = data.without_kg()
    rows = [base.kg_edges]
    for (h, rel, t), store in graph.data.edge_items():
        ei = store.edge_index.numpy()
        heads = [index.get(f"{h}:{graph.id_maps.to_id[h][j]}", -1) for j in ei[0]]
        tails = [index.get(f"{t}:{graph.id_maps.to_id[t][j]}", -1) for j in ei[1]]
        pairs = np.array([heads, tails], dtype=np.int64).reshape(2, -1)
        pairs = pairs[:, (pairs >= 0).all(axis=0)]
        rel_row = np.full((1, pairs.shape[1]), data.relations.index(rel), dtype=np.int64)
        rows.append(np.concatenate([pairs, rel_row]))
    return replace(base, kg_edges=np.concatenate(rows, axis=1), kg_source=source)


def _timestamps(graph: GraphData) -> np.ndarray:
    import pandas as pd

    assert graph.interactions is not None  # a split was built, so its frame is there
    ts = graph.interactions["ts"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        return ts.astype("datetime64[ns]").to_numpy().astype(np.int64)
    return ts.to_numpy().astype(np.int64)


def _edges(data: Any, key: tuple[str, str, str]) -> np.ndarray:
    if key not in data.edge_types:
        return np.zeros((2, 0), dtype=np.int64)
    return data[key].edge_index.numpy()  # type: ignore[no-any-return]


def _x(data: Any, label: str) -> np.ndarray:
    store = data[label]
    if "x" in store:
        return store.x.numpy().astype(np.float32)  # type: ignore[no-any-return]
    return np.zeros((store.num_nodes, 1), dtype=np.float32)


def _item_entities(data: Any, off: dict[str, int]) -> np.ndarray:
    """(item, entity) for the item's leaf category, every ancestor category and its brand."""
    n_cat = data["Category"].num_nodes
    parent = np.full(n_cat, -1, dtype=np.int64)
    tree = _edges(data, ("Category", "SUBCATEGORY_OF", "Category"))
    parent[tree[0]] = tree[1]
    belongs = _edges(data, ("Item", "BELONGS_TO", "Category"))
    pairs = [_edges(data, ("Item", "MADE_BY", "Brand")) + np.array([[0], [off["Brand"]]])]
    items, cats = belongs[0], belongs[1]
    for _ in range(n_cat):  # walk up the tree (depth-bounded; stops when every path hit the root)
        keep = cats >= 0
        if not keep.any():
            break
        items, cats = items[keep], cats[keep]
        pairs.append(np.stack([items, cats + off["Category"]]))
        cats = parent[cats]
    return np.unique(np.concatenate(pairs, axis=1), axis=1)


def _knowledge_edges(data: Any, off: dict[str, int]) -> tuple[list[str], np.ndarray]:
    """Entity → entity edges with a relation index; relations listed in a fixed order."""
    relations = ["SUBCATEGORY_OF", *KG_RELATIONS]
    rows = []
    for h, rel, t in data.edge_types:
        if h in off and t in off and rel in relations:
            ei = _edges(data, (h, rel, t))
            shifted = ei + np.array([[off[h]], [off[t]]])
            rows.append(np.concatenate([shifted, np.full((1, ei.shape[1]), relations.index(rel))]))
    kg = np.concatenate(rows, axis=1) if rows else np.zeros((3, 0), dtype=np.int64)
    return relations, kg.astype(np.int64)
