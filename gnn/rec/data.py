"""The recommendation view of the store: users, items, entities and the knowledge edges between them.

:func:`load_rec_data` reads the training graph through :func:`loaders.pyg.build_graph_data`
(never the store's files) and flattens it into the arrays every recommender in :mod:`gnn.rec`
shares (:class:`RecData`):

- ``fit`` interactions: what a model may train on before the test stage (train ∪ val edges of the
  split, i.e. the edges of ``GraphData.message_passing_graph("test")``; train only for cold_items,
  whose val rows are held-out items too), and ``test`` interactions;
- the domain of every item (``IN_DOMAIN``) and of every interaction;
- *entities* = categories, brands and intents (one index space) with their text features, the
  item → entity links (the item's category path: leaf and every ancestor, and its brand) and the
  typed entity → entity knowledge edges (``SUBCATEGORY_OF`` always, the rest only when a KG is
  attached).

The knowledge edges are whatever the store holds (:func:`kg_relations`): every relation type of
its schema between entity labels, so the MoKG's mined ``NEEDS``, ``SERVES``, ``CO_OCCURS_WITH``,
``PRECEDES`` and the types a user declared for a KG they loaded (e.g. Freebase's
``film.film.actor`` from a RecBole ``.kg`` file) alike. Entities of such a KG (label ``Entity``)
are reached from items through ``SAME_AS`` and join the index space after the catalogue's own.

The KG may come from another store (:func:`attach_kg`): that is the hook for ``--kg mined``,
whose edges are mapped onto this graph's entities by id.

With the ``cold_items`` split the held-out items form a catalogue of their own: each domain ``D``
with held-out items gets a pseudo-domain ``D:cold`` (:data:`COLD_SUFFIX`) holding them, which is
where they are ranked (none of them has a fit interaction).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from graph.errors import InputError

if TYPE_CHECKING:
    from graph.schema import Schema
    from graph.store import GraphStore
    from loaders.features import TextEncoder
    from loaders.pyg import GraphData, SplitKind

ENTITY_LABELS = ("Category", "Brand", "Intent")  # the catalogue's entities, always read
LINKED_LABEL = "Entity"  # an external KG's entities, reached from items through SAME_AS
BASE_EDGES = ("INTERACTED", "BELONGS_TO", "MADE_BY", "SUBCATEGORY_OF", "IN_DOMAIN")
TREE = "SUBCATEGORY_OF"
COLD_SUFFIX = ":cold"


def kg_relations(schema: Schema) -> list[str]:
    """The knowledge relations of a store's schema: every type with an endpoint pair between
    entity labels (the catalogue's and ``Entity``), the category tree excepted, in schema order
    (the MoKG's own first, then the declared ones)."""
    labels = {*ENTITY_LABELS, LINKED_LABEL}
    return [
        r.name
        for r in schema.rel_types.values()
        if r.name != TREE and any(h in labels and t in labels for h, t in r.endpoints)
    ]


@dataclass(frozen=True)
class RecDataConfig:
    """How to read the recommendation graph.

    Args:
        split: leave_last_out, temporal, cold_start or cold_items (of the INTERACTED edges).
        cold_domain: the domain held out by the cold_start split (the world's cold-start domain).
        cold_share: the share of items held out by the cold_items split.
        kg: read the store's knowledge edges (:func:`kg_relations`; SAME_AS links to ``Entity``).
        features: MiniLM text features for items and entities (zeros of width 1 when off).
        val_frac, test_frac: temporal cut-offs; ``val_frac`` is the share of val users for cold_start.
        seed: seed of the cold_start user split and of the cold_items item split.
    """

    split: SplitKind = "leave_last_out"
    cold_domain: str = "health"
    cold_share: float = 0.2
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

    def catalogue_entities(self) -> int:
        """How many entities are the catalogue's own (the linked KG's come after them)."""
        prefix = f"{LINKED_LABEL}:"
        return next((i for i, e in enumerate(self.entity_ids) if e.startswith(prefix)), self.n_entities)

    def without_kg(self) -> RecData:
        """The same graph with only the category tree among the catalogue's entities (the "no KG"
        arm): a linked KG's entities and the items' links to them go too."""
        n = self.catalogue_entities()
        tree = self.relations.index(TREE)
        keep = self.kg_edges[2] == tree
        edges = self.kg_edges[:, keep]
        edges[2] = 0
        return replace(
            self,
            entity_ids=self.entity_ids[:n],
            entity_x=self.entity_x[:n],
            item_entity=self.item_entity[:, self.item_entity[1] < n],
            kg_edges=edges,
            relations=[TREE],
            kg_source="none",
        )


def load_rec_data(store: GraphStore, config: RecDataConfig, *, encoder: TextEncoder | None = None) -> RecData:
    """Read the recommendation graph of ``store`` (see the module docstring)."""
    from loaders.pyg import GraphDataConfig, build_graph_data

    graph = build_graph_data(
        store,
        GraphDataConfig(
            node_types=("User", "Item", "Domain", *ENTITY_LABELS),
            edge_types=BASE_EDGES,
            features=config.features,
            split=config.split,
            cold_domain=config.cold_domain if config.split == "cold_start" else None,
            cold_share=config.cold_share,
            val_frac=config.val_frac,
            test_frac=config.test_frac,
            seed=config.seed,
        ),
        encoder=encoder,
    )
    data = from_graph_data(graph, kg_source="none")
    return attach_kg(data, store, "store") if config.kg else data


def from_graph_data(graph: GraphData, kg_source: str = "store") -> RecData:
    """Flatten a :class:`~loaders.pyg.GraphData` built with a split into :class:`RecData`."""
    data, ids = graph.data, graph.id_maps.to_id
    inter = data["User", "INTERACTED", "Item"]
    if "train_mask" not in inter:
        raise InputError("the graph has no split of INTERACTED; build it with a split")
    ei = inter.edge_index.numpy()
    cold_items = graph.split is not None and graph.split.name == "cold_items"
    # cold_items: val rows are held-out items too, so fitting on them would warm those items up
    fit = (inter.train_mask if cold_items else inter.train_mask | inter.val_mask).numpy()
    test = inter.test_mask.numpy()
    domains = list(ids["Domain"])
    item_domain = np.full(len(ids["Item"]), -1, dtype=np.int64)
    in_dom = _edges(data, ("Item", "IN_DOMAIN", "Domain"))
    item_domain[in_dom[0]] = in_dom[1]
    if cold_items:
        domains = _cold_catalogues(domains, item_domain, np.unique(ei[1, ~fit]))
    offsets = np.cumsum([0] + [len(ids[label]) for label in ENTITY_LABELS])
    off = dict(zip(ENTITY_LABELS, offsets[:-1].tolist(), strict=True))
    entity_ids = [f"{label}:{i}" for label in ENTITY_LABELS for i in ids[label]]
    tree = _edges(data, ("Category", TREE, "Category")) + off["Category"]
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
        kg_edges=np.concatenate([tree, np.zeros((1, tree.shape[1]), dtype=np.int64)]),
        relations=[TREE],
        graph_version=graph.graph_version.as_dict(),
        split_info=graph.split.info() if graph.split is not None else {},
        kg_source=kg_source,
    )


def attach_kg(data: RecData, kg_store: GraphStore, source: str) -> RecData:
    """``data`` with its knowledge edges replaced by those ``kg_store`` holds (:func:`kg_relations`
    of its schema): the store itself, a store the PAIR miner wrote, or one ingested with the truth
    KG. Catalogue entities are matched by id (edges whose endpoints ``data`` lacks, e.g. mined
    Concepts, are dropped); ``Entity`` nodes are appended with zero features and linked to the
    items ``SAME_AS`` them."""
    from loaders.pyg import GraphDataConfig, build_graph_data

    base = data.without_kg()
    relations = kg_relations(kg_store.schema)
    graph = build_graph_data(
        kg_store,
        GraphDataConfig(
            node_types=(*ENTITY_LABELS, LINKED_LABEL, "Item"),
            edge_types=(*relations, "SAME_AS"),
            features=False,
        ),
    )
    to_id = graph.id_maps.to_id
    linked = [f"{LINKED_LABEL}:{e}" for e in to_id[LINKED_LABEL]]
    entity_ids = base.entity_ids + linked
    index = {e: i for i, e in enumerate(entity_ids)}
    names = [TREE, *relations]
    rows = [base.kg_edges]
    for (h, rel, t), store in graph.data.edge_items():
        if rel == "SAME_AS":
            continue
        ei = store.edge_index.numpy()
        pairs = _map_pairs(ei, [f"{h}:{x}" for x in to_id[h]], [f"{t}:{x}" for x in to_id[t]], index, index)
        rows.append(np.concatenate([pairs, np.full((1, pairs.shape[1]), names.index(rel))]))
    item_rows = {i: r for r, i in enumerate(data.item_ids)}
    same_as = _edges(graph.data, ("Item", "SAME_AS", LINKED_LABEL))
    same = _map_pairs(same_as, list(to_id["Item"]), linked, item_rows, index)
    zeros = np.zeros((len(linked), base.entity_x.shape[1]), dtype=np.float32)
    return replace(
        base,
        entity_ids=entity_ids,
        entity_x=np.concatenate([base.entity_x, zeros]),
        item_entity=np.unique(np.concatenate([base.item_entity, same], axis=1), axis=1),
        kg_edges=np.concatenate(rows, axis=1).astype(np.int64),
        relations=names,
        kg_source=source,
    )


def _map_pairs(
    ei: np.ndarray, heads: list[str], tails: list[str], head_index: dict[str, int], tail_index: dict[str, int]
) -> np.ndarray:
    """``[2, m]`` (head row, tail row) for the edges ``ei`` (rows of ``heads`` / ``tails``) through
    the two indexes; edges with an endpoint an index lacks are dropped."""
    h = np.array([head_index.get(heads[j], -1) for j in ei[0]], dtype=np.int64)
    t = np.array([tail_index.get(tails[j], -1) for j in ei[1]], dtype=np.int64)
    pairs = np.stack([h, t]).reshape(2, -1)
    return pairs[:, (pairs >= 0).all(axis=0)]


def _cold_catalogues(domains: list[str], item_domain: np.ndarray, held: np.ndarray) -> list[str]:
    """Move the held-out items of the cold_items split into a pseudo-domain ``D:cold`` per domain
    ``D`` (in place on ``item_domain``); returns the extended domain list."""
    out = list(domains)
    for d in np.unique(item_domain[held]):
        if d < 0:
            continue
        out.append(f"{domains[d]}{COLD_SUFFIX}")
        rows = held[item_domain[held] == d]
        item_domain[rows] = len(out) - 1
    return out


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
